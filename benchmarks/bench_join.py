"""Benchmark the area join: `join.join_projects` against 4 x `geopandas.sjoin(within)`.

Points: uniform random positions inside the region's 9 boroughs (fixed seed), coordinates only
(no postcode: the join's longest path, nearest postcode then polygon), in EPSG:27700. Product:
`join.join_projects` (ward, borough, deanery, LSOA with IMD decile, notes, in_region). Plain
way: `geopandas.sjoin(points, layer, predicate="within")` for the ward, deanery, borough and
LSOA layers, nothing else. Interleaved pairs after a warm-up, layers already loaded. Also counts
in-region points left without a ward, LSOA or borough (issue 26: none). Writes
benchmarks/results/join.md.

Run: PYTHONPATH=. python benchmarks/bench_join.py
"""

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from benchmarks.pairs import interleaved, machine_line, markdown_table
from kindred_map import join

RESULTS = Path(__file__).parent / "results" / "join.md"
SEED = 26
LAYERS = ("wards", "deaneries", "boroughs", "lsoas")


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
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
