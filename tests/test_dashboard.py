"""The dashboard's logic without Streamlit: the view in the URL, area figures, markers and popups,
postcode search, the table, the area panel, uploads and the map's assets."""

import html
import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from kindred_map import boundaries, cli, dashboard, filters, maps, privacy, store
from kindred_map.schema import project_types

FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"
XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)
LIVERPOOL = "E08000012"


@pytest.fixture(scope="module")
def store_file(tmp_path_factory) -> Path:
    """A store holding the fixture's 12 placeable projects (one row is rejected)."""
    path = tmp_path_factory.mktemp("dashboard") / "projects.gpkg"
    store.import_file(FIXTURE, path)
    return path


@pytest.fixture(scope="module")
def projects(store_file):
    return store.read_projects(store_file)


@pytest.fixture(scope="module")
def shown(projects):
    return dashboard.shown_projects(projects, dashboard.View())


@pytest.fixture(scope="module")
def with_examples(projects):
    """What the dashboard shows with illustrative (synthetic) records switched on: they are
    left out by default (`filters.filter_projects`)."""
    return filters.filter_projects(privacy.mask_ward_only(projects), include_synthetic=True)


def _by_name(frame, name):
    rows = frame[frame["name"] == name]
    assert len(rows) == 1, name
    return rows.iloc[0]


# --- the view and the URL -----------------------------------------------------------------


def test_default_view_has_an_empty_query():
    assert dashboard.view_to_query(dashboard.View()) == {}
    assert dashboard.view_from_query({}) == (dashboard.View(), [])


def test_every_view_field_round_trips_through_the_query():
    ward = next(iter(dashboard.area_choices("ward")))
    deanery = next(iter(dashboard.area_choices("deanery")))
    view = dashboard.View(
        types=("food_bank", "pantry"),
        boroughs=(LIVERPOOL, "E08000014"),
        deaneries=(deanery,),
        wards=(ward,),
        imd=(1, 2),
        layer="ward",
        measure="gap_per_1000",
        postcode="L1 8JQ",
        distance=1200,
        area=ward,
        gaps=True,
        clusters=True,
        eps=300,
        min_samples=4,
    )
    query = dashboard.view_to_query(view)
    assert all(isinstance(value, str) for value in query.values())
    assert query["boroughs"] == f"{LIVERPOOL},E08000014"
    assert dashboard.view_from_query(query) == (view, [])
    # Widgets hold lists and numbers: the same view comes back from them.
    assert dashboard.view_from_state(dashboard.widget_values(view)) == view


def test_a_link_may_name_areas_and_repeat_keys():
    view, problems = dashboard.view_from_query(
        {"boroughs": ["liverpool", "Sefton"], "types": "food_bank,food_bank"}
    )
    assert problems == []
    assert view.boroughs == (LIVERPOOL, "E08000014")
    assert view.types == ("food_bank",)


def test_bad_link_values_are_ignored_with_a_message_each():
    view, problems = dashboard.view_from_query(
        {
            "types": "food_bank,spaceship",
            "boroughs": "Atlantis",
            "imd": "0,3,x",
            "layer": "parish",
            "distance": "-5",
            "eps": "1e9",
            "area": "E05999999",
        }
    )
    assert view == dashboard.View(types=("food_bank",), imd=(3,))
    assert len(problems) == 8
    joined = " ".join(problems)
    for word in ("spaceship", "Atlantis", "'0'", "'x'", "parish", "'-5'", "E05999999"):
        assert word in joined


def test_area_of_another_layer_is_not_taken_from_the_link():
    borough_view, problems = dashboard.view_from_query({"layer": "borough", "area": LIVERPOOL})
    assert borough_view.area == LIVERPOOL and problems == []
    ward_view, problems = dashboard.view_from_query({"area": LIVERPOOL})
    assert ward_view.area == "" and problems


# --- what is shown --------------------------------------------------------------------------


def test_home_run_project_is_shown_at_its_ward_centre_without_details(projects, shown):
    true = _by_name(projects, "Home Welcome")
    drawn = _by_name(shown, "Home Welcome")
    centre = privacy.ward_centres()[true["WD24CD"]]
    assert drawn.geometry.equals(centre)
    assert not drawn.geometry.equals(true.geometry)
    assert not drawn["address"] and drawn["postcode"] == "L20"
    assert pd.isna(drawn["LSOA21CD"]) and pd.isna(drawn["imd_decile"])


