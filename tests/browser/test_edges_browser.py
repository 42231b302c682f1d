"""The dashboard in Chromium: a project just outside the region is a hollow ring, said so in
the legend and its popup; counting only projects inside the region is one checkbox away."""

import pytest
from streamlit_waits import wait_until_still

from kindred_map import maps, store

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 90_000
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
OUTSIDE_NAME = "Boothstown Library"
"""A warm space of the sample store's ring file, in Salford, just across Wigan's boundary."""

MARKER_JS = """([selector, name]) => {
    const frame = document.querySelector(selector), win = frame && frame.contentWindow;
    const km = win && win.KM && win.KM.current;
    if (!km || !km.applied || !km.projects) return null;
    const data = km.projects, index = data.name.indexOf(name);
    const made = km.markerCache[index];
    if (index < 0 || !made || !made._map) return null;
    const o = made.options;
    return {outside: data.outside[index], fill: o.fillColor, colour: o.color, weight: o.weight,
            typeColour: data.colours[data.type[index]],
            point: win.map.latLngToContainerPoint(made.getLatLng()),
            insideFill: km.markerCache[data.outside.indexOf(0)] &&
                        km.markerCache[data.outside.indexOf(0)].options.fillColor};
}"""


@pytest.fixture(scope="module")
def outside(viewer_store):
    """The ring file's project, as the shared read-only store holds it."""
    found = store.read_projects(viewer_store).set_index("name").loc[OUTSIDE_NAME]
    assert not found["in_region"] and found["nearest_borough"] == "Wigan"
    return found


def test_an_outside_project_is_a_hollow_ring_with_its_reason(
    viewer_url, outside, page, network, screenshot
):
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{viewer_url}/?zoom=14&lat={outside.geometry.y:.5f}&lon={outside.geometry.x:.5f}")
    page.wait_for_function(
        "([js, s, n]) => eval(js)([s, n]) !== null",
        arg=[MARKER_JS, MAP_FRAME, OUTSIDE_NAME],
        timeout=LOAD_TIMEOUT_MS,
    )
    wait_until_still(page, MARKER_JS, [MAP_FRAME, OUTSIDE_NAME])  # the map has stopped moving
    marker = page.evaluate(MARKER_JS, [MAP_FRAME, OUTSIDE_NAME])
    frame = page.frame_locator(MAP_FRAME).first
    shot = screenshot(page, "dashboard_outside_project_ring")
    assert marker["outside"] == 1, shot
    assert marker["fill"] == "#ffffff" and marker["weight"] == 3, marker
    assert marker["colour"] == marker["typeColour"], marker
    assert marker["insideFill"] != "#ffffff", "projects inside the region stay filled"
    legend = frame.locator(".km-legend").inner_text()
    assert "Hollow ring: outside the region (reach only)." in legend
    box = page.locator(MAP_FRAME).first.bounding_box()
    page.mouse.click(box["x"] + marker["point"]["x"], box["y"] + marker["point"]["y"])
    popup = frame.locator(".leaflet-popup-content")
    popup.get_by_text("Outside the region").wait_for(timeout=LOAD_TIMEOUT_MS)
    text = popup.inner_text()
    screenshot(page.locator(MAP_FRAME).first, "dashboard_outside_project_popup")
    assert "Outside the region (nearest borough: Wigan)" in text
    assert OUTSIDE_NAME in text and maps.html_text(OUTSIDE_NAME) == OUTSIDE_NAME

    frame.locator(".leaflet-popup-close-button").click()
    page.get_by_text("Count only projects inside the region").click()
    page.wait_for_function(
        "() => location.search.includes('inside_only=1')", timeout=LOAD_TIMEOUT_MS
    )
    page.wait_for_function(
        """(s) => {
            const doc = document.querySelector(s).contentWindow.document;
            const legend = doc.querySelector('.km-legend');
            return legend && legend.textContent.includes('inside-only is on');
        }""",
        arg=MAP_FRAME,
        timeout=LOAD_TIMEOUT_MS,
    )
    network.assert_stayed_local()
