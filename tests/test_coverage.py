"""Coverage: exact figures on a hand-built region, invariants on the shipped region, the CLI."""

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod

from kindred_map import boundaries, coverage, export, store
from kindred_map.cli import main

GEOD = Geod(ellps="WGS84")
PROJECT = (-2.98, 53.41)  # lon, lat: central Liverpool

# Hand-made postcodes placed by (azimuth, geodesic metres) from PROJECT.
# name, azimuth, metres, residents, IMD decile, ward, deanery, LSOA
POSTCODES = [
    ("A", 0, 0, 100, 1, "W1", 1, "L1"),
    ("B", 90, 500, 200, 3, "W1", 1, "L1"),
    ("C", 0, 799, 50, 2, "W1", 1, "L2"),
    ("D", 180, 801, 30, 1, "W2", 1, "L2"),
    ("E", 45, 1500, 70, 5, "W2", 1, "L3"),
    ("F", 270, 3000, 0, 1, "W2", 1, "L3"),
    ("G", 225, 2000, 40, 4, "W3", None, "L4"),
]


def _population() -> pd.DataFrame:
    rows = []
    for name, azimuth, metres, residents, decile, ward, deanery, lsoa in POSTCODES:
        lon, lat, _ = GEOD.fwd(*PROJECT, azimuth, metres)
        rows.append(
            {
                "postcode": name,
                "lon": lon,
                "lat": lat,
                "residents": residents,
                "imd_decile": decile,
                "WD24CD": ward,
                "WD24NM": f"Ward {ward}",
                "LAD25CD": "B1",
                "LAD25NM": "Borough 1",
                "deanery_id": deanery,
                "deanery_name": None if deanery is None else "Deanery 1",
                "LSOA21CD": lsoa,
            }
        )
    table = pd.DataFrame(rows)
    table["deanery_id"] = table["deanery_id"].astype("Int64")
    table["imd_decile"] = table["imd_decile"].astype("Int64")
    return table


def _projects(points, types=None, precision=None) -> gpd.GeoDataFrame:
    """Projects at (lon, lat) points, food banks and exactly located unless told otherwise."""
    count = len(points)
    return gpd.GeoDataFrame(
        {
            "type": types or ["food_bank"] * count,
            "location_precision": precision or ["exact"] * count,
        },
        geometry=gpd.points_from_xy([p[0] for p in points], [p[1] for p in points]),
        crs=boundaries.WGS84,
    )


def _point(name: str) -> tuple[float, float]:
    row = next(p for p in POSTCODES if p[0] == name)
    lon, lat, _ = GEOD.fwd(*PROJECT, row[1], row[2])
    return lon, lat


@pytest.fixture(scope="module")
def result():
    return coverage.assess(_projects([PROJECT]), "food_bank", 800, population=_population())


def test_hand_built_region_by_ward(result):
    table = result.by_area("ward").set_index("WD24CD")
    assert table.loc["W1", ["population", "reached", "beyond_reach"]].tolist() == [350, 350, 0]
    assert table.loc["W2", ["population", "reached", "beyond_reach"]].tolist() == [100, 0, 100]
    assert table.loc["W3", ["population", "reached", "beyond_reach"]].tolist() == [40, 0, 40]
    assert table["pct_covered"].tolist() == [100.0, 0.0, 0.0]
    # Beyond reach in deciles 1-2: only D (30 people, decile 1); F is decile 1 but has nobody.
    assert table["beyond_reach_deciles_1_2"].tolist() == [0, 30, 0]
    assert table["residents_deciles_1_2"].tolist() == [150, 30, 0]
    # Weighted medians: W1 100@0, 200@500, 50@799 -> 500; W2 30@801, 70@1500 -> 1500.
    assert table["median_distance_m"].tolist() == [500.0, 1500.0, 2000.0]


def test_gap_score_formula_and_ranking(result):
    ranked = result.gaps("ward")
    # W2: 30 x 2 (decile 1) + 70 x 1 (decile 5) = 130; W3: 40 x 1.5 (decile 4) = 60.
    assert ranked["WD24CD"].tolist() == ["W2", "W3", "W1"]
    assert ranked["gap_rank"].tolist() == [1, 2, 3]
    assert ranked["gap_score"].tolist() == [130.0, 60.0, 0.0]
    assert ranked["gap_per_1000"].tolist() == [1300.0, 1500.0, 0.0]
    assert result.gaps("ward", top=1)["WD24CD"].tolist() == ["W2"]


