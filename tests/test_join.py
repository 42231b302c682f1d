"""Joining projects to ward, borough, deanery and LSOA: postcode authority, accuracy, edges."""

import json
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Point

from kindred_map import boundaries, export, join
from kindred_map.paths import DEFAULT_RAW_DIR
from kindred_map.schema import JOINED_FIELDS

BNG = "EPSG:27700"
GIVE_FOOD = DEFAULT_RAW_DIR / "givefood_foodbanks" / "foodbanks_region_givefood.csv"
needs_raw = pytest.mark.skipif(
    not GIVE_FOOD.exists() and os.environ.get("CI") != "true",
    reason=f"raw data not found at {DEFAULT_RAW_DIR}",
)


@pytest.fixture(scope="module")
def live() -> pd.DataFrame:
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    return pd.DataFrame(live).reset_index(drop=True)


def _points(x, y, postcode=None, **columns) -> gpd.GeoDataFrame:
    frame = pd.DataFrame({"postcode": postcode if postcode is not None else [""] * len(x)})
    for name, values in columns.items():
        frame[name] = values
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(x, y), crs=BNG)


@needs_raw
def test_every_give_food_food_bank_gets_the_ward_give_food_recorded():
    projects, report = join.join_file(GIVE_FOOD)
    raw = pd.read_csv(GIVE_FOOD)
    assert report.rows_read == len(raw) == len(projects)
    assert report.rejected == 0
    recorded = raw.set_index("name")["givefood_ward"]
    joined = projects.set_index("name")["WD24NM"]
    assert joined.reindex(recorded.index).tolist() == recorded.tolist()
    assert projects["ward_source"].eq("postcode").all()
    assert projects["type"].eq("food_bank").all()


def test_records_with_a_postcode_get_the_postcodes_ward_every_time(live):
    projects = _points(live["easting"], live["northing"], live["postcode"].str.lower())
    joined = join.join_projects(projects)
    assert (joined["WD24CD"].to_numpy() == live["WD24CD"].to_numpy()).all()
    assert (joined["LAD25CD"].to_numpy() == live["LAD25CD"].to_numpy()).all()
    assert (joined["LSOA21CD"].to_numpy() == live["LSOA21CD"].to_numpy()).all()
    assert joined["ward_source"].eq("postcode").all()
    assert joined["in_region"].all()
    assert joined["imd_decile"].between(1, 10).all()
    # The generalised polygons disagree for some postcodes: each disagreement is flagged.
    flagged = joined["ward_note"].str.contains("generalised ward polygon here is")
    assert 0 < flagged.sum() < len(joined)


def ward_agreement_of_moved_postcodes(live: pd.DataFrame, seed: int = 2025) -> float:
    """Share of postcode centroids, moved 0-30 m in a random direction and stripped of their
    postcode, whose joined ward is the postcode's ward."""
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0, 30, len(live))
    angle = rng.uniform(0, 2 * np.pi, len(live))
    x = live["easting"] + distance * np.cos(angle)
    y = live["northing"] + distance * np.sin(angle)
    joined = join.join_projects(_points(x, y))
    return float((joined["WD24CD"].to_numpy() == live["WD24CD"].to_numpy()).mean())


def test_coordinate_only_points_agree_with_the_postcode_ward_at_least_97_percent(live):
    agreement = ward_agreement_of_moved_postcodes(live)
    print(f"ward agreement, coordinate-only points moved 0-30 m: {agreement:.2%}")
    assert agreement >= 0.97


def test_nearest_postcode_is_recorded_as_the_ward_source(live):
    tree = cKDTree(live[["easting", "northing"]].to_numpy())
    distance, _ = tree.query(live[["easting", "northing"]].to_numpy(), k=2)
    first = live[distance[:, 1] > 50].iloc[0]
    joined = join.join_projects(_points([first["easting"] + 5], [first["northing"]]))
    assert joined["ward_source"].iloc[0] == "nearest_postcode"
    assert joined["WD24CD"].iloc[0] == first["WD24CD"]
    assert f"nearest postcode, {first['postcode']}" in joined["ward_note"].iloc[0]


