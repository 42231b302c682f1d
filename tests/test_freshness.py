"""Freshness statuses, the needs-checking list and the volunteers' call sheet."""

from datetime import date

import pandas as pd

from kindred_map import downloads, freshness

TODAY = date(2026, 11, 30)


def _projects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "name": ["Zed club", "Able pantry", "Home kitchen", "Old hub", "Fresh cafe"],
            "organisation": ["", "Able CIC", "", "", ""],
            "type": ["warm_space"] * 5,
            "website": ["", "https://able.example", "", "", ""],
            "address": ["1 High St", "2 Low St", "3 Home Rd", "4 Old Rd", "5 New Rd"],
            "postcode": ["L1 8JQ", "L20 4RW", "L8 7SQ", "L7 3HJ", "L1 8JQ"],
            "WD24NM": ["City Centre North", "Linacre", "Canning", "Kensington", "City Centre"],
            "last_checked": ["", "2025-06-01", "", "2024-01-10", "2026-03-01"],
            "checked_by": ["", "ann", "", "bob", "cat"],
            "location_precision": ["street", "exact", "ward_only", "street", "street"],
        }
    )


def test_status_and_counts_follow_the_check_date():
    projects = _projects()
    assert freshness.status(projects, TODAY).tolist() == [
        "never",
        "stale",
        "never",
        "stale",
        "checked",
    ]
    assert freshness.counts(projects, TODAY) == {"checked": 1, "stale": 2, "never": 2}
    assert freshness.counts(projects.iloc[:0], TODAY) == {"checked": 0, "stale": 0, "never": 0}


def test_needs_checking_puts_never_checked_first_then_the_oldest_check():
    due = freshness.needs_checking(_projects(), TODAY)
    assert due["id"].tolist() == ["c", "a", "d", "b"]


def test_illustrative_records_are_not_on_the_list():
    projects = _projects().assign(synthetic=[True, False, False, False, False])
    assert freshness.needs_checking(projects, TODAY)["id"].tolist() == ["c", "d", "b"]


def test_the_call_sheet_never_carries_a_home_address():
    sheet = freshness.call_sheet(_projects(), TODAY)
    assert list(sheet.columns) == list(freshness.CALL_SHEET_COLUMNS)
    home = sheet.set_index("id").loc["c"]
    assert (home["address"], home["postcode"], home["ward"]) == ("", "L8", "Canning")
    assert sheet.set_index("id").loc["b", "website"] == "https://able.example"
    text = downloads.call_sheet_csv(_projects(), TODAY).decode("utf-8-sig")
    assert "3 Home Rd" not in text and "L8 7SQ" not in text and "2 Low St" in text


def test_stale_means_older_than_twelve_months():
    checked = pd.Series(["2024-10-31", "2024-11-01", "2025-06-01", "", None, "soon", "01/02/2024"])
    status = freshness.check_status(checked, date(2025, 11, 1)).tolist()
    assert status == ["stale", "", "", *["not recorded"] * 3, "stale"]
    assert freshness.stale_mask(checked, date(2025, 11, 1)).tolist() == [True, *[False] * 5, True]
