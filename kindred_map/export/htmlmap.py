"""The one-file HTML map: Leaflet inlined, projects and borough outlines, no server."""

import html
import json
from collections.abc import Mapping
from datetime import datetime

import geopandas as gpd
import pandas as pd
import shapely

from kindred_map import (
    assets,
    boundaries,
    privacy,
)
from kindred_map.export.tables import project_table, real_projects
from kindred_map.export.words import LEAFLET_CREDIT, about
from kindred_map.export.writers import _json_value, rfc7946_geometries
from kindred_map.schema import project_types

MAP_DECIMALS = 5
"""Borough outlines on the HTML map: about a metre, finer than the generalised boundaries."""

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
.km-panel {{ background: #fff; padding: 8px 10px; border-radius: 4px; max-width: 320px;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .3); }}
.km-panel h1 {{ font-size: 16px; margin: 0 0 4px; }}
.km-panel p {{ margin: 2px 0; }}
.km-swatch {{ display: inline-block; width: 12px; height: 12px; border-radius: 50%;
  border: 1px solid #222; margin-right: 6px; vertical-align: -1px; }}
.leaflet-container .leaflet-control-attribution {{ font-size: 11px; max-width: 70vw; }}
</style>
</head>
<body>
<div id="map" aria-label="Map of community projects"></div>
<noscript>This map needs JavaScript. The same projects are in the CSV and GeoJSON files.</noscript>
<script>
{leaflet_js}
</script>
<script>
"use strict";
var KINDRED = {data};
(function () {{
  var map = L.map("map", {{ zoomSnap: 0.25 }});
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(KINDRED.attribution);
  var outlines = L.geoJSON(KINDRED.boroughs, {{
    interactive: false,
    style: {{ color: "#1f2d3d", weight: 1.5, fill: false }}
  }}).addTo(map);
  var markers = L.featureGroup();
  KINDRED.projects.forEach(function (p) {{
    L.circleMarker([p.lat, p.lon], {{
      radius: 7, color: p.outside ? p.colour : "#222", weight: p.outside ? 3 : 1,
      fillColor: p.outside ? "#fff" : p.colour,
      fillOpacity: p.synthetic ? 0.3 : 0.9, dashArray: p.home_run ? "2 2" : null
    }}).bindPopup(p.popup).addTo(markers);
  }});
  markers.addTo(map);
  var panel = L.control({{ position: "topright" }});
  panel.onAdd = function () {{
    var div = L.DomUtil.create("div", "km-panel");
    div.innerHTML = KINDRED.panel;
    L.DomEvent.disableClickPropagation(div);
    return div;
  }};
  panel.addTo(map);
  // Fit the projects into the part of the map the panel and the credits leave free.
  var side = panel.getContainer().getBoundingClientRect().width;
  var foot = map.attributionControl.getContainer().getBoundingClientRect().height;
  var bounds = KINDRED.projects.length ? markers.getBounds() : outlines.getBounds();
  map.fitBounds(bounds, {{
    paddingTopLeft: [40, 40], paddingBottomRight: [side + 30, foot + 30], maxZoom: 14
  }});
  window.kindredMap = map;
  window.kindredMarkers = markers;
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


def _panel(table: pd.DataFrame, title: str, facts: Mapping, drawn: int) -> str:
    types = project_types()
    counts = table["type"].value_counts()
    legend = []
    for type_key, number in counts.items():
        spec = types.get(type_key, types["other"])
        label = spec["label"] if type_key in types else type_key
        legend.append(
            f'<p><span class="km-swatch" style="background:{html.escape(spec["colour"])}">'
            f"</span>{html.escape(label)}: {int(number)}</p>"
        )
    notes = [f"<p><strong>{html.escape(facts['notice'])}</strong></p>"] if "notice" in facts else []
    notes.append(f"<p>{drawn} of {len(table)} projects drawn. Generated {facts['generated']}.</p>")
    home_run = int(privacy.is_ward_only(table).sum())
    if home_run:
        notes.append(f"<p>{home_run} home-run project(s) (dashed) shown at the ward centre.</p>")
    outside = int((~table["in_region"].fillna(True).astype(bool)).sum())
    if outside:
        notes.append(
            f"<p>{outside} project(s) outside the region (hollow rings): counted in no area.</p>"
        )
    synthetic = int(table["synthetic"].fillna(False).sum())
    if synthetic:
        notes.append(f"<p>{synthetic} illustrative record(s) (faded): NOT real projects.</p>")
    for key, value in facts["parameters"].items():
        notes.append(f"<p>{html.escape(key)}: {html.escape(value)}</p>")
    return f"<h1>{html.escape(title)}</h1>" + "".join(legend) + "".join(notes)


def html_map(
    projects: gpd.GeoDataFrame,
    *,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    title: str = "Kindred Map: community projects",
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
) -> bytes:
    """One self-contained HTML file: Leaflet, data and styles inlined, no tiles, no URL fetched.

    Opens offline and from an e-mail attachment; each project is a circle marker with an
    escaped popup; home-run projects sit at their ward's centre, drawn dashed. Every text is
    data: escaped, and put in the page as a value (never as template source), so a project
    named ``{{7*7}}`` shows as typed. Synthetic records only with ``include_synthetic``, and
    then the page says so in its first lines."""
    projects = real_projects(projects, include_synthetic)
    table = project_table(projects, include_synthetic=True)
    facts = about(projects, "projects map", parameters, generated, settings)
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
    warning = f"<!-- {facts['notice']} -->\n" if "notice" in facts else ""
    shown_title = f"ILLUSTRATIVE DATA: {title}" if "notice" in facts else title
    data = {
        "projects": markers,
        "boroughs": {
            "type": "GeometryCollection",
            "geometries": [json.loads(shapely.to_geojson(g)) for g in outlines],
        },
        "attribution": " | ".join(
            html.escape(line) for line in [*facts["attribution"], LEAFLET_CREDIT]
        ),
        "panel": _panel(table, shown_title, facts, len(markers)),
    }
    page = HTML_TEMPLATE.format(
        notice=warning,
        title=html.escape(shown_title),
        leaflet_css=assets.inline_css(("leaflet",)),
        leaflet_js=assets.inline_js(("leaflet",)),
        data=_script_json(data),
    )
    return page.encode("utf-8")
