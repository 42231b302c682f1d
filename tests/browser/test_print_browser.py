"""The page's downloads in Chromium: "Download this map" gives a one-page PDF of the view the
page shows (its link's shading), and the area panel, reached by keyboard through the area
chooser, its "Download profile (PDF)" the area's profile."""

import re
import shutil
import subprocess
from urllib.parse import urlencode

import pytest
from streamlit_waits import wait_page_complete

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 90_000
STEP_TIMEOUT_MS = 90_000
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
DESKTOP = {"width": 1440, "height": 1000}


@pytest.fixture(scope="module")
def page_url(viewer_url) -> str:
    return viewer_url


def _loaded(page, url: str) -> None:
    page.goto(url)
    page.get_by_text(re.compile(r"^Showing \d")).wait_for(timeout=LOAD_TIMEOUT_MS)
    drawn = page.frame_locator(MAP_FRAME).first.locator(".leaflet-control-zoom-in")
    drawn.wait_for(timeout=LOAD_TIMEOUT_MS)
    wait_page_complete(page, LOAD_TIMEOUT_MS)


def _pdf_text(path) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.skip("pdftotext not installed (apt-get install poppler-utils)")
    done = subprocess.run([tool, str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


def test_download_this_map_gives_a_pdf_of_the_view(page_url, page, network, screenshot):
    page.set_viewport_size(DESKTOP)
    _loaded(page, page_url + "?" + urlencode({"layer": "borough", "measure": "per_10k"}))
    button = page.get_by_role("button", name="Download this map (PDF)")
    button.scroll_into_view_if_needed()
    screenshot(page, "print_map_buttons")
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        button.click()
    path = download.value.path()
    assert path.read_bytes()[:5] == b"%PDF-"
    assert download.value.suggested_filename == "kindred-map.pdf"
    text = _pdf_text(path)
    assert "Kindred Map: Boroughs shaded by projects per 10,000 residents" in text
    assert "Contains OS data" in text
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download this map (PNG)").click()
    assert download.value.path().read_bytes()[:4] == b"\x89PNG"
    assert page.locator('[data-testid="stException"]').count() == 0
    network.assert_stayed_local()


def test_area_panel_downloads_the_profile(page_url, page, network, screenshot, subtests):
    """The area chooser is the keyboard route to an area (its panel, the link), and the
    panel's "Download profile (PDF)" gives the area's profile: one page for both."""
    page.set_viewport_size(DESKTOP)
    _loaded(page, page_url)
    with subtests.test("the area chooser is the keyboard route to an area"):
        chooser = page.get_by_label(re.compile(r"^Ward details"))
        chooser.focus()
        page.keyboard.type("Anfield")
        page.keyboard.press("Enter")
        page.get_by_text("Ward: Anfield (Liverpool)", exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
        page.wait_for_function("() => location.search.includes('area=')", timeout=STEP_TIMEOUT_MS)
        screenshot(page, "page_keyboard_area")
        assert page.locator('[data-testid="stException"]').count() == 0
    button = page.get_by_role("button", name="Download profile (PDF)")
    screenshot(page, "print_profile_button")
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        button.click()
    path = download.value.path()
    assert path.read_bytes()[:5] == b"%PDF-"
    assert "Ward: Anfield (Liverpool)" in _pdf_text(path)
    network.assert_stayed_local()


def test_download_this_map_draws_the_postcode_search(page_url, page, network, screenshot):
    """The link's postcode search reaches the printed map: its legend says it, in the page's
    words (the page's own count is shown beside the search box)."""
    page.set_viewport_size(DESKTOP)
    _loaded(page, page_url + "?" + urlencode({"postcode": "L1 8JQ", "distance": 1000}))
    said = page.get_by_text(re.compile(r"project\(s\) within 1,000 m of L1 8JQ"))
    said.first.wait_for(timeout=STEP_TIMEOUT_MS)
    within = re.search(r"(\d[\d,]*) project\(s\) within", said.first.inner_text())[1]
    button = page.get_by_role("button", name="Download this map (PDF)")
    button.scroll_into_view_if_needed()
    screenshot(page, "print_map_postcode")
    with page.expect_download(timeout=STEP_TIMEOUT_MS) as download:
        button.click()
    text = _pdf_text(download.value.path())
    assert f"Dashed circle: {within} project(s) within 1,000 m of L1 8JQ (straight line)" in text
    assert page.locator('[data-testid="stException"]').count() == 0
    network.assert_stayed_local()
