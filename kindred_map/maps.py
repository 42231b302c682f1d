"""Folium maps of the region on locally served Leaflet: base map, boundaries, the dashboard map."""

import html
import json
import logging
import os
from functools import cache

import folium
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.plugins import MarkerCluster
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


def boundary_layer(name: str, geojson: dict, outline_only: bool = False) -> folium.GeoJson:
    """A toggleable, styled GeoJson layer with a tooltip for one boundary layer.

    ``outline_only`` draws no fill, so that shaded areas below keep their clicks and tooltips."""
    spec = BOUNDARY_LAYERS[name]
    fields = list(spec["fields"])
    aliases = list(spec["fields"].values())
    if spec["note"]:
        fields.append("note")
        aliases.append(spec["note"][0])
    style = spec["style"] | {"fill": False} if outline_only else spec["style"]
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


# --- the dashboard map: areas shaded by a measure, projects, search circle, gaps, clusters ----

AREA_STYLE = {"color": "#3d4f61", "weight": 0.8, "fillOpacity": 0.55}
AREA_HIGHLIGHT = {"weight": 3, "color": "#111111", "fillOpacity": 0.7}
PROJECT_RADIUS = 7
MAX_ZOOM = 18
"""Marker clustering needs the map's maximum zoom, which no tile layer gives when tiles are off."""
PROJECT_OUTLINE = "#1a1a1a"
CLUSTER_OPTIONS = {"maxClusterRadius": 45, "disableClusteringAtZoom": 15, "spiderfyOnMaxZoom": True}
"""Markers group into numbered clusters below zoom 15 (about a neighbourhood on screen)."""
CLUSTER_ICON = """function (cluster) {
  var count = cluster.getChildCount();
  var size = count < 10 ? 28 : count < 100 ? 34 : 40;
  return L.divIcon({
    html: "<span>" + count + "</span>", className: "km-cluster",
    iconSize: L.point(size, size)
  });
}"""
"""Neutral dark cluster badges, so that they do not compete with the type and area colours."""
MAP_CSS = (
    "<style>"
    ".km-cluster { background: rgba(31,45,61,0.82); color: #fff; border: 2px solid #fff;"
    " border-radius: 50%; display: flex; align-items: center; justify-content: center;"
    " font: 600 12px/1 sans-serif; box-shadow: 0 0 0 1px rgba(31,45,61,0.5); }"
    "div.leaflet-container .leaflet-control-attribution { max-height: 2.9em; overflow: hidden;"
    " max-width: 75%; cursor: help; }"
    "div.leaflet-container .leaflet-control-attribution:hover { max-height: 60%;"
    " overflow-y: auto; }"
    "div.leaflet-container .leaflet-popup-content { font-size: 13px; line-height: 1.4; }"
    "div.leaflet-container .leaflet-tooltip, div.leaflet-container .leaflet-tooltip th,"
    " div.leaflet-container .leaflet-tooltip td { font-size: 12px; }"
    "</style>"
)
"""Cluster badges; the long data attribution shows two lines and opens in full on hover;
popups and tooltips in a map-sized font (the page's 1rem is large for them)."""
SEARCH_COLOUR = "#111111"
GAP_STYLE = {"color": "#7f0000", "weight": 1.2, "fillColor": "#000000", "fillOpacity": 0.16}
"""A dark veil (keeps the areas' hues readable below it) edged in dark red."""
CLUSTER_HULL_STYLE = {"color": "#000000", "weight": 2, "dashArray": "5 4", "fillOpacity": 0.05}
OUTLINE_LAYERS = ("deanery", "borough")
"""Reference outlines drawn over the shaded areas (a layer is not outlined over itself)."""


@cache
def _area_geometries(level: str) -> dict[str, dict]:
    """Each area's geometry as GeoJSON (coordinates rounded), by its code; read once."""
    key = boundaries.LAYERS[level]["key"]
    frame = boundaries.load(level)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    geometries = shapely.transform(
        np.asarray(frame.geometry), lambda xy: np.round(xy, COORDINATE_DECIMALS)
    )
    codes = [boundaries.code_text(code) for code in frame[key]]
    return {
        code: json.loads(shapely.to_geojson(geometry))
        for code, geometry in zip(codes, geometries, strict=True)
    }


