"""The one-file HTML map: Leaflet inlined, shaded areas, their names, a legend and the projects."""

import html
import json
from collections.abc import Mapping
from datetime import datetime

import geopandas as gpd
import pandas as pd
import shapely
from shapely.ops import polylabel

from kindred_map import (
    assets,
    boundaries,
    privacy,
)
from kindred_map.classing import (
    AREA_OPACITY,
    DIRECTIONS,
    colour_classes,
    number_text,
    type_legend,
)
from kindred_map.export.tables import (
    LEVEL_COLUMNS,
    LEVELS,
    area_summary,
    project_table,
    reach_distance,
    real_projects,
)
from kindred_map.export.words import LEAFLET_CREDIT, about
from kindred_map.export.writers import _json_value, rfc7946_geometries
from kindred_map.figures import DEANERY_NOTE, GAP_MEASURES, MEASURES
from kindred_map.schema import project_types

MAP_DECIMALS = 5
"""Area shapes on the HTML map: about a metre, finer than the generalised boundaries."""
LABEL_TOLERANCE_M = 50.0
"""Precision of an area name's anchor (the pole of inaccessibility of its largest part)."""
SUMMARY_MEASURES = {
    "projects": "projects",
    "per_10k": "projects_per_10k",
    "gap_score": "gap_score",
    "gap_per_1000": "gap_per_1000",
}
"""The dashboard's measures the pack's area summaries carry (measure -> summary column): the
map shades by exactly the figures of ``<level>_summary.csv``. Decision: IMD deciles are not in
the summaries, so the pack's map does not shade by them (the dashboard and printed map do)."""
PLURALS = {"ward": "Wards", "deanery": "Deaneries", "borough": "Boroughs"}

