"""The dashboard map of a view: shaded areas, markers, search circle, gap and cluster layers."""

import json
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from kindred_map import (
    assets,
    boundaries,
    clusters,
    coverage,
    export,
    geocode,
    hours,
    maps,
    popups,
    privacy,
    store,
)
from kindred_map.classing import DIRECTIONS, colour_classes, number_text, type_legend
from kindred_map.colours import legend_notes
from kindred_map.figures import (
    LEVELS,
    MEASURES,
    area_choices,
    area_deprivation,
    area_figures,
    areas_in_view,
    needs_coverage,
)
from kindred_map.location import Setting
from kindred_map.paths import PUBLISHED_PROJECT_FILES
from kindred_map.schema import project_types
from kindred_map.search import find_postcode
from kindred_map.view import DEFAULT_VIEW, View, filter_masked, shown_projects


def warm_up(location: Setting = None) -> None:
    """Read and build once what the first page needs (boundary layers, area lists, deprivation
    by area, the postcode index, the map's static files of the store at ``location``, default
    the configured one), so the first visitor of a fresh server waits for none of it.
    `kindred-map dashboard` calls it before Streamlit starts.
    """
    for level in LEVELS:
        area_choices(level)
        area_deprivation(level)
    geocode.postcode_index()
    build_map(store.read_projects(location), DEFAULT_VIEW)


def area_from_click(drawing, level: str) -> str | None:
    """The code of the clicked area of ``level`` from st_folium's last_active_drawing, if any."""
    if not isinstance(drawing, Mapping):
        return None
    properties = drawing.get("properties") or {}
    if not isinstance(properties, Mapping) or properties.get("level") != level:
        return None
    code = str(properties.get("code") or "")
    return code if code in area_choices(level) else None