def test_headline_figures(result):
    headline = result.headline()
    assert headline["residents"] == 490
    assert headline["reached"] == 350
    assert headline["beyond_reach"] == 140
    assert headline["beyond_reach_deciles_1_2"] == 30
    assert headline["residents_deciles_1_2"] == 180
    assert headline["median_distance_m"] == 500
    assert headline["gap_score"] == 190.0
    assert headline["residents_outside_diocese"] == 40
    assert math.isclose(headline["pct_covered"], round(100 * 350 / 490, 2))
    text = result.headline_text()
    assert "71.4% of the region's 490 residents live within 800 m" in text
    assert "a food bank" in text


def test_threshold_is_geodesic_metres():
    population = _population()
    near = coverage.assess(_projects([PROJECT]), "food_bank", 799.5, population=population)
    metres = dict(zip(population["postcode"], near.points["nearest_m"], strict=True))
    assert metres["C"] == pytest.approx(799, abs=0.01)
    assert metres["D"] == pytest.approx(801, abs=0.01)
    assert near.by_area("ward").set_index("WD24CD").loc["W1", "reached"] == 350
    tighter = coverage.assess(_projects([PROJECT]), "food_bank", 798.9, population=population)
    assert tighter.by_area("ward").set_index("WD24CD").loc["W1", "reached"] == 300


def test_deanery_leaves_out_postcodes_outside_the_diocese(result):
    table = result.by_area("deanery")
    assert table["population"].tolist() == [450]
    assert "40 residents live outside" in table.attrs["note"]


def test_other_types_do_not_count():
    projects = _projects([PROJECT, _point("G")], types=["food_bank", "warm_space"])
    food = coverage.assess(projects, ["food_bank"], population=_population())
    both = coverage.assess(projects, "food_bank,warm_space", population=_population())
    assert food.headline()["reached"] == 350
    assert both.headline()["reached"] == 390
    assert both.types == ("food_bank", "warm_space")
    assert "of a food bank or warm space" in both.headline_text()
    anything = coverage.assess(projects, None, population=_population())
    assert "of a project of any type" in anything.headline_text()


def test_unknown_type_lists_valid_ones():
    with pytest.raises(ValueError, match="valid types: .*food_bank.*warm_space"):
        coverage.assess(_projects([PROJECT]), "food_bnk", population=_population())


@pytest.mark.parametrize("distance", [0, -5, float("nan"), "far"])
def test_bad_distance_is_a_clear_error(distance):
    with pytest.raises(ValueError, match="distance"):
        coverage.assess(_projects([PROJECT]), "food_bank", distance, population=_population())


def test_no_projects_of_the_type_puts_everyone_beyond_reach():
    none = coverage.assess(_projects([PROJECT]), "pantry", population=_population())
    headline = none.headline()
    assert headline["projects"] == 0
    assert headline["beyond_reach"] == headline["residents"] == 490
    assert math.isnan(headline["median_distance_m"])
    assert "all 490 residents of the region are beyond reach" in none.headline_text()
    table = none.gaps("ward")
    assert table["median_distance_m"].isna().all()
    # W1 all beyond: 100 x 2 + 200 x 1.5 + 50 x 2 = 600.
    assert table["gap_score"].tolist() == [600.0, 130.0, 60.0]


def test_unlocated_projects_are_counted_not_lost():
    projects = _projects([PROJECT, PROJECT])
    projects.loc[1, "geometry"] = None
    counted = coverage.assess(projects, "food_bank", population=_population())
    assert counted.projects == 1
    assert counted.unlocated == 1
    assert "1 project(s) without a position" in counted.headline_text()


