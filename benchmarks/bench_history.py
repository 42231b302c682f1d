"""Benchmark the store write, the history's size and the change between two dates, each against
its plain way in interleaved pairs (issue 26's import, store-size and change rows).

- Import of 100,000 rows (`bench_import.make_file`: real region postcodes, half postcode-only,
  half coordinates) into a new GeoPackage: the whole `importing.import_file`, and the store
  write alone (`importing.store_prepared` of the file prepared once: reconcile, records,
  history), each against the plain way: `geopandas.read_file` of the CSV, points made, and
  `to_file` to a new GeoPackage.
- The store's size after that import (history, projects and indexes by SQLite's dbstat)
  against the plain GeoPackage, and against a plain GeoPackage of the same 37 stored fields
  (`to_file` of the prepared, conformed rows: what the store holds besides its history).
- Import of the same 100,000 rows into a new PostGIS store (the whole `import_file`, and
  `store_prepared` alone), each into its own new database whose schema `store init` made
  before the clock starts (boundary tables loaded), against the plain way: `read_file` +
  points + `GeoDataFrame.to_postgis` (geoalchemy2, the `bench` extra) into a new table. The
  server: KINDRED_MAP_BENCH_PG, else a throwaway cluster (`.ci/pg_cluster`, fsync on).
- `change.change_between` on `bench_change.big_store` (13,000 projects, 50,000 events) at ward
  level against the plain way: the history read by SQL, replayed with pandas (last event per
  project at each date, its JSON parsed), and per date the points buffered by 800 m in
  EPSG:27700, unioned, and the population points joined to the union (residents within
  reach per ward).

Run: PYTHONPATH=. python benchmarks/bench_history.py [PAIRS_100K] [--store-only] (default 3
pairs at 100,000 rows; 5 pairs for the change and the replay, left out with --store-only).
Each row is printed when done. Writes benchmarks/results/history.md. ``--postgis-only``: the
whole PostGIS import row alone, printed, nothing written (run it with
``PYTHONPATH=<checkout>:benchmarks`` to time another checkout with this script).
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_backends
import bench_change
import bench_import
import geopandas as gpd
import pandas as pd
import psycopg
import sqlalchemy
from pairs import interleaved, machine_line, markdown_table, result_cells

from kindred_map import change, coverage, importing, store
from kindred_map.paths import PROJECT_ROOT

RESULTS = Path(__file__).parent / "results" / "history.md"
ROWS = 100_000
BNG = "EPSG:27700"
HEADER = [
    "work",
    "pairs",
    "product s",
    "plain s",
    "wall ratio",
    "product CPU s",
    "plain CPU s",
    "CPU ratio",
    "load",
]
"""The results table's columns (`pairs.result_cells` gives a row's cells)."""


def plain_import(path: Path, target: Path) -> None:
    """read_file + points + to_file: the plain geopandas way of storing a file."""
    table = gpd.read_file(path)
    lon = pd.to_numeric(table["Longitude"], errors="coerce")
    lat = pd.to_numeric(table["Latitude"], errors="coerce")
    points = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    points.to_file(target, layer="projects", driver="GPKG")


def plain_postgis(path: Path, engine, table: str) -> None:
    """read_file + points + to_postgis: the plain geopandas way of storing a file in PostGIS."""
    table_frame = gpd.read_file(path)
    lon = pd.to_numeric(table_frame["Longitude"], errors="coerce")
    lat = pd.to_numeric(table_frame["Latitude"], errors="coerce")
    points = gpd.GeoDataFrame(table_frame, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    points.to_postgis(table, engine)


def postgis_rows(
    path: Path, folder: Path, pairs: int, whole_only: bool = False
) -> tuple[dict, dict | None]:
    """The PostGIS import (whole, and unless ``whole_only`` the store write alone) against
    `plain_postgis`, each product run into a new database made ready (`store.init`) before the
    clock starts."""
    server, started = bench_backends._server(folder)
    made = [bench_backends._database(server) for _ in range((1 if whole_only else 2) * pairs + 2)]
    for _, dsn in made:
        store.init(dsn)
    ready = iter(dsn for _, dsn in made)
    plain_db, plain_dsn = bench_backends._database(server)
    with psycopg.connect(plain_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    engine = sqlalchemy.create_engine(plain_dsn.replace("postgresql://", "postgresql+psycopg://"))
    runs = iter(range(10**6))
    try:
        whole = interleaved(
            lambda: importing.import_file(path, next(ready)),
            lambda: plain_postgis(path, engine, f"plain_{next(runs)}"),
            pairs,
        )
        if whole_only:
            return whole, None
        prepared = importing.prepare(path, store.import_secret(made[0][1]))
        write = interleaved(
            lambda: importing.store_prepared(prepared, next(ready)),
            lambda: plain_postgis(path, engine, f"plain_{next(runs)}"),
            pairs,
        )
    finally:
        engine.dispose()
        with psycopg.connect(server, autocommit=True) as conn:
            for name in [plain_db, *(name for name, _ in made)]:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if started:
            subprocess.run(
                [str(PROJECT_ROOT / ".ci" / "pg_cluster"), "stop", str(folder / "pg")], check=False
            )
    return whole, write


def sizes(path: Path) -> dict[str, float]:
    """MB of the file, of the history (events, indexes, payloads) and of everything else."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    history = sum(size for name, size in rows if name.startswith("history"))
    return {"file": path.stat().st_size / 1e6, "history": history / 1e6}