def area_geojson(level: str, properties: pd.DataFrame) -> dict:
    """The areas of ``level`` whose code is in ``properties``' index, with that row as properties.

    Property values go into tooltips as HTML: pass escaped text (see `_display_value`)."""
    if level not in boundaries.LAYERS or level in ("postcode", "diocese"):
        raise ValueError(f"No area layer {level!r}; expected ward, deanery, borough or lsoa")
    geometries = _area_geometries(level)
    features = []
    for code, row in zip(properties.index, properties.to_dict("records"), strict=True):
        geometry = geometries.get(str(code))
        if geometry is None:
            continue
        features.append(
            {"type": "Feature", "id": str(code), "properties": row, "geometry": geometry}
        )
    return {"type": "FeatureCollection", "features": features}


def choropleth_layer(geojson: dict, name: str, tooltip: dict[str, str]) -> folium.GeoJson:
    """Areas filled with each feature's ``fill`` property; ``tooltip`` maps property to label."""
    return folium.GeoJson(
        geojson,
        name=name,
        style_function=lambda feature: AREA_STYLE | {"fillColor": feature["properties"]["fill"]},
        highlight_function=lambda _feature: AREA_HIGHLIGHT,
        tooltip=folium.GeoJsonTooltip(
            fields=list(tooltip),
            aliases=[html.escape(label) for label in tooltip.values()],
            sticky=True,
        ),
    )


def legend_html(title: str, classes: list[dict], types: list[dict], notes: list[str]) -> str:
    """The legend as plain HTML: a colour ramp of the measure's classes, the project types
    with their counts, then notes. It folds away with a click on its title.

    ``classes``: {"label", "colour"}; ``types``: {"label", "colour", "count"}; all escaped here."""
    steps = "".join(
        f'<div class="km-step"><span class="km-bar" style="background:'
        f'{html.escape(entry["colour"])}"></span>{html.escape(entry["label"])}</div>'
        for entry in classes
    )
    kinds = "".join(
        f'<div><span class="km-dot" style="background:{html.escape(entry["colour"])}"></span>'
        f"{html.escape(entry['label'])} ({int(entry['count']):,})</div>"
        for entry in types
    )
    parts = [f"<summary>{html.escape(title)}</summary>", f'<div class="km-ramp">{steps}</div>']
    if kinds:
        parts.append(f'<div class="km-types">{kinds}</div>')
    parts.extend(f'<div class="km-legend-note">{html.escape(note)}</div>' for note in notes)
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
    ".km-bar { display: block; height: 10px; border: 1px solid #888; margin: 0 -0.5px 2px; }"
    ".km-types { display: grid; grid-template-columns: 1fr 1fr; gap: 1px 6px; margin-top: 3px; }"
    ".km-legend-note { color: #4a5561; margin-top: 3px; font-size: 10.5px; }"
    ".km-dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%;"
    " margin-right: 4px; border: 1px solid #1a1a1a; vertical-align: -1px; }"
    "</style>"
)


class Legend(MacroElement):
    """A Leaflet control holding a legend written as plain HTML (no colormap library, no CDN)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var legend = L.control({position: {{ this.position|tojson }}});
          var map = {{ this._parent.get_name() }};
          legend.onAdd = function () {
            var box = L.DomUtil.create("div", "km-legend");
            box.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(box);
            L.DomEvent.disableScrollPropagation(box);
            return box;
          };
          legend.addTo(map);
          // Fold the legend while a popup is open, so that it never hides the popup.
          var folded = false;
          map.on("popupopen", function () {
            var details = legend.getContainer().querySelector("details");
            folded = details.open;
            details.open = false;
          });
          map.on("popupclose", function () {
            if (folded) { legend.getContainer().querySelector("details").open = true; }
          });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, legend: str, position: str = "topleft"):
        super().__init__()
        self._name = "Legend"
        self.html = legend
        self.position = position

    def render(self, **kwargs):
        self.get_root().header.add_child(Element(LEGEND_CSS), name="kindred_map_legend_css")
        super().render(**kwargs)


class ProjectMarkers(MacroElement):
    """Projects as circle markers added in one call to the parent layer (cluster or group).

    Each record: lat, lon, colour, type, popup (escaped HTML), tooltip (escaped), home_run."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
          var parent = {{ this._parent.get_name() }};
          var markers = {{ this.records|tojson }}.map(function (r) {
            var marker = L.circleMarker([r.lat, r.lon], {
              radius: {{ this.radius }}, color: {{ this.outline|tojson }}, weight: 1.2,
              fillColor: r.colour, fillOpacity: 0.92, dashArray: r.home_run ? "3 2" : null,
              className: "km-project km-type-" + r.type
            });
            marker.bindPopup(r.popup, {maxWidth: 320});
            marker.bindTooltip(r.tooltip);
            return marker;
          });
          if (parent.addLayers) { parent.addLayers(markers); }
          else { markers.forEach(function (marker) { marker.addTo(parent); }); }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, records: list[dict]):
        super().__init__()
        self._name = "ProjectMarkers"
        self.records = records
        self.radius = PROJECT_RADIUS
        self.outline = PROJECT_OUTLINE


