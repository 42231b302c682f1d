"""Benchmark the store: a 50-row import into a 200,000-row store, and kill -9 trials.

Growth: a store of 200,000 projects (real live postcode positions, fixed seed) is written
once; then 50-row CSV files (real postcodes) are imported with `importing.import_file` (rows
inserted in place in one SQLite transaction), against the way the store grew before: read the
whole store, add the rows, write the whole file again and rename it (`read_projects` +
`write_store`). Boundary layers are loaded first (not timed), as in bench_import.py.

Kill trials: 20 child processes each import a 3,000-row file into a 20,000-row store and are
killed with SIGKILL at a random moment (even trials uniform over the import's measured
duration, odd ones over its last 30%, where the store is written). After
each kill the store is opened (`read_projects`): it must open, hold all of the batch or none
of it, and no temporary file or journal may be left once it has been opened.

Writes the "Store" section of benchmarks/results/import.md (bench_import.py keeps it).
Run: PYTHONPATH=. python benchmarks/bench_store.py
"""

import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import boundaries, geocode, importing, join, store

RESULTS = Path(__file__).parent / "results" / "import.md"
SECTION = "## Store: growth in place and kill -9 trials"
BIG = 200_000
BATCH = 50
REPEATS = 5
KILL_TRIALS = 20
KILL_STORE = 20_000
KILL_BATCH = 3_000
SEED = 9
CHILD = """
import sys, time
from kindred_map import geocode, importing, join
join.reference(); geocode.postcode_index()
print("ready", flush=True)
importing.import_file(sys.argv[1], sys.argv[2])
print("done", flush=True)
"""


def live() -> pd.DataFrame:
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    return pd.DataFrame(live.drop(columns="geometry"))


def synthetic_store(path: Path, rows: int, postcodes: pd.DataFrame) -> None:
    """A store of ``rows`` projects at real postcode positions (joined fields left blank)."""
    rng = np.random.default_rng(SEED)
    chosen = postcodes.iloc[rng.integers(0, len(postcodes), rows)].reset_index(drop=True)
    frame = gpd.GeoDataFrame(
        {
            "id": [f"bench:{i}" for i in range(rows)],
            "name": [f"Project {i}" for i in range(rows)],
            "type": rng.choice(["pantry", "warm_space", "food_bank"], rows),
            "postcode": chosen["postcode"],
            "lat": chosen["lat"],
            "lon": chosen["lon"],
            "easting": chosen["easting"],
            "northing": chosen["northing"],
            "location_precision": "street",
            "source": "benchmark",
            "WD24CD": chosen["WD24CD"],
            "in_region": True,
        },
        geometry=gpd.points_from_xy(chosen["lon"], chosen["lat"]),
        crs="EPSG:4326",
    )
    store.write_store(frame, store.read_imports(path), path, "2025-01-01T00:00:00Z")


def batch_file(folder: Path, name: str, rows: int, postcodes: pd.DataFrame, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    chosen = postcodes.iloc[rng.integers(0, len(postcodes), rows)]
    path = folder / f"{name}.csv"
    pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(rows)],
            "name": [f"{name} project {i}" for i in range(rows)],
            "postcode": chosen["postcode"].to_numpy(),
        }
    ).to_csv(path, index=False)
    return path


def growth(folder: Path, postcodes: pd.DataFrame) -> dict:
    target = folder / "big.gpkg"
    start = time.perf_counter()
    synthetic_store(target, BIG, postcodes)
    build_s = time.perf_counter() - start
    size_before = target.stat().st_size
    times = []
    for repeat in range(REPEATS):
        path = batch_file(folder, f"partner{repeat}", BATCH, postcodes, SEED + repeat)
        start = time.perf_counter()
        report = importing.import_file(path, target)
        times.append(time.perf_counter() - start)
        assert report.new == BATCH, report.new
    update = batch_file(folder, "partner0", BATCH, postcodes, SEED + 100)
    start = time.perf_counter()
    report = importing.import_file(update, target)
    update_s = time.perf_counter() - start
    assert report.updated == BATCH
    grown = target.stat().st_size - size_before

    rewrites = []
    for repeat in range(2):
        path = batch_file(folder, f"rewrite{repeat}", BATCH, postcodes, SEED + 50 + repeat)
        start = time.perf_counter()
        projects, _ = join.join_file(path)
        stored = store.read_projects(target)
        merged = pd.concat([stored, projects], ignore_index=True)
        store.write_store(
            gpd.GeoDataFrame(merged, crs="EPSG:4326"), store.read_imports(target), target, "x"
        )
        rewrites.append(time.perf_counter() - start)
    return {
        "build_s": build_s,
        "insert_s": statistics.median(times),
        "insert_max_s": max(times),
        "update_s": update_s,
        "rewrite_s": statistics.median(rewrites),
        "grown_kb": grown / 1024,
        "size_mb": size_before / 1e6,
    }


