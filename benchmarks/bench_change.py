"""Benchmark a change computation: `change.change_between` over the shipped store, and over a
store of 13,000 projects with 50,000 history events.

The large store: 13,000 projects at random points in the region (fixed seed, 7 types), each
added on a random date in 2023-2025 (13,000 ``add`` events), then 37,000 more events on random
projects and dates: edits that move the project up to 500 m, verifies, retires and restores,
written into the store's ``history`` table (the issue 12 contract). Timed: reading the history
and replaying it to a date (``store.read_projects(as_of=...)``), and the whole change between
two dates (both replays, two coverage assessments over every live postcode, the per-area
table) at ward, deanery and borough level. Wall time, median of 5 runs after one warm-up (the
population surface is cached by then, as in the CLI after its first call). Writes
benchmarks/results/change.md.

Also the issue 26 row: the ward change on the large store against the plain way
(`bench_history.plain_change`: SQL + pandas replay + buffer/union/sjoin) in 5 interleaved
pairs. ``--json`` prints only that row's figures as JSON, so that another tree's Python (e.g.
main's venv) can run this file and its figures sit beside this tree's in one session.

Run: PYTHONPATH=. python benchmarks/bench_change.py [--json]
"""

import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))  # bench_history and pairs, run as a script

from pairs import interleaved  # noqa: E402

from kindred_map import change, coverage, store  # noqa: E402
from kindred_map.paths import DEFAULT_STORE  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "change.md"
SEED = 20260101
PROJECTS = 13_000
EVENTS = 50_000
TYPES = ("pantry", "place_of_welcome", "sto", "church_project", "food_bank", "warm_space", "other")
RUNS = 5


def timed(function) -> tuple[float, object]:
    """Median wall seconds of RUNS calls after a warm-up, and the last result."""
    result = function()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def big_store(folder: Path) -> Path:
    """A store of PROJECTS projects whose history table holds EVENTS events."""
    rng = np.random.default_rng(SEED)
    points = coverage.population_points()
    chosen = points.sample(PROJECTS, random_state=SEED).reset_index(drop=True)
    lon = chosen["lon"].to_numpy() + rng.normal(0, 0.002, PROJECTS)
    lat = chosen["lat"].to_numpy() + rng.normal(0, 0.0012, PROJECTS)
    start = pd.Timestamp("2023-01-01", tz="UTC")
    seconds = 3 * 365 * 86400
    records = []
    for i in range(PROJECTS):
        records.append(
            {
                "id": f"bench:{i}",
                "name": f"Project {i}",
                "type": TYPES[i % len(TYPES)],
                "lon": round(float(lon[i]), 6),
                "lat": round(float(lat[i]), 6),
                "WD24CD": chosen["WD24CD"][i],
                "LAD25CD": chosen["LAD25CD"][i],
                "deanery_id": None
                if pd.isna(chosen["deanery_id"][i])
                else int(chosen["deanery_id"][i]),
                "LSOA21CD": chosen["LSOA21CD"][i],
                "location_precision": "exact",
                "synthetic": False,
                "retired_at": "",
            }
        )
    opened = start + pd.to_timedelta(rng.integers(0, seconds, PROJECTS), unit="s")
    events = [(opened[i], i, "add", dict(records[i])) for i in range(PROJECTS)]
    later = rng.integers(0, PROJECTS, EVENTS - PROJECTS)
    current = [dict(r) for r in records]
    for n, i in enumerate(sorted(later, key=lambda k: opened[k])):
        at = opened[i] + pd.Timedelta(seconds=int(rng.integers(1, seconds)))
        record = dict(current[i])
        action = ("edit", "verify", "retire", "restore")[n % 4]
        if action == "edit":
            record["lon"] = round(record["lon"] + float(rng.normal(0, 0.003)), 6)
            record["lat"] = round(record["lat"] + float(rng.normal(0, 0.002)), 6)
        elif action == "retire":
            record["retired_at"] = at.date().isoformat()
        elif action == "restore":
            record["retired_at"] = ""
        current[i] = record
        events.append((at, i, action, record))
    events.sort(key=lambda e: e[0])
    path = folder / "big.gpkg"
    frame = pd.DataFrame(current)
    points = gpd.points_from_xy(frame["lon"], frame["lat"])
    final = store.conform(gpd.GeoDataFrame(frame, geometry=points, crs=4326))
    store.write_store(final, store.read_imports(path), path, "2026-01-01T00:00:00Z")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS history (event_id INTEGER PRIMARY KEY, project_id TEXT "
            "NOT NULL, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, source TEXT "
            "NOT NULL, import_id INTEGER, before TEXT, after TEXT NOT NULL, version INTEGER NOT "
            "NULL)"
        )
        conn.execute("DELETE FROM history")
        conn.executemany(
            "INSERT INTO history (project_id, at, who, action, source, import_id, before, "
            "after, version) VALUES (?, ?, 'bench', ?, 'bench', NULL, NULL, ?, 1)",
            [
                (f"bench:{i}", at.isoformat(timespec="seconds"), action, json.dumps(record))
                for at, i, action, record in events
            ],
        )
    return path


