"""Benchmark the two store backends in one run: a 100,000-row import and the dashboard's first map.

Data: 100,000 rows of real live postcodes (fixed seed), four project types, one CSV. Each
backend starts empty: a GeoPackage in a temporary folder, and a new PostGIS database (on the
server KINDRED_MAP_BENCH_PG names, else a throwaway cluster started with `.ci/pg_cluster`,
default settings, fsync on). Boundary layers and the postcode index are loaded first (not
timed), as in bench_import.py.

Timed per backend: `importing.import_file` of the file into the empty store (read, geocode, join,
reconcile, write, log); the same file imported again (every record unchanged); and the
dashboard's first map in Python: `store.read_projects` + `mapview.build_map` for the default
view + the map's HTML rendered (what Streamlit sends), median of READS runs. The browser
benchmark (bench_dashboard.py) drives the real page; this one isolates what the backend
changes.

History (issue 15 on issue 12's contract), on a copy of the shipped sample store in each
backend (`store copy`, its baseline events included): one edit (a website changed:
validation, row lock or folder lock, version check, row + event; median of EDITS), the undo of
an import of 1,000 new rows (the first 1,000 of the file; 1,000 projects removed, 1,000 undo
events), and an as-of read of the store (`read_projects(as_of="today")`: the history replayed;
median of READS). Writes benchmarks/results/backends.md.

Run: PYTHONPATH=. python benchmarks/bench_backends.py
"""

import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import psycopg

from kindred_map import boundaries, geocode, importing, join, mapview, store
from kindred_map import stewardship as st
from kindred_map import view as views
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

RESULTS = Path(__file__).parent / "results" / "backends.md"
ROWS = 100_000
READS = 3
EDITS = 5
UNDO_ROWS = 1_000
SEED = 15
TYPES = ["Food Pantry", "warm hub", "sto", "Place of Welcome"]


def _rows_file(folder: Path) -> Path:
    postcodes = boundaries.load("postcode")
    region = (postcodes["status"] == "live") & postcodes["in_region"]
    live = postcodes.loc[region, "postcode"].to_numpy()
    rng = np.random.default_rng(SEED)
    path = folder / "bench_projects.csv"
    pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(ROWS)],
            "name": [f"Project {i}" for i in range(ROWS)],
            "type": rng.choice(TYPES, ROWS),
            "postcode": rng.choice(live, ROWS),
        }
    ).to_csv(path, index=False)
    return path


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _first_map(location) -> tuple[float, int]:
    """Seconds for read + map build + HTML, and the HTML's length."""

    def run():
        projects = store.read_projects(location)
        return mapview.build_map(projects, views.View()).get_root().render()

    seconds, html = _timed(run)
    return seconds, len(html)


def _measure(location, source: Path) -> dict:
    first, report = _timed(lambda: importing.import_file(source, location))
    assert (report.new, report.rejected) == (ROWS, 0), (report.new, report.rejected)
    again, repeat = _timed(lambda: importing.import_file(source, location))
    assert repeat.unchanged == ROWS
    maps = [_first_map(location) for _ in range(READS)]
    read, projects = _timed(lambda: store.read_projects(location))
    assert len(projects) == ROWS
    return {
        "import": first,
        "reimport": again,
        "read": read,
        "map": statistics.median(seconds for seconds, _ in maps),
        "map_first": maps[0][0],
        "html": maps[0][1],
    }


def _measure_history(location, source: Path, folder: Path) -> dict:
    """One edit, the undo of a 1,000-row import and an as-of read, on the sample store."""
    store.copy(DEFAULT_STORE, location)
    projects = store.read_projects(location)
    edits = []
    for number, pid in enumerate(projects["id"].iloc[:EDITS]):
        change = {"website": f"https://bench.example/{number}"}
        seconds, saved = _timed(lambda p=pid, c=change: st.edit_project(location, p, c, 1, "bench"))
        assert saved["version"] == 2
        edits.append(seconds)
    batch = folder / f"undo_{uuid.uuid4().hex[:6]}" / "batch.csv"
    batch.parent.mkdir()
    pd.read_csv(source, nrows=UNDO_ROWS).to_csv(batch, index=False)
    report = importing.import_file(batch, location, who="bench")
    assert report.new == UNDO_ROWS
    undo, undone = _timed(lambda: st.undo_import(location, report.import_id, "bench"))
    assert len(undone.removed) == UNDO_ROWS
    reads = [_timed(lambda: store.read_projects(location, as_of="today")) for _ in range(READS)]
    assert len(reads[0][1]) == len(store.read_projects(location))
    return {
        "edit": statistics.median(edits),
        "undo": undo,
        "as_of": statistics.median(seconds for seconds, _ in reads),
        "sample": len(projects),
        "events": len(st.read_history(location)),
    }


