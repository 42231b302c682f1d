"""The dashboard map of a view: shaded areas, markers, search circle, gap and cluster layers."""

import contextlib
import html
import json
from collections.abc import Iterable, Mapping
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import boundaries, coverage, export, geocode, maps
from kindred_map.colours import colour_classes, legend_notes, number_text, type_legend
from kindred_map.figures import (
    LEVELS,
    MEASURES,
    area_choices,
    area_deprivation,
    area_figures,
    areas_in_view,
    needs_coverage,
)
from kindred_map.popups import marker_records
from kindred_map.schema import project_types
from kindred_map.search import find_postcode
from kindred_map.upload import store_path
from kindred_map.view import DEFAULT_VIEW, View, shown_projects, type_words


def warm_up() -> None:
    """Read and build once what the first page needs (boundary layers, area lists, deprivation
    by area, the postcode index, the default map's geometries), so the first visitor of a
    fresh server waits for none of it. `kindred-map dashboard` calls it before Streamlit starts.
    """
    for level in LEVELS:
        area_choices(level)
        area_deprivation(level)
    geocode.postcode_index()
    from kindred_map import store as stores

    build_map(stores.read_projects(store_path()), DEFAULT_VIEW)


def choropleth_properties(level: str, figures: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Per-area properties for the map (escaped text for tooltips, the fill colour, the code).

    ``figures`` is `area_figures` for the areas to draw."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if measure not in figures.columns:
        raise ValueError(f"measure {measure!r} needs the coverage figures for {level}")
    colours, _ = colour_classes(figures[measure], measure)
    label = figures["name"]
    if level == "ward":
        label = figures["name"] + " (" + figures["borough"] + ")"
    properties = pd.DataFrame(
        {
            "code": figures.index.astype(str),
            "level": level,
            "name": label.map(html.escape),
            "value": figures[measure].map(lambda v: number_text(v, MEASURES[measure]["decimals"])),
            "population": figures["population"].map(lambda v: f"{int(v):,}"),
            "projects": figures["projects"].map(lambda v: f"{int(v):,}"),
            "imd": figures["imd_decile"].map(lambda v: number_text(v, 0)),
            "fill": colours,
        },
        index=figures.index,
    )
    if level == "deanery":
        properties["note"] = "approximate (derived), not official"
    return properties


def choropleth_tooltip(level: str, measure: str) -> dict[str, str]:
    """Tooltip fields (property -> label) for the shaded areas."""
    fields_ = {"name": LEVELS[level]["noun"], "value": MEASURES[measure]["label"]}
    fields_["population"] = "Population (Census 2021)"
    if measure != "projects":
        fields_["projects"] = "Projects shown"
    imd = "IMD 2025 decile" if level == "lsoa" else "IMD 2025 decile (population-weighted)"
    fields_["imd"] = imd
    if level == "deanery":
        fields_["note"] = "Boundary"
    return fields_


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


def gap_overlay(projects: gpd.GeoDataFrame, view: View):
    """The part of the region beyond reach of the chosen types (not clickable: areas below are)."""
    surface = coverage.gap_surface(projects, list(view.types) or None, view.distance)
    properties = pd.DataFrame({"note": surface["note"].map(html.escape)})
    return maps.overlay_layer(
        _rounded_geojson(surface, properties),
        f"Beyond {view.distance:,} m of {type_words(view)}",
        maps.GAP_STYLE,
        tooltip={},
        interactive=False,
    )


def cluster_overlay(projects: gpd.GeoDataFrame, view: View):
    """DBSCAN clusters of the shown projects' true positions (home-run projects left out)."""
    from kindred_map import clusters  # scikit-learn and PySAL: imported only when asked for

    chosen = projects[projects["id"].isin(shown_projects(projects, view)["id"])]
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
        summary.append(html.escape(f"{row['projects']} projects: {', '.join(parts)}"))
    properties = pd.DataFrame({"cluster": hulls["cluster_id"].astype(str), "summary": summary})
    return maps.overlay_layer(
        _rounded_geojson(hulls, properties),
        f"Clusters (within {view.eps:,} m, at least {view.min_samples})",
        maps.CLUSTER_HULL_STYLE,
        tooltip={"cluster": "Cluster", "summary": "Projects"},
    )


def build_map(
    projects: gpd.GeoDataFrame,
    view: View,
    *,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
    today: date | None = None,
    tiles: str | None = None,
    cluster_markers: bool = True,
):
    """The dashboard map for a view: areas of ``view.layer`` inside the filters shaded by
    ``view.measure`` (clickable), the shown projects, the searched postcode's circle, and the
    gap and cluster layers when asked for. ``coverage_areas``: `coverage_summary(...)["areas"]`,
    needed for the gap measures."""
    shown = shown_projects(projects, view)
    level = view.layer
    codes = areas_in_view(level, view)
    if needs_coverage(view) and not coverage_areas:
        raise ValueError(f"the {view.measure} measure needs the coverage figures")
    gap_table = (coverage_areas or {}).get(level)
    figures = area_figures(level, shown, gap_table).loc[codes]
    _, classes = colour_classes(figures[view.measure], view.measure)
    legend = maps.legend_html(
        f"{LEVELS[level]['noun']}: {MEASURES[view.measure]['label']}",
        classes,
        type_legend(shown),
        legend_notes(view, shown),
    )
    bounds = (
        bounds_of(level, codes)
        if len(codes) < len(area_choices(level))
        else bounds_of("borough", [])
    )
    search = None
    if view.postcode:
        with contextlib.suppress(ValueError):
            point = find_postcode(view.postcode)
            search = {
                "lat": point["lat"],
                "lon": point["lon"],
                "radius_m": view.distance,
                "label": point["postcode"],
            }
            bounds = _search_bounds(point, view.distance)
    overlays = []
    if view.gaps:
        overlays.append(gap_overlay(projects, view))
    if view.clusters:
        overlays.append(cluster_overlay(projects, view))
    return maps.dashboard_map(
        maps.area_geojson(level, choropleth_properties(level, figures, view.measure)),
        LEVELS[level]["label"],
        choropleth_tooltip(level, view.measure),
        legend,
        marker_records(shown, today),
        bounds,
        level=level,
        cluster=cluster_markers,
        search=search,
        overlays=tuple(overlays),
        attribution=export.attribution(shown),
        tiles=tiles,
    )
