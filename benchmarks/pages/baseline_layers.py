"""The data and frame both plain baseline pages draw (bare_folium.py, fast_cluster.py): the
dashboard's wards shaded by projects and its markers, from KINDRED_MAP_STORE."""

from collections.abc import Callable

import folium
import streamlit as st
from folium.plugins import MarkerCluster
from streamlit_folium import st_folium

from kindred_map import assets, figures, maps, mapview, store
from kindred_map import view as views
from kindred_map.classing import colour_classes


@st.cache_data
def layers() -> tuple[dict, list]:
    """The shaded wards' GeoJSON and the markers [lat, lon, escaped name], read once."""
    projects = views.shown_projects(store.read_projects(), views.View())
    counts = figures.area_figures("ward", projects)
    fills, _ = colour_classes(counts["projects"], "projects")
    geojson = maps.boundary_geojson("ward")
    for feature in geojson["features"]:
        feature["properties"]["fill"] = fills[feature["properties"]["WD24CD"]]
    located = projects[projects.geometry.notna() & ~projects.geometry.is_empty]
    markers = [
        [point.y, point.x, maps.html_text(name)]
        for point, name in zip(located.geometry, located["name"], strict=True)
    ]
    return geojson, markers


def show(cluster_of: Callable[[list], MarkerCluster], key: str) -> None:
    """The whole page: a title and the map, its markers in ``cluster_of(markers)`` (served
    from the local markercluster copy), built on every run as a plain page would."""
    st.set_page_config(page_title="Kindred Map", layout="wide")
    assets.install_static()
    st.title("Kindred Map")
    geojson, markers = layers()
    fmap = ward_map(geojson)
    cluster = cluster_of(markers)
    cluster.default_js = assets.folium_js("markercluster")
    cluster.default_css = assets.folium_css("markercluster")
    cluster.add_to(fmap)
    fit_region(fmap)
    st_folium(fmap, key=key, height=640, use_container_width=True, returned_objects=[])


def ward_map(geojson: dict) -> folium.Map:
    """A map without tiles holding the shaded wards with their tooltips (markers come next)."""
    fmap = maps.base_map(tiles="none")
    fmap.options["maxZoom"] = maps.MAX_ZOOM
    folium.GeoJson(
        geojson,
        style_function=lambda f: maps.AREA_STYLE | {"fillColor": f["properties"]["fill"]},
        tooltip=folium.GeoJsonTooltip(fields=["WD24NM"], aliases=["Ward"]),
    ).add_to(fmap)
    return fmap


def fit_region(fmap: folium.Map) -> None:
    """Frame the map on the region's boroughs, as the dashboard's first view."""
    west, south, east, north = mapview.bounds_of("borough", [])
    fmap.fit_bounds([[south, west], [north, east]])
