"""The shipped boundary layers: counts, validity, nesting, population and the deanery derivation."""

import hashlib
import json
import os
import shutil

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kindred_map import boundaries, build
from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR

LIVERPOOL = "E08000012"
WIRRAL = "E08000015"
REGION_POPULATION = 2_209_519  # Census 2021 usual residents of the 9 boroughs (ONS)

needs_raw = pytest.mark.skipif(
    not DEFAULT_RAW_DIR.is_dir() and os.environ.get("CI") != "true",
    reason=f"raw data not found at {DEFAULT_RAW_DIR}",
)


def test_ward_and_borough_counts():
    wards = boundaries.load("ward")
    assert len(wards) == 221
    assert wards["WD24CD"].is_unique
    assert (wards["LAD24CD"] == LIVERPOOL).sum() == 64
    boroughs = boundaries.load("borough")
    assert len(boroughs) == 9
    assert boroughs["in_lcr_ca"].sum() == 6
    assert set(wards["LAD24CD"]) == set(boroughs["LAD25CD"])


def test_lsoas_carry_imd_deciles():
    lsoas = boundaries.load("lsoa")
    assert len(lsoas) == 1408
    assert lsoas["LSOA21CD"].is_unique
    assert lsoas["imd_decile"].between(1, 10).all()
    for column in ("income_decile", "health_decile", "environment_decile"):
        assert lsoas[column].between(1, 10).all()
    # Rank and decile agree: the most deprived decile holds the lowest ranks.
    assert (
        lsoas.loc[lsoas["imd_decile"] == 1, "imd_rank"].max()
        < lsoas.loc[lsoas["imd_decile"] == 10, "imd_rank"].min()
    )


@pytest.mark.parametrize("name", ["borough", "ward", "lsoa", "deanery", "diocese"])
def test_geometries_valid_and_in_wgs84(name):
    layer = boundaries.load(name)
    assert layer.crs.to_epsg() == 4326
    assert layer.geometry.is_valid.all()
    assert not layer.geometry.is_empty.any()
    assert set(layer.geom_type) <= {"Polygon", "MultiPolygon"}
    minx, miny, maxx, maxy = layer.total_bounds
    assert -3.3 < minx < maxx < -2.3 and 53.2 < miny < maxy < 53.8


def test_each_ward_lies_in_its_borough():
    wards = boundaries.load("ward").to_crs(27700)
    boroughs = boundaries.load("borough").to_crs(27700).set_index("LAD25CD")
    inside = [
        ward.geometry.intersection(boroughs.geometry[ward.LAD24CD]).area / ward.geometry.area
        for ward in wards.itertuples()
    ]
    assert min(inside) >= 0.99


def test_population_adds_up_in_every_layer():
    assert boundaries.load("lsoa")["population"].sum() == REGION_POPULATION
    assert boundaries.load("ward")["population"].sum() == REGION_POPULATION
    assert boundaries.load("borough")["population"].sum() == REGION_POPULATION
    assert (boundaries.load("ward")["population"] > 0).all()
    postcodes = boundaries.load("postcode")
    assert postcodes["residents"].sum() == REGION_POPULATION
    by_lsoa = postcodes.groupby("LSOA21CD")["residents"].sum()
    lsoas = boundaries.load("lsoa").set_index("LSOA21CD")["population"]
    pd.testing.assert_series_equal(
        by_lsoa.reindex(lsoas.index), lsoas, check_names=False, check_dtype=False
    )


def test_live_postcodes_have_codes_and_positions():
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    assert len(live) >= 54_000
    assert live["pcd_key"].is_unique
    for column in ("WD24CD", "LAD25CD", "LSOA21CD", "lon", "lat", "easting", "northing"):
        assert live[column].notna().all(), column
    wards = boundaries.load("ward")
    assert set(live["WD24CD"]) == set(wards["WD24CD"])
    assert live["postcode"].str.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}").all()
    terminated = postcodes[postcodes["status"] == "terminated"]
    assert len(terminated) > 0
    assert not terminated["pcd_key"].isin(live["pcd_key"]).any()
    assert (terminated["residents"] == 0).all()


