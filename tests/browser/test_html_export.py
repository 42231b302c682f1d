"""The exported HTML map opens from a file, with the network cut off, and draws every marker;
names are shown as text, never run."""

import html

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from kindred_map import boundaries, export, store
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
LOAD_TIMEOUT_MS = 30_000
TYPES = ("food_bank", "warm_space", "pantry", "place_of_welcome", "other", "church_project")
BOROUGHS = ("E08000012", "E08000010", "E08000014", "E08000011", "E06000006", "E08000013")


def _projects() -> gpd.GeoDataFrame:
    """Six projects at real postcodes in six boroughs; the last is home-run (ward_only)."""
    postcodes = boundaries.load("postcode")
    postcodes = postcodes[(postcodes["status"] == "live") & (postcodes["residents"] > 0)]
    wards = boundaries.load("ward").set_index("WD24CD")["WD24NM"]
    names = boundaries.load("borough").set_index("LAD25CD")["LAD25NM"]
    records = []
    for number, (kind, borough) in enumerate(zip(TYPES, BOROUGHS, strict=True)):
        pc = postcodes[postcodes["LAD25CD"] == borough].sort_values("pcd_key").iloc[0]
        home_run = kind == "church_project"
        records.append(
            {
                "id": f"p{number}",
                "name": XSS_NAME if kind == "other" else f"Project {number} Café’s",
                "type": kind,
                "postcode": pc["postcode"],
                "lat": pc["lat"],
                "lon": pc["lon"],
                "location_precision": "ward_only" if home_run else "exact",
                "synthetic": kind == "pantry",
                "source": "test",
                "WD24CD": pc["WD24CD"],
                "WD24NM": wards[pc["WD24CD"]],
                "LAD25CD": borough,
                "LAD25NM": names[borough],
                "in_region": True,
                "geometry": Point(pc["lon"], pc["lat"]),
            }
        )
    frame = gpd.GeoDataFrame(records, crs=boundaries.WGS84)
    for column in (*RECORD_FIELDS, *JOINED_FIELDS):
        if column not in frame:
            frame[column] = np.nan if column in ("easting", "northing") else ""
    frame["imd_decile"] = pd.NA
    frame["deanery_id"] = pd.NA
    return store.conform(frame)


