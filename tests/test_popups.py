"""Markers, popups and tooltips: one per shown project, every value escaped, caveats said."""

import html
import re
from datetime import date

from kindred_map import (
    popups,
    privacy,
)
from kindred_map.schema import project_types

XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)


def test_markers_match_the_shown_projects_and_escape_text(shown):
    records = popups.marker_records(shown, TODAY)
    assert len(records) == len(shown)
    colours = {spec["colour"] for spec in project_types().values()}
    assert {record["colour"] for record in records} <= colours
    xss = [record for record in records if "onerror" in record["popup"]]
    assert len(xss) == 1
    assert html.escape(XSS) in xss[0]["popup"] and XSS not in xss[0]["popup"]
    assert xss[0]["tooltip"] == html.escape(XSS)
    for record in records:
        assert "<img" not in record["popup"] and "<script" not in record["popup"]


def test_popups_say_illustrative_approximate_home_run_and_stale(shown):
    records = {re.sub("<[^>]+>", "", r["tooltip"]): r for r in popups.marker_records(shown, TODAY)}
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
    safe = popups.popup_html({"name": "A", "type": "other", "website": "https://a.org/x?y=1"})
    assert '<a href="https://a.org/x?y=1"' in safe
    unsafe = popups.popup_html({"name": "B", "type": "other", "website": "javascript:alert(1)"})
    assert "<a " not in unsafe and "javascript:alert(1)" in unsafe