def test_synthetic_projects_count_only_when_asked_for_and_are_flagged():
    projects = _projects([PROJECT, PROJECT])
    projects["synthetic"] = [True, False]
    left_out = coverage.assess(projects, "food_bank", population=_population())
    assert (left_out.projects, left_out.synthetic) == (1, 0)
    assert "synthetic" not in left_out.headline_text()
    flagged = coverage.assess(
        projects, "food_bank", population=_population(), include_synthetic=True
    )
    assert (flagged.projects, flagged.synthetic) == (2, 1)
    assert flagged.by_area("ward").attrs["synthetic_projects"] == 1
    assert flagged.headline()["synthetic_projects"] == 1
    assert "1 of the projects are synthetic examples" in flagged.headline_text()


def test_ward_only_counts_for_coverage_but_not_finer_than_a_ward():
    home = GEOD.fwd(*_point("G"), 10, 100)[:2]
    projects = _projects([PROJECT, home], precision=["exact", "ward_only"])
    both = coverage.assess(projects, "food_bank", population=_population())
    assert both.ward_only == 1
    wards = both.by_area("ward").set_index("WD24CD")
    assert wards.loc["W3", "reached"] == 40
    lsoas = both.by_area("lsoa").set_index("LSOA21CD")
    assert lsoas.loc["L4", "reached"] == 0
    assert "1 home-run project(s) left out" in lsoas.attrs["note"]


def test_underserved_deprived_areas():
    population = _population()
    population.loc[population["postcode"] == "E", "imd_decile"] = 2
    found = coverage.assess(_projects([PROJECT]), "food_bank", population=population)
    # W2: all 100 residents in deciles 1-2, nobody within reach. W1 is reached, W3 not deprived.
    assert found.underserved("ward")["WD24CD"].tolist() == ["W2"]
    assert found.underserved("ward", min_share_deciles_1_2=1.0)["WD24CD"].tolist() == ["W2"]
    with pytest.raises(ValueError):
        found.underserved("ward", min_share_deciles_1_2=1.5)


def test_gap_surface_is_region_minus_catchments():
    x, y = coverage._transform(boundaries.WGS84, boundaries.BNG, [PROJECT[0]], [PROJECT[1]])
    square = shapely.box(x[0] - 3000, y[0] - 3000, x[0] + 3000, y[0] + 3000)
    region = gpd.GeoDataFrame(geometry=[square], crs=boundaries.BNG)
    home = GEOD.fwd(*PROJECT, 90, 2500)[:2]
    projects = _projects([PROJECT, home], precision=["exact", "ward_only"])
    surface = coverage.gap_surface(projects, "food_bank", 800, region=region, simplify_m=0)
    assert surface.crs == boundaries.WGS84
    shape = surface.geometry.iloc[0]
    assert not shape.contains(shapely.Point(PROJECT))
    assert shape.contains(shapely.Point(GEOD.fwd(*PROJECT, 0, 810)[:2]))
    assert not shape.contains(shapely.Point(GEOD.fwd(*PROJECT, 0, 790)[:2]))
    # The home-run project is left out: no hole where it is.
    assert shape.contains(shapely.Point(home))
    assert surface["ward_only_left_out"].iloc[0] == 1
    hole = 36.0 - surface["area_km2"].iloc[0]
    assert hole == pytest.approx(math.pi * 0.8**2, rel=0.01)


def test_distances_agree_with_geod_on_region_postcodes():
    population = coverage.population_points().sample(2000, random_state=7)
    sites = coverage.population_points().sample(150, random_state=8)
    projects = _projects(list(zip(sites["lon"], sites["lat"], strict=True)))
    found = coverage.assess(projects, "food_bank", population=population)
    lon = np.repeat(population["lon"].to_numpy(), len(sites))
    lat = np.repeat(population["lat"].to_numpy(), len(sites))
    site_lon = np.tile(sites["lon"].to_numpy(), len(population))
    site_lat = np.tile(sites["lat"].to_numpy(), len(population))
    _, _, metres = GEOD.inv(lon, lat, site_lon, site_lat)
    brute = np.asarray(metres).reshape(len(population), len(sites)).min(axis=1)
    assert np.abs(found.points["nearest_m"].to_numpy() - brute).max() < 1.0


def test_grid_scale_makes_catchment_radius_a_ground_distance():
    table = coverage.population_points().sample(50, random_state=3)
    east, north = table["easting"].to_numpy(), table["northing"].to_numpy()
    radius = 5000 * coverage.grid_scale(east, north)
    lon1, lat1 = coverage._transform(boundaries.BNG, boundaries.WGS84, east, north)
    lon2, lat2 = coverage._transform(boundaries.BNG, boundaries.WGS84, east + radius, north)
    _, _, metres = GEOD.inv(lon1, lat1, lon2, lat2)
    assert np.abs(np.asarray(metres) - 5000).max() < 0.5


