"""Check that `join.join_projects` gives the same output as another version of the code.

The points (fixed seed, about 125,000): random positions inside the region; 2,000 moved up to
20 km outside it; 10 without a position; 490 with a postcode (live ones at, near and far from
the point, postcodes outside the region, made-up and blank ones); the vertices of the ward,
LSOA, borough and deanery polygons (points on shared boundaries) and random points snapped to
whole multiples of 25 m (on the edges of any grid of 25 m or a multiple); a shuffled index.
``save PATH`` writes this code's output (pickle), ``compare PATH`` compares this code's output
with a saved one, every column, with `pandas.testing.assert_frame_equal`.

Run: PYTHONPATH=. python benchmarks/join_identical.py save /tmp/main.pkl   (on main's code)
     PYTHONPATH=. python benchmarks/join_identical.py compare /tmp/main.pkl
"""

import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pandas.testing import assert_frame_equal

from kindred_map import boundaries, join

SEED = 2026


def sample_points(seed: int = SEED) -> gpd.GeoDataFrame:
    """The comparison's points, EPSG:27700, with a ``postcode`` column and a shuffled index."""
    ref = join.reference()
    rng = np.random.default_rng(seed)
    region = ref["boroughs"].union_all()
    shapely.prepare(region)
    minx, miny, maxx, maxy = region.bounds
    x, y = rng.uniform(minx, maxx, 400_000), rng.uniform(miny, maxy, 400_000)
    inside = shapely.contains_xy(region, x, y)
    x, y = x[inside][:100_000], y[inside][:100_000]
    # 2,000 moved outside: random points within 20 km of the region's box, not in it
    ox = rng.uniform(minx - 20_000, maxx + 20_000, 20_000)
    oy = rng.uniform(miny - 20_000, maxy + 20_000, 20_000)
    out = ~shapely.contains_xy(region, ox, oy)
    ox, oy = ox[out][:2_000], oy[out][:2_000]
    # polygon vertices: on shared boundaries (capped per layer)
    vx, vy = [], []
    for layer in ("wards", "lsoas", "boroughs", "deaneries"):
        xy = shapely.get_coordinates(ref[layer].geometry.values)
        pick = rng.choice(len(xy), min(len(xy), 3_000), replace=False)
        vx.append(xy[pick, 0])
        vy.append(xy[pick, 1])
    # points on whole multiples of 25 m
    gx = np.round(rng.uniform(minx, maxx, 10_000) / 25) * 25
    gy = np.round(rng.uniform(miny, maxy, 10_000) / 25) * 25
    xs = np.concatenate([x, ox, *vx, gx])
    ys = np.concatenate([y, oy, *vy, gy])
    geometry = list(gpd.points_from_xy(xs, ys))
    postcodes = [""] * len(geometry)
    live = ref["live"]
    chosen = live.iloc[rng.choice(len(live), 400, replace=False)]
    at = rng.choice(len(geometry), 490, replace=False)
    offsets = rng.choice([0, 20, 90, 300, 2_000], 400)
    for i, (_, row), offset in zip(at[:400], chosen.iterrows(), offsets, strict=True):
        postcodes[i] = row["postcode"]
        geometry[i] = shapely.Point(row["easting"] + offset, row["northing"])
    outside = boundaries.postcode_table()
    outside = outside[~outside["pcd_key"].isin(live["pcd_key"])].dropna(subset=["LAD25CD"])
    picked = outside.sample(60, random_state=seed).iterrows()
    for i, (_, row) in zip(at[400:460], picked, strict=True):
        postcodes[i] = row["postcode"]
        geometry[i] = shapely.Point(row["easting"], row["northing"])
    odd = ["L99 9ZZ", "not a postcode", " l1 8jq ", "WA1"] * 8
    for i, text in zip(at[460:], odd[:30], strict=True):
        postcodes[i] = text
    for i in rng.choice(np.setdiff1d(np.arange(len(geometry)), at), 10, replace=False):
        geometry[i] = None
    frame = gpd.GeoDataFrame(
        {"postcode": postcodes, "row": np.arange(len(geometry)) + 2},
        geometry=geometry,
        crs=join.BNG,
        index=rng.permutation(len(geometry)) * 3 + 7,
    )
    return frame


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "compare"):
        raise SystemExit(__doc__)
    mode, path = sys.argv[1:]
    points = sample_points()
    joined = pd.DataFrame(join.join_projects(points))
    by_4326 = pd.DataFrame(join.join_projects(points.iloc[::50].to_crs(join.WGS84)))
    print(f"{len(points):,} points, {int(joined['in_region'].sum()):,} in the region")
    if mode == "save":
        pd.to_pickle((joined, by_4326), path)
        return
    saved, saved_4326 = pd.read_pickle(path)
    assert_frame_equal(joined, saved, check_exact=True)
    assert_frame_equal(by_4326, saved_4326, check_exact=True)
    print("identical: every column, dtype and value")


if __name__ == "__main__":
    main()
