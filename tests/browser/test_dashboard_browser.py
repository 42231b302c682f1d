"""The dashboard in Chromium: offline page, markers that match the data, a borough filter, a
postcode search, a ward click opening its panel, an upload's report, the About page."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from kindred_map import boundaries, dashboard, store
from kindred_map.paths import PROJECT_ROOT

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 90_000
STEP_TIMEOUT_MS = 60_000
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
LIVERPOOL = "E08000012"
XSS = "<img src=x onerror=alert(1)>"
UPLOAD = PROJECT_ROOT / "tests" / "fixtures" / "dashboard_projects.csv"

MAP_STATE_JS = """(selector) => {
    const frame = document.querySelector(selector);
    const win = frame && frame.contentWindow;
    if (!win || !win.map || !win.L || !win.document.querySelector('.km-legend')) return null;
    const doc = win.document;
    const badges = Array.from(doc.querySelectorAll('.km-cluster span'));
    const clustered = badges.reduce((sum, badge) => sum + parseInt(badge.textContent, 10), 0);
    const single = doc.querySelectorAll('path.km-project').length;
    let group = null;
    win.map.eachLayer((layer) => { if (layer instanceof win.L.MarkerClusterGroup) group = layer; });
    return {
        drawn: clustered + single,
        layers: group ? group.getLayers().length : null,
        areas: doc.querySelectorAll('path.leaflet-interactive:not(.km-project)').length,
        centre: win.map.getCenter(),
        zoom: win.map.getZoom(),
    };
}"""


def _expected(store_file, view: dashboard.View):
    projects = store.read_projects(store_file)
    shown = dashboard.shown_projects(projects, view)
    located = int((shown.geometry.notna() & ~shown.geometry.is_empty).sum())
    return projects, shown, located


def _map_state(page) -> dict | None:
    return page.evaluate(MAP_STATE_JS, MAP_FRAME)


def _wait_for_markers(page, count: int) -> dict:
    """Wait until the map shows exactly ``count`` projects (clusters' counts + single markers)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            """([js, selector, count]) => {
                const state = eval(js)(selector);
                return state && state.drawn === count && state.layers === count;
            }""",
            arg=[MAP_STATE_JS, MAP_FRAME, count],
            timeout=LOAD_TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        pytest.fail(f"the map never showed {count} projects; last state {_map_state(page)}")
    return _map_state(page)


def _count_text(page) -> str:
    return page.get_by_text(re.compile(r"^Showing \d")).inner_text()


def _wait_for_count(page, text: str) -> None:
    page.get_by_text(text, exact=True).wait_for(timeout=STEP_TIMEOUT_MS)


def _open(page, url: str, located: int) -> dict:
    page.goto(url)
    return _wait_for_markers(page, located)


@pytest.fixture(scope="module")
def shipped_store(store_copy):
    return store_copy("dashboard-browser")


@pytest.fixture(scope="module")
def dashboard_url(serve_dashboard, shipped_store) -> str:
    return serve_dashboard(shipped_store)


def test_page_loads_offline_with_markers_matching_the_data(
    dashboard_url, shipped_store, page, network, screenshot
):
    projects, shown, located = _expected(shipped_store, dashboard.View())
    state = _open(page, dashboard_url, located)
    page.wait_for_load_state("networkidle")
    path = screenshot(page, "dashboard_initial")

    assert state["drawn"] == state["layers"] == located, path
    assert state["areas"] >= len(dashboard.area_choices("ward")), path
    assert _count_text(page) == dashboard.counts_text(shown, len(projects))
    west, south, east, north = boundaries.load("borough").total_bounds
    assert south < state["centre"]["lat"] < north and west < state["centre"]["lng"] < east
    frame = page.frame_locator(MAP_FRAME).first
    attribution = frame.locator(".leaflet-control-attribution").inner_text()
    assert "Office for National Statistics" in attribution
    legend = frame.locator(".km-legend").inner_text()
    assert "Ward: Projects" in legend and "Projects" in legend
    assert frame.locator("img.leaflet-tile").count() == 0
    assert any("/app/static/vendor/leaflet.markercluster" in url for url in network.requests)
    assert page.locator('[data-testid="stException"]').count() == 0
    network.assert_stayed_local()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the multiselect or selectbox labelled ``label``."""
    widget = page.get_by_label(label, exact=True)
    widget.click()
    widget.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def test_borough_filter_changes_the_count_and_the_markers(
    dashboard_url, shipped_store, page, network, screenshot
):
    projects, _, located = _expected(shipped_store, dashboard.View())
    _open(page, dashboard_url, located)
    view = dashboard.View(boroughs=(LIVERPOOL,))
    _, shown, in_liverpool = _expected(shipped_store, view)
    assert 0 < in_liverpool < located

    _choose(page, "Borough", "Liverpool")
    _wait_for_count(page, dashboard.counts_text(shown, len(projects)))
    state = _wait_for_markers(page, in_liverpool)
    path = screenshot(page, "dashboard_borough_filter")

    assert state["areas"] >= len(dashboard.areas_in_view("ward", view)), path
    assert parse_qs(urlsplit(page.url).query)["boroughs"] == [LIVERPOOL]
    network.assert_stayed_local()


