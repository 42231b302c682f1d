"""Benchmark coverage: KD-tree nearest distances vs a geopandas buffer+union+sjoin baseline.

Projects are random points in the region (fixed seed); the population is every live region
postcode. Each case runs in a fresh process: wall time (median of repeats), peak resident
memory above the process's memory before the run (Linux VmHWM, reset with
/proc/self/clear_refs; includes GEOS and numpy) and the tracemalloc peak (Python and numpy
allocations only). The baseline is measured in the same run, and the ratio is baseline time
over KD-tree time. Writes benchmarks/results/coverage.md.

Run: PYTHONPATH=. python benchmarks/bench_coverage.py
"""

import multiprocessing
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from kindred_map import boundaries, coverage

RESULTS = Path(__file__).parent / "results" / "coverage.md"
DISTANCE_M = 800.0
SEED = 20251030


def random_projects(count: int) -> gpd.GeoDataFrame:
    """``count`` food banks at uniformly random points inside the region (fixed seed)."""
    region = shapely.union_all(boundaries.load("borough").to_crs(boundaries.BNG).geometry.values)
    shapely.prepare(region)
    rng = np.random.default_rng(SEED + count)
    x0, y0, x1, y1 = region.bounds
    xs, ys = [], []
    while sum(map(len, xs)) < count:
        x = rng.uniform(x0, x1, count)
        y = rng.uniform(y0, y1, count)
        inside = shapely.contains_xy(region, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    x, y = np.concatenate(xs)[:count], np.concatenate(ys)[:count]
    return gpd.GeoDataFrame(
        {"type": ["food_bank"] * count},
        geometry=gpd.points_from_xy(x, y),
        crs=boundaries.BNG,
    ).to_crs(boundaries.WGS84)


def kdtree_reached(projects: gpd.GeoDataFrame, population) -> int:
    """Residents within reach, by the shipped method (KD-tree + geodesic distance)."""
    result = coverage.assess(projects, "food_bank", DISTANCE_M, population=population)
    return result.headline()["reached"]


def baseline_reached(projects: gpd.GeoDataFrame, population) -> int:
    """Residents within reach the plain geopandas way: buffer, union, spatial join."""
    postcodes = gpd.GeoDataFrame(
        population[["residents"]],
        geometry=gpd.points_from_xy(population["easting"], population["northing"]),
        crs=boundaries.BNG,
    )
    catchments = projects.to_crs(boundaries.BNG).buffer(DISTANCE_M)
    reach = gpd.GeoDataFrame(geometry=[catchments.union_all()], crs=boundaries.BNG)
    inside = gpd.sjoin(postcodes, reach, how="inner", predicate="within")
    return int(inside["residents"].sum())


METHODS = {"kdtree": kdtree_reached, "baseline": baseline_reached}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_case(method: str, count: int, repeats: int) -> dict:
    """One method at one project count, in this (fresh) process."""
    population = coverage.population_points()
    projects = random_projects(count)
    function = METHODS[method]
    before = _rss_kib("VmRSS")
    resettable = _reset_peak()
    start = time.perf_counter()
    reached = function(projects, population)
    times = [time.perf_counter() - start]
    rss_peak = (_rss_kib("VmHWM") - before) / 1024 if resettable else float("nan")
    for _ in range(repeats - 1):
        start = time.perf_counter()
        function(projects, population)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    function(projects, population)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "method": method,
        "projects": count,
        "postcodes": len(population),
        "residents": int(population["residents"].sum()),
        "reached": reached,
        "seconds": statistics.median(times),
        "repeats": repeats,
        "rss_peak_mib": rss_peak,
        "traced_peak_mib": traced / 2**20,
    }


def _in_fresh_process(method: str, count: int, repeats: int) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_case, (method, count, repeats))


def report(rows: list[dict]) -> str:
    kd = {row["projects"]: row for row in rows if row["method"] == "kdtree"}
    lines = [
        "# Coverage benchmark",
        "",
        f"Residents within {DISTANCE_M:.0f} m of random food banks (uniform in the region, "
        f"seed {SEED}), over every live region postcode ({rows[0]['postcodes']:,} postcodes, "
        f"{rows[0]['residents']:,} residents). Written by `benchmarks/bench_coverage.py`.",
        "",
        "- kdtree: `coverage.assess` (scipy cKDTree on EPSG:27700 + pyproj.Geod distance to "
        "the nearest project), including reprojection of the projects.",
        "- baseline: geopandas `buffer(800)` in EPSG:27700 + `union_all` + `sjoin(within)`.",
        "- Time: median of the repeats. RSS peak: rise of the process's peak resident memory "
        "during the first run (VmHWM; includes GEOS; memory the process already held is reused "
        "and not counted). tracemalloc: peak of Python and numpy allocations in one run.",
        "- The KD-tree gives every postcode's distance to its nearest project (for medians); "
        "the baseline only says inside or outside.",
        "- Reached differs slightly between methods: the baseline's circles are 64-gons of grid "
        "metres; the KD-tree uses geodesic metres (the grid is ~0.035% short here).",
        "",
        "| projects | method | time (s) | RSS peak (MiB) | tracemalloc peak (MiB) | reached "
        "| baseline / kdtree time |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = ""
        if row["method"] == "baseline" and row["projects"] in kd:
            ratio = f"{row['seconds'] / kd[row['projects']]['seconds']:.1f}x"
        lines.append(
            f"| {row['projects']:,} | {row['method']} | {row['seconds']:.3f} "
            f"| {row['rss_peak_mib']:.0f} | {row['traced_peak_mib']:.0f} | {row['reached']:,} "
            f"| {ratio} |"
        )
    lines += [
        "",
        "At 50,000 projects every resident is within reach; the case measures cost, not coverage.",
        "",
        f"Machine: {platform.machine()}, {multiprocessing.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}, run {time.strftime('%Y-%m-%d')}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    cases = [
        ("kdtree", 1_000, 5),
        ("baseline", 1_000, 3),
        ("kdtree", 50_000, 5),
        ("baseline", 50_000, 2),
    ]
    rows = []
    for method, count, repeats in cases:
        row = _in_fresh_process(method, count, repeats)
        print(
            f"{method:>8} {count:>6,} projects: {row['seconds']:.3f} s, "
            f"RSS +{row['rss_peak_mib']:.0f} MiB, traced {row['traced_peak_mib']:.0f} MiB, "
            f"reached {row['reached']:,}"
        )
        rows.append(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report(rows), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