def test_postcodes_outside_the_region_are_placed_flagged_and_carry_no_one():
    postcodes = boundaries.load("postcode")
    outside = postcodes[~postcodes["in_region"]]
    assert boundaries.metadata("postcode")["measured"]["live_outside_region"] == len(outside)
    assert len(outside) == 26_280  # the raw Code-Point file's L, CH, WA, WN, PR rest (SOURCE.md)
    assert (outside["status"] == "live").all() and (outside["residents"] == 0).all()
    assert outside["LSOA21CD"].isna().all()
    for column in ("lon", "lat", "easting", "northing"):
        assert outside[column].notna().all(), column
    boroughs = set(boundaries.load("borough")["LAD25CD"])
    assert not outside["LAD25CD"].isin(boroughs).any()
    assert postcodes.loc[postcodes["in_region"], "LAD25CD"].isin(boroughs).all()
    assert set(outside["postcode"].str.extract(r"^([A-Z]+)")[0]) <= {"L", "CH", "WA", "WN", "PR"}
    chester = postcodes.set_index("pcd_key").loc["CH11AB"]
    assert not chester["in_region"] and chester["LAD25CD"] == "E06000050"  # Cheshire W & C


def test_postcode_lsoa_is_in_the_postcode_borough():
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    lsoa_lad = boundaries.load("lsoa").set_index("LSOA21CD")["LAD24CD"]
    assert (live["LSOA21CD"].map(lsoa_lad) == live["LAD25CD"]).all()


def _parishes():
    parishes = pd.read_csv(DEFAULT_RAW_DIR / build.RAW_FILES["parishes"])
    return parishes[parishes["deanery_name"] != build.NOT_A_DEANERY]


@needs_raw
def test_every_deanery_of_the_parish_list_is_present_once():
    deaneries = boundaries.load("deanery")
    expected = set(_parishes()["deanery_id"])
    assert len(expected) == 14
    assert set(deaneries["deanery_id"]) == expected
    assert deaneries["deanery_id"].is_unique
    assert build.NOT_A_DEANERY not in set(deaneries["deanery_name"])


@needs_raw
def test_each_deanery_holds_one_of_its_parish_locations():
    lads = boundaries.load("borough").to_crs(27700)
    points = build._parish_points(DEFAULT_RAW_DIR, lads).to_crs(4326)
    deaneries = boundaries.load("deanery")
    held = gpd.sjoin(points, deaneries, predicate="within", lsuffix="parish")
    own = held[held["deanery_id_parish"] == held["deanery_id_right"]]
    assert set(own["deanery_id_parish"]) == set(deaneries["deanery_id"])


def test_no_deanery_area_in_wirral():
    wirral = boundaries.load("borough").set_index("LAD25CD").to_crs(27700).geometry[WIRRAL]
    deaneries = boundaries.load("deanery").to_crs(27700)
    overlap = deaneries.geometry.intersection(wirral).area.sum()
    assert overlap < 1.0  # square metres: shared edges only


def test_neighbouring_diocese_places_fall_outside_the_diocese():
    diocese = boundaries.load("diocese").to_crs(27700).geometry.iloc[0]
    places = pd.read_csv(build.REFERENCE_DIR / "neighbour_diocese_places.csv")
    assert "Runcorn" in set(places["place"])
    gazetteer = (
        pd.read_csv(DEFAULT_RAW_DIR / build.RAW_FILES["places"])
        if (DEFAULT_RAW_DIR.is_dir())
        else None
    )
    if gazetteer is None:
        pytest.skip("raw gazetteer not available")
    listed = places[places["scope"] == "place"].merge(
        gazetteer, left_on=["place", "LAD25NM"], right_on=["name", "LAD25NM"]
    )
    points = gpd.GeoSeries(gpd.points_from_xy(listed["lon"], listed["lat"]), crs=4326)
    assert not points.to_crs(27700).within(diocese).any()


def test_deanery_population_is_the_diocese_population():
    deaneries = boundaries.load("deanery")
    diocese = boundaries.load("diocese")
    assert deaneries["population"].sum() == diocese["population"].iloc[0]
    assert 0 < diocese["population"].iloc[0] < REGION_POPULATION


@pytest.mark.parametrize("name", list(boundaries.LAYERS))
def test_metadata_is_complete(name):
    meta = boundaries.metadata(name)
    for field in ("source", "vintage", "generalisation", "accuracy", "licence", "attribution"):
        assert meta[field], field
    assert meta["features"] == len(boundaries.load(name))
    assert set(meta["columns"]) <= set(boundaries.load(name).columns)


def test_derived_layers_say_they_are_approximate():
    for name in ("deanery", "diocese"):
        meta = boundaries.metadata(name)
        assert meta["approximate"] is True
        assert "Derived" in meta["method"]
        assert meta["measured"]["parish_locations_inside_own_deanery_pct"] > 90


