"""Folium maps of the region, built on locally served Leaflet: base map and boundary layers."""

import html
import json
import logging
import os

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

from kindred_map import assets, boundaries

LOGGER = logging.getLogger(__name__)

BASEMAP_ENV = "KINDRED_MAP_BASEMAP"
BASEMAPS = ("osm", "none")
"""osm: OpenStreetMap tiles (fetched by the browser from tile.openstreetmap.org);
none: no tiles at all, a plain light background (offline use, tests)."""

REGION_CENTRE = (53.515, -2.81)
"""(lat, lon) of the middle of the region's ward extent (Merseyside, Halton, Warrington, Wigan,
West Lancashire); maps with boundary layers then fit the boroughs' exact bounds."""
REGION_ZOOM = 10
MAP_BACKGROUND = "#eef1f4"
"""Shown where no tile is drawn: with tiles "none", or when tiles fail to load."""
COORDINATE_DECIMALS = 5
"""About a metre: finer than the generalised boundaries, and keeps the page payload small."""

BOUNDARY_LAYERS = {
    "deanery": {
        "label": "Deaneries (approximate)",
        "show": False,
        "fields": {
            "deanery_name": "Deanery",
            "deanery_id": "Code",
            "archdeaconry_name": "Archdeaconry",
            "population": "Population (Census 2021)",
        },
        "note": ("Boundary", "approximate (derived), not official"),
        "style": {"color": "#6a3d9a", "weight": 2, "dashArray": "6 4", "fillOpacity": 0.06},
    },
    "ward": {
        "label": "Wards (May 2024)",
        "show": True,
        "fields": {
            "WD24NM": "Ward",
            "WD24CD": "Code",
            "LAD24NM": "Borough",
            "population": "Population (Census 2021, approx.)",
        },
        "note": None,
        "style": {"color": "#4a6076", "weight": 1, "fillColor": "#9fb3c8", "fillOpacity": 0.12},
    },
    "borough": {
        "label": "Boroughs",
        "show": True,
        "fields": {
            "LAD25NM": "Borough",
            "LAD25CD": "Code",
            "population": "Population (Census 2021)",
        },
        "note": None,
        "style": {"color": "#1f2d3d", "weight": 3, "fill": False},
    },
}
"""Boundary layers in drawing order (last on top). Boroughs have no fill, so the wards below
keep their tooltips; a borough's tooltip shows on its outline."""

HIGHLIGHT = {"weight": 3, "fillOpacity": 0.25}


class DataAttribution(MacroElement):
    """Adds lines to the map's Leaflet attribution control (credit for the data shown)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, lines):
        super().__init__()
        self._name = "DataAttribution"
        self.text = " | ".join(html.escape(str(line)) for line in lines if str(line).strip())


def basemap_choice(tiles: str | None = None) -> str:
    """The basemap to use: `tiles` if given, else env KINDRED_MAP_BASEMAP, else "osm"."""
    choice = (tiles or os.environ.get(BASEMAP_ENV) or "osm").strip().lower()
    if choice not in BASEMAPS:
        raise ValueError(
            f"Unknown basemap {choice!r} (from the tiles argument or {BASEMAP_ENV}); "
            f"expected one of {', '.join(BASEMAPS)}"
        )
    return choice


def base_map(
    tiles: str | None = None,
    location: tuple[float, float] = REGION_CENTRE,
    zoom_start: int = REGION_ZOOM,
    attribution: list[str] | tuple[str, ...] = (),
) -> folium.Map:
    """A folium map of the region whose Leaflet comes from this server, never a CDN.

    folium's default jQuery, Bootstrap and Awesome Markers are dropped: use CircleMarker and
    GeoJson styling, not AwesomeMarkers icons. `attribution` lines credit the data shown."""
    basemap = basemap_choice(tiles)
    fmap = folium.Map(location=location, zoom_start=zoom_start, tiles=None)
    fmap.default_js = assets.folium_js("leaflet")
    fmap.default_css = assets.folium_css("leaflet")
    fmap.get_root().header.add_child(
        Element(
            "<style>"
            f"div.leaflet-container {{ background: {MAP_BACKGROUND}; }}"
            "div.leaflet-container .leaflet-control-attribution { font-size: 11px; }"
            "</style>"
        ),
        name="kindred_map_background",
    )
    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", control=False).add_to(fmap)
    if attribution:
        DataAttribution(attribution).add_to(fmap)
    return fmap


def _display_value(column: str, value) -> str:
    """Text for a tooltip cell, HTML-escaped (folium puts tooltip values in as HTML)."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "not available"
    if column == "population":
        try:
            return f"{int(value):,}"
        except (TypeError, ValueError):
            pass
    return html.escape(str(value))


