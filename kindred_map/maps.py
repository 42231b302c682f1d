"""Folium maps of the region on locally served Leaflet: base map, boundaries, the dashboard map."""

import html
import json
import logging
import os

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.elements import JSCSSMixin
from jinja2 import Template

from kindred_map import assets, boundaries
from kindred_map.classing import AREA_OPACITY
from kindred_map.view import ZOOM_SNAP

LOGGER = logging.getLogger(__name__)

JSON_ESCAPES = {char: f"\\u{ord(char):04x}" for char in "{}<>&%#'"}
"""Characters written as \\uXXXX inside JSON strings placed in a script: none of them can then
start a Jinja delimiter (branca renders each element's script output again as a template) or
close the script element."""

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
        "label": boundaries.LAYER_LABELS["deanery"],
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
        "label": boundaries.LAYER_LABELS["ward"],
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
        "label": boundaries.LAYER_LABELS["borough"],
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


class DataAttribution(MacroElement):
    """Adds lines to the map's Leaflet attribution control (credit for the data shown)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text_json }});
        {% endmacro %}
        """
    )

    def __init__(self, lines):
        super().__init__()
        self._name = "DataAttribution"
        self.text_json = safe_json(
            " | ".join(html_text(line) for line in lines if str(line).strip())
        )


def safe_json(value) -> str:
    """``value`` as JSON whose strings hold no ``{ } < > & % # '`` (written as \\uXXXX): safe
    inside a <script> and through any number of Jinja renders, and the same data to JavaScript.

    Structural JSON never forms a Jinja delimiter: after ``{`` comes ``"`` or ``}``."""
    if isinstance(value, str):
        text = json.dumps(value)
        for char, escape in JSON_ESCAPES.items():
            text = text.replace(char, escape)
        return text
    if isinstance(value, dict):
        items = (f"{safe_json(str(key))}: {safe_json(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(safe_json(item) for item in value) + "]"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return "null"
    return json.dumps(value)


def html_text(value) -> str:
    """Text for HTML that Leaflet may also hand to a template: escaped, braces as entities."""
    return html.escape(str(value)).replace("{", "&#123;").replace("}", "&#125;")


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
    return html_text(value)


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


# --- the dashboard map: static layers fetched once, one small JSON payload per view ----------

AREA_STYLE = {"color": "#3d4f61", "weight": 0.8, "fillOpacity": AREA_OPACITY}
AREA_HOVER = {"weight": 3, "color": "#111111"}
AREA_SELECTED = {"weight": 4, "color": "#d6006f"}
"""The chosen area: a thick magenta edge, distinct from every fill colour."""
PROJECT_RADIUS = 7
MAX_ZOOM = 18
"""Marker clustering needs the map's maximum zoom, which no tile layer gives when tiles are off."""
PROJECT_OUTLINE = "#1a1a1a"
CLUSTER_OPTIONS = {"maxClusterRadius": 45, "disableClusteringAtZoom": 15, "spiderfyOnMaxZoom": True}
"""Markers group into numbered clusters below zoom 15 (about a neighbourhood on screen)."""
PLACE_ZOOMS = {"town": 8, "suburb": 11.5}
"""Town and city names may show from zoom 8 (the region on a phone), suburbs and villages from
11.5; dashboard.js drops any that would overlap another label, a marker or a control."""
MAP_HEIGHT_MARGIN = 320
"""The map is the browser window's height less where it starts on the page (at most this, px),
so that the title and counts stay in view above it."""
MAP_CSS = (
    "<style>"
    ".km-cluster { background: rgba(31,45,61,0.82); color: #fff; border: 2px solid #fff;"
    " border-radius: 50%; display: flex; align-items: center; justify-content: center;"
    " font: 600 12px/1 sans-serif; box-shadow: 0 0 0 1px rgba(31,45,61,0.5); }"
    "div.leaflet-container .leaflet-control-attribution { max-height: 1.5em; overflow: hidden;"
    " white-space: nowrap; text-overflow: ellipsis; max-width: min(45vw, 520px); cursor: help; }"
    "div.leaflet-container .leaflet-control-attribution:hover,"
    " div.leaflet-container .leaflet-control-attribution:focus-within { max-height: 60%;"
    " white-space: normal; overflow-y: auto; }"
    "div.leaflet-container .leaflet-popup-content { font-size: 13px; line-height: 1.4; }"
    "div.leaflet-container .leaflet-tooltip, div.leaflet-container .leaflet-tooltip th,"
    " div.leaflet-container .leaflet-tooltip td { font-size: 12px; }"
    "div.leaflet-container .leaflet-control-layers { font: 12px/1.4 sans-serif; }"
    ".leaflet-control-layers-expanded { padding: 4px 8px 4px 6px; }"
    ".leaflet-tooltip th { text-align: left; padding-right: 6px; font-weight: 600; }"
    "div.leaflet-container .leaflet-tooltip { white-space: normal; width: max-content;"
    " max-width: min(320px, calc(100vw - 16px)); overflow-wrap: anywhere;"
    " box-sizing: border-box; }"
    ".km-place { position: absolute; left: 0; top: 0; color: #1f2d3d; white-space: nowrap;"
    " font: 600 13px/15px sans-serif; letter-spacing: 0.02em; display: none;"
    " text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; }"
    ".km-place-suburb { font: 500 11px/13px sans-serif; letter-spacing: 0; color: #2c3a4a; }"
    "</style>"
)
"""Cluster badges; the long data attribution shows one line and opens in full on hover or
focus (the About page has it in full); tooltips no wider than the map (dashboard.js keeps them
inside it);
popups and tooltips in a map-sized font; place names as haloed text (fonts as dashboard.js
measures them: LABEL_FONTS), placed and shown by dashboard.js."""
GAP_STYLE = {"color": "#7f0000", "weight": 1.2, "fillColor": "#000000", "fillOpacity": 0.16}
"""A dark veil (keeps the areas' hues readable below it) edged in dark red."""
CLUSTER_HULL_STYLE = {"color": "#000000", "weight": 2, "dashArray": "5 4", "fillOpacity": 0.05}
OUTLINE_LAYERS = ("deanery", "borough")
"""Reference outlines drawn over the shaded areas (a layer is not outlined over itself)."""


