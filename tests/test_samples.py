"""The shipped sample store: real records placed honestly, synthetic ones marked, reproducible."""

import os

import pytest

from kindred_map import samples, store
from kindred_map.paths import DATA_DIR, DEFAULT_RAW_DIR
from kindred_map.schema import project_types

SAMPLE_STORE = DATA_DIR / "projects.gpkg"
needs_raw = pytest.mark.skipif(
    not DEFAULT_RAW_DIR.is_dir() and os.environ.get("CI") != "true",
    reason=f"raw data not found at {DEFAULT_RAW_DIR}",
)


@pytest.fixture(scope="module")
def projects():
    return store.read_projects(SAMPLE_STORE)


@needs_raw
def test_the_shipped_store_is_what_the_build_makes_byte_for_byte(tmp_path):
    samples.build_sample_store(DEFAULT_RAW_DIR, tmp_path / "projects.gpkg")
    for name in ("projects.gpkg", "SOURCES.md", "sample_build_report.csv"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_every_configured_type_but_other_has_examples(projects):
    shown = set(projects["type"])
    assert set(project_types()) - {"other"} <= shown
    assert shown <= set(project_types())
    assert projects["id"].is_unique


def test_synthetic_records_are_marked_and_named_as_examples(projects):
    synthetic = projects[projects["synthetic"]]
    assert len(synthetic) > 0
    assert synthetic["name"].str.startswith("Example").all()
    assert synthetic["name"].str.contains("(synthetic)", regex=False).all()
    assert synthetic["source"].str.startswith("SYNTHETIC").all()
    assert set(synthetic["type"]) == {"pantry"}
    real = projects[~projects["synthetic"]]
    assert not real["name"].str.contains("(synthetic)", regex=False).any()
    assert not real["type"].isin(["pantry"]).any()
    assert (synthetic["location_precision"] == "ward_only").sum() == 1


def test_stos_are_the_real_co_operatives_in_the_nine_boroughs(projects):
    stos = projects[projects["type"] == "sto"]
    assert len(stos) > 100
    assert stos["id"].str.startswith("coopsuk-").all()
    assert not stos["synthetic"].any()
    assert stos["in_region"].all() and stos["LAD25NM"].ne("").all()
    assert stos["sector"].ne("").all()
    assert stos["source"].str.contains("Contains data from Co-operatives UK").all()
    assert stos["location_precision"].eq("street").all()
    text = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    assert "ODC-By 1.0" in text
    assert f"{samples.shared_postcodes(stos)} sit at a postcode another" in " ".join(text.split())


def test_coop_candidates_are_all_accounted_for():
    log = store.read_imports(SAMPLE_STORE).set_index("file")
    coops = log.loc[samples.RAW_FILES["coops"]]
    assert coops["rows_read"] == coops["imported"] + coops["rejected"]
    assert coops["rejected"] > 0  # candidates outside the 9 boroughs, named in the report


def test_warm_spaces_with_structured_hours_agree_with_their_text(projects):
    from kindred_map import hours

    warm = projects[projects["id"].str.startswith("warmspace-")]
    structured = warm[warm["schedules"].ne("")]
    assert 0 < len(structured) < len(warm)
    for text, stored in zip(structured["opening_hours"], structured["schedules"], strict=True):
        assert hours.loads(stored) == hours.parse(text)


def test_give_food_food_banks_carry_the_ward_give_food_recorded(projects):
    food_banks = projects[projects["id"].str.startswith("givefood-")]
    assert len(food_banks) == 20
    assert food_banks["type"].eq("food_bank").all()
    recorded = food_banks["source"].str.extract(r"Give Food ward: (.+)$")[0]
    assert recorded.notna().all()
    assert (food_banks["WD24NM"] == recorded).all()
    assert food_banks["ward_source"].eq("postcode").all()


def test_seed_projects_are_placed_at_place_centroids_and_say_so(projects):
    seeds = projects[projects["id"].str.startswith("seed-")].set_index("id")
    assert len(seeds) == len(samples.SEED_PROJECTS)
    assert seeds["location_precision"].eq("street").all()
    assert seeds["source"].str.contains("OS Open Names centroid").all()
    assert seeds["postcode"].eq("").all()
    assert seeds["in_region"].all()
    norris_green = seeds.loc["seed-christ-church-norris-green-pow"]
    assert norris_green["type"] == "place_of_welcome"
    assert norris_green["LAD25NM"] == "Liverpool"
    assert seeds.loc["seed-st-gabriels-huyton-quarry-hub", "LAD25NM"] == "Knowsley"


def test_warm_spaces_are_typed_honestly(projects):
    warm = projects[projects["id"].str.startswith("warmspace-")]
    assert set(warm["type"]) == {"warm_space", "place_of_welcome"}
    welcome = warm[warm["type"] == "place_of_welcome"]
    assert welcome["name"].str.contains("Place of Welcome", case=False).all()
    assert warm["source"].str.contains("licence not stated").all()
    assert warm["source"].str.contains("category guess").all()


def test_sources_file_states_licences():
    text = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    assert "public domain" in text
    assert "**Licence: not stated.**" in text
    assert "Synthetic examples (NOT real)" in text


def test_the_import_log_records_each_source(projects):
    log = store.read_imports(SAMPLE_STORE)
    assert log["projects"].sum() == len(projects)
    assert (log["rows_read"] == log["imported"] + log["rejected"]).all()
