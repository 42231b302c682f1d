"""The projects as tables and text: counts, staleness, the table, area panel, downloads, About."""

import json
from datetime import date

import pytest

from kindred_map import (
    abouttext,
    areapanel,
    downloads,
    figures,
    privacy,
    tables,
)
from kindred_map import view as views
from kindred_map.text import md_escape

XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)


def test_counts_text_says_what_is_drawn(shown, projects):
    text = tables.counts_text(shown, len(projects))
    assert text.startswith(f"Showing {len(shown)} of {len(projects)} projects")
    assert "1 home-run" in text and "1 illustrative" in text


def test_table_holds_the_same_records_with_flags(shown):
    table = tables.project_table(shown, TODAY)
    assert sorted(table["Id"]) == sorted(shown["id"])
    row = table[table["Name"] == "Halton Warm Space"].iloc[0]
    assert row["Check due"].startswith("yes")
    assert table.loc[table["Name"] == "Example Pantry", "Illustrative (not real)"].item()
    home = table[table["Name"] == "Home Welcome"].iloc[0]
    assert home["Address"] == "" and privacy.SHOWN_AT_WARD_CENTRE in home["Location"]
    assert table["Name"].str.casefold().is_monotonic_increasing


def test_area_panel_lists_the_area_and_its_projects(projects, shown, by_name):
    xss = by_name(projects, XSS)
    numbers = figures.area_figures("ward", shown)
    panel = areapanel.area_panel("ward", xss["WD24CD"], shown, numbers, TODAY)
    assert panel["title"].startswith(f"Ward: {xss['WD24NM']}")
    assert panel["population"] == numbers.loc[xss["WD24CD"], "population"]
    assert XSS in set(panel["table"]["Name"])
    assert panel["by_type"]["Projects"].sum() == panel["projects"] == len(panel["table"])
    assert "population-weighted" in panel["imd"]
    deanery = areapanel.area_panel(
        "deanery", str(xss["deanery_id"]), shown, figures.area_figures("deanery", shown)
    )
    assert figures.DEANERY_NOTE in deanery["notes"]
    text = areapanel.area_panel_text(panel)
    assert xss["WD24NM"] in text and XSS in text
    with pytest.raises(ValueError, match="no ward"):
        areapanel.area_panel("ward", "E05999999", shown, numbers)


def test_about_lists_every_layer_with_licence_and_vintage():
    layers = abouttext.layer_sources()
    assert len(layers) == len(abouttext.ABOUT_LAYERS)
    assert layers["Licence"].str.len().gt(0).all() and layers["Vintage"].str.len().gt(0).all()
    assert layers.loc[layers["Layer"].str.contains("Deaner"), "Approximate"].item() == "yes"


def test_downloads_hold_the_shown_projects_with_home_run_masked(projects, by_name):
    view = views.View(boroughs=("E08000014",))  # Sefton, home of the home-run project
    shown = views.shown_projects(projects, view)
    geojson = json.loads(downloads.download_bytes(shown, "geojson", view))
    assert sorted(f["id"] for f in geojson["features"]) == sorted(shown["id"])
    home = next(f for f in geojson["features"] if f["properties"]["name"] == "Home Welcome")
    true = by_name(projects, "Home Welcome")
    centre = privacy.ward_centres()[true["WD24CD"]]
    assert home["geometry"]["coordinates"] == pytest.approx([centre.x, centre.y], abs=1e-6)
    assert not home["properties"]["address"] and home["properties"]["postcode"] == "L20"
    table = downloads.download_bytes(shown, "csv", view).decode("utf-8-sig")
    assert "Private Road" not in table and "L20 0AD" not in table
    assert len(table.strip().splitlines()) == len(shown) + 1
    with pytest.raises(ValueError, match="csv or geojson"):
        downloads.download_bytes(shown, "pdf", view)


def test_table_summary_counts_stale_and_undated(shown):
    summary = tables.table_summary(tables.project_table(shown, TODAY))
    # Fixture: Halton (2024-01-10) and the hostile name (2023-06-01) are stale; Knowsley undated.
    assert summary == (
        f"{len(shown)} projects: 2 last checked over 12 months ago (stale), "
        "1 with no check date recorded."
    )


@pytest.mark.parametrize("level", ["ward", "deanery", "borough"])
def test_gaps_table_has_human_headings_units_and_rounding(level, projects):
    ranked = figures.coverage_summary(projects, ("food_bank",), 800)["gaps"][level]
    table = tables.gaps_table(ranked, level)
    assert not [c for c in table.columns if "_" in c], "no raw column names"
    assert {"Within reach (%)", "Residents (people)", "Median distance to nearest (metres)"} <= set(
        table.columns
    )
    assert table["Rank"].tolist() == ranked["gap_rank"].tolist()
    covered = table["Within reach (%)"]
    assert (covered == ranked["pct_covered"].round(1)).all()
    assert (covered * 10).round(6).mod(1).eq(0).all(), "1 decimal"
    assert (
        table["Residents in most deprived 20% (%)"] - ranked["pct_deciles_1_2"]
    ).abs().max() <= 0.05 + 1e-9
    assert (table["Gap score"] - ranked["gap_score"]).abs().max() <= 0.5
    for heading in table.columns[2:]:
        assert tables.column_help(heading) or heading == "Borough", heading
    assert "2 in IMD 2025 deciles 1-2, 1.5 in deciles 3-4 and 1 otherwise" in tables.column_help(
        "Gap score"
    )


def test_project_card_escapes_text_and_keeps_home_run_private(shown, by_name):
    card = tables.project_card(shown, "dashboard-projects:dash-01", TODAY)
    assert card["title"] == md_escape(XSS)
    facts = dict(zip(card["facts"]["Field"], card["facts"]["Value"], strict=True))
    assert facts["Website"] == md_escape("javascript:alert(1)")
    assert facts["Check due"].startswith("yes")
    home = tables.project_card(shown, "dashboard-projects:dash-03", TODAY)
    facts = dict(zip(home["facts"]["Field"], home["facts"]["Value"], strict=True))
    assert "Address" not in facts and facts["Postcode"] == "L20", "the district only"
    assert "0AD" not in " ".join(facts.values()) and "Private" not in " ".join(facts.values())
    assert by_name(shown, "Home Welcome")["WD24NM"] in set(home["facts"]["Value"])
    with pytest.raises(ValueError, match="dash-99"):
        tables.project_card(shown, "dash-99", TODAY)
