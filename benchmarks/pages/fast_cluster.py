"""Benchmark baseline (issue 26): a bare st_folium page with the dashboard's wards (shaded by
projects) and its markers through folium's `FastMarkerCluster` (one data array, markers made
in the browser), on KINDRED_MAP_STORE: the fast plain way the dashboard's first map is
measured against."""

from folium.plugins import FastMarkerCluster

from benchmarks.pages.baseline_layers import show
from kindred_map import maps

CALLBACK = """function (row) {
    return L.circleMarker([row[0], row[1]], {radius: 7, fill: true}).bindTooltip(row[2]);
}"""
"""The same circles with tooltips as the bare MarkerCluster page, made in the browser."""


def fast(markers: list) -> FastMarkerCluster:
    return FastMarkerCluster(markers, callback=CALLBACK, options=maps.CLUSTER_OPTIONS)


show(fast, "fast")