def test_link_reproduces_the_view(dashboard_url, shipped_store, page, network):
    view = dashboard.View(boroughs=(LIVERPOOL,), types=("warm_space",), layer="lsoa")
    projects, shown, located = _expected(shipped_store, view)
    query = "&".join(f"{k}={v}" for k, v in dashboard.view_to_query(view).items())
    _open(page, f"{dashboard_url}/?{query}", located)
    assert _count_text(page) == dashboard.counts_text(shown, len(projects))
    legend = page.frame_locator(MAP_FRAME).first.locator(".km-legend").inner_text()
    assert legend.startswith("LSOA: Projects")
    network.assert_stayed_local()


def _wait_for_search_map(page) -> None:
    """Wait for the map rebuilt around a searched postcode (zoomed in to its circle)."""
    page.wait_for_function(
        """([js, selector]) => { const s = eval(js)(selector); return s && s.zoom >= 13; }""",
        arg=[MAP_STATE_JS, MAP_FRAME],
        timeout=STEP_TIMEOUT_MS,
    )


def test_postcode_search_lists_the_nearest_projects(
    dashboard_url, shipped_store, page, network, screenshot
):
    projects, shown, located = _expected(shipped_store, dashboard.View())
    _open(page, dashboard_url, located)
    search = page.get_by_label("Find projects near a postcode", exact=True)
    search.fill("l1 8jq")
    search.press("Enter")
    point = dashboard.find_postcode("L1 8JQ")
    nearest = dashboard.nearest_projects(shown, point, dashboard.View().distance)
    within = int(nearest["Within reach"].sum())
    page.get_by_text(f"{within} project(s) within 800 m of L1 8JQ").wait_for(
        timeout=STEP_TIMEOUT_MS
    )
    table = page.locator('[data-testid="stTable"] table').first
    table.wait_for(timeout=STEP_TIMEOUT_MS)
    _wait_for_search_map(page)
    path = screenshot(page, "dashboard_postcode_search")

    rows = table.locator("tbody tr")
    expected = nearest.head(dashboard.NEAREST_LIMIT)
    assert rows.count() == len(expected), path
    for index, row in enumerate(expected.itertuples(index=False)):
        cells = rows.nth(index).locator("td, th").all_inner_texts()
        assert cells[0] == row.Name
        assert int(cells[2].replace(",", "")) == row[2]
    state = _map_state(page)
    metres = np.hypot(
        (state["centre"]["lng"] - point["lon"]) * 66_000,
        (state["centre"]["lat"] - point["lat"]) * 111_000,
    )
    assert metres < 500, state
    network.assert_stayed_local()