def plain_change(path: Path, dates: tuple[str, str], population: gpd.GeoDataFrame) -> pd.Series:
    """SQL + pandas replay + buffer/union/sjoin: residents within 800 m per ward at each date."""
    with sqlite3.connect(path) as conn:
        events = pd.read_sql("SELECT event_id, project_id, at, after FROM history", conn)
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    events = events.sort_values("event_id")
    out = []
    for day in dates:
        limit = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        last = events[events["at"] < limit].drop_duplicates("project_id", keep="last")
        rows = pd.DataFrame([json.loads(text) for text in last["after"]])
        rows = rows[rows["retired_at"].fillna("").eq("") & ~rows.get("removed", False)]
        points = gpd.GeoSeries(gpd.points_from_xy(rows["lon"], rows["lat"]), crs=4326)
        reach = gpd.GeoDataFrame(geometry=[points.to_crs(BNG).buffer(800).union_all()], crs=BNG)
        within = gpd.sjoin(population, reach, predicate="within")
        out.append(within.groupby("WD24CD")["residents"].sum())
    return out[1].sub(out[0], fill_value=0)


def plain_replay(path: Path, day: str) -> pd.DataFrame:
    """SQL + pandas: the last event of each project by the end of ``day``, its JSON parsed."""
    with sqlite3.connect(path) as conn:
        events = pd.read_sql("SELECT event_id, project_id, at, after FROM history", conn)
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    limit = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    last = events[events["at"] < limit].sort_values("event_id")
    last = last.drop_duplicates("project_id", keep="last")
    return pd.DataFrame([json.loads(text) for text in last["after"]])