def kill_trials(folder: Path, postcodes: pd.DataFrame) -> dict:
    target = folder / "killed.gpkg"
    synthetic_store(target, KILL_STORE, postcodes)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    timing = batch_file(folder, "timing", KILL_BATCH, postcodes, SEED + 999)
    start = _start_child(timing, target, env)
    t0 = time.perf_counter()
    start.wait()
    duration = time.perf_counter() - t0
    rng = random.Random(SEED)
    outcomes = {"all": 0, "none": 0, "mid_transaction": 0, "stray_after_open": 0, "broken": 0}
    delays = []
    for trial in range(KILL_TRIALS):
        name = f"kill{trial}"
        path = batch_file(folder, name, KILL_BATCH, postcodes, SEED + trial)
        before = store.read_projects(target)
        child = _start_child(path, target, env)
        # Even trials anywhere in the import; odd ones in its last 30%, where the write is.
        low = 0 if trial % 2 == 0 else 0.7 * duration
        delay = rng.uniform(low, 1.05 * duration)
        delays.append(delay)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        journal = Path(f"{target}-journal").exists()
        outcomes["mid_transaction"] += journal
        try:
            after = store.read_projects(target)
        except ValueError:
            outcomes["broken"] += 1
            continue
        batch = after["id"].str.startswith(f"{name}:").sum()
        if batch == KILL_BATCH and len(after) == len(before) + KILL_BATCH:
            outcomes["all"] += 1
        elif batch == 0 and len(after) == len(before):
            outcomes["none"] += 1
        else:
            outcomes["broken"] += 1
        stray = [p.name for p in folder.iterdir() if p.name.startswith((".killed", "killed.gpkg-"))]
        outcomes["stray_after_open"] += bool(stray)
    return outcomes | {"import_s": duration, "trials": KILL_TRIALS}


def _start_child(path: Path, target: Path, env: dict) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(target)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def render(grow: dict, kills: dict) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Machine: {platform.machine()}, Python {platform.python_version()}; "
            "`benchmarks/bench_store.py`.",
            "",
            f"Store of {BIG:,} projects ({grow['size_mb']:,.0f} MB; written once in "
            f"{grow['build_s']:.1f} s). A {BATCH}-row CSV of real postcodes imported with "
            "`importing.import_file` (read, check, place, join, then rows inserted in place in one "
            "SQLite transaction):",
            "",
            "| Case | Seconds |",
            "|---|---:|",
            f"| {BATCH} new rows, in place (median of {REPEATS}; max "
            f"{grow['insert_max_s']:.2f}) | {grow['insert_s']:.2f} |",
            f"| {BATCH} updated rows, in place | {grow['update_s']:.2f} |",
            f"| {BATCH} new rows, whole-file rewrite as before (join + read store + write store "
            f"+ rename; median of 2) | {grow['rewrite_s']:.2f} |",
            "",
            f"In place is {grow['rewrite_s'] / grow['insert_s']:.0f}x faster than the rewrite; "
            f"the file grew by {grow['grown_kb']:,.0f} KB for {BATCH * REPEATS} new rows and 50 "
            "updates, most of it the index on `id` that the first import builds (that import "
            "is the maximum above).",
            "",
            f"Kill -9 trials: {kills['trials']} child imports of {KILL_BATCH:,} rows into a "
            f"{KILL_STORE:,}-row store, each killed with SIGKILL at a random moment of the "
            f"import's {kills['import_s']:.1f} s (half of them in its last 30%, where the store "
            "is written; child start-up excluded). After each kill the store was opened with "
            "`read_projects`:",
            "",
            f"- held the whole batch: {kills['all']}; held none of it: {kills['none']}; "
            f"anything else (part of a batch, unreadable): {kills['broken']}",
            f"- killed inside the write transaction (a journal was left): "
            f"{kills['mid_transaction']}, each counted above as all or none",
            f"- a temporary file or journal still there after opening: {kills['stray_after_open']}",
            "",
        ]
    )


def write_section(text: str) -> None:
    """Put the Store section in import.md, replacing an older one."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Import benchmark\n"
    head = current.split(SECTION)[0].rstrip("\n")
    RESULTS.write_text(f"{head}\n\n{text}", encoding="utf-8")


def kept_section() -> str:
    """The Store section already in import.md (for bench_import.py to keep), or ""."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    return SECTION + current.split(SECTION, 1)[1] if SECTION in current else ""


def main() -> None:
    join.reference()
    geocode.postcode_index()
    postcodes = live()
    with tempfile.TemporaryDirectory() as folder:
        grow = growth(Path(folder), postcodes)
    with tempfile.TemporaryDirectory() as folder:
        kills = kill_trials(Path(folder), postcodes)
    text = render(grow, kills)
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