def against_plain(path: Path, pairs: int = 5) -> dict:
    """The ward change between 2024-06-30 and 2025-06-30 against the plain way, interleaved."""
    from bench_history import BNG, plain_change  # here: bench_history imports this file

    dates = ("2024-06-30", "2025-06-30")
    points = coverage.population_points()
    population = gpd.GeoDataFrame(
        points, geometry=gpd.points_from_xy(points["easting"], points["northing"]), crs=BNG
    )
    return interleaved(
        lambda: change.change_between(path, *dates, "ward", None, 800),
        lambda: plain_change(path, dates, population),
        pairs,
    )


def main() -> None:
    lines = [
        "# Change computation",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, shared 2-core "
        "container (other jobs running). Median of 5 runs after a warm-up. "
        "`PYTHONPATH=. python benchmarks/bench_change.py`.",
        "",
        "| Store | Step | Level | Types | Seconds |",
        "|---|---|---|---|---|",
    ]
    shipped = DEFAULT_STORE
    seconds, _ = timed(
        lambda: change.change_between(shipped, "2025-01-01", "today", "deanery", "pantry", 800)
    )
    count = len(store.read_projects(shipped))
    lines.append(f"| shipped ({count} projects) | change | deanery | pantry | {seconds:.2f} |")
    seconds, _ = timed(
        lambda: change.change_between(shipped, "2025-01-01", "today", "ward", None, 800)
    )
    lines.append(f"| shipped | change | ward | all | {seconds:.2f} |")
    with tempfile.TemporaryDirectory() as folder:
        path = big_store(Path(folder))
        seconds, projects = timed(lambda: store.read_projects(path, as_of="2025-06-30"))
        lines.append(
            f"| {PROJECTS:,} projects, {EVENTS:,} events | replay to 2025-06-30 "
            f"({len(projects):,} open) | - | - | {seconds:.2f} |"
        )
        for level, types in (("deanery", "pantry"), ("ward", None), ("borough", None)):
            seconds, _ = timed(
                lambda level=level, types=types: change.change_between(
                    path, "2024-06-30", "2025-06-30", level, types, 800
                )
            )
            lines.append(
                f"| {PROJECTS:,} projects, {EVENTS:,} events | change | {level} | "
                f"{types or 'all'} | {seconds:.2f} |"
            )
        plain = against_plain(path)
    lines += [
        "",
        "Ward change on the large store against the plain way (SQL + pandas replay + "
        f"buffer/union/sjoin), 5 interleaved pairs: product {plain['product']:.2f} s, plain "
        f"{plain['plain']:.2f} s, wall ratio {plain['ratio']:.2f}x, CPU ratio "
        f"{plain['cpu_ratio']:.2f}x (CPU {plain['cpu_product']:.2f} / {plain['cpu_plain']:.2f} "
        f"s); load {plain['load'][0]:.1f} / {plain['load'][1]:.1f}.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main_json() -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = against_plain(big_store(Path(folder)))
    result["code"] = str(Path(change.__file__).parent)
    result["load_now"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main_json() if "--json" in sys.argv else main()