@pytest.fixture(scope="module")
def shipped_projects() -> gpd.GeoDataFrame:
    """300 projects at real region postcodes (a fixed sample), two types, a few home-run."""
    sites = coverage.population_points().sample(300, random_state=11).reset_index(drop=True)
    return _projects(
        list(zip(sites["lon"], sites["lat"], strict=True)),
        types=["food_bank", "warm_space"] * 150,
        precision=["exact"] * 290 + ["ward_only"] * 10,
    )


@pytest.mark.parametrize("level", ["ward", "deanery", "borough", "lsoa"])
def test_population_is_conserved_on_the_shipped_region(shipped_projects, level):
    found = coverage.assess(shipped_projects, None, 800)
    table = found.by_area(level)
    assert (table["reached"] + table["beyond_reach"] == table["population"]).all()
    assert (table["beyond_reach_deciles_1_2"] <= table["beyond_reach"]).all()
    assert (table["gap_score"] >= table["beyond_reach"]).all()
    assert (table["gap_score"] <= 2 * table["beyond_reach"]).all()
    assert table["pct_covered"].between(0, 100).all()
    headline = found.headline()
    code = coverage.LEVELS[level][0]
    layer = boundaries.load(level).set_index(code)["population"]
    region = int(boundaries.load("ward")["population"].sum())
    assert headline["residents"] == region
    assert headline["reached"] + headline["beyond_reach"] == region
    if level == "deanery":
        assert table["population"].sum() + headline["residents_outside_diocese"] == region
        assert len(table) == len(layer)
    else:
        ours = table.set_index(code)["population"].astype("int64")
        assert ours.to_dict() == layer.astype("int64").to_dict()
        assert table["population"].sum() == region


def test_longer_reach_never_reaches_fewer(shipped_projects):
    short = coverage.assess(shipped_projects, "warm_space", 500).by_area("ward")
    long = coverage.assess(shipped_projects, "warm_space", 1500).by_area("ward")
    assert (long["reached"].to_numpy() >= short["reached"].to_numpy()).all()
    assert long["reached"].sum() > short["reached"].sum()


def test_area_layer_and_outputs(tmp_path, shipped_projects):
    ranked = coverage.assess(shipped_projects, "food_bank").gaps("ward")
    layer = coverage.area_layer(ranked, "ward")
    assert len(layer) == len(boundaries.load("ward"))
    assert layer.geometry.notna().all()
    export.write_table(layer, tmp_path / "gaps.geojson", "gaps_ward")
    export.write_table(layer, tmp_path / "gaps.gpkg", "gaps_ward")
    export.write_table(ranked, tmp_path / "gaps.csv", "gaps_ward")
    document = json.loads((tmp_path / "gaps.geojson").read_text())
    assert "crs" not in document
    assert len(document["features"]) == len(layer)
    ring = shapely.LinearRing(_first_exterior(document["features"][0]["geometry"]))
    assert ring.is_ccw
    assert pyogrio.read_info(tmp_path / "gaps.gpkg", layer="gaps_ward")["crs"] == "EPSG:27700"
    assert len(pd.read_csv(tmp_path / "gaps.csv")) == len(ranked)
    assert "Office for National Statistics" in (tmp_path / "gaps_about.txt").read_text()
    assert "Office for National Statistics" in json.dumps(document["attribution"])
    with pytest.raises(ValueError, match=r"\.geojson, \.gpkg or \.csv"):
        export.write_table(layer, tmp_path / "gaps.shp", "gaps_ward")