def _database(server: str) -> tuple[str, str]:
    """A new database on the server: its name and DSN."""
    name = f"kindred_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name, urlsplit(server)._replace(path=f"/{name}").geturl()


def _server(folder: Path) -> tuple[str, bool]:
    """A server DSN, and whether this run started it (and must stop it)."""
    given = os.environ.get("KINDRED_MAP_BENCH_PG", "").strip()
    if given:
        return given, False
    out = subprocess.run(
        [str(PROJECT_ROOT / ".ci" / "pg_cluster"), "start", str(folder / "pg")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip(), True


def main() -> None:
    join.reference()
    geocode.postcode_index()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)  # the throwaway cluster's owner must reach its folder
        source = _rows_file(folder)
        server, started = _server(folder)
        with psycopg.connect(server, autocommit=True) as conn:
            version = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
        (database, dsn), (sample_db, sample_dsn) = _database(server), _database(server)
        try:
            results = {
                "GeoPackage": _measure(folder / "projects.gpkg", source)
                | _measure_history(folder / "sample.gpkg", source, folder),
                "PostGIS": _measure(dsn, source) | _measure_history(sample_dsn, source, folder),
            }
            with psycopg.connect(dsn) as conn:
                postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                for name in (database, sample_db):
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if started:
                subprocess.run(
                    [str(PROJECT_ROOT / ".ci" / "pg_cluster"), "stop", str(folder / "pg")],
                    check=False,
                )
    _write(results, version, postgis, started)


def _write(results: dict, version: str, postgis: str, started: bool) -> None:
    gpkg, pg = results["GeoPackage"], results["PostGIS"]
    server = "a throwaway local cluster (default settings, fsync on)" if started else "a server"
    rows = [
        ("import 100,000 rows into an empty store (s)", "import"),
        ("import the same file again, every record unchanged (s)", "reimport"),
        ("read every project (`read_projects`) (s)", "read"),
        (f"first map: read + `build_map` + HTML, median of {READS} (s)", "map"),
        ("first map, the very first run (s)", "map_first"),
        (f"one edit on the sample store, median of {EDITS} (s)", "edit"),
        (f"undo an import of {UNDO_ROWS:,} new rows (s)", "undo"),
        (f"as-of read of the sample store (history replayed), median of {READS} (s)", "as_of"),
    ]
    lines = [
        "# Store backends: GeoPackage and PostGIS",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/bench_backends.py` on "
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average at the end {' / '.join(f'{x:.1f}' for x in os.getloadavg())}; the "
        "machine was shared with other work, so treat single figures as indicative). "
        f"{version} with PostGIS {postgis} on {server}, same machine, TCP on 127.0.0.1. "
        f"{ROWS:,} rows of real live postcodes (seed {SEED}), one CSV; each backend starts "
        "empty. Boundary layers and the postcode index loaded before timing.",
        "",
        "| | GeoPackage | PostGIS | PostGIS / GeoPackage |",
        "|---|---|---|---|",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {gpkg[key]:.2f} | {pg[key]:.2f} | {pg[key] / gpkg[key]:.2f} |")
    lines += [
        f"| map page HTML (bytes; markers and popups are static files) | {gpkg['html']:,} | "
        f"{pg['html']:,} | |",
        "",
        "The first map is the default view (wards by projects, every project) built in Python "
        "by `mapview.build_map`: the marker and popup files written, the view's payload and the "
        "page's HTML; Streamlit and the browser add the same time to both (see dashboard.md).",
        "",
        f"History figures: the shipped sample store ({gpkg['sample']} open projects) copied "
        "into each backend with `store copy` (its baseline events come along); one edit "
        "changes a website (validated like an import row, version-checked, row and event "
        f"written in one transaction); the as-of read replays {pg['events']:,} events.",
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