def bounds_of(level: str, codes: Iterable[str]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the given areas in WGS84; the whole region when none."""
    layer = boundaries.load(level)
    keys = boundaries.code_texts(layer[boundaries.LAYERS[level]["key"]])
    chosen = layer[keys.isin(list(codes)).to_numpy()]
    frame = chosen if len(chosen) else boundaries.load("borough")
    west, south, east, north = frame.total_bounds
    return float(west), float(south), float(east), float(north)


def _search_bounds(point: Mapping, radius_m: float) -> tuple[float, float, float, float]:
    circle = gpd.GeoSeries(
        [shapely.Point(point["easting"], point["northing"]).buffer(radius_m * 1.15)],
        crs=boundaries.BNG,
    ).to_crs(boundaries.WGS84)
    west, south, east, north = circle.total_bounds
    return float(west), float(south), float(east), float(north)


def _rounded_geojson(frame: gpd.GeoDataFrame, properties: pd.DataFrame) -> dict:
    geometries = shapely.transform(
        np.asarray(frame.geometry), lambda xy: np.round(xy, maps.COORDINATE_DECIMALS)
    )
    features = [
        {
            "type": "Feature",
            "id": str(index),
            "properties": row,
            "geometry": json.loads(shapely.to_geojson(geometry)),
        }
        for index, (geometry, row) in enumerate(
            zip(geometries, properties.to_dict("records"), strict=True)
        )
        if geometry is not None and not shapely.is_empty(geometry)
    ]
    return {"type": "FeatureCollection", "features": features}


def gap_overlay(
    projects: gpd.GeoDataFrame, view: View, shown: gpd.GeoDataFrame | None = None
) -> dict:
    """The part of the region beyond reach of the chosen types (not clickable: areas below are).

    With ``view.open_at`` only projects open then draw a circle: unknown hours count as not
    open here, as in `coverage.assess` (the headline gives the unknown-hours count).
    ``shown``: `shown_projects` of ``projects`` and ``view``, when the caller has it already."""
    shown = shown_projects(projects, view) if shown is None else shown
    chosen = projects[projects["id"].isin(shown["id"])]
    when = ""
    if view.open_at:
        window = hours.window(view.open_at)
        status = coverage.open_status(chosen, window)
        chosen = chosen[status.eq(True).fillna(False).to_numpy(dtype=bool)]
        when = f" Only projects open {window.label} count; unknown hours count as not open."
    surface = coverage.gap_surface(
        chosen, list(view.types) or None, view.distance, include_outside=not view.inside_only
    )
    properties = pd.DataFrame({"note": surface["note"].astype(str) + when})
    return {
        "geojson": _rounded_geojson(surface, properties),
        "style": maps.GAP_STYLE,
        "interactive": False,
        "tooltip": [],
    }


def cluster_overlay(
    projects: gpd.GeoDataFrame, view: View, shown: gpd.GeoDataFrame | None = None
) -> dict:
    """DBSCAN clusters of the shown projects' true positions (home-run projects left out);
    illustrative records counted apart ("n illustrative"), when the view shows them.
    ``shown``: `shown_projects` of ``projects`` and ``view``, when the caller has it already."""
    shown = shown_projects(projects, view) if shown is None else shown
    chosen = projects[projects["id"].isin(shown["id"])]
    hulls = clusters.point_clusters(chosen, list(view.types) or None, view.eps, view.min_samples)
    labels = {f"n_{kind}": spec["label"].lower() for kind, spec in project_types().items()}
    labels["n_synthetic"] = "illustrative, not real"
    summary = []
    for row in hulls.to_dict("records"):
        parts = [
            f"{row[column]} {labels.get(column, column.removeprefix('n_'))}"
            for column in hulls.columns
            if column.startswith("n_") and row[column]
        ]
        summary.append(f"{row['projects']} projects: {', '.join(parts)}")
    properties = pd.DataFrame({"cluster": hulls["cluster_id"].astype(str), "summary": summary})
    return {
        "geojson": _rounded_geojson(hulls, properties),
        "style": maps.CLUSTER_HULL_STYLE,
        "interactive": True,
        "tooltip": [["cluster", "Cluster"], ["summary", "Projects"]],
    }


# --- static files: what stays the same while filters change --------------------------------


def _area_geojson(level: str) -> dict:
    """The areas of ``level`` as GeoJSON (rounded), each with its index, code, level, label,
    population, IMD text and note."""
    figures = area_figures(level, pd.DataFrame())
    layer = boundaries.load(level)
    codes = boundaries.code_texts(layer[boundaries.LAYERS[level]["key"]])
    rows = figures.loc[codes]
    label = rows["name"] + (" (" + rows["borough"] + ")" if level == "ward" else "")
    properties = pd.DataFrame(
        {
            "index": range(len(rows)),
            "code": codes.to_numpy(),
            "level": level,
            "name": label.to_numpy(),
            "population": [f"{int(v):,}" for v in rows["population"]],
            "imd": [number_text(v, 0) for v in rows["imd_decile"]],
        }
    )
    if level == "deanery":
        properties["note"] = "approximate (derived), not official"
    return _rounded_geojson(layer, properties)


@cache
def area_order(level: str) -> pd.Index:
    """Codes of ``level`` in the order of the layers file's areas (their ``index``)."""
    layer = boundaries.load(level)
    return pd.Index(boundaries.code_texts(layer[boundaries.LAYERS[level]["key"]]))


def outline_names(level: str) -> list[str]:
    """The reference outlines drawn over areas of ``level`` (never a layer over itself)."""
    return [name for name in maps.OUTLINE_LAYERS if name != level]


def _outline_geojson(name: str) -> dict:
    """A reference outline layer (boroughs, deaneries) as bare GeoJSON geometry."""
    layer = boundaries.load(name)
    return _rounded_geojson(layer, pd.DataFrame(index=range(len(layer))))


def place_residents() -> pd.Series:
    """Census 2021 residents nearest each place label, in the place layer's order: a town's
    are those of the postcodes nearer it than any other town, a suburb's or village's those
    nearer it than any other place (postcodes' apportioned residents). A label's priority,
    not a population figure of the place (OS Open Names gives none, and a place has no
    boundary)."""
    places = boundaries.load("place").to_crs(boundaries.BNG)
    postcodes = boundaries.region_postcodes(boundaries.load("postcode"))
    lived = postcodes[(postcodes["residents"] > 0) & postcodes["easting"].notna()]
    where = lived[["easting", "northing"]].to_numpy(dtype=float)
    towns = places["kind"].eq("town").to_numpy()

    def nearest_residents(chosen: np.ndarray) -> np.ndarray:
        """Residents per place of ``places[chosen]`` (each postcode to its nearest one)."""
        candidates = places[chosen]
        tree = cKDTree(np.column_stack([candidates.geometry.x, candidates.geometry.y]))
        _, nearest = tree.query(where)
        counts = np.zeros(len(places))
        counts[chosen] = np.bincount(nearest, lived["residents"], minlength=len(candidates))
        return counts

    among_towns = nearest_residents(towns)
    among_all = nearest_residents(np.ones(len(places), dtype=bool))
    return pd.Series(np.where(towns, among_towns, among_all).astype(int), index=places.index)


def place_records() -> list[dict]:
    """The place labels (OS Open Names towns, suburbs, villages) in the order dashboard.js
    places them, dropping any that would overlap one placed before: towns and cities before
    suburbs and villages, each by the residents nearest it (`place_residents`), then by name."""
    places = boundaries.load("place")
    order = pd.DataFrame(
        {
            "town": places["kind"].ne("town"),
            "residents": -place_residents(),
            "name": places["name"],
        }
    ).sort_values(["town", "residents", "name"], kind="stable")
    chosen = places.loc[order.index]
    return [
        {"name": name, "kind": kind, "lat": round(point.y, 4), "lon": round(point.x, 4)}
        for name, kind, point in zip(chosen["name"], chosen["kind"], chosen.geometry, strict=True)
    ]


@cache
def layers_json(level: str) -> bytes:
    """The map's fixed layers for areas of ``level`` as JSON: the areas, the outlines drawn
    over them (`outline_names` order) and the place labels."""
    layers = {
        "areas": _area_geojson(level),
        "outlines": [_outline_geojson(name) for name in outline_names(level)],
        "places": place_records(),
    }
    return json.dumps(layers, separators=(",", ":")).encode()


@cache
def layers_file(level: str) -> str:
    """URL of `layers_json`, served once and kept by the browser. One file, because every
    request of a new visitor's page waits its turn on the server and for one of the browser's
    few connections."""
    return assets.publish(f"layers-{level}", layers_json(level))


POPUP_CHUNK = 500
"""Popups are fetched in files of this many projects, only when one of them is opened."""


def project_files(
    projects: gpd.GeoDataFrame, today: date | None = None, masked: gpd.GeoDataFrame | None = None
) -> dict:
    """The store's projects as they may leave the tool (`privacy.public_records`), as static
    files: marker arrays (positions, types, names) and popups in chunks. Returns their URLs and
    the project ids in marker order (sorted by type, borough and ward, so that a filter's
    projects form few runs). Built once per store and day: a filter change sends only runs of
    indices. A save that makes a position private removes these files at once
    (`kindred_map.store.forget_published_positions`). ``masked``: the projects as
    `privacy.public_records` gives them, when the caller keeps that already."""
    masked = privacy.public_records(projects) if masked is None else masked
    located = masked[masked.geometry.notna() & ~masked.geometry.is_empty]
    located = located.sort_values(
        ["type", "LAD25CD", "WD24CD", "id"], kind="stable", key=lambda s: s.astype(str)
    )
    markers, popup_texts = popups.marker_data(located, today)
    marker_file, popup_file, _ = PUBLISHED_PROJECT_FILES
    popup_urls = [
        assets.publish(popup_file, json.dumps(popup_texts[i : i + POPUP_CHUNK]).encode())
        for i in range(0, len(popup_texts), POPUP_CHUNK)
    ]
    markers_json = json.dumps(markers, separators=(",", ":")).encode()
    return {
        "projects": assets.publish(marker_file, markers_json),
        "projects_json": markers_json,
        "popups": popup_urls,
        "order": pd.Index(located["id"].astype(str)),
    }


def project_files_served(files: Mapping) -> bool:
    """Whether every file `project_files` wrote is still there to be served (a store write
    removes them, even another store's on the same install)."""
    return all(assets.is_published(url) for url in [files["projects"], *files["popups"]])


def map_script(level: str, files: Mapping) -> str:
    """URL of the map's one script file for areas of ``level`` and this store (`project_files`):
    the map's code with its layers and marker files inside (`assets.combined_js` data), so
    that a new visitor's map needs no request after its code. A file per level and store
    (the code repeated in each: about 0.25 MB, fetched once per level a visitor shows); it carries
    marker positions, so it is one of `kindred_map.paths.PUBLISHED_PROJECT_FILES`
    ("projectmap"), removed when a save makes a position private."""
    data = {layers_file(level): layers_json(level), files["projects"]: files["projects_json"]}
    return assets.combined_js(data=data, prefix=PUBLISHED_PROJECT_FILES[-1])


# --- the map: fixed layers, then one payload per view ---------------------------------------


def map_options(level: str, files: Mapping, cluster_markers: bool = True) -> dict:
    """What dashboard.js needs to draw the fixed layers of a map shading ``level``."""
    west, south, east, north = bounds_of("borough", [])
    return {
        "layersUrl": layers_file(level),
        "areaLabel": LEVELS[level]["label"],
        "noun": LEVELS[level]["noun"],
        "imdLabel": "IMD 2025 decile" if level == "lsoa" else "IMD 2025 decile (weighted)",
        "outlines": [
            {
                "label": maps.BOUNDARY_LAYERS[name]["label"],
                "style": maps.BOUNDARY_LAYERS[name]["style"] | {"fill": False},
            }
            for name in outline_names(level)
        ],
        "placesLabel": "Place names (OS Open Names)",
        "placeZooms": maps.PLACE_ZOOMS,
        "projectsUrl": files["projects"],
        "projectsLabel": "Projects",
        "popupUrls": files["popups"],
        "popupChunk": POPUP_CHUNK,
        "grouped": cluster_markers,
        "cluster": maps.CLUSTER_OPTIONS,
        "radius": maps.PROJECT_RADIUS,
        "outline": maps.PROJECT_OUTLINE,
        "areaStyle": maps.AREA_STYLE,
        "hoverStyle": maps.AREA_HOVER,
        "selectedStyle": maps.AREA_SELECTED,
        "bounds": [[south, west], [north, east]],
        "maxFitZoom": 16,
        "heightMargin": maps.MAP_HEIGHT_MARGIN,
        "loading": "Loading...",
    }


def _runs(positions: np.ndarray) -> list[list[int]]:
    """Sorted marker indices as [start, stop) runs: [0, 1, 2, 7] -> [[0, 3], [7, 8]]."""
    if not len(positions):
        return []
    positions = np.sort(positions)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(positions)]])
    pairs = zip(starts, stops, strict=True)
    return [[int(positions[a]), int(positions[b - 1]) + 1] for a, b in pairs]


