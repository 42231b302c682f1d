"""Exports for council partners: RFC 7946 GeoJSON, GeoPackage, CSV, a one-file HTML map, a pack."""

import contextlib
import html
import io
import json
import os
import re
import sqlite3
import tempfile
import tomllib
import zipfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from kindred_map import (
    __version__,
    assets,
    boundaries,
    columns,
    files,
    filters,
    oruk,
    privacy,
)
from kindred_map.coverage import DEFAULT_DISTANCE_M, assess, boundary_effect
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, project_types
from kindred_map.text import spreadsheet_safe

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

LEVEL_COLUMNS = {
    "ward": ("WD24CD", "WD24NM", "LAD24CD", "LAD24NM", "population"),
    "deanery": ("deanery_id", "deanery_name", "archdeaconry_name", "population"),
    "borough": ("LAD25CD", "LAD25NM", "in_lcr_ca", "population"),
}
"""Boundary-layer columns kept in each area summary (the layer key first)."""

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
        "Sefton CVS, St Helens Council, Lancashire County Council and (just outside the "
        "region) Fylde Council directories. Internal use; ask those directories before "
        "republishing.",
        "attribution": "Warm spaces: Open Innovations warm-spaces aggregation of the Warm "
        "Welcome Campaign, Sefton Council, Sefton CVS, St Helens Council, Lancashire County "
        "Council and Fylde Council directories (no licence stated).",
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


def _date_value(value) -> date | None:
    """A calendar date from a date, a timestamp or ISO text (YYYY-MM-DD...); None if none.

    Text that is not an ISO date raises a ValueError: the store keeps dates as ISO text, so
    anything else is a broken store, not a date to guess."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise ValueError(f"last_checked {text!r} is not a YYYY-MM-DD date") from error


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
        elif kind == "date":
            dates = values.map(_date_value).astype("object")
            frame[column] = pd.array(dates, dtype=pd.ArrowDtype(pa.date32()))
    return frame


def typed_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A table's columns in the types columns.py gives them for ``table`` (dates as dates, so
    a GeoPackage gets DATE fields); a column without a definition is a ValueError."""
    kinds = {
        name: columns.describe(name, table).kind for name in frame.columns if name != "geometry"
    }
    typed = _typed(pd.DataFrame(frame).copy(), kinds)
    typed.attrs = dict(frame.attrs)
    return typed


def _text(value) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime | date):
        return _date_value(value).isoformat()
    return str(value)


def _flag(value) -> bool | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def _vintage_text(names) -> str:
    return "; ".join(f"{name}: {boundaries.metadata(name)['vintage']}" for name in names)


def real_projects(projects: gpd.GeoDataFrame, include_synthetic: bool = False):
    """The projects an export may count: illustrative (synthetic) records only when asked for
    by name (``include_synthetic=True``), so no made-up project reaches a council's figures."""
    _check_projects(projects)
    if include_synthetic:
        return projects
    return projects[~projects["synthetic"].map(_flag).fillna(False).astype(bool).to_numpy()]


def synthetic_notice(projects: pd.DataFrame) -> str | None:
    """The warning every file carries in its first lines when it holds illustrative records."""
    made_up = int(projects["synthetic"].map(_flag).fillna(False).astype(bool).sum())
    if not made_up:
        return None
    return (
        f"WARNING: INCLUDES {made_up} ILLUSTRATIVE (SYNTHETIC) RECORD(S) THAT ARE NOT REAL "
        "PROJECTS (synthetic = true). Every count and coverage figure here includes them: do "
        "not use it as evidence of real provision."
    )


def project_table(projects: gpd.GeoDataFrame, include_synthetic: bool = False) -> gpd.GeoDataFrame:
    """The projects as they may leave the tool: synthetic records dropped (unless
    ``include_synthetic``), ward_only records masked, columns in `columns.PROJECT_COLUMNS`
    order, lon/lat and easting/northing of the position shown, EPSG:4326."""
    table = privacy.public_records(real_projects(projects, include_synthetic))
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
    table["boundary_vintage"] = _vintage_text(PROJECT_LAYERS)
    kinds = {name: column.kind for name, column in columns.PROJECT_COLUMNS.items()}
    table = _typed(pd.DataFrame(table), kinds)
    return gpd.GeoDataFrame(
        table[list(columns.PROJECT_COLUMNS)], geometry=shown.to_numpy(), crs=boundaries.WGS84
    )


def _type_keys(projects: pd.DataFrame) -> list[str]:
    configured = list(project_types())
    extra = sorted(set(projects["type"].dropna().astype(str)) - set(configured))
    return configured + extra