def test_filters_select_projects_and_imd_filter_drops_home_run(projects, shown):
    liverpool = dashboard.shown_projects(projects, dashboard.View(boroughs=(LIVERPOOL,)))
    assert set(liverpool["LAD25CD"]) == {LIVERPOOL}
    real = projects[~projects["synthetic"].astype(bool)]
    assert len(liverpool) == int((real["LAD25CD"] == LIVERPOOL).sum())
    assert not shown["synthetic"].astype(bool).any()
    deprived = dashboard.shown_projects(projects, dashboard.View(imd=(1,)))
    expected = real[(real["imd_decile"] == 1).fillna(False).to_numpy()]
    expected = expected[expected["location_precision"] != "ward_only"]
    assert sorted(deprived["id"]) == sorted(expected["id"])
    assert "Home Welcome" not in set(deprived["name"])


def test_counts_text_says_what_is_drawn(with_examples, projects):
    text = dashboard.counts_text(with_examples, len(projects))
    assert text.startswith(f"Showing {len(with_examples)} of {len(projects)} projects")
    assert "1 home-run" in text and "1 illustrative" in text


def test_markers_match_the_shown_projects_and_escape_text(shown):
    records = dashboard.marker_records(shown, TODAY)
    assert len(records) == len(shown)
    colours = {spec["colour"] for spec in project_types().values()}
    assert {record["colour"] for record in records} <= colours
    xss = [record for record in records if "onerror" in record["popup"]]
    assert len(xss) == 1
    assert html.escape(XSS) in xss[0]["popup"] and XSS not in xss[0]["popup"]
    assert xss[0]["tooltip"] == html.escape(XSS)
    for record in records:
        assert "<img" not in record["popup"] and "<script" not in record["popup"]


def test_popups_say_illustrative_approximate_home_run_and_stale(with_examples):
    records = {
        re.sub("<[^>]+>", "", r["tooltip"]): r
        for r in dashboard.marker_records(with_examples, TODAY)
    }
    assert "Illustrative example, not a real project" in records["Example Pantry"]["popup"]
    assert "Approximate location" in records["Example Pantry"]["popup"]
    home = records["Home Welcome"]
    assert home["home_run"] and privacy.SHOWN_AT_WARD_CENTRE in home["popup"]
    assert "Private Road" not in home["popup"]
    assert "over 12 months ago" in records["Halton Warm Space"]["popup"]
    assert "over 12 months ago" not in records["Wigan Warm Space"]["popup"]
    assert "Last checked: not recorded" in records["Knowsley Lunch Club"]["popup"]
    assert "Illustrative" not in records["Wigan Warm Space"]["popup"]


def test_only_http_websites_become_links():
    safe = dashboard.popup_html({"name": "A", "type": "other", "website": "https://a.org/x?y=1"})
    assert '<a href="https://a.org/x?y=1"' in safe
    unsafe = dashboard.popup_html({"name": "B", "type": "other", "website": "javascript:alert(1)"})
    assert "<a " not in unsafe and "javascript:alert(1)" in unsafe


def test_stale_means_older_than_twelve_months():
    checked = pd.Series(["2024-10-31", "2024-11-01", "2025-06-01", "", None, "soon", "01/02/2024"])
    status = dashboard.check_status(checked, TODAY).tolist()
    assert status == ["stale", "", "", *["not recorded"] * 3, "stale"]
    assert dashboard.stale_mask(checked, TODAY).tolist() == [True, *[False] * 5, True]


def test_table_holds_the_same_records_with_flags(with_examples):
    table = dashboard.project_table(with_examples, TODAY)
    assert sorted(table["Id"]) == sorted(with_examples["id"])
    row = table[table["Name"] == "Halton Warm Space"].iloc[0]
    assert row["Check due"].startswith("yes")
    assert table.loc[table["Name"] == "Example Pantry", "Illustrative (not real)"].item()
    home = table[table["Name"] == "Home Welcome"].iloc[0]
    assert home["Address"] == "" and privacy.SHOWN_AT_WARD_CENTRE in home["Location"]
    assert table["Name"].str.casefold().is_monotonic_increasing