@pytest.fixture
def offline_page(browser):
    """A page with the network off; every request it makes is recorded."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    requests: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.requests, page.dialogs = requests, dialogs
    yield page
    context.close()


def _wait_for_markers(page, expected: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('path.leaflet-interactive').length >= n",
        arg=expected,
        timeout=LOAD_TIMEOUT_MS,
    )


def test_html_map_draws_markers_offline_from_a_file(offline_page, tmp_path, screenshot):
    projects = _projects()
    path = tmp_path / "kindred map export.html"
    path.write_bytes(export.html_map(projects, include_synthetic=True))
    page = offline_page
    page.goto(path.as_uri())
    _wait_for_markers(page, len(projects))
    shot = screenshot(page, "html_export_map")

    markers = page.locator("path.leaflet-interactive")
    assert markers.count() == len(projects), f"screenshot: {shot}"
    assert page.evaluate("window.kindredMarkers.getLayers().length") == len(projects)
    outside = [url for url in page.requests if not url.startswith(("file:", "data:"))]
    assert not outside, f"the page asked the network for {outside}"
    assert page.requests[0] == path.as_uri()

    bounds = page.evaluate(
        "(() => { const b = window.kindredMap.getBounds(); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"
    )
    west, south, east, north = bounds
    lon, lat = projects.geometry.x, projects.geometry.y
    assert west < lon.min() and east > lon.max() and south < lat.min() and north > lat.max()

    hidden = page.evaluate(
        """() => {
            const box = el => el.getBoundingClientRect();
            const overlap = (a, b) => a.left < b.right && b.left < a.right &&
                a.top < b.bottom && b.top < a.bottom;
            const covers = [".km-panel", ".leaflet-control-attribution", ".leaflet-control-zoom"]
                .map(selector => box(document.querySelector(selector)));
            return [...document.querySelectorAll("path.leaflet-interactive")].filter(path => {
                const b = box(path);
                const inView = b.left >= 0 && b.top >= 0 &&
                    b.right <= innerWidth && b.bottom <= innerHeight;
                return !inView || covers.some(cover => overlap(b, cover));
            }).length;
        }"""
    )
    assert hidden == 0, f"{hidden} marker(s) off screen or under a panel; screenshot: {shot}"

    attribution = page.locator(".leaflet-control-attribution").inner_text()
    for line in export.attribution(projects):
        assert line in attribution
    assert page.locator(".leaflet-control-attribution a").count() == 0
    legend = page.locator(".km-panel").inner_text()
    assert "1 home-run project(s)" in legend and "1 illustrative record(s) (faded)" in legend
    assert "ILLUSTRATIVE" in legend and "NOT REAL PROJECTS" in legend


def test_html_map_popup_shows_names_as_text(offline_page, tmp_path, screenshot):
    projects = _projects()
    path = tmp_path / "map.html"
    path.write_bytes(export.html_map(projects, include_synthetic=True))
    page = offline_page
    page.goto(path.as_uri())
    _wait_for_markers(page, len(projects))
    page.evaluate(
        """needle => window.kindredMarkers.eachLayer(layer => {
            if (layer.getPopup().getContent().includes(needle)) { layer.openPopup(); }
        })""",
        html.escape(XSS_NAME),
    )
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=LOAD_TIMEOUT_MS)
    screenshot(page, "html_export_popup")
    assert XSS_NAME in popup.inner_text()
    assert popup.locator("img").count() == 0
    assert page.dialogs == []


def test_html_map_works_without_a_file_origin(offline_page):
    """As a webmail preview would load it: the markup alone, no folder beside it."""
    projects = _projects()
    page = offline_page
    page.set_content(export.html_map(projects, include_synthetic=True).decode("utf-8"))
    _wait_for_markers(page, len(projects))
    assert page.locator("path.leaflet-interactive").count() == len(projects)
    assert not [url for url in page.requests if not url.startswith(("file:", "data:", "about:"))]


TEMPLATE_NAMES = (
    "{{7*7}}",
    "{#3}",
    "{% if 1 %}yes{% endif %}",
    "${7*7}",
    "<%= 7*7 %>",
    "</script><script>document.title='pwned'</script>",
    "{0} {title} {{data}}",
    "\u2028 & &amp; &lt;b&gt;",
)
"""Names a template engine, str.format or an HTML parser might act on: each must show as typed."""


def test_html_map_shows_template_like_names_exactly_as_typed(offline_page, tmp_path):
    projects = _projects()
    projects = projects[projects["location_precision"] == "exact"].iloc[[0]]
    projects = store.conform(
        gpd.GeoDataFrame(
            pd.concat([projects] * len(TEMPLATE_NAMES), ignore_index=True),
            crs=boundaries.WGS84,
        )
    )
    projects["name"] = list(TEMPLATE_NAMES)
    projects["id"] = [f"t{number}" for number in range(len(TEMPLATE_NAMES))]
    path = tmp_path / "template.html"
    path.write_bytes(export.html_map(projects))
    page = offline_page
    page.goto(path.as_uri())
    _wait_for_markers(page, len(TEMPLATE_NAMES))
    shown = page.evaluate(
        """() => window.kindredMarkers.getLayers().map(layer => {
            const box = document.createElement("div");
            box.innerHTML = layer.getPopup().getContent();
            return box.querySelector("strong").textContent;
        })"""
    )
    assert sorted(shown) == sorted(TEMPLATE_NAMES)
    assert page.title() == "Kindred Map: community projects"
    assert page.dialogs == []