def _adjacent_wards() -> tuple[gpd.GeoDataFrame, Point]:
    wards = boundaries.load("ward").to_crs(BNG).sort_values("WD24CD").reset_index(drop=True)
    first = wards.iloc[0]
    for _, other in wards.iloc[1:].iterrows():
        shared = first.geometry.boundary.intersection(other.geometry.boundary)
        if shared.length > 100:
            return wards, shared.interpolate(0.5, normalized=True)
    raise AssertionError("no ward shares an edge with the first ward")


def test_a_point_on_a_shared_boundary_gets_one_ward_whatever_the_order():
    wards, on_edge = _adjacent_wards()
    touching = sorted(wards.loc[wards.intersects(on_edge.buffer(0.01)), "WD24CD"])
    assert len(touching) >= 2
    points = gpd.GeoSeries([on_edge, on_edge, Point(0, 0)], crs=BNG, index=[7, 3, 5])
    found = join.polygon_key(points, wards, "WD24CD")
    assert found.tolist()[:2] == [touching[0], touching[0]]
    assert pd.isna(found.loc[5])
    shuffled = join.polygon_key(points, wards.iloc[::-1], "WD24CD")
    assert shuffled.tolist()[:2] == found.tolist()[:2]


def _far_from_postcodes(live: pd.DataFrame) -> Point:
    """A point inside the region with no live postcode within 500 m (found on a 1 km grid)."""
    region = boundaries.load("borough").to_crs(BNG).union_all()
    minx, miny, maxx, maxy = region.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, 1000), np.arange(miny, maxy, 1000))
    grid = gpd.GeoSeries(gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=BNG)
    inside = grid[grid.within(region.buffer(-1000))]
    tree = cKDTree(live[["easting", "northing"]].to_numpy())
    distance, _ = tree.query(np.column_stack([inside.x, inside.y]))
    return inside.iloc[int(np.argmax(distance > 700))]


def test_points_far_from_any_postcode_take_the_ward_polygon(live):
    point = _far_from_postcodes(live)
    joined = join.join_projects(_points([point.x], [point.y]))
    wards = boundaries.load("ward").to_crs(BNG)
    holding = wards.loc[wards.contains(point), "WD24CD"].tolist()
    assert joined["ward_source"].iloc[0] == "polygon"
    assert joined["WD24CD"].iloc[0] == holding[0]
    assert "generalised" in joined["ward_note"].iloc[0]
    assert joined["LSOA21CD"].iloc[0] != ""


def test_points_outside_the_region_or_diocese_are_kept_and_say_why():
    # Manchester city centre; Birkenhead (Wirral, Diocese of Chester); Liverpool city centre.
    lon = [-2.2426, -3.0143, -2.9830]
    lat = [53.4808, 53.3930, 53.4075]
    projects = gpd.GeoDataFrame(
        {"postcode": ["", "", ""]}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326"
    )
    joined = join.join_projects(projects)
    manchester, wirral, liverpool = (joined.iloc[i] for i in range(3))
    assert not manchester["in_region"]
    assert manchester["WD24CD"] == "" and manchester["LAD25CD"] == ""
    assert "outside the region" in manchester["ward_note"]
    assert manchester["deanery_note"] == "outside the region"
    assert wirral["in_region"] and wirral["LAD25NM"] == "Wirral"
    assert pd.isna(wirral["deanery_id"]) and wirral["deanery_name"] == ""
    assert "Wirral is in the Diocese of Chester" in wirral["deanery_note"]
    assert liverpool["LAD25NM"] == "Liverpool" and liverpool["deanery_name"] != ""
    assert liverpool["deanery_note"] == ""
    assert set(JOINED_FIELDS) <= set(joined.columns)
    assert joined.crs.to_epsg() == 4326


