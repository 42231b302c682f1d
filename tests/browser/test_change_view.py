"""The Change page in Chromium: two dates, a diverging map, the ranked table, an area's chart."""

import datetime as dt
import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from history_fixture import dated_copy
from playwright.sync_api import expect
from streamlit_waits import wait_idle

from kindred_map import change

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def dated_store(store_copy, tmp_path_factory):
    """The shipped store with projects opened over the last two years, some retired."""
    target = tmp_path_factory.mktemp("dated") / "dated.gpkg"
    return dated_copy(store_copy("change-view"), target, dt.date.today())


def _colours(png: bytes) -> dict:
    """How many pixels of a screenshot are blue-ish and orange-ish (the diverging palette)."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red, blue = pixels[..., 0], pixels[..., 2]
    return {
        "blue": int(((blue - red) > 60).sum()),
        "orange": int(((red - blue) > 80).sum()),
    }


def test_change_page_shows_the_map_table_and_an_area_over_time(
    serve_dashboard, dated_store, page, network, screenshot
):
    today = dt.date.today()
    year_ago = today - dt.timedelta(days=365)
    expected = change.change_between(dated_store, year_ago, today, "ward", None, 800)
    page.goto(f"{serve_dashboard(dated_store)}/change")
    page.get_by_role("heading", name="Change over time").wait_for(timeout=LOAD_TIMEOUT_MS)
    page.get_by_text("Ranked: where the gap grew most").wait_for(timeout=LOAD_TIMEOUT_MS)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    charts.nth(1).wait_for(timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(  # Vega draws after the element appears: wait for every area
        "([s, n]) => document.querySelector(s).querySelectorAll("
        "\"path[aria-roledescription='geoshape']\").length === n",
        arg=['[data-testid="stVegaLiteChart"]', len(expected)],
        timeout=LOAD_TIMEOUT_MS,
    )
    wait_idle(page, LOAD_TIMEOUT_MS)
    text = page.locator("body").inner_text()
    opened, closed = int(expected["opened"].sum()), int(expected["closed"].sum())
    assert f"{year_ago} to {today}: {opened} projects opened, {closed} closed" in text
    newly = int(expected["newly_reached"].sum())
    assert f"{newly:,} residents newly within reach" in text
    # The map: areas drawn in both halves of the diverging palette (better and worse places).
    assert opened > 0 and closed > 0
    seen = _colours(charts.first.screenshot())
    assert seen["blue"] > 500 and seen["orange"] > 50, seen
    assert charts.first.locator("path[aria-roledescription='geoshape']").count() == len(expected)
    # Two rankings: where the gap grew most and where it shrank most, each of the areas that
    # moved that way only (a ward whose gap did not move is in neither).
    page.get_by_text("Ranked: where the gap shrank most").wait_for(timeout=LOAD_TIMEOUT_MS)
    grid = page.locator('[data-testid="stDataFrame"]')
    assert grid.count() == 2 and grid.first.bounding_box()["height"] > 300
    moved = len(change.ranked(expected, "grew")) + len(change.ranked(expected, "shrank"))
    assert 0 < moved < len(expected)
    assert "history starts on" in text
    # The chosen area's chart over time is drawn and titled with its name.
    first = str(expected.iloc[0]["WD24NM"])
    assert f"{first} over time" in text
    screenshot(page, "dashboard_change")
    charts.nth(1).scroll_into_view_if_needed()
    screenshot(charts.nth(1), "dashboard_change_area")
    network.assert_stayed_local()


def test_the_change_page_link_reproduces_its_choices(
    serve_dashboard, dated_store, page, network, screenshot
):
    start = dt.date.today() - dt.timedelta(days=200)
    link = f"/change?from={start}&level=deanery&distance=1200&measure=gap_score_change&area=X9"
    page.goto(f"{serve_dashboard(dated_store)}{link}")
    page.get_by_text("Ranked: where the gap grew most").wait_for(timeout=LOAD_TIMEOUT_MS)
    wait_idle(page)
    warning = page.locator('[data-testid="stAlertContentWarning"]').first
    assert "Ignored area 'X9' in the link: not a deanery code" in warning.inner_text()
    distance = page.get_by_label("Reach (metres)", exact=True)
    # Streamlit's number box can show its minimum for a moment before the session's value
    # reaches it (once in three full-suite runs it read "100"): wait for the value, fail if it
    # never comes.
    expect(distance).to_have_value("1200", timeout=10_000)
    assert page.get_by_role("radio", name="deanery").is_checked()
    chosen = page.locator('[data-testid="stDateInput"]').filter(has_text="From").locator("input")
    assert chosen.input_value() == start.isoformat()
    expected = change.change_between(dated_store, start, dt.date.today(), "deanery", None, 1200)
    opened = int(expected["opened"].sum())
    assert (
        f"{start} to {dt.date.today()}: {opened} projects opened"
        in page.locator("body").inner_text()
    )
    distance.fill("1500")
    distance.press("Enter")
    page.wait_for_function("() => location.search.includes('distance=1500')", timeout=60_000)
    query = parse_qs(urlsplit(page.url).query)
    screenshot(page, "dashboard_change_link")
    assert query["from"] == [start.isoformat()] and query["level"] == ["deanery"]
    assert query["measure"] == ["gap_score_change"] and "to" not in query  # still "today"
    network.assert_stayed_local()
