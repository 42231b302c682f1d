"""Benchmark import: read + check + geocode + join (+ store) vs a plain geopandas.sjoin baseline.

Input files are CSVs of real live region postcodes (fixed seed): half the rows give only a
postcode (mixed case, some without the space), half give only coordinates (the postcode
centroid moved 0-30 m). The pipeline is `kindred_map.join.join_file` (every check, the
report, the postcode/nearest-postcode/polygon ward rule, deanery notes) and
`kindred_map.importing.import_file` (the same plus the store write, into a new store). The
baseline is what a plain geopandas script does: read the CSV, look postcodes up by a merge,
make points, and `geopandas.sjoin` them to the ward, LSOA, borough and deanery polygons (no
checks, no report, no store). Both are measured in the same run with the boundary layers
already loaded (median of repeats); ratios are pipeline time over baseline time. Ward accuracy
is measured against the postcode's ONS ward. Writes benchmarks/results/import.md.

Run: PYTHONPATH=. python benchmarks/bench_import.py
"""

import platform
import statistics
import tempfile
import time
from pathlib import Path

import bench_store
import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from kindred_map import boundaries, geocode, importing, join
from kindred_map.paths import DEFAULT_RAW_DIR

RESULTS = Path(__file__).parent / "results" / "import.md"
SIZES = {1_000: 5, 100_000: 2}
"""Rows per file and how many times each case runs (the median is reported)."""
SEED = 2025
BNG = "EPSG:27700"


def live_postcodes() -> pd.DataFrame:
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    return pd.DataFrame(live.drop(columns="geometry"))