def legend_html(
    title: str,
    classes: list[dict],
    types: list[dict],
    notes: list[str],
    direction: str = "",
) -> str:
    """The legend as plain HTML: the measure's classes as swatches filled as the map fills
    areas (same opacity), which way is better, the project types with counts, then notes. It
    folds away with a click on its title (folded on narrow screens, see dashboard.js).

    ``classes``: {"label", "colour"}; ``types``: {"label", "colour", "count"}; all escaped here."""
    steps = "".join(
        f'<div class="km-step"><span class="km-bar"><span style="background:'
        f'{html_text(entry["colour"])};opacity:{AREA_OPACITY}"></span></span>'
        f"{html_text(entry['label'])}</div>"
        for entry in classes
    )
    kinds = "".join(
        f'<div><span class="km-dot" style="background:{html_text(entry["colour"])}"></span>'
        f"{html_text(entry['label'])} ({int(entry['count']):,})</div>"
        for entry in types
    )
    parts = [f"<summary>{html_text(title)}</summary>", f'<div class="km-ramp">{steps}</div>']
    if direction:
        parts.append(f'<div class="km-direction">{html_text(direction)}</div>')
    if kinds:
        parts.append(f'<div class="km-types">{kinds}</div>')
    parts.extend(f'<div class="km-legend-note">{html_text(note)}</div>' for note in notes)
    return f"<details open>{''.join(parts)}</details>"


LEGEND_CSS = (
    "<style>"
    ".km-legend { background: rgba(255,255,255,0.94); padding: 5px 8px; border-radius: 4px;"
    " box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 11px/1.3 sans-serif; color: #1f2d3d;"
    " max-height: 60vh; overflow-y: auto; }"
    ".km-legend details[open] { width: 236px; }"
    ".km-legend summary { font-weight: 600; font-size: 12px; cursor: pointer; }"
    ".km-ramp { display: flex; margin: 4px 0; }"
    ".km-step { flex: 1; text-align: center; font-size: 10px; line-height: 1.15;"
    " overflow-wrap: anywhere; }"
    ".km-bar { display: block; height: 10px; border: 1px solid #888; margin: 0 -0.5px 2px;"
    " background: #fff; }"
    ".km-bar span { display: block; height: 100%; }"
    ".km-direction { font-style: italic; margin-bottom: 2px; }"
    ".km-types { display: grid; grid-template-columns: 1fr 1fr; gap: 1px 6px; margin-top: 3px; }"
    ".km-legend-note { color: #4a5561; margin-top: 3px; font-size: 10.5px; }"
    ".km-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;"
    " margin-right: 4px; border: 1px solid #1a1a1a; vertical-align: -1px; }"
    "</style>"
)


class DashboardLayers(JSCSSMixin, MacroElement):
    """The dashboard's fixed layers (areas, outlines, places, projects, legend, layer list),
    drawn by dashboard.js from static files. The template is fixed: options go in as
    `safe_json`, so no text passes through Jinja."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        KM.init({{ this._parent.get_name() }}, {{ this.options_json }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "DashboardLayers"
        self.options_json = safe_json(options)
        self.default_js = []  # in the map's one script file (`assets.combined_js`)
        self.default_css = []  # put into the page by that file too

    def render(self, **kwargs):
        header = self.get_root().header
        header.add_child(Element(MAP_CSS), name="kindred_map_dashboard_css")
        header.add_child(Element(LEGEND_CSS), name="kindred_map_legend_css")
        super().render(**kwargs)


class ViewData(MacroElement):
    """One view's data for the dashboard map (colours, shown projects, legend, overlays), as
    `safe_json` handed to dashboard.js; its parent is the layer group st_folium replaces."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        KM.apply({{ this._parent.get_name() }}, {{ this.payload_json }});
        {% endmacro %}
        """
    )

    def __init__(self, payload_json: str):
        super().__init__()
        self._name = "ViewData"
        self.payload_json = payload_json


def dashboard_base(options: dict, script: str, tiles: str | None = None) -> folium.Map:
    """The dashboard's map without a view: what stays while filters change. ``script``: the
    URL of the map's one script file (`kindred_map.mapview.map_script`)."""
    fmap = base_map(tiles=tiles)
    # Leaflet, markercluster, dashboard.js and their CSS in one file: st_folium loads scripts
    # one after another, and each request takes one of few connections.
    fmap.default_js = [("leaflet", script)]
    fmap.default_css = []
    fmap.options["maxZoom"] = MAX_ZOOM
    fmap.options["zoomSnap"] = ZOOM_SNAP
    DashboardLayers(options).add_to(fmap)
    return fmap


def view_group(payload_json: str) -> folium.FeatureGroup:
    """The layer group carrying one view's data (st_folium's ``feature_group_to_add``)."""
    group = folium.FeatureGroup(name="View", control=False)
    ViewData(payload_json).add_to(group)
    return group