def test_a_postcode_far_from_the_point_does_not_name_the_ward(live):
    home = live[live["postcode"] == "L1 8JQ"].iloc[0]
    far = live[live["LAD25CD"] != home["LAD25CD"]].iloc[0]
    joined = join.join_projects(_points([far["easting"]], [far["northing"]], ["L1 8JQ"]))
    assert joined["ward_source"].iloc[0] == "nearest_postcode"
    assert joined["WD24CD"].iloc[0] == far["WD24CD"]
    assert "postcode L1 8JQ is" in joined["ward_note"].iloc[0]


def test_ward_only_projects_keep_their_position_inside_and_lose_it_outside(live, tmp_path):
    row = live.iloc[100]
    projects = _points(
        [row["easting"], row["easting"]],
        [row["northing"], row["northing"]],
        [row["postcode"], row["postcode"]],
        location_precision=["ward_only", "exact"],
        address=["1 Home Street", "Church Hall"],
        name=["Home", "Hall"],
        lat=[row["lat"]] * 2,
        lon=[row["lon"]] * 2,
        easting=[row["easting"]] * 2,
        northing=[row["northing"]] * 2,
    ).to_crs("EPSG:4326")
    joined = join.join_projects(projects)
    assert joined["WD24CD"].tolist() == [row["WD24CD"]] * 2
    assert joined.geometry.iloc[0].distance(joined.geometry.iloc[1]) == 0
    for suffix in (".geojson", ".gpkg", ".csv"):
        path = export.write_joined(joined, tmp_path / f"out{suffix}")
        text = path.read_bytes()
        assert b"1 Home Street" not in text
        assert b"Church Hall" in text
        assert text.count(row["postcode"].encode()) == 1
    written = gpd.read_file(tmp_path / "out.geojson").set_index("name")
    assert written.loc["Home", "WD24CD"] == row["WD24CD"]
    assert written.loc["Home"].geometry.distance(written.loc["Hall"].geometry) > 0


def test_joined_output_formats(live, tmp_path):
    row = live.iloc[200]
    projects = _points([row["easting"]], [row["northing"]], [row["postcode"]]).to_crs("EPSG:4326")
    projects["location_precision"] = "exact"
    projects["address"] = ""
    joined = join.join_projects(projects)
    geojson = json.loads(export.write_joined(joined, tmp_path / "a.geojson").read_text())
    assert "crs" not in geojson
    lon, lat = geojson["features"][0]["geometry"]["coordinates"]
    assert lon == pytest.approx(row["lon"], abs=1e-6) and lat == pytest.approx(row["lat"], abs=1e-6)
    package = gpd.read_file(export.write_joined(joined, tmp_path / "a.gpkg"))
    assert package.crs.to_epsg() == 27700
    assert package.geometry.x.iloc[0] == pytest.approx(row["easting"], abs=0.01)
    table = pd.read_csv(export.write_joined(joined, tmp_path / "a.csv"))
    assert table["WD24CD"].tolist() == [row["WD24CD"]]
    with pytest.raises(ValueError, match="must end in"):
        export.write_joined(joined, tmp_path / "a.shp")


def test_an_outside_postcode_puts_a_project_outside_unless_it_has_no_district_code():
    """ONS assigns CH1 1AB to Cheshire West and Chester and WA3 5PJ to Salford (11 m outside
    the generalised borough polygon, within its 100 m edge tolerance): outside, whatever the
    polygons say. Code-Point gives L3 5AG (Liverpool city centre) no district code: the
    polygons decide."""
    postcodes = boundaries.load("postcode").set_index("postcode")
    rows = postcodes.loc[["CH1 1AB", "L3 5AG", "WA7 3EE", "WA3 5PJ"]]
    assert not rows["in_region"].any() and pd.isna(rows.loc["L3 5AG", "LAD25CD"])
    joined = join.join_projects(
        _points(rows["easting"], rows["northing"], list(rows.index))
    ).set_index("postcode")
    assert not joined.loc[["CH1 1AB", "WA7 3EE", "WA3 5PJ"], "in_region"].any()
    assert joined.loc["WA3 5PJ", ["WD24CD", "LAD25CD"]].eq("").all()
    assert joined.loc["CH1 1AB", "nearest_borough"] == "Wirral"
    assert joined.loc["WA7 3EE", "nearest_borough"] == "Halton"
    assert "m from Halton" in joined.loc["WA7 3EE", "ward_note"]
    liverpool = joined.loc["L3 5AG"]
    assert liverpool["in_region"] and liverpool["LAD25NM"] == "Liverpool"
    assert liverpool["ward_source"] == "nearest_postcode" and liverpool["nearest_borough"] == ""