def project_layer(records: list[dict], cluster: bool = True, name: str = "Projects"):
    """The projects' layer: a MarkerCluster (served locally) or a plain group of markers."""
    if cluster:
        layer = MarkerCluster(name=name, options=CLUSTER_OPTIONS, icon_create_function=CLUSTER_ICON)
        layer.default_js = assets.folium_js("markercluster")
        layer.default_css = assets.folium_css("markercluster")
    else:
        layer = folium.FeatureGroup(name=name)
    ProjectMarkers(records).add_to(layer)
    return layer


def search_layer(lat: float, lon: float, radius_m: float, label: str) -> folium.FeatureGroup:
    """The searched postcode: a dot and a circle of ``radius_m`` metres around it."""
    group = folium.FeatureGroup(name=f"Within {radius_m:,.0f} m of {label}")
    folium.Circle(
        location=(lat, lon),
        radius=float(radius_m),
        color=SEARCH_COLOUR,
        weight=2,
        dash_array="6 4",
        fill=True,
        fill_opacity=0.04,
        interactive=False,
    ).add_to(group)
    folium.CircleMarker(
        location=(lat, lon),
        radius=5,
        color="#ffffff",
        weight=2,
        fill=True,
        fill_color=SEARCH_COLOUR,
        fill_opacity=1,
        tooltip=html.escape(label),
    ).add_to(group)
    return group


def overlay_layer(
    geojson: dict, name: str, style: dict, tooltip: dict[str, str], interactive: bool = True
) -> folium.GeoJson:
    """A styled GeoJson overlay (gap surface, cluster hulls) with an escaped tooltip.

    A non-interactive overlay lets clicks and tooltips through to the areas below it. An empty
    overlay (no clusters found, say) is still listed in the layer control."""
    hint = None
    if tooltip and geojson["features"]:
        hint = folium.GeoJsonTooltip(
            fields=list(tooltip), aliases=[html.escape(label) for label in tooltip.values()]
        )
    options = {} if interactive else {"interactive": False}
    return folium.GeoJson(
        geojson, name=name, style_function=lambda _feature: style, tooltip=hint, **options
    )


def dashboard_map(
    areas: dict,
    area_name: str,
    area_tooltip: dict[str, str],
    legend: str,
    projects: list[dict],
    bounds: tuple[float, float, float, float],
    *,
    level: str = "ward",
    cluster: bool = True,
    search: dict | None = None,
    overlays: tuple = (),
    attribution: list[str] | tuple[str, ...] = (),
    tiles: str | None = None,
) -> folium.Map:
    """The dashboard's map: shaded areas (clickable), reference outlines, projects, legend.

    ``bounds`` (west, south, east, north) is what the map opens on; ``search`` ({lat, lon,
    radius_m, label}) draws the searched postcode and its circle; ``overlays`` are extra
    layers (gaps, clusters) listed in the layer control."""
    fmap = base_map(tiles=tiles, attribution=attribution)
    fmap.options["maxZoom"] = MAX_ZOOM
    fmap.get_root().header.add_child(Element(MAP_CSS), name="kindred_map_dashboard_css")
    choropleth_layer(areas, area_name, area_tooltip).add_to(fmap)
    for name in OUTLINE_LAYERS:
        if name != level:
            boundary_layer(name, _cached_boundary_geojson(name), outline_only=True).add_to(fmap)
    for overlay in overlays:
        overlay.add_to(fmap)
    if search:
        search_layer(search["lat"], search["lon"], search["radius_m"], search["label"]).add_to(fmap)
    project_layer(projects, cluster=cluster).add_to(fmap)
    Legend(legend).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    west, south, east, north = bounds
    fmap.fit_bounds([[south, west], [north, east]])
    return fmap


@cache
def _cached_boundary_geojson(name: str) -> dict:
    return boundary_geojson(name)
