"""Writers: RFC 7946 GeoJSON, CSV for Excel, GeoPackage with its column descriptions."""

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from kindred_map import (
    boundaries,
    columns,
)
from kindred_map.export.tables import GEOJSON_DECIMALS, LEVELS
from kindred_map.files import GPKG_VERSION
from kindred_map.text import spreadsheet_safe

CSV_ENCODING = "utf-8-sig"
"""UTF-8 with a byte-order mark: Excel then shows names like Café and St Mary’s correctly."""


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
