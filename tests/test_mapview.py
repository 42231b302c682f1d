"""The dashboard map of a view: shaded areas, clicks, markers, local assets, basemap."""

import re
from datetime import date

import pytest

from kindred_map import (
    figures,
    mapview,
)
from kindred_map import view as views

XSS = "<img src=x onerror=alert(1)>"
TODAY = date(2025, 11, 1)
LIVERPOOL = "E08000012"


def test_choropleth_properties_are_escaped_and_name_their_area(shown):
    numbers = figures.area_figures("ward", shown)
    numbers.iloc[0, numbers.columns.get_loc("name")] = "<b>Bold</b>"
    properties = mapview.choropleth_properties("ward", numbers, "per_10k")
    first = properties.iloc[0]
    assert first["name"].startswith("&lt;b&gt;Bold&lt;/b&gt;")
    assert first["code"] == numbers.index[0] and first["level"] == "ward"
    assert set(mapview.choropleth_tooltip("ward", "per_10k")) <= set(properties.columns)
    deanery = mapview.choropleth_properties(
        "deanery", figures.area_figures("deanery", shown), "projects"
    )
    assert deanery["note"].str.contains("approximate").all()
    with pytest.raises(ValueError, match="coverage"):
        mapview.choropleth_properties("ward", numbers, "gap_score")


def test_a_click_opens_an_area_of_the_shown_layer_only():
    ward = next(iter(figures.area_choices("ward")))
    clicked = {"type": "Feature", "properties": {"code": ward, "level": "ward"}}
    assert mapview.area_from_click(clicked, "ward") == ward
    assert mapview.area_from_click(clicked, "borough") is None
    marker = {"type": "Feature", "properties": {}, "geometry": {"type": "Point"}}
    assert mapview.area_from_click(marker, "ward") is None
    assert mapview.area_from_click(None, "ward") is None
    unknown = {"properties": {"code": "E05999999", "level": "ward"}}
    assert mapview.area_from_click(unknown, "ward") is None


def _render(fmap) -> str:
    return fmap.get_root().render()


def test_map_uses_local_assets_only_and_hides_home_run_positions(projects, by_name):
    view = views.View(postcode="L1 8JQ", clusters=True, gaps=True, layer="lsoa")
    page = _render(mapview.build_map(projects, view, today=TODAY, tiles="none"))
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/app/static/vendor/") for s in sources), sources
    for host in ("cdn", "unpkg", "d3js", "googleapis", "bootstrap", "jquery"):
        assert host not in page.lower().replace("bootstrap-", "")
    home = by_name(projects, "Home Welcome")
    lat, lon = round(home["lat"], 5), round(home["lon"], 5)
    secrets = (f'"lat": {lat}', f"[{lat}, {lon}]", f"[{lon}, {lat}]", "Private Road", "L20 0AD")
    for secret in secrets:
        assert secret not in page
    assert XSS not in page and "onerror" in page  # the name is there, escaped


def test_map_draws_one_marker_per_shown_project_and_the_areas_in_view(projects):
    view = views.View(boroughs=(LIVERPOOL,), measure="imd_decile")
    shown = views.shown_projects(projects, view)
    fmap = mapview.build_map(projects, view, today=TODAY, tiles="none")
    page = _render(fmap)
    assert page.count('"popup": ') == len(shown)
    wards = figures.areas_in_view("ward", view)
    assert page.count('"level": "ward"') == len(wards)
    assert "markerClusterGroup" in page and "km-legend" in page
    west, south, east, north = mapview.bounds_of("ward", wards)
    fitted = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", page, re.DOTALL).group(1)
    corners = [float(n) for n in re.findall(r"-?\d+\.\d+", fitted)]
    assert corners == pytest.approx([south, west, north, east])


def test_gap_measure_needs_coverage(projects):
    view = views.View(measure="gap_score")
    with pytest.raises(ValueError, match="coverage"):
        mapview.build_map(projects, view, tiles="none")
    summary = figures.coverage_summary(projects, (), view.distance)
    page = _render(mapview.build_map(projects, view, coverage_areas=summary["areas"]))
    assert "Gap score" in page


def test_basemap_choice_reaches_the_map(projects):
    online = _render(mapview.build_map(projects, views.View(), tiles="osm"))
    offline = _render(mapview.build_map(projects, views.View(), tiles="none"))
    assert "tile.openstreetmap.org" in online
    assert "tile.openstreetmap.org" not in offline
    assert '"maxZoom": 18' in offline  # marker clustering needs it when no tiles give one