def view_payload(
    projects: gpd.GeoDataFrame,
    view: View,
    files: Mapping,
    *,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
    masked: gpd.GeoDataFrame | None = None,
) -> dict:
    """One view's data for the map: each area's colour class and value (in `area_order`), the
    legend, the shown projects as runs of marker indices, the searched postcode, the gap and
    cluster layers, the chosen area and where to fit. No geometry unless gaps or clusters are
    asked for; everything as JSON data, for `maps.safe_json`. ``masked``: the projects as
    `privacy.public_records` gives them, when the caller keeps that already."""
    shown = shown_projects(projects, view) if masked is None else filter_masked(masked, view)
    level = view.layer
    if needs_coverage(view) and not coverage_areas:
        raise ValueError(f"the {view.measure} measure needs the coverage figures")
    gap_table = (coverage_areas or {}).get(level)
    codes = areas_in_view(level, view)
    figures = area_figures(level, shown, gap_table).loc[codes]
    colours, classes = colour_classes(figures[view.measure], view.measure)
    palette = list(dict.fromkeys(colours))
    order = area_order(level)
    fill = np.full(len(order), -1)
    places = order.get_indexer(figures.index)
    fill[places] = [palette.index(colour) for colour in colours]
    decimals = MEASURES[view.measure]["decimals"]
    values = [""] * len(order)
    counts = [""] * len(order)
    for place, value, count in zip(places, figures[view.measure], figures["projects"], strict=True):
        values[place] = number_text(value, decimals)
        counts[place] = f"{int(count):,}"
    legend = maps.legend_html(
        f"{LEVELS[level]['noun']}: {MEASURES[view.measure]['label']}",
        classes,
        type_legend(shown),
        legend_notes(view, shown),
        DIRECTIONS[view.measure],
    )
    marker_positions = files["order"].get_indexer(shown["id"].astype(str))
    payload = {
        "palette": palette,
        "fill": fill.tolist(),
        "values": values,
        "valueLabel": MEASURES[view.measure]["label"],
        "counts": counts if view.measure != "projects" else None,
        "legend": legend,
        "shown": _runs(marker_positions[marker_positions >= 0]),
        "attribution": " | ".join(maps.html_text(line) for line in export.attribution(shown)),
        "overlays": [],
        "search": None,
        "area": view.area if view.area in order else "",
        "fit": None,
    }
    if view.area in order:
        payload["fit"] = {"key": f"area:{level}:{view.area}", "bounds": None, "maxZoom": 15}
    if view.gaps:
        payload["overlays"].append(gap_overlay(projects, view, shown))
    if view.clusters:
        payload["overlays"].append(cluster_overlay(projects, view, shown))
    return with_search(payload, view)