def boundary_geojson(name: str) -> dict:
    """A boundary layer as a small GeoJSON FeatureCollection for the map.

    Keeps only the tooltip fields (escaped text), rounds coordinates to COORDINATE_DECIMALS."""
    if name not in BOUNDARY_LAYERS:
        raise ValueError(f"No map layer for {name!r}; expected one of {sorted(BOUNDARY_LAYERS)}")
    spec = BOUNDARY_LAYERS[name]
    frame = boundaries.load(name)
    missing = [column for column in spec["fields"] if column not in frame.columns]
    if missing:
        raise ValueError(f"Boundary layer {name!r} lacks columns {missing} needed for the map")
    drawable = frame.geometry.notna() & ~frame.geometry.is_empty
    if not drawable.all():
        LOGGER.warning("%s: %d feature(s) without geometry not drawn", name, (~drawable).sum())
        frame = frame[drawable]
    geometries = shapely.transform(
        np.asarray(frame.geometry), lambda xy: np.round(xy, COORDINATE_DECIMALS)
    )
    features = []
    records = frame[list(spec["fields"])].to_dict("records")
    for index, (geometry, record) in enumerate(zip(geometries, records, strict=True)):
        properties = {column: _display_value(column, value) for column, value in record.items()}
        if spec["note"]:
            properties["note"] = spec["note"][1]
        features.append(
            {
                "type": "Feature",
                "id": str(index),
                "properties": properties,
                "geometry": json.loads(shapely.to_geojson(geometry)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def boundary_layer(name: str, geojson: dict) -> folium.GeoJson:
    """A toggleable, styled GeoJson layer with a tooltip for one boundary layer."""
    spec = BOUNDARY_LAYERS[name]
    fields = list(spec["fields"])
    aliases = list(spec["fields"].values())
    if spec["note"]:
        fields.append("note")
        aliases.append(spec["note"][0])
    style = spec["style"]
    return folium.GeoJson(
        geojson,
        name=spec["label"],
        show=spec["show"],
        style_function=lambda _feature: style,
        highlight_function=lambda _feature: HIGHLIGHT,
        tooltip=folium.GeoJsonTooltip(
            fields=fields, aliases=[html.escape(alias) for alias in aliases], sticky=True
        ),
    )


def boundary_layers_map(
    tiles: str | None = None, layers: dict[str, dict] | None = None
) -> folium.Map:
    """Boroughs, wards and (approximate) deaneries as toggleable layers, fitted to the region.

    `layers` maps layer name to its `boundary_geojson` (pass cached copies from the app);
    missing ones are built here."""
    layers = dict(layers or {})
    for name in BOUNDARY_LAYERS:
        if name not in layers:
            layers[name] = boundary_geojson(name)
    fmap = base_map(tiles=tiles, attribution=boundaries.attribution_lines(list(BOUNDARY_LAYERS)))
    for name in BOUNDARY_LAYERS:
        boundary_layer(name, layers[name]).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    west, south, east, north = boundaries.load("borough").total_bounds
    fmap.fit_bounds([[south, west], [north, east]])
    return fmap