def _random_region_points(count: int, seed: int) -> gpd.GeoDataFrame:
    """Uniform random points inside the region's boroughs, coordinates only (EPSG:27700)."""
    region = boundaries.load("borough").to_crs(BNG).union_all()
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = region.bounds
    x, y = rng.uniform(minx, maxx, 3 * count), rng.uniform(miny, maxy, 3 * count)
    inside = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=BNG).within(region).to_numpy()
    return _points(x[inside][:count], y[inside][:count])


@pytest.fixture(scope="module")
def random_joined() -> gpd.GeoDataFrame:
    return join.join_projects(_random_region_points(20_000, seed=26)).to_crs(BNG)


def test_every_in_region_point_of_a_random_sample_gets_one_area_of_each_kind(random_joined):
    inside = random_joined[random_joined["in_region"]]
    assert len(inside) == len(random_joined) == 20_000
    for field in ("WD24CD", "WD24NM", "ward_source", "LAD25CD", "LAD25NM", "LSOA21CD"):
        assert inside[field].ne("").all(), field
    assert inside["imd_decile"].between(1, 10).all()
    wards = boundaries.load("ward").set_index("WD24CD")
    assert (inside["WD24CD"].map(wards["LAD24CD"]) == inside["LAD25CD"]).all()


def test_points_in_gaps_between_ward_polygons_take_the_nearest_ward_of_their_borough(
    random_joined,
):
    """Issue 26: about 0.3% of random in-region points lie over 100 m from every generalised
    ward polygon and 500 m from every postcode (coast, estuaries); each takes the nearest ward
    polygon of its borough, and the note gives the distance."""
    gaps = random_joined[random_joined["ward_note"].str.contains("nearest ward polygon")]
    assert len(gaps) >= 20
    wards = boundaries.load("ward").to_crs(BNG)
    for _, point in gaps.iterrows():
        own = wards[wards["LAD24CD"] == point["LAD25CD"]]
        metres = own.distance(point.geometry)
        assert metres.min() > join.EDGE_TOLERANCE_M
        assert point["WD24CD"] == own.loc[metres.idxmin(), "WD24CD"]
        assert point["ward_source"] == "polygon"
        assert f"{metres.min():,.0f} m away" in point["ward_note"]
    by_lsoa = random_joined["deanery_note"].str.startswith("the deanery of the point's LSOA")
    assert by_lsoa.any() and random_joined.loc[by_lsoa, "deanery_name"].ne("").all()
    # Wirral is outside the diocese wherever its points fall.
    wirral = gaps[gaps["LAD25NM"] == "Wirral"]
    assert len(wirral) and wirral["deanery_note"].str.contains("Diocese of Chester").all()


def test_polygon_key_agrees_with_a_plain_spatial_join_on_random_points():
    """The tree of points queried with prepared polygons gives geopandas' answer: inside a
    polygon its key; within the tolerance, the nearest polygon's."""
    wards = boundaries.load("ward").to_crs(BNG)
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = wards.total_bounds
    points = gpd.GeoSeries(
        gpd.points_from_xy(rng.uniform(minx, maxx, 5000), rng.uniform(miny, maxy, 5000)),
        crs=BNG,
        index=rng.permutation(5000) + 10,
    )
    found = join.polygon_key(points, wards, "WD24CD", tolerance=100)
    frame = gpd.GeoDataFrame(geometry=points)
    inside = gpd.sjoin(frame, wards, predicate="within")["WD24CD"]
    inside = inside[~inside.index.duplicated()]
    assert found.reindex(inside.index).tolist() == inside.tolist()
    near = gpd.sjoin_nearest(frame.drop(inside.index), wards, max_distance=100)["WD24CD"]
    near = near.groupby(level=0).min()
    assert found.reindex(near.index).tolist() == near.tolist()
    assert found.drop(inside.index).drop(near.index).isna().all()
    assert len(inside) > 1000 and len(near) > 0