def with_search(payload: dict, view: View) -> dict:
    """``payload`` with the searched postcode's circle (and, unless an area is chosen, the fit
    to it). Apart from the rest of the payload because it is cheap: the dashboard caches each
    view's payload without the postcode and adds the search here, so a search costs no
    recomputation of colours, legend or markers. An unknown postcode draws nothing."""
    payload = payload | {"search": None}
    if not view.postcode:
        return payload
    try:
        point = find_postcode(view.postcode)
    except ValueError:
        return payload
    payload["search"] = {"lat": point["lat"], "lon": point["lon"], "radius_m": view.distance}
    if not payload["fit"]:
        west, south, east, north = _search_bounds(point, view.distance)
        key = f"search:{point['postcode']}:{view.distance}"
        payload["fit"] = {"key": key, "bounds": [[south, west], [north, east]]}
    return payload


def base_map(level: str, files: Mapping, tiles: str | None = None, cluster_markers: bool = True):
    """The folium map that stays while filters change: tiles and the fixed layers."""
    options = map_options(level, files, cluster_markers)
    return maps.dashboard_base(options, map_script(level, files), tiles=tiles)


def build_map(
    projects: gpd.GeoDataFrame,
    view: View,
    *,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
    today: date | None = None,
    tiles: str | None = None,
    cluster_markers: bool = True,
):
    """The dashboard map for a view as one folium map (for a page of its own, tests and the
    warm-up); the dashboard sends `base_map` once and `view_payload` per view instead.
    ``coverage_areas``: `coverage_summary(...)["areas"]`, needed for the gap measures."""
    files = project_files(projects, today)
    payload = view_payload(projects, view, files, coverage_areas=coverage_areas)
    fmap = base_map(view.layer, files, tiles, cluster_markers)
    maps.view_group(maps.safe_json(payload)).add_to(fmap)
    return fmap
