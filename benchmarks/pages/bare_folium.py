"""Benchmark baseline: a bare st_folium page with the dashboard's wards (shaded by projects)
and markers (clustered circles with tooltips), built the plain way, on KINDRED_MAP_STORE."""

import folium
from folium.plugins import MarkerCluster

from benchmarks.pages.baseline_layers import show
from kindred_map import maps


def circles(markers: list) -> MarkerCluster:
    """One folium CircleMarker per project in a MarkerCluster (the plain folium way)."""
    cluster = MarkerCluster(options=maps.CLUSTER_OPTIONS)
    for lat, lon, name in markers:
        folium.CircleMarker((lat, lon), radius=7, fill=True, tooltip=name).add_to(cluster)
    return cluster


show(circles, "bare")