POPUP_FIELDS = (
    ("organisation", "Organisation"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("opening_hours", "Opening hours"),
    ("website", "Website"),
    ("parish", "Parish"),
    ("WD24NM", "Ward"),
    ("LAD25NM", "Borough"),
    ("nearest_borough", "Outside the region; nearest borough"),
    ("deanery_name", "Deanery (approximate)"),
    ("last_checked", "Last checked"),
)

HTML_TEMPLATE = """<!DOCTYPE html>
{notice}<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{leaflet_css}
</style>
<style>
html, body {{ height: 100%; margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1f2d3d; }}
#map {{ position: absolute; inset: 0; background: #eef1f4; }}
.km-panel {{ background: #fff; padding: 8px 10px; border-radius: 4px; width: 300px;
  max-width: calc(100vw - 70px); max-height: calc(100vh - 70px); overflow-y: auto;
  box-sizing: border-box; box-shadow: 0 1px 4px rgba(0, 0, 0, .3); }}
.km-panel summary {{ cursor: pointer; }}
.km-panel h1 {{ display: inline; font-size: 16px; margin: 0; }}
.km-panel p {{ margin: 2px 0; }}
.km-panel label {{ display: block; margin: 6px 0 2px; font-weight: 600; }}
.km-panel select {{ font: inherit; width: 100%; }}
.km-help {{ font-size: 12px; color: #4a5561; }}
.km-ramp {{ display: flex; margin: 6px 0 2px; }}
.km-step {{ flex: 1; text-align: center; font-size: 11px; line-height: 1.2;
  overflow-wrap: anywhere; }}
.km-bar {{ display: block; height: 12px; border: 1px solid #888; margin: 0 -0.5px 2px;
  background: #fff; }}
.km-bar span {{ display: block; height: 100%; }}
.km-direction {{ font-style: italic; font-size: 12px; }}
.km-note {{ font-size: 12px; color: #4a5561; }}
.km-swatch {{ display: inline-block; width: 12px; height: 12px; border-radius: 50%;
  border: 1px solid #222; margin-right: 6px; vertical-align: -1px; }}
.km-sources {{ font-size: 12px; margin-top: 6px; }}
.km-sources li {{ margin: 2px 0; }}
.km-sources ul {{ padding-left: 16px; margin: 4px 0; }}
.km-label {{ background: none; border: none; }}
.km-label span {{ display: inline-block; transform: translate(-50%, -50%); white-space: nowrap;
  font: 600 12px/1.2 system-ui, sans-serif; color: #1f2d3d; padding: 0 2px;
  background: rgba(255, 255, 255, .72); border-radius: 2px; pointer-events: none; }}
.leaflet-container .leaflet-control-attribution {{ font-size: 11px; max-width: 70vw; }}
@media (max-width: 699px) {{
  .km-panel {{ max-height: 55vh; }}
  .km-label span {{ font-size: 11px; }}
}}
</style>
</head>
<body>
<div id="map" role="region" aria-label="Map of community projects and coverage by area"></div>
<noscript>This map needs JavaScript. The same projects and area figures are in the CSV and
GeoJSON files.</noscript>
<script>
{leaflet_js}
</script>
<script>
"use strict";
var KINDRED = {data};
(function () {{
  var map = L.map("map", {{ zoomSnap: 0.25 }});
  map.attributionControl.setPrefix(false);
  // A phone shows one line of credits; every line is in the panel's "Sources and licences".
  map.attributionControl.addAttribution(
    window.innerWidth >= 700 ? KINDRED.attribution : KINDRED.shortAttribution);
  map.createPane("km-labels").style.zIndex = 450;  // names over the areas,
  map.createPane("km-projects").style.zIndex = 460;  // the projects over the names
  function element(parent, tag, className, text) {{
    var node = document.createElement(tag);
    if (className) {{ node.className = className; }}
    if (text !== undefined && text !== null) {{ node.textContent = text; }}
    if (parent) {{ parent.appendChild(node); }}
    return node;
  }}
  var state = {{ level: KINDRED.start.level, measure: KINDRED.start.measure }};
  var areaLayer = null, outlineLayer = null, labelLayer = L.layerGroup().addTo(map);
  var labels = [];

  var markers = L.featureGroup();
  KINDRED.projects.forEach(function (p) {{
    L.circleMarker([p.lat, p.lon], {{
      radius: 7, color: p.outside ? p.colour : "#222", weight: p.outside ? 3 : 1,
      fillColor: p.outside ? "#fff" : p.colour,
      fillOpacity: p.synthetic ? 0.3 : 0.9, dashArray: p.home_run ? "2 2" : null,
      pane: "km-projects"
    }}).bindPopup(p.popup).addTo(markers);
  }});

  var panel = L.control({{ position: "topright" }});
  var parts = {{}};
  panel.onAdd = function () {{
    var div = L.DomUtil.create("div", "km-panel");
    var fold = element(div, "details");
    if (window.innerWidth >= 700) {{ fold.open = true; }}
    var summary = element(fold, "summary");
    element(summary, "h1", null, KINDRED.title);
    KINDRED.intro.forEach(function (line) {{ element(fold, "p", "km-note", line); }});
    var levelLabel = element(fold, "label", null, "Areas");
    levelLabel.htmlFor = "km-level";
    parts.level = element(fold, "select");
    parts.level.id = "km-level";
    KINDRED.levels.forEach(function (level, index) {{
      var option = element(parts.level, "option", null, level.label);
      option.value = String(index);
    }});
    var measureLabel = element(fold, "label", null, "Shaded by");
    measureLabel.htmlFor = "km-measure";
    parts.measure = element(fold, "select");
    parts.measure.id = "km-measure";
    parts.legend = element(fold, "div", "km-legend");
    parts.projects = element(fold, "div", "km-types");
    KINDRED.types.forEach(function (entry) {{
      var row = element(parts.projects, "p");
      var dot = element(row, "span", "km-swatch");
      dot.style.background = entry.colour;
      row.appendChild(document.createTextNode(entry.label + ": " + entry.count));
    }});
    KINDRED.notes.forEach(function (line) {{ element(fold, "p", "km-note", line); }});
    var sources = element(fold, "details", "km-sources");
    element(sources, "summary", null, "Sources and licences");
    element(sources, "p", "km-note", "Licences of each source:");
    var list = element(sources, "ul");
    KINDRED.licences.forEach(function (line) {{ element(list, "li", null, line); }});
    element(sources, "p", "km-note", "Attribution (quote these lines when you reuse the data):");
    list = element(sources, "ul");
    KINDRED.attributionLines.forEach(function (line) {{ element(list, "li", null, line); }});
    parts.level.addEventListener("change", function () {{
      // The same measure on the new level where it has it (all levels carry the same ones).
      var key = KINDRED.levels[state.level].measures[state.measure].key;
      state.level = Number(parts.level.value);
      var keys = KINDRED.levels[state.level].measures.map(function (m) {{ return m.key; }});
      state.measure = Math.max(0, keys.indexOf(key));
      draw();
    }});
    parts.measure.addEventListener("change", function () {{
      state.measure = Number(parts.measure.value);
      draw();
    }});
    fold.addEventListener("toggle", placeLabels);
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  }};
  panel.addTo(map);

  function legend(level, measure) {{
    var box = parts.legend;
    box.textContent = "";
    element(box, "p", "km-help", measure.help);
    var ramp = element(box, "div", "km-ramp");
    measure.classes.forEach(function (entry) {{
      var step = element(ramp, "div", "km-step");
      var bar = element(element(step, "span", "km-bar"), "span");
      bar.style.background = entry.colour;
      bar.style.opacity = KINDRED.opacity;
      step.appendChild(document.createTextNode(entry.label));
    }});
    element(box, "p", "km-direction", measure.direction);
    measure.notes.concat(level.notes).forEach(function (line) {{
      element(box, "p", "km-note", line);
    }});
  }}

  function tooltip(level, measure, index) {{
    var box = element(null, "div");
    element(box, "strong", null, level.names[index]);
    element(box, "div", null, measure.label + ": " + measure.values[index]);
    return box;
  }}

  function draw() {{
    var level = KINDRED.levels[state.level];
    var measure = level.measures[state.measure];
    parts.level.value = String(state.level);
    parts.measure.textContent = "";
    level.measures.forEach(function (m, index) {{
      var option = element(parts.measure, "option", null, m.label);
      option.value = String(index);
    }});
    parts.measure.value = String(state.measure);
    if (areaLayer) {{ map.removeLayer(areaLayer); }}
    if (outlineLayer) {{ map.removeLayer(outlineLayer); outlineLayer = null; }}
    areaLayer = L.geoJSON(level.areas, {{
      style: function (feature) {{
        return {{ color: "#ffffff", weight: 0.8, fillOpacity: KINDRED.opacity,
          fillColor: measure.fill[feature.properties.i] }};
      }},
      onEachFeature: function (feature, layer) {{
        layer.bindTooltip(function () {{
          return tooltip(level, measure, feature.properties.i);
        }}, {{ sticky: true }});
      }}
    }}).addTo(map);
    if (level.key !== "borough") {{
      outlineLayer = L.geoJSON(KINDRED.boroughs, {{
        interactive: false, style: {{ color: "#1f2d3d", weight: 1.5, fill: false }}
      }}).addTo(map);
    }}
    markers.addTo(map);
    legend(level, measure);
    labelLayer.clearLayers();
    labels = level.labels.map(function (spot) {{
      var name = element(null, "span", null, level.names[spot[0]]);  // text, never markup
      L.marker([spot[1], spot[2]], {{
        icon: L.divIcon({{ className: "km-label", html: name, iconSize: null }}),
        interactive: false, keyboard: false, pane: "km-labels"
      }}).addTo(labelLayer);
      return name;
    }});
    placeLabels();
  }}

  function overlaps(a, b) {{
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }}

  // Names by priority (largest area first), each dropped where it would touch a name already
  // shown, a control (the legend, zoom buttons, credits) or the map's edge.
  function placeLabels() {{
    var frame = map.getContainer().getBoundingClientRect();
    var blocked = [].slice.call(map.getContainer().querySelectorAll(".leaflet-control"))
      .map(function (control) {{ return control.getBoundingClientRect(); }});
    var kept = [];
    labels.forEach(function (label) {{ label.style.visibility = "hidden"; }});
    labels.forEach(function (label) {{
      var box = label.getBoundingClientRect();
      var grown = {{ left: box.left - 3, right: box.right + 3, top: box.top - 2,
        bottom: box.bottom + 2 }};
      var inside = box.left >= frame.left && box.right <= frame.right &&
        box.top >= frame.top && box.bottom <= frame.bottom;
      if (!inside || blocked.some(function (b) {{ return overlaps(grown, b); }}) ||
          kept.some(function (b) {{ return overlaps(grown, b); }})) {{ return; }}
      label.style.visibility = "visible";
      kept.push(box);
    }});
  }}

  draw();
  // Fit the areas into the part of the map the panel and the credits leave free.
  var wide = window.innerWidth >= 700;
  var side = wide ? panel.getContainer().getBoundingClientRect().width : 0;
  var top = wide ? 0 : panel.getContainer().getBoundingClientRect().height;
  var foot = map.attributionControl.getContainer().getBoundingClientRect().height;
  map.fitBounds(areaLayer.getBounds(), {{
    paddingTopLeft: [20, top + 20], paddingBottomRight: [side + 20, foot + 10], maxZoom: 14
  }});
  placeLabels();
  map.on("zoomend moveend resize", placeLabels);
  window.kindredMap = map;
  window.kindredMarkers = markers;
  window.kindredAreas = function () {{ return areaLayer; }};
}}());
</script>
</body>
</html>
"""


def _script_json(value) -> str:
    """JSON safe inside a <script> element: no character can close the element."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for character, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(character, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _popup(record: Mapping) -> str:
    """Popup HTML for one project; every value is escaped text."""
    parts = [
        f"<strong>{html.escape(str(record['name'] or 'Unnamed project'))}</strong>",
        html.escape(str(record["type_label"] or record["type"] or "")),
    ]
    for column, label in POPUP_FIELDS:
        value = _json_value(record[column])
        if value not in (None, ""):
            parts.append(f"{html.escape(label)}: {html.escape(str(value))}")
    if _json_value(record["synthetic"]) is True:
        parts.append("<em>Illustrative example: NOT a real project</em>")
    if _json_value(record["location_note"]):
        parts.append(f"<em>{html.escape(str(record['location_note']))}</em>")
    return "<br>".join(parts)


def _intro(table: pd.DataFrame, facts: Mapping, drawn: int) -> list[str]:
    """The panel's plain-text lines under its title: what is drawn and what is approximate."""
    lines = [facts["notice"]] if "notice" in facts else []
    lines.append(f"{drawn} of {len(table)} projects drawn. Generated {facts['generated']}.")
    return lines


def _notes(table: pd.DataFrame, facts: Mapping) -> list[str]:
    """The notes under the project types: how home-run, outside and illustrative projects are
    drawn, then the export's parameters."""
    notes = []
    home_run = int(privacy.is_ward_only(table).sum())
    if home_run:
        notes.append(
            f"{home_run} home-run project(s) (dashed) shown at the ward centre, never at the home."
        )
    outside = int((~table["in_region"].fillna(True).astype(bool)).sum())
    if outside:
        notes.append(f"{outside} project(s) outside the region (hollow rings): counted in no area.")
    synthetic = int(table["synthetic"].fillna(False).sum())
    if synthetic:
        notes.append(f"{synthetic} illustrative record(s) (faded): NOT real projects.")
    notes += [f"{key}: {value}" for key, value in facts["parameters"].items()]
    return notes


def _label_points(areas: gpd.GeoDataFrame) -> list[list]:
    """``[area index, lat, lon]`` of each area's name, largest area first (the order names are
    kept in when they would collide): the pole of inaccessibility of its largest part, so a
    name sits well inside a ragged or hollow area."""
    grid = areas.to_crs(boundaries.BNG).geometry
    anchors = []
    for index, shape in enumerate(grid):
        if shape is None or shape.is_empty:
            continue
        parts = list(getattr(shape, "geoms", [shape]))
        largest = max(parts, key=lambda part: part.area)
        anchors.append((shape.area, index, polylabel(largest, LABEL_TOLERANCE_M)))
    anchors.sort(key=lambda anchor: (-anchor[0], anchor[1]))
    points = gpd.GeoSeries([a[2] for a in anchors], crs=boundaries.BNG).to_crs(boundaries.WGS84)
    return [
        [index, round(point.y, MAP_DECIMALS), round(point.x, MAP_DECIMALS)]
        for (_, index, _), point in zip(anchors, points, strict=True)
    ]


def _gap_note(measure: str, distance: float | None) -> list[str]:
    if measure not in GAP_MEASURES:
        return []
    reach = f"{distance:,.0f} m" if distance is not None else "the chosen distance"
    return [
        f"Need-weighted residents beyond {reach} (straight line) of the chosen project types; "
        "see the README's method."
    ]


def area_layers(
    summaries: Mapping[str, gpd.GeoDataFrame], distance: float | None = None
) -> list[dict]:
    """Each area level of the map as data: shapes (RFC 7946, WGS84), names, name anchors and,
    per measure the summary carries, every area's fill and value text and the legend (classes
    and colours of `classing.colour_classes`, as on the dashboard and the printed map)."""
    layers = []
    for level in LEVELS:
        summary = summaries.get(level)
        if summary is None or summary.empty:
            continue
        summary = summary.to_crs(boundaries.WGS84).reset_index(drop=True)
        shapes = rfc7946_geometries(summary.geometry.to_numpy(), MAP_DECIMALS)
        codes = summary[boundaries.LAYERS[level]["key"]].astype("string").fillna("")
        features = [
            {
                "type": "Feature",
                "id": code,
                "properties": {"i": index},
                "geometry": json.loads(shapely.to_geojson(shape)),
            }
            for index, (code, shape) in enumerate(zip(codes, shapes, strict=True))
            if shape is not None and not shape.is_empty
        ]
        measures = []
        for measure, column in SUMMARY_MEASURES.items():
            if column not in summary.columns or summary[column].isna().all():
                continue
            values = pd.to_numeric(summary[column], errors="coerce").astype(float)
            fills, classes = colour_classes(values, measure)
            decimals = MEASURES[measure]["decimals"]
            measures.append(
                {
                    "key": measure,
                    "label": MEASURES[measure]["label"],
                    "help": MEASURES[measure]["help"],
                    "direction": DIRECTIONS[measure],
                    "classes": classes,
                    "fill": fills.tolist(),
                    "values": [number_text(v, decimals) for v in values],
                    "notes": _gap_note(measure, distance),
                }
            )
        names = summary[LEVEL_COLUMNS[level][1]].astype("string").fillna("")
        layers.append(
            {
                "key": level,
                "label": PLURALS[level],
                "areas": {"type": "FeatureCollection", "features": features},
                "names": names.tolist(),
                "labels": _label_points(summary),
                "measures": measures,
                "notes": [DEANERY_NOTE] if level == "deanery" else [],
            }
        )
    return layers


def _start(layers: list[dict]) -> dict:
    """The view the map opens on: wards (the dashboard's default level) by the gap score when
    the pack has coverage figures, else by projects (the dashboard's default measure)."""
    level = next((n for n, layer in enumerate(layers) if layer["key"] == "ward"), 0)
    keys = [measure["key"] for measure in layers[level]["measures"]] if layers else []
    measure = keys.index("gap_score") if "gap_score" in keys else 0
    return {"level": level, "measure": measure}


def html_map(
    projects: gpd.GeoDataFrame,
    *,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    title: str = "Kindred Map: community projects",
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    summaries: Mapping[str, gpd.GeoDataFrame] | None = None,
    table: gpd.GeoDataFrame | None = None,
) -> bytes:
    """One self-contained HTML file: Leaflet, data and styles inlined, no tiles, no URL fetched.

    Opens offline and from an e-mail attachment. The wards, deaneries and boroughs (those
    ``area_filters`` keep) are shaded by the summaries' figures in the dashboard's classes and
    colours, chosen from two lists, with a legend (the measure's meaning, classes, which way is
    better, the approximate-deanery note), the areas' names (largest first, dropped where they
    would collide) and the sources and licences. ``summaries`` (level -> `area_summary`, as the
    pack has them) are computed from ``coverage`` and ``area_filters`` when not given. Each
    project is a circle marker with an escaped popup, from `project_table` (home-run projects
    at their ward's centre, drawn dashed); ``table``, that table as the pack has it, is made
    from ``projects`` when not given. Every text is data: escaped, and put in the page as
    a JSON value or set as text (never as template source), so a project named ``{{7*7}}``
    shows as typed. Synthetic records only with ``include_synthetic``, and then the page says
    so in its first lines."""
    projects = real_projects(projects, include_synthetic)
    if table is None:
        table = project_table(projects, include_synthetic=True)
    facts = about(projects, "projects map", parameters, generated, settings)
    if summaries is None:
        summaries = {
            level: area_summary(
                projects, level, (coverage or {}).get(level), area_filters, include_synthetic=True
            )
            for level in LEVELS
        }
    types = project_types()
    located = table[table.geometry.notna() & ~table.geometry.is_empty]
    markers = []
    for record in located.drop(columns="geometry").to_dict("records"):
        colour = types.get(record["type"], types["other"])["colour"]
        markers.append(
            {
                "lat": float(record["lat"]),
                "lon": float(record["lon"]),
                "colour": colour,
                "home_run": record["location_precision"] == privacy.WARD_ONLY,
                "synthetic": _json_value(record["synthetic"]) is True,
                "outside": _json_value(record["in_region"]) is False,
                "popup": _popup(record),
            }
        )
    outlines = rfc7946_geometries(boundaries.load("borough").geometry.to_numpy(), MAP_DECIMALS)
    layers = area_layers(summaries, reach_distance(coverage))
    warning = f"<!-- {facts['notice']} -->\n" if "notice" in facts else ""
    shown_title = f"ILLUSTRATIVE DATA: {title}" if "notice" in facts else title
    data = {
        "title": shown_title,
        "intro": _intro(table, facts, len(markers)),
        "projects": markers,
        "types": type_legend(table),
        "notes": _notes(table, facts),
        "levels": layers,
        "start": _start(layers),
        "opacity": AREA_OPACITY,
        "boroughs": {
            "type": "GeometryCollection",
            "geometries": [json.loads(shapely.to_geojson(g)) for g in outlines],
        },
        "attribution": " | ".join(
            html.escape(line) for line in [*facts["attribution"], LEAFLET_CREDIT]
        ),
        "shortAttribution": "Data sources, attribution and licences: in the panel (tap its "
        "title), under Sources and licences",
        "attributionLines": [*facts["attribution"], LEAFLET_CREDIT],
        "licences": [f"{name}: {licence}" for name, licence in facts["licences"].items()],
    }
    page = HTML_TEMPLATE.format(
        notice=warning,
        title=html.escape(shown_title),
        leaflet_css=assets.inline_css(("leaflet",)),
        leaflet_js=assets.inline_js(("leaflet",)),
        data=_script_json(data),
    )
    return page.encode("utf-8")