def version() -> str:
    """The commit of the kindred_map package measured (its folder's git HEAD)."""
    return subprocess.run(
        ["git", "-C", str(Path(store.__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def row(name: str, result: dict, pairs: int) -> list[str]:
    """One table row of an `interleaved` result (printed at once: a long run shows its way)."""
    cells = result_cells(name, result, pairs)
    print(" | ".join(cells), flush=True)
    return cells


def store_rows(folder: Path, pairs_100k: int) -> tuple[list, str, dict]:
    """The store rows (write, size, PostGIS, whole import), the size line and the last
    timing."""
    live = bench_import.live_postcodes()
    path, _ = bench_import.make_file(live, ROWS, folder)
    runs = iter(range(10**6))
    prepared = importing.prepare(path, store.import_secret(folder / "secret.gpkg"))

    def product_import():
        importing.import_file(path, folder / f"product_{next(runs)}.gpkg")

    def product_store():
        importing.store_prepared(prepared, folder / f"store_{next(runs)}.gpkg")

    def plain():
        plain_import(path, folder / f"plain_{next(runs)}.gpkg")

    rows = []
    last = interleaved(product_store, plain, pairs_100k)
    rows.append(row("the store write alone (`store_prepared`)", last, pairs_100k))
    product_size = sizes(max(folder.glob("store_*.gpkg"), key=os.path.getmtime))
    plain_size = sizes(max(folder.glob("plain_*.gpkg"), key=os.path.getmtime))
    fields = store.conform(prepared.projects)
    fields.to_file(folder / "fields.gpkg", layer="projects", driver="GPKG")
    fields_size = sizes(folder / "fields.gpkg")
    size_line = (
        f"Store after the {ROWS:,}-row import: {product_size['file']:.1f} MB, of which history "
        f"{product_size['history']:.1f} MB; the plain GeoPackage: {plain_size['file']:.1f} MB "
        f"({product_size['file'] / plain_size['file']:.1f}x); a plain GeoPackage of the same "
        f"{len(store.STORE_FIELDS)} fields: {fields_size['file']:.1f} MB "
        f"({product_size['file'] / fields_size['file']:.1f}x; without the history "
        f"{(product_size['file'] - product_size['history']) / fields_size['file']:.1f}x)."
    )
    print(size_line, flush=True)
    os.chmod(folder, 0o755)  # a throwaway cluster's owner must reach its folder
    pg_whole, pg_write = postgis_rows(path, folder, pairs_100k)
    rows.append(row("the PostGIS store write alone (`store_prepared`)", pg_write, pairs_100k))
    rows.append(row(f"import {ROWS:,} rows into a new PostGIS store", pg_whole, pairs_100k))
    last = interleaved(product_import, plain, pairs_100k)
    whole = f"import {ROWS:,} rows into a new GeoPackage (whole pipeline)"
    rows.append(row(whole, last, pairs_100k))
    return rows, size_line, last


def postgis_only(pairs: int) -> None:
    """The whole PostGIS import row alone, printed and not written (the results file keeps
    the last whole run and its hand-written sections; the row is added to it by hand)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_history_"))
    os.chmod(folder, 0o755)  # a throwaway cluster's owner must reach its folder
    path, _ = bench_import.make_file(bench_import.live_postcodes(), ROWS, folder)
    whole, _ = postgis_rows(path, folder, pairs, whole_only=True)
    print(f"code: {store.__file__}; {version()}")
    print(
        *markdown_table(
            HEADER,
            [row(f"import {ROWS:,} rows into a new PostGIS store", whole, pairs)],
        ),
        sep="\n",
    )


def main(pairs_100k: int = 3, store_only: bool = False, change_only: bool = False) -> None:
    """The store rows first (write, size, PostGIS, whole import), then change and replay
    unless ``store_only``. ``change_only``: the change and replay rows alone, printed and not
    written (the results file keeps the last whole run; they are added to it by hand)."""
    started_load = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench_history_"))
    rows, size_line, last = ([], "", None) if change_only else store_rows(folder, pairs_100k)

    if not store_only:
        big = bench_change.big_store(folder)
        dates = ("2024-06-30", "2025-06-30")
        points = coverage.population_points()
        population = gpd.GeoDataFrame(
            points, geometry=gpd.points_from_xy(points["easting"], points["northing"]), crs=BNG
        )
        changed = interleaved(
            lambda: change.change_between(big, *dates, "ward", None, 800),
            lambda: plain_change(big, dates, population),
            5,
        )
        rows.append(row("change between two dates, 13,000 projects, 50,000 events", changed, 5))
        last = interleaved(
            lambda: store.read_projects(big, as_of=dates[1]),
            lambda: plain_replay(big, dates[1]),
            5,
        )
        rows.append(row("replay to a date (`read_projects(as_of=)`)", last, 5))
    if change_only:
        return

    lines = [
        "# Store write, history size and change between dates (issue 26)",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_history.py", last),
        f"Code at {version()}. Interleaved pairs after one warm-up of each; medians.",
        f"`uptime` at the start: {started_load}.",
        "",
        *markdown_table(
            HEADER,
            rows,
        ),
        "",
        size_line,
        "",
        "Plain ways: `read_file` + points + `to_file` (import, store write into a GeoPackage); "
        "`read_file` + points + `to_postgis` (PostGIS); SQL + pandas replay "
        "+ buffer/union/sjoin (change); SQL + pandas replay (replay).",
    ]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--postgis-only" in sys.argv:
        postgis_only(int(arguments[0]) if arguments else 3)
        sys.exit()
    main(
        int(arguments[0]) if arguments else 3,
        "--store-only" in sys.argv,
        "--change-only" in sys.argv,
    )
