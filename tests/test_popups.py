"""Markers, popups and tooltips: one per shown project, every value escaped, caveats said."""

import html
from datetime import date

from kindred_map import (
    popups,
    privacy,
)
from kindred_map.schema import project_types

XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)


def _markers(shown):
    located = shown[shown.geometry.notna() & ~shown.geometry.is_empty]
    markers, popups_ = popups.marker_data(located, TODAY)
    names = [html.unescape(name) for name in markers["name"]]
    return markers, dict(zip(names, popups_, strict=True)), located


def test_markers_match_the_shown_projects_and_escape_text(shown):
    markers, by_name, located = _markers(shown)
    assert len(markers["lat"]) == len(markers["type"]) == len(by_name) == len(located)
    assert markers["lat"] == located.geometry.y.round(5).tolist()
    assert set(markers["colours"]) <= {spec["colour"] for spec in project_types().values()}
    assert [markers["colours"][k] for k in markers["type"]] == [
        project_types()[kind]["colour"] for kind in located["type"]
    ]
    assert html.escape(XSS) in markers["name"] and XSS not in markers["name"]
    popup = by_name[XSS]
    assert html.escape(XSS) in popup and XSS not in popup
    for text in by_name.values():
        assert "<img" not in text and "<script" not in text


def test_popups_say_illustrative_approximate_home_run_and_stale(shown):
    markers, records, located = _markers(shown)
    assert "Illustrative example, not a real project" in records["Example Pantry"]
    assert "Approximate location" in records["Example Pantry"]
    home = records["Home Welcome"]
    homes = [html.unescape(n) for n, h in zip(markers["name"], markers["home"], strict=True) if h]
    assert homes == ["Home Welcome"] and privacy.SHOWN_AT_WARD_CENTRE in home
    assert "Private Road" not in home
    assert "over 12 months ago" in records["Halton Warm Space"]
    assert "over 12 months ago" not in records["Wigan Warm Space"]
    assert "Last checked: not recorded" in records["Knowsley Lunch Club"]
    assert "Illustrative" not in records["Wigan Warm Space"]


def test_only_http_websites_become_links():
    safe = popups.popup_html({"name": "A", "type": "other", "website": "https://a.org/x?y=1"})
    assert '<a href="https://a.org/x?y=1"' in safe
    unsafe = popups.popup_html({"name": "B", "type": "other", "website": "javascript:alert(1)"})
    assert "<a " not in unsafe and "javascript:alert(1)" in unsafe


def test_popups_card_and_table_show_described_hours_and_sector(shown):
    """Structured hours read as words everywhere; without them "hours unknown" and the listed
    text; hostile text in a schedule's note, the listed hours or the sector stays text."""
    from kindred_map import hours, tables
    from kindred_map.text import md_escape

    timed = hours.dumps([hours.schedule("MO,TU,WE", "10:00", "14:00", note=XSS)])
    named = shown["name"].isin(["Wigan Warm Space", "Knowsley Lunch Club"])
    with_hours = shown[named].assign(
        schedules=lambda f: [timed if n == "Wigan Warm Space" else "" for n in f["name"]],
        sector=lambda f: [XSS if n == "Wigan Warm Space" else "" for n in f["name"]],
    )
    with_hours["opening_hours"] = [
        "" if n == "Wigan Warm Space" else f"Wednesday 12 - 2 {XSS}" for n in with_hours["name"]
    ]
    timed_text = hours.describe(timed)
    unknown_text = hours.describe("", f"Wednesday 12 - 2 {XSS}")
    assert timed_text.startswith("Mon–Wed 10:00–14:00") and unknown_text.startswith(hours.UNKNOWN)
    _, by_name, _ = _markers(with_hours)
    assert f"Opening hours: {html.escape(timed_text)}" in by_name["Wigan Warm Space"]
    assert f"Sector: {html.escape(XSS)}" in by_name["Wigan Warm Space"]
    assert f"Opening hours: {html.escape(unknown_text)}" in by_name["Knowsley Lunch Club"]
    assert "Sector" not in by_name["Knowsley Lunch Club"]
    assert all(XSS not in text for text in by_name.values())
    table = tables.project_table(with_hours, TODAY).set_index("Name")
    assert table.loc["Wigan Warm Space", "Opening hours"] == timed_text
    assert table.loc["Knowsley Lunch Club", "Opening hours"] == unknown_text
    assert table.loc["Wigan Warm Space", "Sector"] == XSS
    for name, expected in (("Wigan Warm Space", timed_text), ("Knowsley Lunch Club", unknown_text)):
        row = with_hours[with_hours["name"] == name].iloc[0]
        card = tables.project_card(with_hours, row["id"], TODAY)["facts"]
        facts = dict(zip(card["Field"], card["Value"], strict=True))
        assert facts["Opening hours"] == md_escape(expected)
    no_hours = tables.project_table(shown.assign(schedules="", opening_hours=""), TODAY)
    assert set(no_hours["Opening hours"]) == {hours.UNKNOWN}


def test_a_project_outside_the_region_is_a_hollow_ring_and_says_so():
    import geopandas as gpd
    from shapely.geometry import Point

    located = gpd.GeoDataFrame(
        {
            "name": ["Across the boundary", "Inside"],
            "type": ["warm_space", "warm_space"],
            "location_precision": ["exact", "exact"],
            "last_checked": ["", ""],
            "in_region": [False, True],
            "nearest_borough": ["Wigan", ""],
        },
        geometry=[Point(-2.55, 53.58), Point(-2.63, 53.55)],
        crs="EPSG:4326",
    )
    markers, texts = popups.marker_data(located, TODAY)
    assert markers["outside"] == [1, 0]
    assert "Outside the region (nearest borough: Wigan)" in texts[0]
    assert "in no area's figures" in texts[0]
    assert "Outside the region" not in texts[1]