def moved(live: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Postcode centroids moved 0-30 m in a random direction (fixed seed), in EPSG:27700."""
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0, 30, len(live))
    angle = rng.uniform(0, 2 * np.pi, len(live))
    x = live["easting"].to_numpy() + distance * np.cos(angle)
    y = live["northing"].to_numpy() + distance * np.sin(angle)
    return x, y


def make_file(live: pd.DataFrame, rows: int, folder: Path) -> tuple[Path, pd.DataFrame]:
    """A CSV of ``rows`` projects and the true postcode row behind each."""
    rng = np.random.default_rng(SEED + rows)
    truth = live.iloc[rng.integers(0, len(live), rows)].reset_index(drop=True)
    x, y = moved(truth, SEED + rows + 1)
    lon, lat = geocode.to_wgs84(x, y)
    by_postcode = rng.random(rows) < 0.5
    typed = np.where(rng.random(rows) < 0.5, truth["pcd_key"].str.lower(), truth["postcode"])
    frame = pd.DataFrame(
        {
            "Project name": [f"Project {i}" for i in range(rows)],
            "Type": rng.choice(["Food Pantry", "warm hub", "food bank", "sto"], rows),
            "Post Code": np.where(by_postcode, typed, ""),
            "Latitude": np.where(by_postcode, "", np.round(lat, 6).astype(str)),
            "Longitude": np.where(by_postcode, "", np.round(lon, 6).astype(str)),
        }
    )
    path = folder / f"projects_{rows}.csv"
    frame.to_csv(path, index=False)
    return path, truth


def baseline(path: Path, postcodes: pd.DataFrame, layers: dict) -> gpd.GeoDataFrame:
    """The plain geopandas way: merge postcodes, make points, sjoin to each polygon layer."""
    table = pd.read_csv(path, dtype="str").fillna("")
    table["pcd_key"] = table["Post Code"].str.upper().str.replace(" ", "", regex=False)
    table = table.merge(postcodes[["pcd_key", "lon", "lat"]], on="pcd_key", how="left")
    lon = pd.to_numeric(table["Longitude"], errors="coerce").fillna(table["lon"])
    lat = pd.to_numeric(table["Latitude"], errors="coerce").fillna(table["lat"])
    points = gpd.GeoDataFrame(
        table[["Project name"]], geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326"
    ).to_crs(BNG)
    for key, polygons in layers.items():
        joined = gpd.sjoin(points[["geometry"]], polygons[[key, "geometry"]], how="left")
        points[key] = joined[~joined.index.duplicated()][key]
    return points


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    start = time.perf_counter()
    join.reference()
    geocode.postcode_index()
    load_seconds = time.perf_counter() - start
    live = live_postcodes()
    postcodes = pd.DataFrame(boundaries.load("postcode").drop(columns="geometry"))
    layers = {
        "WD24CD": boundaries.load("ward").to_crs(BNG),
        "LSOA21CD": boundaries.load("lsoa").to_crs(BNG),
        "LAD25CD": boundaries.load("borough").to_crs(BNG),
        "deanery_id": boundaries.load("deanery").to_crs(BNG),
    }
    rows_out = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for rows, repeats in SIZES.items():
            path, truth = make_file(live, rows, folder)
            base_s, base = timed(lambda p=path: baseline(p, postcodes, layers), repeats)
            join_s, (joined, report) = timed(lambda p=path: join.join_file(p), repeats)

            def fresh_import(p=path):
                target = folder / "store.gpkg"
                target.unlink(missing_ok=True)
                return importing.import_file(p, target)

            import_s, imported = timed(fresh_import, repeats)
            assert report.rows_read == rows and report.rejected == 0 and imported.new == rows
            joined = joined.set_index("name").reindex([f"Project {i}" for i in range(rows)])
            typed = pd.read_csv(path, dtype="str").fillna("")
            by_coordinates = typed["Post Code"].eq("").to_numpy()
            pipeline_ok = joined["WD24CD"].to_numpy() == truth["WD24CD"].to_numpy()
            baseline_ok = base["WD24CD"].to_numpy() == truth["WD24CD"].to_numpy()
            rows_out.append(
                {
                    "rows": rows,
                    "repeats": repeats,
                    "baseline_s": base_s,
                    "join_s": join_s,
                    "import_s": import_s,
                    "pipeline_ward_pct": 100 * pipeline_ok.mean(),
                    "pipeline_ward_coords_pct": 100 * pipeline_ok[by_coordinates].mean(),
                    "baseline_ward_pct": 100 * baseline_ok.mean(),
                    "baseline_ward_coords_pct": 100 * baseline_ok[by_coordinates].mean(),
                }
            )
    accuracy = ward_accuracy(live)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    kept = bench_store.kept_section()
    text = render(rows_out, accuracy, load_seconds) + (f"\n{kept}" if kept else "")
    RESULTS.write_text(text, encoding="utf-8")
    print(RESULTS.read_text(encoding="utf-8"))


def ward_accuracy(live: pd.DataFrame) -> dict:
    """Ward agreement figures for coordinate-only points, against the postcode's ONS ward."""
    x, y = moved(live, SEED)
    points = gpd.GeoDataFrame(
        {"postcode": [""] * len(live)}, geometry=gpd.points_from_xy(x, y), crs=BNG
    )
    truth = live["WD24CD"].to_numpy()
    shipped = join.join_projects(points)["WD24CD"].to_numpy() == truth
    wards = boundaries.load("ward").to_crs(BNG)
    by_polygon = join.polygon_key(points.geometry, wards, "WD24CD").to_numpy() == truth
    # Stricter: a point between postcodes. The nearest *other* live postcode names the ward.
    tree = cKDTree(live[["easting", "northing"]].to_numpy())
    _, nearest = tree.query(np.column_stack([x, y]), k=2)
    own = np.arange(len(live))
    other = np.where(nearest[:, 0] == own, nearest[:, 1], nearest[:, 0])
    leave_one_out = live["WD24CD"].to_numpy()[other] == truth
    figures = {
        "points": len(live),
        "shipped_pct": 100 * shipped.mean(),
        "polygon_pct": 100 * by_polygon.mean(),
        "leave_one_out_pct": 100 * leave_one_out.mean(),
    }
    figures |= real_coordinates_accuracy()
    return figures


def real_coordinates_accuracy() -> dict:
    """Give Food's own coordinates (not postcode centroids), postcode removed: ward agreement
    with the ward Give Food recorded."""
    path = DEFAULT_RAW_DIR / "givefood_foodbanks" / "foodbanks_region_givefood.csv"
    if not path.exists():
        return {}
    food_banks = pd.read_csv(path)
    points = gpd.GeoDataFrame(
        {"postcode": [""] * len(food_banks)},
        geometry=gpd.points_from_xy(food_banks["lon"], food_banks["lat"]),
        crs="EPSG:4326",
    )
    joined = join.join_projects(points)
    wards = boundaries.load("ward").to_crs(BNG)
    by_polygon = join.polygon_key(points.geometry.to_crs(BNG), wards, "WD24CD")
    names = wards.set_index("WD24CD")["WD24NM"]
    return {
        "givefood_points": len(food_banks),
        "givefood_shipped": int((joined["WD24NM"] == food_banks["givefood_ward"]).sum()),
        "givefood_polygon": int((by_polygon.map(names) == food_banks["givefood_ward"]).sum()),
    }


def render(rows: list[dict], accuracy: dict, load_seconds: float) -> str:
    lines = [
        "# Import benchmark",
        "",
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}"
        f"; shared with other work, so times vary run to run: compare the ratios.",
        f"Loading the boundary layers and postcode index once: {load_seconds:.2f} s "
        "(not in the times below).",
        "",
        "Input: CSV of real live postcodes, half postcode-only, half coordinates-only (moved "
        "0-30 m). Baseline: pandas read + postcode merge + `geopandas.sjoin` to ward, LSOA, "
        "borough and deanery polygons. Join: `join.join_file` (read, check every row, "
        "geocode, join, report). Import: `importing.import_file` (join + reconcile + rows "
        "written into a new store in one SQLite transaction). Growth of a big store and kill "
        "trials: the Store section below (`bench_store.py`).",
        "",
        "| Rows | Repeats | Baseline s | Join s | Import s | Join / baseline "
        "| Import / baseline | Import rows/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['rows']:,} | {row['repeats']} | {row['baseline_s']:.2f} | "
            f"{row['join_s']:.2f} | {row['import_s']:.2f} | "
            f"{row['join_s'] / row['baseline_s']:.1f}x | "
            f"{row['import_s'] / row['baseline_s']:.1f}x | "
            f"{row['rows'] / row['import_s']:,.0f} |"
        )
    lines += [
        "",
        "Ward agreement with the postcode's ONS ward in the same files:",
        "",
        "| Rows | Pipeline, all rows | Pipeline, coordinate rows | Baseline, all rows "
        "| Baseline, coordinate rows |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['rows']:,} | {row['pipeline_ward_pct']:.2f}% | "
            f"{row['pipeline_ward_coords_pct']:.2f}% | {row['baseline_ward_pct']:.2f}% | "
            f"{row['baseline_ward_coords_pct']:.2f}% |"
        )
    lines += [
        "",
        "## Ward accuracy for coordinate-only points",
        "",
        f"Every live region postcode ({accuracy['points']:,}), its centroid moved 0-30 m in a "
        "random direction (seed 2025) and its postcode removed:",
        "",
        f"- Shipped rule (ward of the nearest live postcode within 500 m, else the polygon): "
        f"**{accuracy['shipped_pct']:.2f}%** agree with the postcode's ward "
        "(the issue asks for >= 97%; `tests/test_join.py` asserts it).",
        f"- Plain point-in-polygon on the shipped (BSC, 200 m) ward polygons: "
        f"{accuracy['polygon_pct']:.2f}%.",
        f"- Stricter, for a point between postcodes (the moved point's own postcode left out, "
        f"so the nearest *other* postcode names the ward): {accuracy['leave_one_out_pct']:.2f}%.",
    ]
    if "givefood_points" in accuracy:
        lines += [
            f"- Real coordinates: Give Food's own points for its {accuracy['givefood_points']} "
            f"food banks (up to ~300 m from the postcode centroid), postcode removed: "
            f"{accuracy['givefood_shipped']} of {accuracy['givefood_points']} get the ward Give "
            f"Food recorded (point-in-polygon: {accuracy['givefood_polygon']}).",
        ]
    lines += [
        "",
        "The shipped figure flatters the rule: the moved point's own postcode is in the index, "
        "so it is usually its nearest. The leave-one-out figure is the fairer estimate for a "
        "project that is not at a postcode centroid.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