def test_attribution_lines_are_distinct_and_name_the_publishers():
    lines = boundaries.attribution_lines()
    assert len(lines) == len(set(lines))
    text = " ".join(lines)
    for publisher in ("Office for National Statistics", "OS data", "Royal Mail", "Church"):
        assert publisher in text


def test_load_rejects_unknown_layer():
    with pytest.raises(ValueError, match="unknown layer"):
        boundaries.load("parish")


def test_load_returns_independent_copies():
    first = boundaries.load("borough")
    first["LAD25NM"] = "changed"
    assert "changed" not in set(boundaries.load("borough")["LAD25NM"])


def _digests(directory):
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


@needs_raw
def test_build_is_reproducible_and_matches_the_shipped_files(tmp_path):
    """One build, byte for byte the shipped files: those came from an earlier, separate
    build (`make boundaries`: another process, another hash seed, another day), so equal bytes
    show the build reproducible across runs. (A second build in this same process, 35 s of
    CPU, was dropped: any build that differs from another differs from the shipped files, and
    this comparison fails on it.)"""
    built = tmp_path / "built"
    build.build_all(DEFAULT_RAW_DIR, built)
    assert _digests(built) == _digests(BOUNDARIES_DIR)


def test_shipped_population_table_equals_a_fresh_computation_from_the_shipped_layers():
    shipped = pd.read_parquet(BOUNDARIES_DIR / "population.parquet")
    pd.testing.assert_frame_equal(shipped, boundaries.population_table(BOUNDARIES_DIR))
    meta = json.loads((BOUNDARIES_DIR / "population.meta.json").read_text(encoding="utf-8"))
    assert meta["rows"] == len(shipped) and meta["residents"] == REGION_POPULATION
    assert meta["inputs_sha256"] == {
        name: hashlib.sha256(boundaries.layer_path(name).read_bytes()).hexdigest()
        for name in boundaries.POPULATION_INPUTS
    }
    assert "## population:" in (BOUNDARIES_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")


def test_population_table_built_from_other_layers_is_not_used(layer_dir):
    wards = boundaries.load("ward", layer_dir)
    wards.loc[wards["WD24CD"] == "E05015279", "WD24NM"] = "Anfield (renamed)"
    boundaries.write_layer("ward", wards, layer_dir)  # the table is now stale
    boundaries.clear_cache()
    table = boundaries.population(layer_dir)
    assert (table.loc[table["WD24CD"] == "E05015279", "WD24NM"] == "Anfield (renamed)").all()


def test_build_rejects_missing_raw_folder(tmp_path):
    with pytest.raises(ValueError, match="raw data folder not found"):
        build.build_all(tmp_path / "nowhere", tmp_path / "out")


@pytest.fixture
def layer_dir(tmp_path):
    directory = tmp_path / "boundaries"
    shutil.copytree(BOUNDARIES_DIR, directory)
    yield directory
    boundaries.clear_cache()


def test_replace_layer_installs_a_reprojected_renamed_geopackage(layer_dir, tmp_path):
    wards = boundaries.load("ward").to_crs(27700)
    better = wards.rename(columns={"WD24CD": "wd25cd", "WD24NM": "wd25nm"})[
        ["wd25cd", "wd25nm", "LAD24CD", "geometry"]
    ]
    path = tmp_path / "better_wards.gpkg"
    better.to_file(path, driver="GPKG")
    meta = boundaries.replace_layer(
        "ward",
        path,
        {"WD24CD": "wd25cd", "WD24NM": "wd25nm"},
        layer_dir,
        vintage="May 2025",
        licence="OGL v3",
    )
    assert meta["vintage"] == "May 2025"
    assert meta["source"] == "User-supplied file better_wards.gpkg"
    installed = boundaries.load("ward", layer_dir)
    assert installed.crs.to_epsg() == 4326
    assert len(installed) == 221
    assert installed["population"].sum() == REGION_POPULATION
    assert "LAD24NM" in installed.columns  # kept from the current layer by key
    rebuilt = boundaries._population_read(layer_dir)  # the population table follows the layer
    assert rebuilt is not None
    pd.testing.assert_frame_equal(rebuilt, boundaries.population_table(layer_dir))
    assert set(rebuilt["WD24NM"]) == set(installed["WD24NM"])


def test_replace_layer_reads_a_zipped_shapefile(layer_dir, tmp_path):
    deaneries = boundaries.load("deanery")[["deanery_id", "deanery_name", "geometry"]]
    folder = tmp_path / "shp"
    folder.mkdir()
    # Shapefile field names stop at 10 characters: the mapping restores ours.
    shortened = deaneries.rename(columns={"deanery_id": "dean_id", "deanery_name": "dean_name"})
    shortened.to_crs(27700).to_file(folder / "deaneries.shp")
    archive = shutil.make_archive(str(tmp_path / "deaneries"), "zip", folder)
    mapping = {"deanery_id": "dean_id", "deanery_name": "dean_name"}
    meta = boundaries.replace_layer("deanery", archive, mapping, layer_dir, source="Official")
    assert meta["approximate"] is False
    assert len(boundaries.load("deanery", layer_dir)) == 14


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda d: d / "absent.geojson", "file not found"),
        (lambda d: _write(d / "junk.geojson", "not json at all"), "cannot read"),
        (lambda d: _points(d / "points.geojson"), "needs polygons"),
        (lambda d: _no_name(d / "noname.geojson"), "lacks required ward fields"),
        (lambda d: _duplicated(d / "dupes.geojson"), "unique"),
        (lambda d: _far_away(d / "far.geojson"), "does not overlap the region"),
    ],
)
def test_replace_layer_rejects_bad_files_and_keeps_the_current_layer(
    layer_dir, tmp_path, make_file, message
):
    before = _digests(layer_dir)
    with pytest.raises(ValueError, match=message):
        boundaries.replace_layer("ward", make_file(tmp_path), None, layer_dir)
    assert _digests(layer_dir) == before


