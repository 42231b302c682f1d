"""Exports for council partners: RFC 7946 GeoJSON, GeoPackage, CSV, a one-file HTML map, a pack."""

import html
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from kindred_map import __version__, assets, boundaries, filters, privacy
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, project_types

FORMATS = ("geojson", "gpkg", "csv", "html", "pack", "oruk", "oruk-csv")
"""``oruk``: Open Referral UK JSON; ``oruk-csv``: its zipped CSV package (`kindred_map.oruk`)."""
LEVELS = ("ward", "deanery", "borough")
WHATS = ("projects", *LEVELS, "all")
"""What to export: projects, one area summary, or all of them (GeoPackage and pack only)."""
GEOJSON_DECIMALS = 6
"""RFC 7946 advises no more than 6 decimals (about 10 cm on the ground)."""
MAP_DECIMALS = 5
"""Borough outlines on the HTML map: about a metre, finer than the generalised boundaries."""
PROJECT_LAYERS = ("borough", "ward", "deanery", "lsoa", "postcode")
"""Layers behind a project's joined fields: their vintages and attribution travel with it."""
GPKG_NAME = "kindred_map.gpkg"
GPKG_VERSION = "1.2"
"""Older than GDAL's default (1.4), so that older QGIS, ArcGIS and GDAL read it without warning."""
CSV_ENCODING = "utf-8-sig"
"""UTF-8 with a byte-order mark: Excel then shows names like Café and St Mary’s correctly."""

PROJECT_COLUMNS = {
    "id": ("text", "Stable project id"),
    "name": ("text", "Project name"),
    "type": ("text", "Project type key: " + ", ".join(project_types())),
    "type_label": ("text", "Project type, in words"),
    "organisation": ("text", "Organisation running the project"),
    "sector": ("text", "The organisation's sector, where the source gives one"),
    "address": ("text", "Address (blank for home-run projects)"),
    "postcode": ("text", "Postcode (only the district, e.g. L8, for home-run projects)"),
    "opening_hours": ("text", "Opening hours as recorded"),
    "schedules": (
        "text",
        "Structured opening hours as JSON: a list of {byday (MO,TU,...), opens_at, closes_at "
        "(HH:MM), valid_from, valid_to (YYYY-MM-DD), note}; blank when only the text is known "
        "(hours unknown)",
    ),
    "website": ("text", "Website as recorded"),
    "parish": ("text", "Church of England parish, where recorded"),
    "last_checked": ("text", "Date the record was last checked (YYYY-MM-DD)"),
    "location_precision": (
        "text",
        "exact (the building), street (a street, postcode or place centroid) or ward_only "
        "(home-run project: shown at its ward's centre, never at its address)",
    ),
    "location_note": ("text", "How the position shown was chosen, where it is not exact"),
    "synthetic": ("bool", "True for illustrative records that are NOT real projects"),
    "source": ("text", "Where the record came from"),
    "WD24CD": ("text", "Ward code (ONS GSS, wards of May 2024)"),
    "WD24NM": ("text", "Ward name"),
    "ward_source": (
        "text",
        "How the ward was found: postcode (the ONS assignment of its postcode), "
        "nearest_postcode (that of the nearest live postcode) or polygon (the point in the "
        "generalised ward polygon)",
    ),
    "ward_note": ("text", "Why the ward may be doubtful"),
    "LAD25CD": ("text", "Borough code (ONS GSS, local authority districts of May 2025)"),
    "LAD25NM": ("text", "Borough name"),
    "deanery_id": ("code", "Church of England deanery id"),
    "deanery_name": ("text", "Deanery name (approximate: derived deanery boundaries)"),
    "deanery_note": ("text", "Why the deanery is empty or doubtful"),
    "LSOA21CD": ("text", "LSOA 2021 code (ONS GSS; blank for home-run projects)"),
    "imd_decile": (
        "int",
        "IMD 2025 decile of the LSOA, 1 = most deprived 10% in England (blank for home-run "
        "projects)",
    ),
    "in_region": ("bool", "True if the position lies in the 9 boroughs of the region"),
    "lon": ("float", "Longitude of the position shown, WGS84, 6 decimals"),
    "lat": ("float", "Latitude of the position shown, WGS84, 6 decimals"),
    "easting": ("int", "Easting of the position shown, British National Grid, metres"),
    "northing": ("int", "Northing of the position shown, British National Grid, metres"),
    "boundary_vintage": ("text", "Vintage of the boundary layers the area fields come from"),
}
"""Every project column an export carries, in order: (kind, description for the README)."""