COVERAGE_KEYS = {
    "ward": ("WD24CD", "WD24NM"),
    "deanery": ("deanery_id", "deanery_name"),
    "borough": ("LAD25CD", "LAD25NM"),
}
"""Key and name columns of coverage tables (names the summary lacks, e.g. a ward's LAD25NM,
are dropped: the summary names the borough already)."""


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
    names = [name for _, name in COVERAGE_KEYS.values() if name not in summary.columns]
    figures = figures.drop(columns=names, errors="ignore")
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


def _check_coverage(coverage: pd.DataFrame | None, include_synthetic: bool) -> None:
    """Refuse coverage figures that counted synthetic records in an export that leaves them out
    (`coverage.CoverageResult` tables say how many they counted in ``attrs``)."""
    counted = 0 if coverage is None else int(coverage.attrs.get("synthetic_projects", 0))
    if counted and not include_synthetic:
        raise ValueError(
            f"these coverage figures count {counted} synthetic (illustrative) project(s): "
            "compute them without (coverage.assess(..., include_synthetic=False)) or export "
            "with include_synthetic=True"
        )


def area_summary(
    projects: gpd.GeoDataFrame,
    level: str,
    coverage: pd.DataFrame | None = None,
    area_filters: Mapping[str, object] | None = None,
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """One row per ward, deanery or borough (EPSG:4326): projects in total and by type, per
    10,000 residents, and the coverage and gap figures when given (keyed by area code).
    Synthetic records count only with ``include_synthetic`` (coverage figures likewise).

    Projects count in the area their joined code names (the postcode's ward where known), as
    their public view (`privacy.public_records`) gives it: a type only a home gives is scrubbed.
    ``area_filters`` (boroughs, deaneries, wards, as for `filters.filter_projects`; other keys
    are ignored) keep only the areas inside the filtered region, zero-project areas included."""
    if level not in LEVELS:
        raise ValueError(f"no summary by {level!r}; choose one of {', '.join(LEVELS)}")
    projects = privacy.public_records(real_projects(projects, include_synthetic))
    _check_coverage(coverage, include_synthetic)
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
    names = [c for c in summary.columns if c not in ("_code", "geometry")]
    kinds = {name: columns.describe(name, level).kind for name in names}
    summary = _typed(pd.DataFrame(summary[[*names, "geometry"]]), kinds)
    return gpd.GeoDataFrame(summary, geometry="geometry", crs=areas.crs)


def coverage_figures(
    projects: gpd.GeoDataFrame,
    types=None,
    distance_m: float | None = None,
    include_synthetic: bool = False,
    include_outside: bool = True,
) -> dict[str, pd.DataFrame]:
    """Per-area coverage and gap figures (with ``gap_rank``) fit to leave the tool, for
    ``coverage=``. Projects just outside the region count for the residents near them unless
    ``include_outside`` is False (see `kindred_map.coverage`).

    Home-run projects count at their ward's centre (as exported), not at their true position:
    figures from the true position would hint where in its ward a home-run project is.
    ``types`` and ``distance_m`` (default: kindred_map.coverage's) as for coverage.assess;
    synthetic records count only with ``include_synthetic``."""
    public = privacy.public_records(projects)
    public = public[public.geometry.notna() & ~public.geometry.is_empty]
    distance = DEFAULT_DISTANCE_M if distance_m is None else distance_m
    options = {"include_synthetic": include_synthetic}
    result = assess(public, types, distance, include_outside=include_outside, **options)
    tables = {level: result.gaps(level) for level in LEVELS}
    if include_outside and result.outside:
        inside = assess(public, types, distance, include_outside=False, **options)
        effect = boundary_effect(result, inside, "borough")
        newly = dict(zip(effect["LAD25NM"], effect["newly_within_reach"].astype(int), strict=True))
        for table in tables.values():
            table.attrs["newly_within_reach"] = newly
    return tables


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


def _polygons(geometry) -> list:
    """The polygons in a polygon, multipolygon or (nested) collection; lines and points dropped."""
    found = []
    for part in shapely.get_parts(geometry):
        if part.geom_type == "Polygon":
            found.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            found.extend(_polygons(part))
    return found


def tidy_geometries(geometries, grid: float | None = None) -> np.ndarray:
    """Geometries fit for any GIS: snapped to ``grid`` (if given, keeping them valid), repeated
    consecutive vertices removed, made valid, and any polygonal one a MultiPolygon, so that a
    layer has one geometry type GDAL can name. Points and missing geometries pass through."""
    shapes = np.asarray(geometries, dtype=object)
    if grid:
        shapes = shapely.set_precision(shapes, grid)
    shapes = shapely.make_valid(shapely.remove_repeated_points(shapes))
    kinds = shapely.get_type_id(shapes)
    areal = np.isin(kinds, (3, 6, 7))
    if areal.any():
        shapes[areal] = [shapely.MultiPolygon(_polygons(shape)) for shape in shapes[areal]]
    return shapes


def rfc7946_geometries(geometries, decimals: int = GEOJSON_DECIMALS) -> np.ndarray:
    """Geometries on a ``decimals`` grid (valid, no repeated vertices, areas as MultiPolygons)
    with exterior rings counter-clockwise and holes clockwise."""
    snapped = tidy_geometries(geometries, 10.0**-decimals)
    rounded = shapely.transform(snapped, lambda xy: np.round(xy, decimals))
    return shapely.orient_polygons(rounded, exterior_cw=False)


def geojson_bytes(frame: gpd.GeoDataFrame, id_column: str | None, about: Mapping) -> bytes:
    """An RFC 7946 FeatureCollection (WGS84, 6 decimals, right-hand rule, no ``crs`` member).

    ``about`` goes in as top-level foreign members (a warning first when the data hold
    illustrative records, then title, attribution, licences, column definitions, ...)."""
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
    """A plain CSV (no geometry column), UTF-8 with BOM, one header row, for Excel and GIS.
    Text that a spreadsheet would run as a formula starts with ``'`` (`text.spreadsheet_safe`)."""
    table = spreadsheet_safe(pd.DataFrame(frame).drop(columns="geometry", errors="ignore"))
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


def about_text(about: Mapping) -> str:
    """The facts as ``item: value`` lines (a CSV's ``_about.txt``), warning first."""
    rows = _about_rows({k: v for k, v in about.items() if k != "notice"})
    lines = [about["notice"], ""] if "notice" in about else []
    lines += [f"{item}: {value}" for item, value in rows.itertuples(index=False)]
    return "\n".join(lines) + "\n"


TABLE_OF_LAYER = (
    {"projects": "projects"}
    | {f"{level}_summary": level for level in LEVELS}
    | {f"gaps_{level}": f"gaps_{level}" for level in LEVELS}
    | {f"need_{level}": f"need_{level}" for level in LEVELS}
    | {f"change_{level}": f"change_{level}" for level in LEVELS}
)
"""GeoPackage layer -> its table in `kindred_map.columns` (layers not named here, e.g.
clusters and hot spots, describe themselves in their ``about`` table only)."""


def column_facts(layer: str, frame: pd.DataFrame) -> dict[str, str]:
    """``{column: "type; unit: ...; description"}`` for a layer's columns, from columns.py
    (empty for a layer columns.py does not define)."""
    table = TABLE_OF_LAYER.get(layer)
    if table is None:
        return {}
    return {
        column.name: f"{column.kind}; unit: {column.unit}; {column.description}"
        for column in columns.dictionary(table, frame.columns)
    }


def _with_columns(about: Mapping, layer: str, frame: pd.DataFrame) -> dict:
    """The facts plus the layer's column definitions (as the ``columns`` member)."""
    described = column_facts(layer, frame)
    return dict(about) | ({"columns": described} if described else {})


GPKG_SCHEMA = "http://www.geopackage.org/spec/#extension_schema"
GPKG_SCHEMA_TABLES = {
    "gpkg_data_columns": "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT "
    "NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, "
    "constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
    "CONSTRAINT gdc_tn UNIQUE (table_name, name))",
    "gpkg_data_column_constraints": "CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints "
    "(constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, "
    "min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN, description TEXT, "
    "CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))",
}
"""The GeoPackage schema extension's tables (OGC 12-128r15, annex F.9), as GDAL creates them."""


def register_data_columns(path: Path, layers: Mapping[str, pd.DataFrame]) -> None:
    """Describe every column of the layers in ``gpkg_data_columns`` (the GeoPackage schema
    extension, registered in ``gpkg_extensions``), so QGIS and ArcGIS show each field's title,
    unit and meaning. Written with sqlite3 after GDAL has written the layers."""
    rows = []
    for layer, frame in layers.items():
        table = TABLE_OF_LAYER.get(layer)
        for column in columns.dictionary(table, frame.columns) if table else []:
            plain = column.unit.startswith("none")
            title = column.name if plain else f"{column.name} ({column.unit})"
            described = f"{column.description}. Type: {column.kind}; unit: {column.unit}."
            rows.append((layer, column.name, column.name, title, described))
    if not rows:
        return
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
            "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
            "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
        )
        for table, ddl in GPKG_SCHEMA_TABLES.items():
            connection.execute(ddl)
            connection.execute(
                "INSERT OR IGNORE INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', ?, "
                "'read-write')",
                (table, GPKG_SCHEMA),
            )
        connection.executemany(
            "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, "
            "description) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def write_geopackage(path: Path, layers: Mapping[str, gpd.GeoDataFrame], about: Mapping) -> None:
    """Layers in EPSG:27700 (geometries tidied, areas MultiPolygon, dates typed as dates) plus an
    ``about`` table (warning, title, date, parameters, attribution and every layer's column
    definitions) and ``gpkg_data_columns``.

    Written through Arrow so that a date column is a GeoPackage DATE; each layer's description
    and metadata also carry the attribution, for QGIS and ArcGIS."""
    attribution = " | ".join(about["attribution"])
    notice = f"{about['notice']} " if "notice" in about else ""
    facts = dict(about)
    for name, frame in layers.items():
        grid = frame.to_crs(boundaries.BNG)
        grid = gpd.GeoDataFrame(
            grid.drop(columns=grid.geometry.name),
            geometry=tidy_geometries(grid.geometry.to_numpy()),
            crs=boundaries.BNG,
        )
        pyogrio.write_dataframe(
            grid,
            path,
            layer=name,
            driver="GPKG",
            use_arrow=True,
            dataset_options={"VERSION": GPKG_VERSION},
            layer_options={"DESCRIPTION": f"{notice}{about['title']}: {name}. {attribution}"},
            layer_metadata={"attribution": attribution, "generated": about["generated"]},
        )
        described = column_facts(name, frame)
        if described:
            facts[f"columns of {name}"] = described
    pyogrio.write_dataframe(_about_rows(facts), path, layer="about", driver="GPKG")
    register_data_columns(path, layers)


# --- words ------------------------------------------------------------------------------


def project_sources(projects: pd.DataFrame) -> list[dict]:
    """The known project data sources found in the records' ``source``, then the others,
    grouped by the text before their first ": " (e.g. a news item, without its detail)."""
    if "source" not in projects.columns:
        return []
    sources = privacy.public_values(projects, "source").astype("string").str.strip()
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


SETTINGS_FILE = Path(__file__).parent / "reference" / "pack_settings.toml"
SETTINGS_ENV = "KINDRED_MAP_PACK_SETTINGS"
SETTINGS_KEYS = ("owner", "contact", "pack_licence")


def pack_settings(path: Path | str | None = None) -> dict[str, str]:
    """Owner, contact and pack licence for exports: the shipped defaults
    (``reference/pack_settings.toml``), overridden key by key by ``path`` if given, else by the
    file ``KINDRED_MAP_PACK_SETTINGS`` names. An explicit file beats the environment so that
    one command line can make a pack for another partner without touching the shell."""
    settings = tomllib.loads(SETTINGS_FILE.read_text(encoding="utf-8"))
    chosen = path or os.environ.get(SETTINGS_ENV) or None
    if chosen:
        try:
            given = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"cannot read pack settings {chosen}: {error}") from error
        unknown = sorted(set(given) - set(SETTINGS_KEYS))
        if unknown:
            raise ValueError(
                f"pack settings {chosen}: unknown key(s) {unknown}; use {list(SETTINGS_KEYS)}"
            )
        settings |= {key: str(value) for key, value in given.items()}
    return {key: str(settings[key]).strip() for key in SETTINGS_KEYS}


