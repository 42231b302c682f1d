"""Benchmark the area join: `join.join_projects` against 4 x `geopandas.sjoin(within)`.

Points: uniform random positions inside the region's 9 boroughs (fixed seed), coordinates only
(no postcode: the join's longest path, nearest postcode then polygon), in EPSG:27700. Product:
`join.join_projects` (ward, borough, deanery, LSOA with IMD decile, notes, in_region). Plain
way: `geopandas.sjoin(points, layer, predicate="within")` for the ward, deanery, borough and
LSOA layers, nothing else. Interleaved pairs after a warm-up, layers already loaded. Also counts
in-region points left without a ward, LSOA or borough (issue 26: none). Writes
benchmarks/results/join.md.

The product's CPU is also split by step (best of 5, wrappers timing each step) and the area
grids' one-off build (the first join of GRID_MIN_POINTS or more in a process) is timed.

Run: PYTHONPATH=. python benchmarks/bench_join.py
"""

import statistics
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from benchmarks.pairs import interleaved, machine_line, markdown_table
from kindred_map import join

RESULTS = Path(__file__).parent / "results" / "join.md"
SEED = 26
LAYERS = ("wards", "deaneries", "boroughs", "lsoas")
NOTES = "<!-- notes: kept when the script rewrites the figures above -->"


def region_points(count: int, seed: int = SEED) -> gpd.GeoDataFrame:
    """``count`` uniform random points inside the region's boroughs, EPSG:27700, no postcode."""
    region = join.reference()["boroughs"].union_all()
    shapely.prepare(region)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = region.bounds
    xs, ys = [], []
    while sum(len(x) for x in xs) < count:
        x, y = rng.uniform(minx, maxx, 2 * count), rng.uniform(miny, maxy, 2 * count)
        inside = shapely.contains_xy(region, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    x, y = np.concatenate(xs)[:count], np.concatenate(ys)[:count]
    return gpd.GeoDataFrame(
        {"postcode": [""] * count}, geometry=gpd.points_from_xy(x, y), crs=join.BNG
    )


def plain(points: gpd.GeoDataFrame, ref: dict) -> None:
    for layer in LAYERS:
        gpd.sjoin(points, ref[layer], predicate="within")


STEPS = {
    "_area_codes": "area codes: borough, ward, deanery for every point, LSOA for points with no "
    "postcode within 500 m (grid cell, else the polygon test)",
    "_nearest_live": "nearest live postcode within 500 m (KD-tree of 81,000 postcodes)",
    "_ward_notes": "`ward_note` text (arrow, on each note's rows)",
    "_text": "the other text columns: one take per column from the area's table",
    "_deanery_notes": "`deanery_note` codes",
    "_nearest_of_borough": "nearest ward/LSOA of the borough for gap points",
}


def profile(points: gpd.GeoDataFrame, runs: int = 5) -> dict[str, float]:
    """CPU seconds of each of STEPS and the rest, in the fastest of ``runs`` joins. A step
    called inside another (``_text`` in ``_deanery_notes``) counts for the outer one."""
    spent = defaultdict(float)
    active = []
    originals = {name: getattr(join, name) for name in STEPS}

    def timed(name, function):
        @wraps(function)
        def run(*args, **kwargs):
            if active:
                return function(*args, **kwargs)
            active.append(name)
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - started
                active.pop()

        return run

    best = None
    try:
        for name, function in originals.items():
            setattr(join, name, timed(name, function))
        join.join_projects(points)
        for _ in range(runs):
            spent.clear()
            started = time.process_time()
            join.join_projects(points)
            total = time.process_time() - started
            if best is None or total < best["total"]:
                best = {**{name: 0.0 for name in STEPS}, **spent, "total": total}
    finally:
        for name, function in originals.items():
            setattr(join, name, function)
    best["rest"] = best["total"] - sum(best[name] for name in STEPS)
    return best


def grid_build(runs: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds to build the four area grids (once per process)."""
    wall, cpu = [], []
    for _ in range(runs):
        join._grids.cache_clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        join.area_grids()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ref = join.reference()
    rows = []
    for count in (100_000, 10_000):
        points = region_points(count)
        result = interleaved(lambda p=points: join.join_projects(p), lambda p=points: plain(p, ref))
        joined = join.join_projects(points)
        inside = joined[joined["in_region"]]
        empty = {
            field: int(inside[field].eq("").sum()) for field in ("WD24CD", "LSOA21CD", "LAD25CD")
        }
        rows.append((count, result, len(inside), empty))
        print(count, result)
    lines = [
        "# Area join: `join_projects` vs 4 x `geopandas.sjoin(within)`",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_join.py", rows[0][1]),
        "Median of 5 interleaved pairs after a warm-up; random points inside the region, "
        "coordinates only, EPSG:27700.",
        "",
        *markdown_table(
            [
                "Points",
                "`join_projects`",
                "4 x `sjoin(within)`",
                "Ratio (goal <= 1.5x)",
                "Pair ratios",
                "CPU ratio",
            ],
            [
                [
                    f"{count:,}",
                    f"{result['product']:.3f} s",
                    f"{result['plain']:.3f} s",
                    f"{result['ratio']:.2f}x",
                    ", ".join(f"{r:.2f}" for r in result["pair_ratios"]),
                    f"{result['cpu_ratio']:.2f}x "
                    f"({result['cpu_product']:.3f} / {result['cpu_plain']:.3f} s)",
                ]
                for count, result, _, _ in rows
            ],
        ),
    ]
    lines += [
        "",
        "In-region points without an area (issue 26: every one gets one of each kind):",
        "",
    ]
    for count, _, inside, empty in rows:
        lines.append(
            f"- {count:,} points, {inside:,} in the region: without ward {empty['WD24CD']}, "
            f"without LSOA {empty['LSOA21CD']}, without borough {empty['LAD25CD']}"
        )
    steps = profile(region_points(100_000))
    build_wall, build_cpu = grid_build()
    lines += [
        "",
        "Where the product's CPU goes (fastest of 5 joins of 100,000 points, "
        f"{steps['total']:.3f} s; wrappers timing each step):",
        "",
        *markdown_table(
            ["step", "CPU s"],
            [[STEPS[name], f"{steps[name]:.3f}"] for name in STEPS]
            + [
                [
                    "the rest: frame copy, postcode keys, `np.select` of the rules, "
                    "borough/LSOA/deanery codes, `imd_decile`, `deanery_id`",
                    f"{steps['rest']:.3f}",
                ]
            ],
        ),
        "",
        f"The area grids are built once per process, on the first join of "
        f"{join.GRID_MIN_POINTS:,} or more located points: {build_cpu:.3f} s CPU "
        f"({build_wall:.3f} s wall), not in the figures above (the warm-up pays it).",
    ]
    notes = RESULTS.read_text().partition(NOTES)[2] if RESULTS.exists() else ""
    RESULTS.write_text("\n".join(lines) + "\n\n" + NOTES + notes)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