# --- areas --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["ward", "deanery", "borough", "lsoa"])
def test_area_figures_count_each_project_once(level, shown):
    figures = dashboard.area_figures(level, shown)
    column = dashboard.PROJECT_AREA_COLUMNS[level]
    codes = boundaries.code_texts(shown[column])
    assert figures["projects"].sum() == int(codes.isin(figures.index).sum())
    by_type = figures[[f"projects_{kind}" for kind in project_types()]].sum(axis=1)
    assert (by_type == figures["projects"]).all()
    rate = 10_000 * figures["projects"] / figures["population"]
    assert np.allclose(figures["per_10k"], rate.round(2), equal_nan=True)


def test_home_run_projects_are_not_counted_by_lsoa(projects, shown):
    lsoa = dashboard.area_figures("lsoa", shown)
    ward = dashboard.area_figures("ward", shown)
    home = _by_name(projects, "Home Welcome")
    assert lsoa.loc[home["LSOA21CD"], "projects"] == 0
    assert ward.loc[home["WD24CD"], "projects"] >= 1
    assert lsoa["projects"].sum() == len(shown) - 1


def test_ward_imd_is_the_population_weighted_median_of_its_residents():
    postcodes = boundaries.load("postcode")
    deciles = boundaries.load("lsoa").set_index("LSOA21CD")["imd_decile"]
    figures = dashboard.area_deprivation("ward")
    for code in ["E05015288", "E05000947", "E05015010"]:
        people = postcodes[(postcodes["WD24CD"] == code) & (postcodes["status"] == "live")]
        each = np.repeat(people["LSOA21CD"].map(deciles).to_numpy(), people["residents"])
        expected = np.sort(each)[(len(each) - 1) // 2]
        assert figures.loc[code, "imd_decile"] == expected
        assert figures.loc[code, "share_deciles_1_2"] == pytest.approx(
            np.isin(each, (1, 2)).mean(), abs=1e-3
        )


def test_lsoa_imd_is_its_own_decile():
    lsoas = boundaries.load("lsoa").set_index("LSOA21CD")
    figures = dashboard.area_deprivation("lsoa")
    assert (figures["imd_decile"] == lsoas.loc[figures.index, "imd_decile"]).all()


@pytest.mark.parametrize("level", ["ward", "lsoa", "deanery"])
def test_areas_in_a_borough_filter(level):
    view = dashboard.View(boroughs=(LIVERPOOL,))
    codes = dashboard.areas_in_view(level, view)
    assert 0 < len(codes) < len(dashboard.area_choices(level))
    if level == "ward":
        wards = boundaries.load("ward").set_index("WD24CD")
        assert set(wards.loc[codes, "LAD24CD"]) == {LIVERPOOL}
        assert len(codes) == int((wards["LAD24CD"] == LIVERPOOL).sum())
    if level == "lsoa":
        lsoas = boundaries.load("lsoa").set_index("LSOA21CD")
        assert set(lsoas.loc[codes, "LAD24CD"]) == {LIVERPOOL}
    assert dashboard.areas_in_view(level, dashboard.View()) == list(dashboard.area_choices(level))


def test_colour_classes_give_every_value_a_legend_colour():
    values = pd.Series([0, 0, 1, 2, 3, 5, 8, 13, 21, 34, np.nan])
    colours, classes = dashboard.colour_classes(values, "projects")
    legend = {entry["colour"] for entry in classes}
    assert set(colours) <= legend
    assert colours.iloc[0] == dashboard.ZERO_COLOUR and colours.iloc[-1] == dashboard.NO_DATA_COLOUR
    order = [dashboard.SEQUENTIAL_COLOURS.index(c) for c in colours.iloc[2:-1]]
    assert order == sorted(order), "larger values never get a lighter colour"
    assert len(classes) <= dashboard.MAX_CLASSES + 2
    deciles, classes = dashboard.colour_classes(pd.Series([1, 10, 5]), "imd_decile")
    assert deciles.tolist() == [
        dashboard.IMD_COLOURS[0],
        dashboard.IMD_COLOURS[9],
        dashboard.IMD_COLOURS[4],
    ]
    assert [c["label"] for c in classes] == [str(d) for d in range(1, 11)]


def test_choropleth_properties_are_escaped_and_name_their_area(shown):
    figures = dashboard.area_figures("ward", shown)
    figures.iloc[0, figures.columns.get_loc("name")] = "<b>Bold</b>"
    properties = dashboard.choropleth_properties("ward", figures, "per_10k")
    first = properties.iloc[0]
    assert first["name"].startswith("&lt;b&gt;Bold&lt;/b&gt;")
    assert first["code"] == figures.index[0] and first["level"] == "ward"
    assert set(dashboard.choropleth_tooltip("ward", "per_10k")) <= set(properties.columns)
    deanery = dashboard.choropleth_properties(
        "deanery", dashboard.area_figures("deanery", shown), "projects"
    )
    assert deanery["note"].str.contains("approximate").all()
    with pytest.raises(ValueError, match="coverage"):
        dashboard.choropleth_properties("ward", figures, "gap_score")


def test_a_click_opens_an_area_of_the_shown_layer_only():
    ward = next(iter(dashboard.area_choices("ward")))
    clicked = {"type": "Feature", "properties": {"code": ward, "level": "ward"}}
    assert dashboard.area_from_click(clicked, "ward") == ward
    assert dashboard.area_from_click(clicked, "borough") is None
    marker = {"type": "Feature", "properties": {}, "geometry": {"type": "Point"}}
    assert dashboard.area_from_click(marker, "ward") is None
    assert dashboard.area_from_click(None, "ward") is None
    unknown = {"properties": {"code": "E05999999", "level": "ward"}}
    assert dashboard.area_from_click(unknown, "ward") is None


def test_area_panel_lists_the_area_and_its_projects(projects, shown):
    xss = _by_name(projects, XSS)
    figures = dashboard.area_figures("ward", shown)
    panel = dashboard.area_panel("ward", xss["WD24CD"], shown, figures, TODAY)
    assert panel["title"].startswith(f"Ward: {xss['WD24NM']}")
    assert panel["population"] == figures.loc[xss["WD24CD"], "population"]
    assert XSS in set(panel["table"]["Name"])
    assert panel["by_type"]["Projects"].sum() == panel["projects"] == len(panel["table"])
    assert "population-weighted" in panel["imd"]
    deanery = dashboard.area_panel(
        "deanery", str(xss["deanery_id"]), shown, dashboard.area_figures("deanery", shown)
    )
    assert dashboard.DEANERY_NOTE in deanery["notes"]
    text = dashboard.area_panel_text(panel)
    assert xss["WD24NM"] in text and XSS in text
    with pytest.raises(ValueError, match="no ward"):
        dashboard.area_panel("ward", "E05999999", shown, figures)


def test_gap_figures_come_from_coverage(projects, shown):
    summary = dashboard.coverage_summary(projects, ("food_bank",), 800)
    figures = dashboard.area_figures("ward", shown, summary["areas"]["ward"])
    assert {"gap_score", "gap_per_1000", "pct_covered"} <= set(figures.columns)
    assert figures["gap_score"].notna().all()
    assert (figures["pct_covered"].between(0, 100)).all()
    assert summary["headline"] and list(summary["gaps"]) == ["ward", "deanery", "borough"]


def test_resolve_area_by_code_or_name():
    assert dashboard.resolve_area("borough", "liverpool") == LIVERPOOL
    assert dashboard.resolve_area("borough", LIVERPOOL.lower()) == LIVERPOOL
    with pytest.raises(ValueError, match="no borough"):
        dashboard.resolve_area("borough", "Atlantis")


# --- postcode search ----------------------------------------------------------------------


def test_find_postcode_normalises_and_explains_failures():
    point = dashboard.find_postcode(" l18jq ")
    assert point["postcode"] == "L1 8JQ" and point["status"] == "live"
    with pytest.raises(ValueError) as unknown:
        dashboard.find_postcode("zz1 1zz")
    assert str(unknown.value) == (
        "Postcode ZZ1 1ZZ is not a live or terminated postcode in the region"
    )
    with pytest.raises(ValueError, match="not a valid UK postcode"):
        dashboard.find_postcode("hello")
    with pytest.raises(ValueError, match="Enter a postcode"):
        dashboard.find_postcode("  ")
    postcodes = boundaries.load("postcode")
    ended = postcodes[postcodes["status"] == "terminated"].iloc[0]["postcode"]
    assert "approximate" in dashboard.find_postcode(ended)["note"]


def test_nearest_projects_are_sorted_by_grid_distance(shown):
    point = dashboard.find_postcode("L1 8JQ")
    nearest = dashboard.nearest_projects(shown, point, 800)
    assert len(nearest) == len(shown)
    assert nearest["Distance (m)"].is_monotonic_increasing
    to_grid = Transformer.from_crs(boundaries.WGS84, boundaries.BNG, always_xy=True)
    for row in nearest.itertuples(index=False):
        place = shown[shown["id"] == row.Id].geometry.iloc[0]
        x, y = to_grid.transform(place.x, place.y)
        expected = np.hypot(x - point["easting"], y - point["northing"])
        assert abs(row[2] - expected) <= 0.5
        assert row[3] == (expected <= 800)
    assert nearest.iloc[0]["Name"] == XSS and nearest.iloc[0]["Distance (m)"] < 50
    home = nearest[nearest["Name"] == "Home Welcome"].iloc[0]
    assert "ward centre" in home["Note"]
    text = dashboard.nearest_text(point, nearest, 800, 3)
    assert text.splitlines()[0].startswith(f"L1 8JQ (live): {int(nearest['Within reach'].sum())}")
    assert len(text.splitlines()) == 4


# --- the map --------------------------------------------------------------------------------


def _render(fmap) -> str:
    return fmap.get_root().render()


def test_map_uses_local_assets_only_and_hides_home_run_positions(projects):
    view = dashboard.View(postcode="L1 8JQ", clusters=True, gaps=True, layer="lsoa")
    page = _render(dashboard.build_map(projects, view, today=TODAY, tiles="none"))
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/app/static/vendor/") for s in sources), sources
    for host in ("cdn", "unpkg", "d3js", "googleapis", "bootstrap", "jquery"):
        assert host not in page.lower().replace("bootstrap-", "")
    home = _by_name(projects, "Home Welcome")
    lat, lon = round(home["lat"], 5), round(home["lon"], 5)
    secrets = (f'"lat": {lat}', f"[{lat}, {lon}]", f"[{lon}, {lat}]", "Private Road", "L20 0AD")
    for secret in secrets:
        assert secret not in page
    assert XSS not in page and "onerror" in page  # the name is there, escaped


def test_map_draws_one_marker_per_shown_project_and_the_areas_in_view(projects):
    view = dashboard.View(boroughs=(LIVERPOOL,), measure="imd_decile")
    shown = dashboard.shown_projects(projects, view)
    fmap = dashboard.build_map(projects, view, today=TODAY, tiles="none")
    page = _render(fmap)
    assert page.count('"popup": ') == len(shown)
    wards = dashboard.areas_in_view("ward", view)
    assert page.count('"level": "ward"') == len(wards)
    assert "markerClusterGroup" in page and "km-legend" in page
    west, south, east, north = dashboard.bounds_of("ward", wards)
    fitted = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", page, re.DOTALL).group(1)
    corners = [float(n) for n in re.findall(r"-?\d+\.\d+", fitted)]
    assert corners == pytest.approx([south, west, north, east])


def test_gap_measure_needs_coverage(projects):
    view = dashboard.View(measure="gap_score")
    with pytest.raises(ValueError, match="coverage"):
        dashboard.build_map(projects, view, tiles="none")
    summary = dashboard.coverage_summary(projects, (), view.distance)
    page = _render(dashboard.build_map(projects, view, coverage_areas=summary["areas"]))
    assert "Gap score" in page


# --- uploads and the command line ---------------------------------------------------------


def test_preview_does_not_store_and_save_upserts(tmp_path):
    target = tmp_path / "store.gpkg"
    data = FIXTURE.read_bytes()
    preview, report = dashboard.preview_upload("projects.csv", data)
    assert not target.exists()
    assert report.rows_read == 13 and report.rejected == 1 and len(preview) == 12
    assert "ZZ1 1ZZ" in " ".join(report.issues["reason"])
    saved = dashboard.save_upload("projects.csv", data, target)
    assert saved.new == 12 and len(store.read_projects(target)) == 12
    again = dashboard.save_upload("projects.csv", data, target)
    assert again.new == 0 and again.unchanged == 12
    assert store.read_imports(target)["file"].tolist() == ["projects.csv", "projects.csv"]


def test_store_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(dashboard.STORE_ENV, str(tmp_path / "x.gpkg"))
    assert dashboard.store_path() == tmp_path / "x.gpkg"
    monkeypatch.delenv(dashboard.STORE_ENV)
    assert dashboard.store_path() == Path(store.DEFAULT_STORE)


def test_cli_nearest_and_area(store_file, capsys):
    assert cli.main(["nearest", "l18jq", "--distance", "800", "--store", str(store_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("L1 8JQ (live):") and XSS in out and " m  " in out
    assert cli.main(["nearest", "ZZ1 1ZZ", "--store", str(store_file)]) == 2
    assert "not a live or terminated postcode" in capsys.readouterr().err
    code = cli.main(["area", "borough", "Liverpool", "--store", str(store_file)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Borough: Liverpool") and "Population (Census 2021)" in out


def test_about_lists_every_layer_with_licence_and_vintage():
    layers = dashboard.layer_sources()
    assert len(layers) == len(dashboard.ABOUT_LAYERS)
    assert layers["Licence"].str.len().gt(0).all() and layers["Vintage"].str.len().gt(0).all()
    assert layers.loc[layers["Layer"].str.contains("Deaner"), "Approximate"].item() == "yes"


def test_legend_is_plain_escaped_html():
    legend = maps.legend_html(
        "Ward: <b>Projects</b>",
        [{"label": "0", "colour": "#ececec"}, {"label": "1 to 3", "colour": "#41b6c4"}],
        [{"label": XSS, "colour": "#E69F00", "count": 1200}],
        ["Note & <i>caveat</i>"],
    )
    assert legend.startswith("<details open><summary>Ward: &lt;b&gt;Projects&lt;/b&gt;")
    assert html.escape(XSS) in legend and XSS not in legend
    assert "(1,200)" in legend and "Note &amp; &lt;i&gt;caveat&lt;/i&gt;" in legend
    assert "background:#41b6c4" in legend


def test_basemap_choice_reaches_the_map(projects):
    online = _render(dashboard.build_map(projects, dashboard.View(), tiles="osm"))
    offline = _render(dashboard.build_map(projects, dashboard.View(), tiles="none"))
    assert "tile.openstreetmap.org" in online
    assert "tile.openstreetmap.org" not in offline
    assert '"maxZoom": 18' in offline  # marker clustering needs it when no tiles give one


def test_downloads_hold_the_shown_projects_with_home_run_masked(projects):
    view = dashboard.View(boroughs=("E08000014",))  # Sefton, home of the home-run project
    shown = dashboard.shown_projects(projects, view)
    geojson = json.loads(dashboard.download_bytes(shown, "geojson", view))
    assert sorted(f["id"] for f in geojson["features"]) == sorted(shown["id"])
    home = next(f for f in geojson["features"] if f["properties"]["name"] == "Home Welcome")
    true = _by_name(projects, "Home Welcome")
    centre = privacy.ward_centres()[true["WD24CD"]]
    assert home["geometry"]["coordinates"] == pytest.approx([centre.x, centre.y], abs=1e-6)
    assert not home["properties"]["address"] and home["properties"]["postcode"] == "L20"
    table = dashboard.download_bytes(shown, "csv", view).decode("utf-8-sig")
    assert "Private Road" not in table and "L20 0AD" not in table
    assert len(table.strip().splitlines()) == len(shown) + 1
    with pytest.raises(ValueError, match="csv or geojson"):
        dashboard.download_bytes(shown, "pdf", view)


def test_table_summary_counts_stale_and_undated(shown):
    summary = dashboard.table_summary(dashboard.project_table(shown, TODAY))
    # Fixture: Halton (2024-01-10) and the hostile name (2023-06-01) are stale; Knowsley undated.
    assert summary == (
        f"{len(shown)} projects: 2 last checked over 12 months ago (stale), "
        "1 with no check date recorded."
    )