_INTERNAL_PATH = re.compile(r"\b(?:kindred_map|boundaries|data)/[\w./-]+")


def public_text(text: str) -> str:
    """``text`` without the tool's internal file paths (a council has no use for them)."""
    return _INTERNAL_PATH.sub("a reference list kept with Kindred Map", text)


def _public(value):
    if isinstance(value, Mapping):
        return {key: _public(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_public(item) for item in value]
    return public_text(value) if isinstance(value, str) else value


def about(
    projects: pd.DataFrame,
    what: str,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
) -> dict:
    """Facts every export carries: a warning first if ``projects`` hold illustrative records,
    then title, time, owner, contact, pack licence, parameters, licences, attribution and
    vintages. ``settings``: as `pack_settings` returns (default: `pack_settings()`)."""
    settings = pack_settings() if settings is None else settings
    licences = {
        boundaries.metadata(name)["title"]: boundaries.metadata(name)["licence"]
        for name in PROJECT_LAYERS
    }
    licences |= {source["name"]: source["licence"] for source in project_sources(projects)}
    notice = synthetic_notice(projects) if "synthetic" in projects.columns else None
    facts = {"notice": notice} if notice else {}
    facts |= {
        "title": f"Kindred Map export: {what}",
        "generated": _stamp(generated),
        "generator": f"Kindred Map {__version__}",
        "owner": settings["owner"],
        "contact": settings["contact"],
        "pack_licence": settings["pack_licence"],
        "parameters": {str(k): str(v) for k, v in (parameters or {}).items()},
        "boundary_vintage": {name: boundaries.metadata(name)["vintage"] for name in PROJECT_LAYERS},
        "licences": licences,
        "attribution": attribution(projects),
    }
    return _public(facts)


GAP_WEIGHTS = "w = 2 for IMD 2025 deciles 1-2, 1.5 for deciles 3-4 and 1 otherwise"


def method_lines(distance_m: float | None = None) -> list[str]:
    """How every figure is made, in words (pack README, CSV sidecars, area profiles)."""
    reach = f"{distance_m:g} m" if distance_m else "the distance under Parameters"
    ward_meta = boundaries.metadata("ward")
    inside = ward_meta.get("measured", {}).get("live_postcodes_inside_own_polygon_pct")
    inside_text = f"{inside:.1f}%" if inside is not None else "most"
    return [
        "- Population: each LSOA's Census 2021 usual residents are spread over its residential "
        "postcodes in whole people (largest remainder); an area's population is the sum over "
        "the postcodes in it, so every level adds up to the region's total exactly.",
        f"- Reach: a resident is within reach when the straight-line (as the crow flies) ground "
        f"distance from their postcode to the nearest project of the chosen types is at most "
        f"{reach}. Not a walking route: rivers, railways and main roads are ignored, so "
        "real access is worse than these figures near such barriers.",
        f"- Gap score = sum over residents beyond reach of w(IMD 2025 decile of their LSOA), "
        f"{GAP_WEIGHTS}: need-weighted people beyond reach. gap_per_1000 = 1000 x gap_score / "
        "population; gap_rank ranks every area of a level in the region by gap_score (1 = "
        "biggest gap).",
        "- Percentages are 0-100 everywhere (columns pct_*).",
        "- Projects count in the area their codes name: a project with a valid postcode takes "
        "its postcode's ward and borough (ONS assignment at full resolution); otherwise the "
        "nearest live postcode's, or the generalised ward polygon's (column ward_source). "
        f"Ward shapes are generalised to 200 m: only {inside_text} of postcodes lie inside "
        "their own ward's polygon, so do not re-assign points to wards with these shapes.",
        "- Across the boundary: a project just outside the 9 boroughs (in_region = false; "
        "nearest_borough names the region borough nearest it) is placed and exported, and "
        "counts for the region's residents within reach of it, on either side of the "
        "boundary, unless Parameters say only projects inside the region count (the "
        "comparison). It counts in no area's project figures, and residents outside the "
        "region are never counted.",
        "- Home-run projects (location_precision = ward_only) never leave with their address: "
        "they are shown at their ward's centre, their address, LSOA and IMD decile are blank "
        "and their postcode is cut to the district; they count for coverage at that centre.",
        "- Deanery boundaries are APPROXIMATE, derived, not official: "
        + boundaries.metadata("deanery")["method"],
        "- Coordinates: GeoJSON in WGS84 (RFC 7946, 6 decimals); GeoPackage in British National "
        "Grid (EPSG:27700); CSV carries both. Geometries are valid, without repeated vertices, "
        "and every area layer is MultiPolygon.",
    ]


def _boundary_lines(coverage: Mapping[str, pd.DataFrame]) -> list[str]:
    """What the projects outside the region did to this export's coverage (from the coverage
    tables' ``attrs``, see `coverage_figures`)."""
    found = [table.attrs for table in coverage.values() if table is not None]
    attrs = next((attrs for attrs in found if "outside_projects" in attrs), {})
    if not attrs:
        return []
    if not attrs.get("include_outside", True):
        return ["- Only projects inside the region count for reach in these figures."]
    newly = attrs.get("newly_within_reach") or {}
    if not attrs["outside_projects"] or not newly:
        return [
            "- No project of the chosen types lies outside the region: reach is the same "
            "counted either way."
        ]
    parts = "; ".join(f"{name} {count:,}" for name, count in newly.items() if count)
    return [
        f"- {attrs['outside_projects']} project(s) of the chosen types lie outside the "
        f"region. Counting them moves {sum(newly.values()):,} residents from beyond reach to "
        f"within reach (by borough: {parts or 'none'})."
    ]


def layer_lines() -> list[str]:
    """Vintage, source, generalisation and accuracy (with measured figures) of every layer."""
    lines = []
    for name in PROJECT_LAYERS:
        meta = boundaries.metadata(name)
        flag = " APPROXIMATE." if meta.get("approximate") else ""
        measured = meta.get("measured") or {}
        figures = "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in measured.items())
        lines.append(
            f"- {meta['title']}: {meta['vintage']}. Source: {meta['source']}. Generalisation: "
            f"{meta['generalisation']}. Accuracy: {meta['accuracy']}{flag}"
            + (f" Measured: {figures}." if figures else "")
        )
    return lines


TABLE_TITLES = (
    {"projects": "Projects"}
    | {lvl: f"{lvl.capitalize()} summary" for lvl in LEVELS}
    | {f"change_{lvl}": f"{lvl.capitalize()} change between two dates" for lvl in LEVELS}
)


def readme_text(
    projects: gpd.GeoDataFrame,
    contents: Mapping[str, str],
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    summaries: Mapping[str, pd.DataFrame] | None = None,
    coverage_levels=(),
    settings: Mapping[str, str] | None = None,
    distance_m: float | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    coverage: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """README for an export: a warning first if it holds illustrative records; what, when, who
    (owner, contact, licence), parameters, method, layers (vintage, generalisation, accuracy),
    licences, attribution and the data dictionary of every table shipped (``tables``: table
    name -> frame, from `kindred_map.columns`).

    ``projects``: the records exported (synthetic ones only if the export includes them);
    ``contents`` maps each file to what it holds; ``summaries`` are the area tables shipped;
    ``coverage`` the coverage tables they were given (`coverage_figures`), whose ``attrs`` say
    what the projects outside the region changed."""
    facts = about(projects, "council pack", parameters, generated, settings)
    hidden = int(privacy.is_ward_only(projects).sum())
    synthetic = int(projects["synthetic"].map(_flag).fillna(False).astype(bool).sum())
    lines = [facts["notice"], ""] if "notice" in facts else []
    lines += [
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
        "When and who",
        "------------",
        f"- Generated {facts['generated']} (UTC) by {facts['generator']}.",
        f"- Owner: {facts['owner']}",
        f"- Contact: {facts['contact']}",
        f"- Licence of this pack: {facts['pack_licence']}",
        "",
        "Parameters",
        "----------",
    ]
    if facts["parameters"]:
        lines += [f"- {key}: {value}" for key, value in facts["parameters"].items()]
    else:
        lines.append("- No filters: every real project in the store.")
    lines += [
        f"- Projects exported: {len(projects)} ({hidden} home-run, {synthetic} illustrative).",
        "",
        "Method",
        "------",
        *method_lines(distance_m),
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
            "- Coverage and gap figures (" + ", ".join(coverage_levels) + " summaries) are "
            "computed with the reach distance and project types under Parameters."
        )
        lines += _boundary_lines(coverage or {})
    else:
        lines.append("- Coverage and gap figures: not computed for this export.")
    lines += ["", "Layers: vintage, generalisation and accuracy", "-" * 44, *layer_lines()]
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
    ]
    for table, frame in (tables or {}).items():
        title = f"{TABLE_TITLES.get(table, table)} columns (type; unit: description)"
        lines += ["", title, "-" * len(title), *columns.dictionary_lines(table, frame.columns)]
    return public_text("\n".join(lines) + "\n")


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
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """The table an export of ``what`` writes: masked projects or an area summary."""
    if what == "projects":
        return project_table(projects, include_synthetic)
    figures = (coverage or {}).get(what)
    return area_summary(projects, what, figures, area_filters, include_synthetic)


def _distance(coverage: Mapping[str, pd.DataFrame] | None) -> float | None:
    """The reach distance the coverage tables were computed at (`coverage` tables say so)."""
    for table in (coverage or {}).values():
        if table is not None and "distance_m" in table.attrs:
            return float(table.attrs["distance_m"])
    return None


def _layer_name(what: str) -> str:
    return "projects" if what == "projects" else f"{what}_summary"


def geopackage(
    projects: gpd.GeoDataFrame,
    layers=("projects", *LEVELS),
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """A GeoPackage (EPSG:27700) with the chosen layers: projects and ward/deanery/borough
    summaries (named ``<level>_summary``), an ``about`` table and ``gpkg_data_columns``;
    ``change`` (level -> `kindred_map.change` table with its areas) adds ``change_<level>``."""
    projects = real_projects(projects, include_synthetic)
    frames = {}
    for what in layers:
        if what not in ("projects", *LEVELS):
            raise ValueError(f"no GeoPackage layer {what!r}; choose from projects, {LEVELS}")
        frames[_layer_name(what)] = table_for(
            projects, what, coverage=coverage, area_filters=area_filters, include_synthetic=True
        )
    frames |= {f"change_{level}": frame for level, frame in (change or {}).items()}
    facts = about(projects, ", ".join(frames), parameters, generated, settings)
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
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """The export file as bytes (for a download button).

    ``fmt``: one of FORMATS; ``what``: one of WHATS ("all" = projects and every summary, for
    a GeoPackage; a pack always holds everything; the HTML map always shows projects).
    ``projects`` are already filtered (`filters.filter_projects`); ``area_filters`` are the
    same boroughs/deaneries/wards, to keep the summaries to those areas. ``coverage`` maps a
    level to its per-area figures (`coverage_figures`). ``parameters`` (filters, distance, in
    words), ``generated`` (default now, UTC) and ``settings`` (owner, contact, pack licence:
    `pack_settings`) are written into the file's metadata. Synthetic records are left out
    unless ``include_synthetic``; then every file says so in its first lines. ``change``
    (level -> change table with areas, `kindred_map.change`) adds the change tables to a
    GeoPackage or pack; other formats refuse it."""
    _check_choice(fmt, what)
    if change and fmt not in ("gpkg", "pack"):
        raise ValueError(f"change tables go in a gpkg or pack export, not {fmt}")
    projects = real_projects(projects, include_synthetic)
    tables = {"coverage": coverage, "area_filters": area_filters}
    words = {"parameters": parameters, "generated": generated, "settings": settings}
    if fmt == "pack":
        return council_pack(projects, **tables, **words, include_synthetic=True, change=change)
    if fmt in ("oruk", "oruk-csv"):
        moment = generated or datetime.now(UTC)
        facts = about(projects, "Open Referral UK services", parameters, moment, settings)
        return oruk.export_bytes(project_table(projects, True), facts, fmt, moment)
    if fmt == "html":
        return html_map(projects, **words, include_synthetic=True)
    if fmt == "gpkg":
        layers = ("projects", *LEVELS) if what == "all" else (what,)
        return geopackage(
            projects, layers, **tables, **words, include_synthetic=True, change=change
        )
    table = table_for(projects, what, **tables, include_synthetic=True)
    if fmt == "csv":
        return csv_bytes(table)
    id_column = "id" if what == "projects" else boundaries.LAYERS[what]["key"]
    facts = about(projects, what, parameters, generated, settings)
    return geojson_bytes(table, id_column, _with_columns(facts, _layer_name(what), table))


def csv_about_text(
    projects: gpd.GeoDataFrame,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
) -> str:
    """The sidecar text for a CSV exported alone (the CSV itself stays clean for Excel): the
    README with the CSV's data dictionary."""
    projects = real_projects(projects, include_synthetic)
    table = table_for(
        projects, what, coverage=coverage, area_filters=area_filters, include_synthetic=True
    )
    summaries = {} if what == "projects" else {what: table}
    contents = {
        f"{what}.csv": f"{what} table, UTF-8 with BOM, one header row; text that a spreadsheet "
        "would run as a formula (starting = + - @) begins with '"
    }
    covered = tuple(level for level in summaries if (coverage or {}).get(level) is not None)
    return readme_text(
        projects,
        contents,
        parameters,
        generated,
        summaries,
        covered,
        settings,
        _distance(coverage),
        {what: table},
        coverage,
    )


def council_pack(
    projects: gpd.GeoDataFrame,
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """A .zip for a council partner: projects and ward, deanery and borough summaries as
    GeoJSON and CSV, a GeoPackage of them all, the HTML map and a README (method, layers,
    owner, licences, attribution, data dictionary); with ``change``, the change tables too
    (``change_<level>.csv`` and layers of the GeoPackage)."""
    projects = real_projects(projects, include_synthetic)
    moment = generated or datetime.now(UTC)
    settings = pack_settings() if settings is None else settings
    tables = {"coverage": coverage, "area_filters": area_filters}
    words = {"parameters": parameters, "generated": moment, "settings": settings}
    table = project_table(projects, include_synthetic=True)
    summaries = {
        level: table_for(projects, level, **tables, include_synthetic=True) for level in LEVELS
    }
    facts = about(projects, "projects", parameters, moment, settings)
    parts = {
        "projects.geojson": (
            geojson_bytes(table, "id", _with_columns(facts, "projects", table)),
            f"{len(table)} projects, RFC 7946 GeoJSON (WGS84), for web maps and QGIS",
        ),
        "projects.csv": (csv_bytes(table), "the same projects as a spreadsheet (UTF-8)"),
    }
    covered = tuple(level for level in LEVELS if (coverage or {}).get(level) is not None)
    for level, frame in summaries.items():
        figures = "with coverage and gap figures" if level in covered else "without coverage"
        key = boundaries.LAYERS[level]["key"]
        level_facts = about(projects, f"{level} summary", parameters, moment, settings)
        parts[f"{level}.geojson"] = (
            geojson_bytes(frame, key, _with_columns(level_facts, _layer_name(level), frame)),
            f"{len(frame)} {level} areas with their summary figures ({figures}), RFC 7946 "
            "GeoJSON (WGS84), MultiPolygon",
        )
        parts[f"{level}_summary.csv"] = (
            csv_bytes(frame),
            f"the same {level} figures as a spreadsheet (no shapes)",
        )
    changes = {f"change_{level}": frame for level, frame in (change or {}).items()}
    for name, frame in changes.items():
        parts[f"{name}.csv"] = (
            csv_bytes(pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))),
            f"change between two dates per {name.removeprefix('change_')} "
            f"({frame.attrs.get('dates', 'see Parameters')}), as a spreadsheet",
        )
    gpkg_layers = ", ".join(["projects", *[f"{level}_summary" for level in LEVELS], *changes])
    parts[GPKG_NAME] = (
        geopackage(
            projects,
            ("projects", *LEVELS),
            **tables,
            **words,
            include_synthetic=True,
            change=change,
        ),
        f"GeoPackage in British National Grid (EPSG:27700): layers {gpkg_layers} "
        "(MultiPolygon), an about table and column definitions (gpkg_data_columns); opens in "
        "QGIS and ArcGIS",
    )
    parts["map.html"] = (
        html_map(projects, **words, include_synthetic=True),
        "a one-file map of the projects; open it in any browser, works offline",
    )
    contents = {"README.txt": "this file"} | {name: text for name, (_, text) in parts.items()}
    readme = readme_text(
        projects,
        contents,
        parameters,
        moment,
        summaries,
        covered,
        settings,
        _distance(coverage),
        {"projects": table} | summaries | changes,
        coverage,
    )
    members = {"README.txt": readme.encode("utf-8")} | {n: b for n, (b, _) in parts.items()}
    buffer = io.BytesIO()
    stamp = moment.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as pack:
        for name, payload in members.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | files.file_mode()) << 16
            pack.writestr(info, payload, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


TABLE_SUFFIXES = (".geojson", ".gpkg", ".csv")


def write_table(
    frame: pd.DataFrame,
    path: Path,
    layer: str,
    projects: pd.DataFrame | None = None,
    parameters: Mapping[str, object] | None = None,
    attribution_lines: list[str] | None = None,
) -> Path:
    """Write one table by the path's extension, atomically (umask permissions), with the
    attribution every export carries: .geojson (RFC 7946), .gpkg (EPSG:27700, plus an ``about``
    table) or .csv (no geometry; UTF-8 with BOM). For the CLI's join, gaps and cluster outputs.
    ``projects`` (the records the table came from) adds their sources' attribution, and a
    warning first if they hold synthetic records; a CSV gets it all in a
    ``<name>_about.txt`` beside it. ``attribution_lines``: more lines the table's own sources
    need (e.g. IoD 2019). No masking or selection happens here: pass tables fit to leave the
    tool."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"output must end in .geojson, .gpkg or .csv, not {path.name!r}")
    has_geometry = isinstance(frame, gpd.GeoDataFrame)
    if suffix != ".csv" and not has_geometry:
        raise ValueError(f"{path.name}: this output has no geometry; write a .csv instead")
    if projects is None:
        projects = pd.DataFrame({"source": [], "location_precision": [], "synthetic": []})
    facts = about(projects, layer, parameters)
    extra = [line for line in attribution_lines or [] if line not in facts["attribution"]]
    facts["attribution"] = [*facts["attribution"], *extra]
    if suffix == ".csv":
        files.write_bytes(path, csv_bytes(frame))
        sidecar = path.with_name(f"{path.stem}_about.txt")
        files.write_bytes(sidecar, about_text(_with_columns(facts, layer, frame)).encode("utf-8"))
    elif suffix == ".geojson":
        files.write_bytes(path, geojson_bytes(frame, None, _with_columns(facts, layer, frame)))
    else:
        files.write_with(path, lambda temporary: write_geopackage(temporary, {layer: frame}, facts))
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
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> list[Path]:
    """Write the export to ``path`` (atomically, with the umask's permissions); a CSV gets a
    ``<name>_about.txt`` beside it with the attribution, licences and column definitions.
    ``change``: see `export_bytes`. Returns the files written."""
    path = Path(path)
    if change and fmt not in ("gpkg", "pack"):
        raise ValueError(f"change tables go in a gpkg or pack export, not {fmt}")
    options = {
        "coverage": coverage,
        "area_filters": area_filters,
        "parameters": parameters,
        "generated": generated or datetime.now(UTC),
        "settings": pack_settings() if settings is None else settings,
        "include_synthetic": include_synthetic,
    }
    files.write_bytes(path, export_bytes(projects, fmt, what, **options, change=change))
    written = [path]
    if fmt == "csv":
        sidecar = path.with_name(f"{path.stem}_about.txt")
        files.write_bytes(sidecar, csv_about_text(projects, what, **options).encode("utf-8"))
        written.append(sidecar)
    return written


def write_joined(projects: gpd.GeoDataFrame, path: Path) -> Path:
    """Write joined projects as .geojson (RFC 7946), .gpkg (EPSG:27700) or .csv, attributed.

    ``ward_only`` projects go through `kindred_map.privacy.public_records`: they are written
    at their ward's centre, without address, coordinates, LSOA or full postcode. (Here, not in
    `join`: joining comes before the store, writing files after it.)
    """
    return write_table(privacy.public_records(projects), path, "projects", projects)