LEVEL_COLUMNS = {
    "ward": ("WD24CD", "WD24NM", "LAD24CD", "LAD24NM", "population"),
    "deanery": ("deanery_id", "deanery_name", "archdeaconry_name", "population"),
    "borough": ("LAD25CD", "LAD25NM", "in_lcr_ca", "population"),
}
"""Boundary-layer columns kept in each area summary (the layer key first)."""

SUMMARY_NOTES = {
    "projects": "Projects in the area (after the export's filters)",
    "projects_per_10k": "Projects per 10,000 residents (Census 2021)",
    "synthetic_projects": "Of which illustrative records, NOT real projects",
    "home_run_projects": "Of which home-run projects (counted here, shown at the ward centre)",
    "boundary_vintage": "Vintage of the area boundaries",
}

PROJECT_SOURCES = (
    {
        "patterns": ("synthetic",),
        "name": "Illustrative (synthetic) examples",
        "licence": "Made up for illustration: not real projects, no third-party data",
        "attribution": None,
        "note": "Illustrative only: never present them as real provision.",
    },
    {
        "patterns": ("co-operatives uk", "coopsuk"),
        "name": "Co-operatives UK open data (Q2 2023)",
        "licence": "Open Data Commons Attribution Licence (ODC-By 1.0)",
        "attribution": "Contains data from Co-operatives UK",
        "note": "Co-operatives at their registered address's postcode centre: where they are "
        "registered, not necessarily where they trade.",
    },
    {
        "patterns": ("give food", "givefood"),
        "name": "Give Food food bank list",
        "licence": "Public domain (The Unlicense); credit requested",
        "attribution": "Food bank data from Give Food (givefood.org.uk), public domain.",
        "note": "One row per food bank organisation at its main address, c. 2023 to early "
        "2024; distribution centres are not listed. Check current status before publishing.",
    },
    {
        "patterns": ("warm space", "warm-space", "warm_space", "warm welcome", "open innovations"),
        "name": "Warm spaces (Open Innovations aggregation)",
        "licence": "No licence stated: collected from the Warm Welcome Campaign, Sefton Council, "
        "Sefton CVS, St Helens Council and Lancashire County Council directories. Internal "
        "use; ask those directories before republishing.",
        "attribution": "Warm spaces: Open Innovations warm-spaces aggregation of the Warm "
        "Welcome Campaign, Sefton Council, Sefton CVS, St Helens Council and Lancashire County "
        "Council directories (no licence stated).",
        "note": "Opening times are seasonal; duplicates across directories may remain.",
    },
)
"""Known project data sources, matched by text in a record's ``source``."""

LEAFLET_CREDIT = "Map drawn with Leaflet (leafletjs.com), BSD 2-Clause licence"


# --- tables -----------------------------------------------------------------------------


def _check_projects(projects: gpd.GeoDataFrame) -> None:
    if not isinstance(projects, gpd.GeoDataFrame) or projects.crs is None:
        raise ValueError("projects must be a GeoDataFrame with a CRS (read them from the store)")
    missing = [c for c in (*RECORD_FIELDS, *JOINED_FIELDS) if c not in projects.columns]
    if missing:
        raise ValueError(
            f"projects lack store columns {missing}; read them with store.read_projects"
        )
    located = projects.geometry.dropna()
    located = located[~located.is_empty]
    if not (located.geom_type == "Point").all():
        raise ValueError(
            f"project geometries must be points, found {sorted(set(located.geom_type))}"
        )


def _code_or_none(value) -> str | None:
    """An area code as text, None (null in every format) if missing."""
    return boundaries.code_text(value) or None


