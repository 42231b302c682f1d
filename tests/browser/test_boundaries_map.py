"""The dashboard's boundaries map draws the region's polygons in Chromium, with nothing fetched
from outside this machine."""

import re
from urllib.parse import urlsplit

import pytest

from kindred_map import boundaries, maps

pytestmark = pytest.mark.browser

MAP_LOAD_TIMEOUT_MS = 90_000
OSM_TILE_HOST = "tile.openstreetmap.org"


def _visible_feature_count() -> int:
    """Features of the layers shown when the map opens (Leaflet draws one path each)."""
    count = 0
    for name, spec in maps.BOUNDARY_LAYERS.items():
        if spec["show"]:
            geometry = boundaries.load(name).geometry
            count += int((geometry.notna() & ~geometry.is_empty).sum())
    return count


def _open_map(page, url: str, expected_paths: int) -> None:
    """Open the dashboard and wait until the map frame holds `expected_paths` polygons (shaded
    areas and reference outlines; outlines are not interactive, so clicks reach the areas)."""
    page.goto(url)
    page.wait_for_function(
        """([selector, expected]) => {
            const frame = document.querySelector(selector);
            const doc = frame && frame.contentDocument;
            return doc && doc.querySelectorAll(
                '.leaflet-overlay-pane path').length >= expected;
        }""",
        arg=['iframe[title="streamlit_folium.st_folium"]', expected_paths],
        timeout=MAP_LOAD_TIMEOUT_MS,
    )
    page.wait_for_load_state("networkidle")


def _css_rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def test_boundaries_map_draws_region_offline(viewer_url, page, network, map_frame, screenshot):
    expected = _visible_feature_count()
    _open_map(page, viewer_url, expected)
    path = screenshot(page, "boundaries_map")

    assert map_frame.locator(".leaflet-overlay-pane path").count() >= expected, path
    west, south, east, north = boundaries.load("borough").total_bounds
    centre = map_frame.locator("body").evaluate("() => window.map.getCenter()")
    assert south < centre["lat"] < north and west < centre["lng"] < east, centre
    attribution = map_frame.locator(".leaflet-control-attribution").inner_text()
    for line in boundaries.attribution_lines(list(maps.BOUNDARY_LAYERS)):
        assert line in attribution
    for spec in maps.BOUNDARY_LAYERS.values():
        assert map_frame.get_by_text(spec["label"], exact=True).count() == 1
    # Leaflet (with markercluster, the map's code and its data) comes in one local file
    assert any(re.search(r"/app/static/data/projectmap-\w+\.js$", u) for u in network.requests)
    assert map_frame.locator("img.leaflet-tile").count() == 0, "basemap 'none' drew tiles"
    network.assert_stayed_local()


def test_ward_tooltip_shows_name_and_population(viewer_url, page, network, map_frame):
    _open_map(page, viewer_url, _visible_feature_count())
    # A ward's centre that shows the ward itself (not a marker or a control) on screen.
    point = map_frame.locator("body").evaluate(
        """() => {
            const km = window.KM.current, box = map.getContainer().getBoundingClientRect();
            let found = null;
            km.areaLayer.eachLayer((layer) => {
                if (found) return;
                const p = map.latLngToContainerPoint(layer.getCenter());
                const hit = document.elementFromPoint(p.x + box.left, p.y + box.top);
                if (hit && hit === layer.getElement()) found = {x: p.x, y: p.y};
            });
            return found;
        }"""
    )
    assert point, "no ward centre is clear of markers and controls"
    map_frame.locator(".leaflet-container").hover(position=point)
    tooltip = map_frame.locator(".leaflet-tooltip:not(.km-place)")
    tooltip.wait_for(timeout=10_000)
    text = tooltip.inner_text()
    assert "Ward" in text and "Population" in text, text
    assert any(name in text for name in boundaries.load("ward")["WD24NM"]), text
    network.assert_stayed_local()


def test_map_works_when_basemap_tiles_fail(serve_app, page, network, map_frame, screenshot):
    """With OpenStreetMap tiles unreachable (aborted here), polygons draw on a plain colour."""
    _open_map(page, serve_app("osm"), _visible_feature_count())
    screenshot(page, "boundaries_map_tiles_failed")

    assert {urlsplit(url).hostname for url in network.external} == {OSM_TILE_HOST}
    background = map_frame.locator(".leaflet-container").evaluate(
        "element => getComputedStyle(element).backgroundColor"
    )
    assert background == _css_rgb(maps.MAP_BACKGROUND)
    assert "OpenStreetMap" in map_frame.locator(".leaflet-control-attribution").inner_text()
    network.assert_stayed_local(allowed_hosts=frozenset({OSM_TILE_HOST}))


def test_make_run_launcher_serves_the_map(launcher_url, page, network, map_frame, screenshot):
    """`kindred-map dashboard` warms up before serving; the map component must still load."""
    _open_map(page, launcher_url, _visible_feature_count())
    screenshot(page, "launcher_map")
    assert map_frame.locator(".leaflet-overlay-pane path").count() >= _visible_feature_count()
    network.assert_stayed_local()