def test_replace_layer_rejects_unknown_mapping_and_postcodes(layer_dir, tmp_path):
    path = tmp_path / "wards.geojson"
    boundaries.load("ward").to_file(path)
    with pytest.raises(ValueError, match="field mapping names fields not in"):
        boundaries.replace_layer("ward", path, {"WD24CD": "nope"}, layer_dir)
    with pytest.raises(ValueError, match="rebuilt from raw data"):
        boundaries.replace_layer("postcode", path, None, layer_dir)


def _write(path, text):
    path.write_text(text)
    return path


def _points(path):
    wards = boundaries.load("ward")
    wards.set_geometry(wards.representative_point()).to_file(path)
    return path


def _no_name(path):
    boundaries.load("ward").drop(columns="WD24NM").to_file(path)
    return path


def _duplicated(path):
    wards = boundaries.load("ward")
    pd.concat([wards, wards.head(1)]).to_file(path)
    return path


def _far_away(path):
    wards = boundaries.load("ward")
    wards.set_geometry(wards.translate(xoff=40)).to_file(path)
    return path


@pytest.mark.parametrize(
    "value, text",
    [(22104, "22104"), (22104.0, "22104"), (" 22104 ", "22104"), ("E05015279", "E05015279")],
)
def test_code_text_compares_codes_however_they_arrive(value, text):
    assert boundaries.code_text(value) == text


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_code_text_of_a_missing_code_is_empty(missing):
    assert boundaries.code_text(missing) == ""


def test_code_texts_of_a_text_column_match_code_text_of_each_value():
    """Issue 26: a text column is converted once per distinct code; the answer is still
    `code_text` of every value (stripped, missing as ""), on the same index."""
    codes = pd.Series(
        [" E05015279", None, "E05015279 ", "22104", ""], dtype="str", index=[9, 3, 5, 1, 0]
    )
    texts = boundaries.code_texts(codes)
    assert texts.tolist() == [boundaries.code_text(value) for value in codes]
    assert texts.tolist() == ["E05015279", "", "E05015279", "22104", ""]
    assert texts.index.tolist() == [9, 3, 5, 1, 0] and str(texts.dtype) == "str"


@pytest.mark.parametrize("name", ["postcode.parquet", "population.parquet", "imd_change.parquet"])
@pytest.mark.parametrize("columns", [None, "some"])
def test_read_parquet_gives_the_frame_pandas_gives(name, columns):
    """`read_parquet` skips pandas' reader for start-up time; the frame must not change."""
    path = BOUNDARIES_DIR / name
    if columns == "some":
        columns = list(reversed(pq.ParquetFile(path).schema_arrow.names))[:3]
    expected = pd.read_parquet(path, columns=columns)
    read = boundaries.read_parquet(path, columns)
    pd.testing.assert_frame_equal(read, expected, check_exact=True)
