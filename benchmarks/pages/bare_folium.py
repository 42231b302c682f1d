"""Benchmark baseline: a bare st_folium page with the dashboard's wards (shaded by projects)
and markers (clustered circles with tooltips), built the plain way, on KINDRED_MAP_STORE."""

import folium
import streamlit as st
from folium.plugins import MarkerCluster
from streamlit_folium import st_folium

from kindred_map import assets, figures, maps, mapview, store
from kindred_map import view as views
from kindred_map.classing import colour_classes


@st.cache_data
def layers() -> tuple[dict, list]:
    """The shaded wards' GeoJSON and the markers (lat, lon, escaped name), read once."""
    projects = views.shown_projects(store.read_projects(), views.View())
    counts = figures.area_figures("ward", projects)
    fills, _ = colour_classes(counts["projects"], "projects")
    geojson = maps.boundary_geojson("ward")
    for feature in geojson["features"]:
        feature["properties"]["fill"] = fills[feature["properties"]["WD24CD"]]
    located = projects[projects.geometry.notna() & ~projects.geometry.is_empty]
    markers = [
        (point.y, point.x, maps.html_text(name))
        for point, name in zip(located.geometry, located["name"], strict=True)
    ]
    return geojson, markers


def bare_map() -> folium.Map:
    """The folium map built the plain way on every run (st_folium renders and renames it)."""
    geojson, markers = layers()
    fmap = maps.base_map(tiles="none")
    fmap.options["maxZoom"] = maps.MAX_ZOOM
    folium.GeoJson(
        geojson,
        style_function=lambda f: maps.AREA_STYLE | {"fillColor": f["properties"]["fill"]},
        tooltip=folium.GeoJsonTooltip(fields=["WD24NM"], aliases=["Ward"]),
    ).add_to(fmap)
    cluster = MarkerCluster(options=maps.CLUSTER_OPTIONS)
    cluster.default_js = assets.folium_js("markercluster")
    cluster.default_css = assets.folium_css("markercluster")
    for lat, lon, name in markers:
        folium.CircleMarker((lat, lon), radius=7, fill=True, tooltip=name).add_to(cluster)
    cluster.add_to(fmap)
    west, south, east, north = mapview.bounds_of("borough", [])
    fmap.fit_bounds([[south, west], [north, east]])
    return fmap


st.set_page_config(page_title="Kindred Map", layout="wide")
assets.install_static()
st.title("Kindred Map")
st_folium(bare_map(), key="bare", height=640, use_container_width=True, returned_objects=[])