def test_unknown_postcode_gets_a_clear_message(dashboard_url, shipped_store, page, network):
    _, _, located = _expected(shipped_store, dashboard.View())
    _open(page, dashboard_url, located)
    search = page.get_by_label("Find projects near a postcode", exact=True)
    search.fill("ZZ1 1ZZ")
    search.press("Enter")
    message = "Postcode ZZ1 1ZZ is not a live or terminated postcode in the region"
    page.get_by_text(message).wait_for(timeout=STEP_TIMEOUT_MS)
    network.assert_stayed_local()


CLEAR_POINT_JS = """([selector, candidates]) => {
    const win = document.querySelector(selector).contentWindow;
    const doc = win.document;
    for (const [code, lat, lng] of candidates) {
        const point = win.map.latLngToContainerPoint([lat, lng]);
        const box = doc.querySelector('.leaflet-container').getBoundingClientRect();
        if (point.x < 0 || point.y < 0 || point.x > box.width || point.y > box.height) continue;
        const target = doc.elementFromPoint(point.x + box.left, point.y + box.top);
        if (target && target.tagName === 'path' && !target.classList.contains('km-project')) {
            return {code: code, x: point.x, y: point.y};
        }
    }
    return null;
}"""


def test_clicking_a_ward_opens_its_panel(dashboard_url, shipped_store, page, network, screenshot):
    projects, shown, located = _expected(shipped_store, dashboard.View())
    _open(page, dashboard_url, located)
    wards = boundaries.load("ward").to_crs(boundaries.BNG)
    inside = wards.representative_point()
    marked = shown.to_crs(boundaries.BNG).geometry
    clearance = [float(marked.distance(point).min()) for point in inside]
    order = np.argsort(clearance)[::-1]
    points = inside.to_crs(boundaries.WGS84)
    candidates = [[wards["WD24CD"].iat[i], points.iat[i].y, points.iat[i].x] for i in order]
    target = page.evaluate(CLEAR_POINT_JS, [MAP_FRAME, candidates])
    assert target, "no ward centre is clear of markers and controls"

    probe = "(s) => { document.querySelector(s).contentWindow.kindredProbe = 1; }"
    page.evaluate(probe, MAP_FRAME)
    frame = page.frame_locator(MAP_FRAME).first
    frame.locator(".leaflet-container").click(position={"x": target["x"], "y": target["y"]})
    title = f"Ward: {dashboard.area_choices('ward')[target['code']]}"
    heading = page.get_by_role("heading", name=title)
    heading.wait_for(timeout=STEP_TIMEOUT_MS)
    figures = dashboard.area_figures("ward", shown)
    population = f"{figures.loc[target['code'], 'population']:,}"
    page.get_by_text(population, exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
    path = screenshot(page, "dashboard_ward_panel")
    assert parse_qs(urlsplit(page.url).query)["area"] == [target["code"]], path
    kept = page.evaluate("(s) => document.querySelector(s).contentWindow.kindredProbe", MAP_FRAME)
    assert kept == 1, "clicking an area must not rebuild or redraw the map"
    network.assert_stayed_local()


OPEN_POPUP_JS = """([selector, tooltip]) => {
    // Polled until a popup shows, then gives its text and how many images it holds: the map
    // may be redrawn by a rerun between polls, and a marker inside a cluster must be zoomed
    // or spiderfied into view before its popup opens.
    const frame = document.querySelector(selector);
    const win = frame && frame.contentWindow;
    if (!win || !win.map || !win.L) return false;
    const popup = win.document.querySelector('.leaflet-popup-content');
    if (popup) return {text: popup.innerText, images: popup.querySelectorAll('img').length};
    let group = null;
    win.map.eachLayer((layer) => { if (layer instanceof win.L.MarkerClusterGroup) group = layer; });
    if (!group) return false;
    const marker = group.getLayers().find(
        (m) => m.getTooltip() && m.getTooltip().getContent() === tooltip);
    if (!marker) return false;
    // Circle markers have no icon, so markercluster's zoomToShowLayer never calls back: bring
    // the marker into view at the highest zoom, spiderfy a cluster that still holds it, and
    // open the popup once the marker itself is on the map.
    const top = win.map.getMaxZoom();
    if (!win.map.getBounds().contains(marker.getLatLng()) || win.map.getZoom() < top) {
        win.map.setView(marker.getLatLng(), top, {animate: false});
    }
    if (marker._map) {
        marker.openPopup();
        return false;
    }
    // markercluster's getVisibleParent looks for an icon, which circle markers lack: walk up.
    let parent = marker.__parent;
    while (parent && !parent._icon) parent = parent.__parent;
    if (parent && parent.spiderfy) parent.spiderfy();
    return false;
}"""


def test_upload_shows_its_report_before_saving(
    serve_dashboard, store_copy, page, network, screenshot, sign_in
):
    target = store_copy("dashboard-upload")
    url = serve_dashboard(target)
    projects, _, located = _expected(target, dashboard.View())
    before = target.stat().st_mtime_ns, target.stat().st_size
    _open(page, url, located)
    assert page.locator('[data-testid="stFileUploaderDropzoneInput"]').count() == 0  # viewers
    sign_in(page)

    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(UPLOAD))
    page.get_by_text("Import report for dashboard_projects.csv").wait_for(timeout=STEP_TIMEOUT_MS)
    report = page.locator('[data-testid="stCode"]').first.inner_text()
    assert "Rows read: 13 = imported 12 + rejected 1" in report
    assert "ZZ1 1ZZ" in report
    save = page.get_by_role("button", name="Save 12 projects to the store")
    save.scroll_into_view_if_needed()
    path = screenshot(page, "dashboard_upload_report")
    assert (target.stat().st_mtime_ns, target.stat().st_size) == before, "saved unasked"

    save.click()
    page.get_by_text(re.compile(r"^Saved: 12 new")).wait_for(timeout=STEP_TIMEOUT_MS)
    after, shown, located_after = _expected(target, dashboard.View())
    assert len(after) == len(projects) + 12, path
    _wait_for_count(page, dashboard.counts_text(shown, len(after)))
    _wait_for_markers(page, located_after)

    # The fixture's hostile name arrives as text, never as markup.
    search = page.get_by_label("Find projects near a postcode", exact=True)
    search.fill("L1 8JQ")
    search.press("Enter")
    page.get_by_role("cell", name=XSS, exact=True).first.wait_for(timeout=STEP_TIMEOUT_MS)
    _wait_for_search_map(page)
    frame = page.frame_locator(MAP_FRAME).first
    # Read the popup in the same poll that finds it open: a rerun may redraw the map after.
    shown_popup = page.wait_for_function(
        OPEN_POPUP_JS, arg=[MAP_FRAME, html.escape(XSS)], timeout=STEP_TIMEOUT_MS
    ).json_value()
    screenshot(page.locator(MAP_FRAME).first, "dashboard_escaped_popup")
    assert shown_popup["text"].startswith(XSS), shown_popup
    assert shown_popup["images"] == 0
    assert page.locator('img[src="x"]').count() == 0
    assert frame.locator('img[src="x"]').count() == 0
    network.assert_stayed_local()


def test_about_page_credits_every_source(dashboard_url, page, network, screenshot):
    page.goto(f"{dashboard_url}/about")
    page.get_by_role("heading", name="About Kindred Map").wait_for(timeout=LOAD_TIMEOUT_MS)
    page.get_by_role("heading", name="Attribution").wait_for()
    page.locator('[data-testid="stTable"]').nth(1).wait_for()
    screenshot(page, "dashboard_about")
    text = page.locator("body").inner_text()
    for line in boundaries.attribution_lines(dashboard.ABOUT_LAYERS):
        assert line in text
    assert "OpenStreetMap contributors" in text
    network.assert_stayed_local()