def _date_text(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    if isinstance(value, datetime | date):
        return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
    return str(value).strip() or None


def _typed(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Columns in the dtype every format can write (nullable ints and booleans, text)."""
    for column, kind in kinds.items():
        values = frame[column]
        if kind in ("text", "code"):
            frame[column] = values.map(_code_or_none if kind == "code" else _text).astype("string")
        elif kind == "int":
            frame[column] = pd.to_numeric(values, errors="coerce").round().astype("Int64")
        elif kind == "float":
            frame[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == "bool":
            frame[column] = values.map(_flag).astype("boolean")
    return frame


def _text(value) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime | date):
        return _date_text(value)
    return str(value)


def _flag(value) -> bool | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def _vintage_text(names) -> str:
    return "; ".join(f"{name}: {boundaries.metadata(name)['vintage']}" for name in names)


def project_table(projects: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The projects as they may leave the tool: ward_only records masked, columns in
    PROJECT_COLUMNS order, lon/lat and easting/northing of the position shown, EPSG:4326."""
    _check_projects(projects)
    table = privacy.mask_ward_only(projects)
    shown = table.geometry
    located = (shown.notna() & ~shown.is_empty).to_numpy()
    grid = shown.to_crs(boundaries.BNG)
    for column, values, decimals in (
        ("lon", shown.x, GEOJSON_DECIMALS),
        ("lat", shown.y, GEOJSON_DECIMALS),
        ("easting", grid.x, 0),
        ("northing", grid.y, 0),
    ):
        table[column] = np.where(located, np.round(values.to_numpy(dtype=float), decimals), np.nan)
    labels = {key: spec["label"] for key, spec in project_types().items()}
    table["type_label"] = table["type"].map(lambda t: labels.get(t, t))
    street = table["location_precision"].astype("string").str.strip().str.lower() == "street"
    no_note = table["location_note"].isna()
    table["location_note"] = table["location_note"].astype("object")
    table.loc[(street & no_note).fillna(False).to_numpy(), "location_note"] = (
        "Approximate: placed at a street, postcode or place centre"
    )
    table["last_checked"] = table["last_checked"].map(_date_text)
    table["boundary_vintage"] = _vintage_text(PROJECT_LAYERS)
    kinds = {column: kind for column, (kind, _) in PROJECT_COLUMNS.items()}
    table = _typed(pd.DataFrame(table), kinds)
    return gpd.GeoDataFrame(
        table[list(PROJECT_COLUMNS)], geometry=shown.to_numpy(), crs=boundaries.WGS84
    )


def _type_keys(projects: pd.DataFrame) -> list[str]:
    configured = list(project_types())
    extra = sorted(set(projects["type"].dropna().astype(str)) - set(configured))
    return configured + extra


def _merge_coverage(summary: gpd.GeoDataFrame, coverage: pd.DataFrame, level: str):
    """Add per-area coverage and gap figures, keyed by the level's area code.

    A figure named like a summary column is dropped when it agrees for every area, else kept
    as ``coverage_<name>`` (e.g. a population counted another way)."""
    key = boundaries.LAYERS[level]["key"]
    figures = pd.DataFrame(coverage)
    if key not in figures.columns:
        figures = figures.reset_index()
    if key not in figures.columns:
        raise ValueError(f"{level} coverage figures need a {key} column or index")
    figures = figures.assign(_code=figures[key].map(boundaries.code_text)).drop(columns=key)
    if figures["_code"].duplicated().any():
        raise ValueError(f"{level} coverage figures repeat an area code")
    if not set(figures["_code"]) & set(summary["_code"]):
        raise ValueError(f"none of the coverage figures' codes is a {level} code")
    figures = figures.drop(columns="geometry", errors="ignore").set_index("_code")
    aligned = figures.reindex(summary["_code"])
    for column in [c for c in figures.columns if c in summary.columns]:
        ours = summary[column].reset_index(drop=True).astype("string")
        theirs = aligned[column].reset_index(drop=True).astype("string")
        given = theirs.notna()
        same = (ours[given] == theirs[given]).fillna(False).all()
        if same:
            aligned = aligned.drop(columns=column)
        else:
            aligned = aligned.rename(columns={column: f"coverage_{column}"})
    merged = pd.concat([summary.reset_index(drop=True), aligned.reset_index(drop=True)], axis=1)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=summary.crs)


def area_summary(
    projects: gpd.GeoDataFrame,
    level: str,
    coverage: pd.DataFrame | None = None,
    area_filters: Mapping[str, object] | None = None,
) -> gpd.GeoDataFrame:
    """One row per ward, deanery or borough (EPSG:4326): projects in total and by type, per
    10,000 residents, and the coverage and gap figures when given (keyed by area code).

    Projects count in the area their joined code names (the postcode's ward where known).
    ``area_filters`` (boroughs, deaneries, wards, as for `filters.filter_projects`; other keys
    are ignored) keep only the areas inside the filtered region, zero-project areas included."""
    if level not in LEVELS:
        raise ValueError(f"no summary by {level!r}; choose one of {', '.join(LEVELS)}")
    _check_projects(projects)
    key = boundaries.LAYERS[level]["key"]
    areas = boundaries.load(level)
    summary = gpd.GeoDataFrame(areas[[*LEVEL_COLUMNS[level], "geometry"]], crs=areas.crs)
    summary["_code"] = summary[key].map(boundaries.code_text)
    chosen = {k: v for k, v in (area_filters or {}).items() if k in filters.AREA_FILTERS}
    kept = filters.areas_in_filter(level, **chosen)
    if kept is not None:
        summary = summary[summary["_code"].isin(kept)].reset_index(drop=True)
    codes = projects[key].map(boundaries.code_text)
    population = pd.to_numeric(summary["population"], errors="coerce")

    def per_10k(counts: pd.Series) -> pd.Series:
        return (counts / population.where(population > 0) * 10_000).round(2)

    def count(mask: pd.Series) -> pd.Series:
        tally = codes[mask.to_numpy()].value_counts()
        return summary["_code"].map(tally).fillna(0).astype("int64")

    everything = pd.Series(True, index=projects.index)
    summary["projects"] = count(everything)
    summary["projects_per_10k"] = per_10k(summary["projects"])
    for type_key in _type_keys(projects):
        column = f"projects_{type_key}"
        summary[column] = count(projects["type"].astype("string") == type_key)
        summary[f"{column}_per_10k"] = per_10k(summary[column])
    summary["synthetic_projects"] = count(projects["synthetic"].map(_flag).fillna(False))
    summary["home_run_projects"] = count(privacy.is_ward_only(projects))
    summary["boundary_vintage"] = _vintage_text([level])
    if coverage is not None:
        summary = _merge_coverage(summary, coverage, level)
    summary[key] = summary["_code"].astype("string")
    columns = [c for c in summary.columns if c not in ("_code", "geometry")]
    return gpd.GeoDataFrame(summary[[*columns, "geometry"]], crs=areas.crs)


def summary_columns(summary: pd.DataFrame, level: str) -> dict[str, str]:
    """Descriptions of a summary's columns, for the README."""
    meta = boundaries.metadata(level)
    labels = {key: spec["label"] for key, spec in project_types().items()}
    described = {}
    for column in summary.columns:
        if column == "geometry":
            continue
        if column in meta["columns"]:
            described[column] = meta["columns"][column]
        elif column in SUMMARY_NOTES:
            described[column] = SUMMARY_NOTES[column]
        elif column.startswith("projects_"):
            type_key = column.removeprefix("projects_").removesuffix("_per_10k")
            label = labels.get(type_key, type_key)
            per = " per 10,000 residents" if column.endswith("_per_10k") else ""
            described[column] = f"Projects of type {label}{per}"
        else:
            described[column] = "Coverage or gap figure, as computed by kindred_map.coverage"
    return described


def coverage_figures(
    projects: gpd.GeoDataFrame, types=None, distance_m: float | None = None
) -> dict[str, pd.DataFrame]:
    """Per-area coverage and gap figures fit to leave the tool, for ``coverage=``.

    Home-run projects count at their ward's centre (as exported), not at their true position:
    figures from the true position would hint where in its ward a home-run project is.
    ``types`` and ``distance_m`` (default: kindred_map.coverage's) as for coverage.assess."""
    from kindred_map import coverage

    public = privacy.mask_ward_only(projects)
    public = public[public.geometry.notna() & ~public.geometry.is_empty]
    distance = coverage.DEFAULT_DISTANCE_M if distance_m is None else distance_m
    result = coverage.assess(public, types, distance)
    return {level: result.by_area(level) for level in LEVELS}


def _unplaced(projects: pd.DataFrame, level: str) -> int:
    """Projects that count in no area of ``level`` (outside the region or the diocese)."""
    key = boundaries.LAYERS[level]["key"]
    known = set(boundaries.load(level)[key].map(boundaries.code_text))
    return int((~projects[key].map(boundaries.code_text).isin(known)).sum())


# --- writers ----------------------------------------------------------------------------


def _json_value(value):
    """A value JSON can carry: missing -> null, numpy scalars -> Python, dates -> ISO text."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def rfc7946_geometries(geometries, decimals: int = GEOJSON_DECIMALS) -> np.ndarray:
    """Geometries rounded to ``decimals`` with exterior rings counter-clockwise, holes clockwise."""
    rounded = shapely.transform(np.asarray(geometries), lambda xy: np.round(xy, decimals))
    return shapely.orient_polygons(rounded, exterior_cw=False)


def geojson_bytes(frame: gpd.GeoDataFrame, id_column: str | None, about: Mapping) -> bytes:
    """An RFC 7946 FeatureCollection (WGS84, 6 decimals, right-hand rule, no ``crs`` member).

    ``about`` goes in as top-level foreign members (title, attribution, licences, ...)."""
    frame = frame.to_crs(boundaries.WGS84)
    geometries = rfc7946_geometries(frame.geometry.to_numpy())
    properties = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    features = []
    for geometry, record in zip(geometries, properties.to_dict("records"), strict=True):
        features.append(
            {
                "type": "Feature",
                "id": _json_value(record[id_column]) if id_column else None,
                "geometry": None if geometry is None else json.loads(shapely.to_geojson(geometry)),
                "properties": {column: _json_value(value) for column, value in record.items()},
            }
        )
    collection = {"type": "FeatureCollection", **about, "features": features}
    if "crs" in collection:
        raise ValueError("an RFC 7946 file carries no crs member")
    text = json.dumps(collection, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A plain CSV (no geometry column), UTF-8 with BOM, one header row, for Excel and GIS."""
    table = pd.DataFrame(frame).drop(columns="geometry", errors="ignore")
    return table.to_csv(index=False, lineterminator="\r\n").encode(CSV_ENCODING)


def _about_rows(about: Mapping) -> pd.DataFrame:
    rows = []
    for key, value in about.items():
        if isinstance(value, Mapping):
            rows.extend((f"{key}: {k}", str(v)) for k, v in value.items())
        elif isinstance(value, list | tuple):
            rows.extend((key, str(item)) for item in value)
        else:
            rows.append((key, str(value)))
    return pd.DataFrame(rows, columns=["item", "value"])


def write_geopackage(path: Path, layers: Mapping[str, gpd.GeoDataFrame], about: Mapping) -> None:
    """Layers in EPSG:27700 plus an ``about`` table (title, date, parameters, attribution).

    Each layer's description and metadata also carry the attribution, for QGIS and ArcGIS."""
    attribution = " | ".join(about["attribution"])
    for name, frame in layers.items():
        pyogrio.write_dataframe(
            frame.to_crs(boundaries.BNG),
            path,
            layer=name,
            driver="GPKG",
            dataset_options={"VERSION": GPKG_VERSION},
            promote_to_multi=frame.geom_type.isin(["Polygon", "MultiPolygon"]).any(),
            layer_options={"DESCRIPTION": f"{about['title']}: {name}. {attribution}"},
            layer_metadata={"attribution": attribution, "generated": about["generated"]},
        )
    pyogrio.write_dataframe(_about_rows(about), path, layer="about", driver="GPKG")


# --- words ------------------------------------------------------------------------------


def project_sources(projects: pd.DataFrame) -> list[dict]:
    """The known project data sources found in the records' ``source``, then the others,
    grouped by the text before their first ": " (e.g. a news item, without its detail)."""
    if "source" not in projects.columns:
        return []
    sources = privacy.scrub_ward_only_text(projects)["source"].astype("string").str.strip()
    sources = sources[sources.notna() & (sources != "")]
    lowered = sources.str.lower()
    found, matched = [], pd.Series(False, index=sources.index)
    for spec in PROJECT_SOURCES:
        hit = ~matched & lowered.str.contains("|".join(spec["patterns"]), regex=True)
        if hit.any():
            found.append(spec | {"records": int(hit.sum())})
        matched |= hit
    others = sources[~matched].str.split(": ", n=1).str[0]
    for name, records in others.value_counts().sort_index().items():
        found.append(
            {
                "name": name,
                "licence": "Not recorded in Kindred Map: check with the provider",
                "attribution": None,
                "note": None,
                "records": int(records),
            }
        )
    return found


def attribution(projects: pd.DataFrame) -> list[str]:
    """The exact attribution lines an export must carry: boundary layers, postcodes, projects."""
    lines = boundaries.attribution_lines(PROJECT_LAYERS)
    for source in project_sources(projects):
        if source["attribution"] and source["attribution"] not in lines:
            lines.append(source["attribution"])
    return lines


def _stamp(generated: datetime | None) -> str:
    moment = generated or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("the generation time must carry a time zone (use UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def about(
    projects: pd.DataFrame,
    what: str,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> dict:
    """Facts every export carries: title, time, parameters, licences, attribution, vintages."""
    licences = {
        boundaries.metadata(name)["title"]: boundaries.metadata(name)["licence"]
        for name in PROJECT_LAYERS
    }
    licences |= {source["name"]: source["licence"] for source in project_sources(projects)}
    return {
        "title": f"Kindred Map export: {what}",
        "generated": _stamp(generated),
        "generator": f"Kindred Map {__version__}",
        "parameters": {str(k): str(v) for k, v in (parameters or {}).items()},
        "boundary_vintage": {name: boundaries.metadata(name)["vintage"] for name in PROJECT_LAYERS},
        "licences": licences,
        "attribution": attribution(projects),
    }


def readme_text(
    projects: gpd.GeoDataFrame,
    contents: Mapping[str, str],
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    summaries: Mapping[str, pd.DataFrame] | None = None,
    coverage_levels=(),
) -> str:
    """README for an export: what, when, parameters, methods, vintages, licences, attribution.

    ``contents`` maps each file to what it holds; ``summaries`` are the area tables shipped."""
    facts = about(projects, "council pack", parameters, generated)
    table = project_table(projects)
    hidden = int(privacy.is_ward_only(projects).sum())
    synthetic = int(table["synthetic"].fillna(False).sum())
    lines = [
        "Kindred Map export",
        "==================",
        "",
        "Community social action projects in the Liverpool City Region, with their ward, "
        "borough, deanery and LSOA, and summaries by area.",
        "",
        "What",
        "----",
        *[f"- {name}: {text}" for name, text in contents.items()],
        "",
        "When",
        "----",
        f"- Generated {facts['generated']} (UTC) by {facts['generator']}.",
        "",
        "Parameters",
        "----------",
    ]
    if facts["parameters"]:
        lines += [f"- {key}: {value}" for key, value in facts["parameters"].items()]
    else:
        lines.append("- No filters: every project in the store.")
    lines += [
        f"- Projects exported: {len(table)} ({hidden} home-run, {synthetic} illustrative).",
        "",
        "Methods",
        "-------",
        "- Each project's ward and borough are the ONS assignment of its postcode where it has a "
        "valid one; otherwise those of the nearest live postcode, or the generalised polygon its "
        "point falls in (column ward_source).",
        "- Summaries count each project in the area its codes name; per 10,000 residents = "
        "projects / Census 2021 usual residents x 10,000.",
        "- Home-run projects (location_precision = ward_only) never leave with their address: "
        "they are shown at a point inside their ward (its representative point), their address, "
        "LSOA and IMD decile are blank and their postcode is cut to the district. They count in "
        "their ward, borough and deanery like any other project.",
        "- Illustrative records (synthetic = True) are examples, NOT real projects; summaries "
        "count them apart in synthetic_projects.",
        "- Deanery boundaries are APPROXIMATE: " + boundaries.metadata("deanery")["method"],
        "- Coordinates: GeoJSON in WGS84 (RFC 7946, 6 decimals); GeoPackage in British National "
        "Grid (EPSG:27700); CSV carries both.",
    ]
    for level in summaries or {}:
        unplaced = _unplaced(projects, level)
        if unplaced:
            where = "the diocese" if level == "deanery" else "the region"
            lines.append(
                f"- {unplaced} exported project(s) fall in no {level} (outside {where}) and "
                f"are not counted in the {level} summary."
            )
    if coverage_levels:
        lines.append(
            "- Coverage and gap figures (" + ", ".join(coverage_levels) + " summaries) come from "
            "kindred_map.coverage with the distance given under Parameters."
        )
    else:
        lines.append("- Coverage and gap figures: not computed for this export.")
    lines += ["", "Data vintages and accuracy", "--------------------------"]
    for name in PROJECT_LAYERS:
        meta = boundaries.metadata(name)
        approximate = meta.get("approximate") and "APPROXIMATE" not in meta["accuracy"]
        flag = " APPROXIMATE." if approximate else ""
        lines.append(
            f"- {meta['title']}: {meta['vintage']}. Source: {meta['source']}. "
            f"{meta['generalisation']}. {meta['accuracy']}{flag}"
        )
    for source in project_sources(projects):
        note = f" {source['note']}" if source["note"] else ""
        lines.append(f"- Projects from {source['name']}: {source['records']} record(s).{note}")
    lines += ["", "Licences", "--------"]
    lines += [f"- {name}: {licence}" for name, licence in facts["licences"].items()]
    lines += [
        f"- {LEAFLET_CREDIT} (embedded in the HTML map).",
        "",
        "Attribution (reproduce these lines exactly wherever the data is shown)",
        "-----------------------------------------------------------------------",
        *facts["attribution"],
        "",
        "Project columns",
        "---------------",
        *[f"- {column}: {text}" for column, (_, text) in PROJECT_COLUMNS.items()],
    ]
    for level, frame in (summaries or {}).items():
        lines += ["", f"{level.capitalize()} summary columns", "-" * (len(level) + 16)]
        lines += [f"- {column}: {text}" for column, text in summary_columns(frame, level).items()]
    return "\n".join(lines) + "\n"


# --- the HTML map -----------------------------------------------------------------------

POPUP_FIELDS = (
    ("organisation", "Organisation"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("opening_hours", "Opening hours"),
    ("website", "Website"),
    ("parish", "Parish"),
    ("WD24NM", "Ward"),
    ("LAD25NM", "Borough"),
    ("deanery_name", "Deanery (approximate)"),
    ("last_checked", "Last checked"),
)

HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
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
      radius: 7, color: "#222", weight: 1, fillColor: p.colour,
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
    notes = [f"<p>{drawn} of {len(table)} projects drawn. Generated {facts['generated']}.</p>"]
    home_run = int(privacy.is_ward_only(table).sum())
    if home_run:
        notes.append(f"<p>{home_run} home-run project(s) (dashed) shown at the ward centre.</p>")
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
) -> bytes:
    """One self-contained HTML file: Leaflet, data and styles inlined, no tiles, no URL fetched.

    Opens offline and from an e-mail attachment; each project is a circle marker with an
    escaped popup; home-run projects sit at their ward's centre, drawn dashed."""
    table = project_table(projects)
    facts = about(projects, "projects map", parameters, generated)
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
                "popup": _popup(record),
            }
        )
    outlines = rfc7946_geometries(boundaries.load("borough").geometry.to_numpy(), MAP_DECIMALS)
    data = {
        "projects": markers,
        "boroughs": {
            "type": "GeometryCollection",
            "geometries": [json.loads(shapely.to_geojson(g)) for g in outlines],
        },
        "attribution": " | ".join(
            html.escape(line) for line in [*facts["attribution"], LEAFLET_CREDIT]
        ),
        "panel": _panel(table, title, facts, len(markers)),
    }
    page = HTML_TEMPLATE.format(
        title=html.escape(title),
        leaflet_css=assets.inline_css(("leaflet",)),
        leaflet_js=assets.inline_js(("leaflet",)),
        data=_script_json(data),
    )
    return page.encode("utf-8")