def _first_exterior(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return geometry["coordinates"][0]
    return geometry["coordinates"][0][0]


def _write_store(path, projects: gpd.GeoDataFrame) -> None:
    records = projects.copy()
    records["id"] = [f"p{i}" for i in range(len(records))]
    records["name"] = [f"Project {i}" for i in range(len(records))]
    store.write_store(records, store.read_imports(path), path, "2025-01-01T00:00:00Z")


def test_cli_gaps_prints_headline_and_writes_outputs(tmp_path, capsys, shipped_projects):
    path = tmp_path / "projects.gpkg"
    _write_store(path, shipped_projects)
    out = tmp_path / "gaps.geojson"
    args = ["gaps", "--types", "food_bank", "--distance", "800", "--by", "borough"]
    assert main([*args, "-o", str(out), "--store", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "% of the region's" in printed
    assert "within 800 m (straight line) of a food bank" in printed
    assert "Top 9 borough gaps" in printed
    assert len(json.loads(out.read_text())["features"]) == 9


def test_cli_gaps_errors_and_empty_store(tmp_path, capsys):
    missing = tmp_path / "none.gpkg"
    assert main(["gaps", "--types", "food_bank", "--store", str(missing)]) == 0
    assert "are beyond reach" in capsys.readouterr().out
    assert main(["gaps", "--types", "soup", "--store", str(missing)]) == 2
    assert "valid types" in capsys.readouterr().err


def _with_hours(projects: gpd.GeoDataFrame, schedules: list[str]) -> gpd.GeoDataFrame:
    return projects.assign(schedules=schedules)


def test_open_at_counts_only_projects_open_then_and_unknown_apart():
    from kindred_map import hours

    saturday = hours.dumps(hours.parse("Sat 10:00-12:00"))
    weekdays = hours.dumps(hours.parse("Mon-Fri 10:00-14:00"))
    projects = _with_hours(_projects([PROJECT, _point("E"), _point("G")]), [saturday, weekdays, ""])
    population = _population()
    anytime = coverage.assess(projects, "food_bank", 800, population=population)
    on_saturday = coverage.assess(
        projects, "food_bank", 800, population=population, open_at="sat 10:00"
    )
    assert (on_saturday.projects, on_saturday.closed, on_saturday.hours_unknown) == (1, 1, 1)
    assert on_saturday.headline()["reached"] == 350  # A, B and C: within 800 m of PROJECT only
    assert anytime.headline()["reached"] == 460  # E and G reached by their own projects too
    assert on_saturday.headline()["reached_if_unknown_open"] == 350 + 40  # G's own project
    assert "1 with unknown hours are counted apart" in on_saturday.headline_text()
    weekday = coverage.assess(projects, "food_bank", 800, population=population, open_at="evening")
    assert weekday.projects == 0 and weekday.headline()["reached"] == 0


def test_coverage_on_saturday_never_exceeds_any_time_per_area():
    projects = store.read_projects()
    anytime = coverage.assess(projects, "warm_space,place_of_welcome", 800)
    saturday = coverage.assess(projects, "warm_space,place_of_welcome", 800, open_at="sat 10:00")
    assert 0 < saturday.projects < anytime.projects
    for level in coverage.AREA_LEVELS:
        both = anytime.by_area(level).merge(
            saturday.by_area(level), on=coverage.LEVELS[level][0], suffixes=("", "_sat")
        )
        assert len(both) == len(anytime.by_area(level))
        assert (both["reached_sat"] <= both["reached"]).all()
    h = saturday.headline()
    assert h["reached"] <= h["reached_if_unknown_open"] <= anytime.headline()["reached"]


def test_gaps_cli_open(capsys):
    assert main(["gaps", "--types", "warm_space", "--open", "weekend", "--top", "1"]) == 0
    assert "unknown hours are counted apart" in capsys.readouterr().out
    assert main(["gaps", "--open", "someday"]) == 2
    assert "'weekend' or 'evening'" in capsys.readouterr().err


# --- across the region's boundary (issue 27), on the shipped layers -------------------------

RESIDENT = "WA7 4PP"  # Runcorn (Halton), about 400 m inside the boundary
ACROSS = "WA7 3EE"  # about 300 m outside it (Cheshire West and Chester), 700 m from RESIDENT


@pytest.fixture(scope="module")
def across(tmp_path_factory) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """The resident's postcode as a population table, and a warm space at ACROSS (and one in
    Liverpool city centre, far away) placed and joined by the import's own pipeline."""
    from kindred_map import join

    population = coverage.population_points()
    population = population[population["postcode"] == RESIDENT]
    assert len(population) == 1 and population["residents"].iloc[0] > 0
    path = tmp_path_factory.mktemp("edge") / "edge.csv"
    path.write_text(
        f"name,type,postcode\nAcross the boundary,warm_space,{ACROSS}\n"
        "City centre,warm_space,L1 8JQ\n",
        encoding="utf-8",
    )
    projects, report = join.join_file(path)
    assert report.rejected == 0 and len(projects) == 2
    return population, projects


def test_the_premise_is_real_geography():
    """RESIDENT lies 400 m inside the 9 boroughs and ACROSS 300 m outside (borough layer,
    EPSG:27700), 700 m apart on the ground: an edge case of Runcorn, not invented points."""
    postcodes = boundaries.load("postcode").set_index("postcode")
    region = boundaries.load("borough").to_crs(boundaries.BNG).union_all()
    inside, outside = (
        shapely.Point(postcodes.loc[name, ["easting", "northing"]].to_numpy(float))
        for name in (RESIDENT, ACROSS)
    )
    assert region.contains(inside) and not region.contains(outside)
    assert region.boundary.distance(inside) == pytest.approx(400, abs=15)
    assert region.boundary.distance(outside) == pytest.approx(300, abs=15)
    lon, lat = postcodes.loc[[RESIDENT, ACROSS], "lon"], postcodes.loc[[RESIDENT, ACROSS], "lat"]
    assert GEOD.inv(lon.iloc[0], lat.iloc[0], lon.iloc[1], lat.iloc[1])[2] < 800


def test_a_project_across_the_boundary_reaches_residents_unless_inside_only(across):
    population, projects = across
    outside = projects.set_index("name").loc["Across the boundary"]
    assert not outside["in_region"] and outside["nearest_borough"] == "Halton"
    both_sides = coverage.assess(projects, "warm_space", 800, population=population)
    inside_only = coverage.assess(
        projects, "warm_space", 800, population=population, include_outside=False
    )
    residents = int(population["residents"].iloc[0])
    assert both_sides.headline()["reached"] == residents
    assert both_sides.points["nearest_m"].iloc[0] == pytest.approx(700, abs=20)
    assert (both_sides.outside, inside_only.outside) == (1, 0)
    assert inside_only.headline()["reached"] == 0
    assert inside_only.projects == 1  # the city centre one still counts, but is far away
    assert "lie outside the region" in both_sides.headline_text()
    assert "Only projects inside the region count" in inside_only.headline_text()
    # The gap surface: the outside project's circle cuts into Runcorn unless inside-only.
    halton = boundaries.load("borough").query("LAD25NM == 'Halton'")
    cut = coverage.gap_surface(projects, "warm_space", 800, region=halton)
    whole = coverage.gap_surface(projects, "warm_space", 800, region=halton, include_outside=False)
    assert cut["area_km2"].iloc[0] < whole["area_km2"].iloc[0]


def test_an_outside_project_is_never_in_an_areas_figures(across):
    from kindred_map import figures

    _, projects = across
    for level in ("ward", "deanery", "borough", "lsoa"):
        counts = figures.area_figures(level, projects)
        assert counts["projects"].sum() == 1, level  # the city centre one only
    found = coverage.assess(projects, "warm_space", 800)
    table = found.by_area("borough")
    assert table["population"].sum() == boundaries.load("borough")["population"].sum()
    assert set(table["LAD25CD"]) == set(boundaries.load("borough")["LAD25CD"])
    effect = coverage.boundary_effect(
        found, coverage.assess(projects, "warm_space", 800, include_outside=False), "borough"
    )
    gained = effect.set_index("LAD25NM")["newly_within_reach"]
    assert gained["Halton"] > 0 and gained.drop("Halton").eq(0).all()


def test_cli_inside_only_switch(capsys):
    assert main(["gaps", "--types", "warm_space", "--top", "1"]) == 0
    default = capsys.readouterr().out
    assert main(["gaps", "--types", "warm_space", "--top", "1", "--inside-only"]) == 0
    inside_only = capsys.readouterr().out
    assert "lie outside the region" in default
    assert "Only projects inside the region count" in inside_only
    reached = [float(text.split("%")[0]) for text in (default, inside_only)]
    assert reached[0] > reached[1]


def test_the_pack_method_says_who_the_outside_projects_bring_within_reach(tmp_path, across):
    import zipfile

    _, projects = across
    path = tmp_path / "projects.gpkg"
    store.write_store(projects, store.read_imports(path), path, "2025-01-01T00:00:00Z")
    counted = coverage.assess(projects, "warm_space", 800)
    inside = coverage.assess(projects, "warm_space", 800, include_outside=False)
    halton = coverage.boundary_effect(counted, inside).set_index("LAD25NM")
    newly = int(halton.loc["Halton", "newly_within_reach"])
    assert newly > 0
    readmes = []
    for extra in ([], ["--inside-only"]):
        out = tmp_path / f"pack{len(extra)}.zip"
        args = ["export", "--format", "pack", "--types", "warm_space", "--distance", "800"]
        assert main([*args, *extra, "--store", str(path), "-o", str(out)]) == 0
        readmes.append(zipfile.ZipFile(out).read("README.txt").decode("utf-8"))
    assert f"Counting them moves {newly:,} residents" in readmes[0]
    assert f"(by borough: Halton {newly:,})" in readmes[0]
    assert "Only projects inside the region count for reach" in readmes[1]
    assert "Counting them moves" not in readmes[1]


def test_the_strtree_and_the_kd_tree_find_the_same_nearest_project(shipped_projects, monkeypatch):
    """Below KD_TREE_FROM projects shapely's STRtree searches, from it SciPy's KD-tree: both
    give every postcode the same nearest project, so the figures do not depend on the count."""
    assert len(shipped_projects) < coverage.KD_TREE_FROM <= 10_000
    by_strtree = coverage.assess(shipped_projects, None, 800)
    monkeypatch.setattr(coverage, "KD_TREE_FROM", 1)
    by_kd_tree = coverage.assess(shipped_projects, None, 800)
    pd.testing.assert_frame_equal(by_strtree.points, by_kd_tree.points)


def _reference_by_area(points: pd.DataFrame, level: str, distance_m: float) -> pd.DataFrame:
    """by_area's sums, medians and ward boroughs the plain pandas way (groupby, mode)."""
    code, name = coverage.LEVELS[level]
    frame = points[points[code].notna()].assign(
        reached=lambda t: np.where(t["nearest_m"] <= distance_m, t["residents"], 0)
    )
    groups = frame.groupby([code, name], sort=True, observed=True)
    table = groups[["residents", "reached"]].sum().reset_index()
    median = coverage.weighted_median(frame, code, "nearest_m", "residents")
    table["median"] = table[code].map(median).astype(float).round(0)
    if level == "ward":
        mode = frame.groupby(code, observed=True)["LAD25NM"].agg(lambda n: n.mode().iloc[0])
        table["LAD25NM"] = table[code].map(mode).astype(str)
    return table


@pytest.mark.parametrize("level", ["ward", "deanery", "borough", "lsoa"])
def test_per_area_figures_equal_a_plain_groupby(level):
    """The numpy sums, weighted medians and boroughs of by_area equal pandas' groupby and mode,
    on a population with a ward split between two boroughs (a tie, and a majority)."""
    population = coverage.population_points().sample(3000, random_state=21).reset_index(drop=True)
    ward = population["WD24CD"].iloc[0]
    rows = population.index[population["WD24CD"] == ward]
    population.loc[rows[: len(rows) // 2], "LAD25NM"] = "Aardvark Borough"  # a tie or majority
    sites = coverage.population_points().sample(40, random_state=22)
    projects = _projects(list(zip(sites["lon"], sites["lat"], strict=True)))
    found = coverage.assess(projects, "food_bank", 1200, population=population)
    table = found.by_area(level)
    expected = _reference_by_area(found.points, level, 1200)
    code = coverage.LEVELS[level][0]
    assert table[code].astype(str).tolist() == expected[code].astype(str).tolist()
    assert table["population"].tolist() == expected["residents"].tolist()
    assert table["reached"].tolist() == expected["reached"].tolist()
    pd.testing.assert_series_equal(
        table["median_distance_m"], expected["median"], check_names=False
    )
    if level == "ward":
        assert table["LAD25NM"].tolist() == expected["LAD25NM"].tolist()
