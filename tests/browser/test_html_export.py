"""The exported HTML map opens from a file, with the network cut off, and draws every marker;
names are shown as text, never run."""

import html
import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from axe_playwright_python.sync_playwright import Axe
from shapely.geometry import Point

from kindred_map import boundaries, export, store
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS

pytestmark = pytest.mark.browser

XSS_NAME = "<img src=x onerror=alert(1)>"
LOAD_TIMEOUT_MS = 30_000
MARKERS = ".leaflet-km-projects-pane path.leaflet-interactive"
"""The projects' circles (the areas below them are interactive paths too)."""
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
        "([selector, n]) => document.querySelectorAll(selector).length >= n",
        arg=[MARKERS, expected],
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

    markers = page.locator(MARKERS)
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
        """MARKERS => {
            const box = el => el.getBoundingClientRect();
            const overlap = (a, b) => a.left < b.right && b.left < a.right &&
                a.top < b.bottom && b.top < a.bottom;
            const covers = [".km-panel", ".leaflet-control-attribution", ".leaflet-control-zoom"]
                .map(selector => box(document.querySelector(selector)));
            return [...document.querySelectorAll(MARKERS)].filter(path => {
                const b = box(path);
                const inView = b.left >= 0 && b.top >= 0 &&
                    b.right <= innerWidth && b.bottom <= innerHeight;
                return !inView || covers.some(cover => overlap(b, cover));
            }).length;
        }""",
        MARKERS,
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
    assert page.locator(MARKERS).count() == len(projects)
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


# --- the council pack's map.html: shaded areas, names, legend, sources, offline -------------

PACK_SIZES = {"desktop": (1440, 1000), "phone": (390, 844)}
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def pack_map_file(tmp_path_factory):
    """The map.html of a pack with coverage figures (800 m), and the pack's data."""
    projects = _projects()
    figures = export.coverage_figures(projects, None, 800, include_synthetic=True)
    payload = export.export_bytes(projects, "pack", coverage=figures, include_synthetic=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        page = archive.read("map.html")
    path = tmp_path_factory.mktemp("pack") / "map.html"
    path.write_bytes(page)
    data = json.loads(page.decode("utf-8").split("var KINDRED = ", 1)[1].split(";\n", 1)[0])
    return path, data


def _open_pack_map(browser, path, size):
    width, height = PACK_SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, offline=True)
    requests: list[str] = []
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()
        ),
    )
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => window.kindredAreas && window.kindredAreas().getLayers().length > 0",
        timeout=LOAD_TIMEOUT_MS,
    )
    return context, page, requests, dialogs


LABEL_BOXES = """() => {
    const box = el => { const b = el.getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom]; };
    return {
        labels: [...document.querySelectorAll(".km-label span")]
            .filter(el => getComputedStyle(el).visibility === "visible").map(el => box(el)),
        controls: [...document.querySelectorAll(".leaflet-control")].map(el => box(el)),
        names: [...document.querySelectorAll(".km-label span")]
            .filter(el => getComputedStyle(el).visibility === "visible")
            .map(el => el.textContent),
    };
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check_labels(page, shot, least: int) -> list[str]:
    """Visible area names: at least ``least``, none touching another or a control."""
    found = page.evaluate(LABEL_BOXES)
    labels, controls = found["labels"], found["controls"]
    assert len(labels) >= least, f"{len(labels)} names shown; screenshot: {shot}"
    for index, box in enumerate(labels):
        assert not any(_overlap(box, other) for other in labels[index + 1 :]), shot
        assert not any(_overlap(box, control) for control in controls), shot
    return found["names"]


@pytest.mark.parametrize("size", PACK_SIZES)
def test_pack_map_shades_names_and_explains_the_areas_offline(
    browser, pack_map_file, screenshot, size
):
    path, data = pack_map_file
    context, page, requests, dialogs = _open_pack_map(browser, path, size)
    try:
        wards = data["levels"][0]
        gap = wards["measures"][data["start"]["measure"]]
        assert (wards["key"], gap["key"]) == ("ward", "gap_score")
        shot = screenshot(page, f"pack_map_{size}")
        assert not [url for url in requests if not url.startswith(("file:", "data:"))]
        assert page.evaluate("window.kindredAreas().getLayers().length") == len(
            wards["areas"]["features"]
        )
        fills = page.evaluate(
            "() => window.kindredAreas().getLayers().map(layer => layer.options.fillColor)"
        )
        assert fills == [gap["fill"][f["properties"]["i"]] for f in wards["areas"]["features"]]
        assert len(set(fills)) >= 3, f"too few classes shown; screenshot: {shot}"
        violations = Axe().run(page, options={"resultTypes": ["violations"]}).response
        serious = [v["id"] for v in violations["violations"] if v["impact"] in SERIOUS]
        assert serious == [], f"axe-core (WCAG 2.2 AA): {serious}; screenshot: {shot}"
        names = _check_labels(page, shot, 8 if size == "desktop" else 4)
        assert set(names) <= set(wards["names"])
        if size == "phone":  # the legend starts folded on a phone: open it as a user would
            page.locator(".km-panel summary").first.click()
            shot = screenshot(page, f"pack_map_{size}_legend")
        legend = page.locator(".km-panel").inner_text()
        for entry in gap["classes"]:
            assert entry["label"] in legend, f"{entry['label']}; screenshot: {shot}"
        assert gap["direction"] in legend and gap["help"] in legend
        assert "Deanery boundaries are approximate" not in legend
        page.locator(".km-sources summary").click()
        sources = page.locator(".km-sources").inner_text()
        for line in data["attributionLines"] + data["licences"]:
            assert line in sources
        # Deaneries by projects per 10,000, chosen from the lists by keyboard.
        page.locator("#km-level").focus()
        page.keyboard.press("ArrowDown")  # Wards -> Deaneries
        page.locator("#km-measure").focus()
        page.keyboard.press("Home")
        page.keyboard.press("ArrowDown")  # Projects -> Projects per 10,000 residents
        deaneries = data["levels"][1]
        per_10k = deaneries["measures"][1]
        assert (deaneries["key"], per_10k["key"]) == ("deanery", "per_10k")
        page.wait_for_function(
            "n => window.kindredAreas().getLayers().length === n",
            arg=len(deaneries["areas"]["features"]),
            timeout=LOAD_TIMEOUT_MS,
        )
        page.locator(".km-sources summary").click()  # fold the sources again
        if size == "phone":  # and the legend, to see the map
            page.locator(".km-panel summary").first.click()
        shot = screenshot(page, f"pack_map_{size}_deaneries")
        legend = page.locator(".km-panel").text_content()
        assert "Deanery boundaries are approximate" in legend
        for entry in per_10k["classes"]:
            assert entry["label"] in legend, f"{entry['label']}; screenshot: {shot}"
        fills = page.evaluate(
            "() => window.kindredAreas().getLayers().map(layer => layer.options.fillColor)"
        )
        assert set(fills) <= {entry["colour"] for entry in per_10k["classes"]}
        _check_labels(page, shot, 2)
        page.evaluate("window.kindredMap.zoomIn(1, {animate: false})")
        _check_labels(page, screenshot(page, f"pack_map_{size}_zoomed"), 2)
        assert dialogs == [] and page.locator("body img").count() == 0
    finally:
        context.close()
