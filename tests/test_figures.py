"""Per-area figures: project counts, deprivation, areas in a filter, gap figures."""

import numpy as np
import pytest

from kindred_map import (
    boundaries,
    figures,
)
from kindred_map import view as views
from kindred_map.schema import project_types

LIVERPOOL = "E08000012"


@pytest.mark.parametrize("level", ["ward", "deanery", "borough", "lsoa"])
def test_area_figures_count_each_project_once(level, shown):
    numbers = figures.area_figures(level, shown)
    column = figures.PROJECT_AREA_COLUMNS[level]
    codes = boundaries.code_texts(shown[column])
    assert numbers["projects"].sum() == int(codes.isin(numbers.index).sum())
    by_type = numbers[[f"projects_{kind}" for kind in project_types()]].sum(axis=1)
    assert (by_type == numbers["projects"]).all()
    rate = 10_000 * numbers["projects"] / numbers["population"]
    assert np.allclose(numbers["per_10k"], rate.round(2), equal_nan=True)


def test_home_run_projects_are_not_counted_by_lsoa(projects, shown, by_name):
    lsoa = figures.area_figures("lsoa", shown)
    ward = figures.area_figures("ward", shown)
    home = by_name(projects, "Home Welcome")
    assert lsoa.loc[home["LSOA21CD"], "projects"] == 0
    assert ward.loc[home["WD24CD"], "projects"] >= 1
    assert lsoa["projects"].sum() == len(shown) - 1


def test_ward_imd_is_the_population_weighted_median_of_its_residents():
    postcodes = boundaries.load("postcode")
    deciles = boundaries.load("lsoa").set_index("LSOA21CD")["imd_decile"]
    numbers = figures.area_deprivation("ward")
    for code in ["E05015288", "E05000947", "E05015010"]:
        people = postcodes[(postcodes["WD24CD"] == code) & (postcodes["status"] == "live")]
        each = np.repeat(people["LSOA21CD"].map(deciles).to_numpy(), people["residents"])
        expected = np.sort(each)[(len(each) - 1) // 2]
        assert numbers.loc[code, "imd_decile"] == expected
        assert numbers.loc[code, "share_deciles_1_2"] == pytest.approx(
            np.isin(each, (1, 2)).mean(), abs=1e-3
        )


def test_lsoa_imd_is_its_own_decile():
    lsoas = boundaries.load("lsoa").set_index("LSOA21CD")
    numbers = figures.area_deprivation("lsoa")
    assert (numbers["imd_decile"] == lsoas.loc[numbers.index, "imd_decile"]).all()


@pytest.mark.parametrize("level", ["ward", "lsoa", "deanery"])
def test_areas_in_a_borough_filter(level):
    view = views.View(boroughs=(LIVERPOOL,))
    codes = figures.areas_in_view(level, view)
    assert 0 < len(codes) < len(figures.area_choices(level))
    if level == "ward":
        wards = boundaries.load("ward").set_index("WD24CD")
        assert set(wards.loc[codes, "LAD24CD"]) == {LIVERPOOL}
        assert len(codes) == int((wards["LAD24CD"] == LIVERPOOL).sum())
    if level == "lsoa":
        lsoas = boundaries.load("lsoa").set_index("LSOA21CD")
        assert set(lsoas.loc[codes, "LAD24CD"]) == {LIVERPOOL}
    assert figures.areas_in_view(level, views.View()) == list(figures.area_choices(level))


def test_gap_figures_come_from_coverage(projects, shown):
    summary = figures.coverage_summary(projects, ("food_bank",), 800)
    numbers = figures.area_figures("ward", shown, summary["areas"]["ward"])
    assert {"gap_score", "gap_per_1000", "pct_covered"} <= set(numbers.columns)
    assert numbers["gap_score"].notna().all()
    assert (numbers["pct_covered"].between(0, 100)).all()
    assert summary["headline"] and list(summary["gaps"]) == ["ward", "deanery", "borough"]


def test_resolve_area_by_code_or_name():
    assert figures.resolve_area("borough", "liverpool") == LIVERPOOL
    assert figures.resolve_area("borough", LIVERPOOL.lower()) == LIVERPOOL
    with pytest.raises(ValueError, match="no borough"):
        figures.resolve_area("borough", "Atlantis")


def test_illustrative_records_reach_nobody_unless_shown(projects):
    synthetic = projects["synthetic"].fillna(False).astype(bool)
    pantries = ("pantry",)
    real = figures.coverage_summary(projects, pantries, 800)
    with_examples = figures.coverage_summary(projects, pantries, 800, examples=True)
    alone = figures.coverage_summary(projects[~synthetic.to_numpy()], pantries, 800, examples=True)
    assert real["headline"] == alone["headline"]
    assert real["headline"] != with_examples["headline"]


def test_every_measure_says_what_it_means():
    for measure, spec in figures.MEASURES.items():
        assert spec["help"].strip() and "\n" not in spec["help"], measure
    assert "weight 2 in IMD 2025 deciles 1-2" in figures.MEASURES["gap_score"]["help"]
    assert "2,000" in figures.MEASURES["gap_per_1000"]["help"]