# --- one call per format ----------------------------------------------------------------


def _check_choice(fmt: str, what: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if what not in WHATS:
        raise ValueError(f"unknown export {what!r}; choose one of {', '.join(WHATS)}")
    if fmt in ("oruk", "oruk-csv") and what != "projects":
        raise ValueError(
            "Open Referral UK exports hold projects (as services): use --what projects"
        )
    if fmt == "html" and what not in ("projects", "all"):
        raise ValueError("the HTML map shows projects: use --what projects")
    if fmt in ("geojson", "csv") and what == "all":
        raise ValueError(f"a {fmt} file holds one table: choose --what projects, ward, ...")


def table_for(
    projects: gpd.GeoDataFrame,
    what: str,
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
) -> gpd.GeoDataFrame:
    """The table an export of ``what`` writes: masked projects or an area summary."""
    if what == "projects":
        return project_table(projects)
    return area_summary(projects, what, (coverage or {}).get(what), area_filters)


def geopackage(
    projects: gpd.GeoDataFrame,
    layers=("projects", *LEVELS),
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> bytes:
    """A GeoPackage (EPSG:27700) with the chosen layers: projects and ward/deanery/borough
    summaries (named ``<level>_summary``), plus an ``about`` table."""
    frames = {}
    for what in layers:
        if what not in ("projects", *LEVELS):
            raise ValueError(f"no GeoPackage layer {what!r}; choose from projects, {LEVELS}")
        name = "projects" if what == "projects" else f"{what}_summary"
        frames[name] = table_for(projects, what, coverage=coverage, area_filters=area_filters)
    facts = about(projects, ", ".join(frames), parameters, generated)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / GPKG_NAME
        write_geopackage(path, frames, facts)
        return path.read_bytes()


def export_bytes(
    projects: gpd.GeoDataFrame,
    fmt: str,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> bytes:
    """The export file as bytes (for a download button).

    ``fmt``: one of FORMATS; ``what``: one of WHATS ("all" = projects and every summary, for
    a GeoPackage; a pack always holds everything; the HTML map always shows projects).
    ``projects`` are already filtered (`filters.filter_projects`); ``area_filters`` are the
    same boroughs/deaneries/wards, to keep the summaries to those areas. ``coverage`` maps a
    level to its per-area figures (e.g. ``coverage.assess(...).by_area(level)``).
    ``parameters`` (filters, distance, in words) and ``generated`` (default now, UTC) are
    written into the file's metadata."""
    _check_choice(fmt, what)
    tables = {"coverage": coverage, "area_filters": area_filters}
    words = {"parameters": parameters, "generated": generated}
    if fmt == "pack":
        return council_pack(projects, **tables, **words)
    if fmt in ("oruk", "oruk-csv"):
        from kindred_map import oruk

        return oruk.export_bytes(projects, fmt, **words)
    if fmt == "html":
        return html_map(projects, **words)
    if fmt == "gpkg":
        layers = ("projects", *LEVELS) if what == "all" else (what,)
        return geopackage(projects, layers, **tables, **words)
    table = table_for(projects, what, **tables)
    if fmt == "csv":
        return csv_bytes(table)
    id_column = "id" if what == "projects" else boundaries.LAYERS[what]["key"]
    return geojson_bytes(table, id_column, about(projects, what, parameters, generated))


def csv_about_text(
    projects: gpd.GeoDataFrame,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> str:
    """The sidecar text for a CSV exported alone (the CSV itself stays clean for Excel)."""
    summaries = {}
    if what != "projects":
        summaries[what] = table_for(projects, what, coverage=coverage, area_filters=area_filters)
    contents = {f"{what}.csv": f"{what} table, UTF-8 with BOM, one header row"}
    covered = tuple(level for level in summaries if (coverage or {}).get(level) is not None)
    return readme_text(projects, contents, parameters, generated, summaries, covered)


def council_pack(
    projects: gpd.GeoDataFrame,
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> bytes:
    """A .zip for a council partner: GeoJSON, CSVs, GeoPackage, the HTML map and a README."""
    moment = generated or datetime.now(UTC)
    tables = {"coverage": coverage, "area_filters": area_filters}
    table = project_table(projects)
    summaries = {level: table_for(projects, level, **tables) for level in LEVELS}
    files = {
        "projects.geojson": (
            geojson_bytes(table, "id", about(projects, "projects", parameters, moment)),
            f"{len(table)} projects, RFC 7946 GeoJSON (WGS84), for web maps and QGIS",
        ),
        "projects.csv": (csv_bytes(table), "the same projects as a spreadsheet (UTF-8)"),
    }
    for level, frame in summaries.items():
        files[f"{level}_summary.csv"] = (
            csv_bytes(frame),
            f"{len(frame)} {level} areas: projects by type and per 10,000 residents",
        )
    files[GPKG_NAME] = (
        geopackage(
            projects, ("projects", *LEVELS), **tables, parameters=parameters, generated=moment
        ),
        "GeoPackage in British National Grid (EPSG:27700): layers projects, ward_summary, "
        "deanery_summary, borough_summary and an about table; opens in QGIS and ArcGIS",
    )
    files["map.html"] = (
        html_map(projects, parameters=parameters, generated=moment),
        "a one-file map of the projects; open it in any browser, works offline",
    )
    contents = {"README.txt": "this file"} | {name: text for name, (_, text) in files.items()}
    covered = tuple(level for level in LEVELS if (coverage or {}).get(level) is not None)
    readme = readme_text(projects, contents, parameters, moment, summaries, covered)
    members = {"README.txt": readme.encode("utf-8")} | {n: b for n, (b, _) in files.items()}
    buffer = io.BytesIO()
    stamp = moment.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as pack:
        for name, payload in members.items():
            pack.writestr(zipfile.ZipInfo(name, date_time=stamp), payload, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _write_atomically(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


TABLE_SUFFIXES = (".geojson", ".gpkg", ".csv")


def write_table(
    frame: pd.DataFrame,
    path: Path,
    layer: str,
    projects: pd.DataFrame | None = None,
    parameters: Mapping[str, object] | None = None,
) -> Path:
    """Write one table by the path's extension, atomically, with the attribution every export
    carries: .geojson (RFC 7946), .gpkg (EPSG:27700, plus an ``about`` table) or .csv (no
    geometry; UTF-8 with BOM). For the CLI's join, gaps and cluster outputs. ``projects`` (the
    records the table came from) adds their sources' attribution; a CSV gets it in a
    ``<name>_about.txt`` beside it. No masking happens here: pass tables fit to leave the tool."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"output must end in .geojson, .gpkg or .csv, not {path.name!r}")
    has_geometry = isinstance(frame, gpd.GeoDataFrame)
    if suffix != ".csv" and not has_geometry:
        raise ValueError(f"{path.name}: this output has no geometry; write a .csv instead")
    if projects is None:
        projects = pd.DataFrame({"source": [], "location_precision": []})
    facts = about(projects, layer, parameters)
    if suffix == ".csv":
        _write_atomically(path, csv_bytes(frame))
        lines = [f"{item}: {value}" for item, value in _about_rows(facts).itertuples(index=False)]
        sidecar = path.with_name(f"{path.stem}_about.txt")
        _write_atomically(sidecar, ("\n".join(lines) + "\n").encode("utf-8"))
    elif suffix == ".geojson":
        _write_atomically(path, geojson_bytes(frame, None, facts))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}.", suffix=".gpkg"
        )
        os.close(handle)
        os.unlink(temporary)
        try:
            write_geopackage(Path(temporary), {layer: frame}, facts)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return path


def write_export(
    path: Path,
    projects: gpd.GeoDataFrame,
    fmt: str,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
) -> list[Path]:
    """Write the export to ``path`` (atomically); a CSV gets a ``<name>_about.txt`` beside it
    with the attribution, licences and column descriptions. Returns the files written."""
    path = Path(path)
    options = {
        "coverage": coverage,
        "area_filters": area_filters,
        "parameters": parameters,
        "generated": generated or datetime.now(UTC),
    }
    _write_atomically(path, export_bytes(projects, fmt, what, **options))
    written = [path]
    if fmt == "csv":
        sidecar = path.with_name(f"{path.stem}_about.txt")
        _write_atomically(sidecar, csv_about_text(projects, what, **options).encode("utf-8"))
        written.append(sidecar)
    return written