def test_note_distances_are_written_as_python_formats_them():
    """The notes' metres are formatted by arrow kernels in one pass (issue 26); they read as
    ``f"{value:,.0f}"`` does, thousands separators and rounding included."""
    values = np.array([0, 0.5, 2.5, 999.4, 999.6, 1000, 12345.5, 999999.5, 1234567.4, 123456789])
    assert join._metres(values).to_pylist() == [f"{value:,.0f}" for value in values]


def _stress_points(kind: dict, grid: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """Points where a grid could go wrong: on the boundaries and just either side of them
    (0.1 mm to 30 m), on the polygon vertices, on cell edges and corners (and a hair either
    side), and random points over the whole frame."""
    lines = shapely.boundary(kind["shapes"])
    along = shapely.line_interpolate_point(
        lines[rng.integers(0, len(lines), 20_000)], rng.uniform(0, 1, 20_000), normalized=True
    )
    on = shapely.get_coordinates(along)
    offsets = rng.choice([0, 1e-4, 1e-2, 1, 10, 30], (len(on), 1)) * rng.choice([-1, 1], on.shape)
    vertices = shapely.get_coordinates(kind["shapes"])
    size = join.GRID_CELL_M
    corners = np.column_stack(
        [
            grid["x0"] + rng.integers(0, grid["nx"], 20_000) * size,
            grid["y0"] + rng.integers(0, grid["ny"], 20_000) * size,
        ]
    )
    hair = corners + rng.choice([-1e-9, 0, 1e-9, size / 2], corners.shape)
    span = np.array([grid["nx"], grid["ny"]]) * size
    anywhere = np.array([grid["x0"], grid["y0"]]) + rng.uniform(-0.1, 1.1, (20_000, 2)) * span
    xy = np.concatenate([on, on + offsets, vertices, corners, hair, anywhere])
    return xy[:, 0], xy[:, 1]


@pytest.mark.parametrize("name", ["ward", "borough", "lsoa", "deanery"])
def test_area_grids_answer_as_the_polygon_test_does(name):
    """The area grids (issue 26: cells no boundary touches answer without a polygon test) give
    the exact answer, edge tolerance included, for points on and beside every boundary, on
    vertices and on cell edges; and they answer most random points without a test."""
    ref = join.reference()
    grid = join.area_grids()[name]
    kind = ref[name]
    x, y = _stress_points(kind, grid, np.random.default_rng(11))
    points = shapely.points(x, y)
    exact = join._exact_codes(points, kind["shapes"], kind["codes"], join.EDGE_TOLERANCE_M)
    assert (join._area_codes(kind, grid, x, y) == exact).all()
    assert {join.NONE, join.OPEN} < set(np.unique(grid["cells"]))
    region = _random_region_points(5_000, seed=5)
    col = ((region.geometry.x - grid["x0"]) // join.GRID_CELL_M).astype(int)
    row = ((region.geometry.y - grid["y0"]) // join.GRID_CELL_M).astype(int)
    assert (grid["cells"][row, col] != join.OPEN).mean() > 0.75


def test_a_join_with_the_area_grids_equals_one_without(random_joined, monkeypatch):
    """Every column of 20,000 random in-region points is the same whether the areas come
    from the grids or from a polygon test per point."""
    assert len(random_joined) >= join.GRID_MIN_POINTS
    monkeypatch.setattr(join, "GRID_MIN_POINTS", 10**9)
    tested = join.join_projects(_random_region_points(20_000, seed=26)).to_crs(BNG)
    pd.testing.assert_frame_equal(pd.DataFrame(tested), pd.DataFrame(random_joined))
