"""A stored record: its fields and their types, as both engines and the history keep them."""

import datetime as dt
import io
import json
import math
from functools import lru_cache
from json.encoder import encode_basestring

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import shapely

from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, STEWARD_FIELDS

WGS84 = "EPSG:4326"
STORE_FIELDS = (*RECORD_FIELDS, *JOINED_FIELDS, *STEWARD_FIELDS)
"""Every stored field, in order: the record, what joining adds, upkeep (`kindred_map.schema`)."""
FLOAT_FIELDS = {"lat": 6, "lon": 6, "easting": 1, "northing": 1}
"""Float fields and the decimals they are stored with (0.1 m; 6 decimals of a degree ~0.1 m)."""

BOOL_FIELDS = ("synthetic", "in_region")
INT_FIELDS = ("deanery_id", "imd_decile", "version")
IMPORT_LOG_FIELDS = {
    "import_id": "int64",
    "who": "str",
    "imported_at": "str",
    "file": "str",
    "file_sha256": "str",
    "rows_read": "int64",
    "imported": "int64",
    "rejected": "int64",
    "warned": "int64",
    "projects": "int64",
    "new": "int64",
    "updated": "int64",
    "unchanged": "int64",
    "note": "str",
}
"""The import log's columns and types (one row per import)."""


def field_kind(name: str) -> str:
    """A store or import-log field's kind: "float", "bool", "int" or "text" (each backend
    maps it to its own column type)."""
    if name in FLOAT_FIELDS:
        return "float"
    if name in BOOL_FIELDS:
        return "bool"
    if name in INT_FIELDS or IMPORT_LOG_FIELDS.get(name) == "int64":
        return "int"
    return "text"


def conform(projects: gpd.GeoDataFrame, fields=None) -> gpd.GeoDataFrame:
    """Projects with exactly the store's columns (``fields`` of them, `checked_fields`), in
    order, with the store's types, in WGS84."""
    frame = projects.to_crs(WGS84) if projects.crs is not None else projects.set_crs(WGS84)
    names = STORE_FIELDS if fields is None else checked_fields(fields)
    out = {}
    for name in names:
        column = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        out[name] = typed_column(name, column)
    return gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=WGS84, index=frame.index)


def typed_column(name: str, column: pd.Series) -> pd.Series:
    """One column with the store's type for field ``name`` (what `conform` makes of it)."""
    if name in FLOAT_FIELDS:
        return pd.to_numeric(column, errors="coerce").astype("float64").round(FLOAT_FIELDS[name])
    if name in BOOL_FIELDS:
        return column.fillna(False).astype(bool)
    if name in INT_FIELDS:
        return pd.to_numeric(column, errors="coerce").round().astype("Int64")
    if column.dtype == "str" and not column.isna().any():
        return column  # already stored text (a conformed frame): no conversion
    return column.astype("object").where(column.notna(), "").astype("str")


def checked_fields(fields) -> tuple[str, ...]:
    """Store fields a reader asks for, in STORE_FIELDS order, always with ``id`` (what projects
    are ordered and matched by) and ``lon``/``lat`` (the point): a ValueError names an unknown
    one."""
    asked = set(fields)
    unknown = sorted(asked - set(STORE_FIELDS))
    if unknown:
        raise ValueError(f"unknown store field(s) {unknown}; valid: {', '.join(STORE_FIELDS)}")
    asked |= {"id", "lon", "lat"}
    return tuple(name for name in STORE_FIELDS if name in asked)


def empty_projects() -> gpd.GeoDataFrame:
    """A store with no projects (the right columns and types)."""
    return _empty().copy()


@lru_cache(maxsize=1)
def _empty() -> gpd.GeoDataFrame:
    """Made once: conforming an empty frame costs ~0.15 s (an import asks for it twice)."""
    return conform(gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84)))


def empty_imports() -> pd.DataFrame:
    """An import log with no rows (the right columns and types)."""
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in IMPORT_LOG_FIELDS.items()})


def typed(name: str, value):
    """A stored SQLite value as the history's JSON keeps it (see `kindred_map.storage.history`)."""
    if name in BOOL_FIELDS:
        return bool(value)
    if name in FLOAT_FIELDS:
        return (
            None
            if value is None or (isinstance(value, float) and math.isnan(value))
            else float(value)
        )
    if name in INT_FIELDS:
        return None if value is None else int(value)
    return "" if value is None else str(value)


def plain_columns(projects: gpd.GeoDataFrame, columns: list[str]) -> list[list]:
    """Each column as the Python values SQLite stores: NaN/NA as NULL, booleans as 0/1."""
    out = []
    for name in columns:
        column = projects[name]
        if name in FLOAT_FIELDS:
            numbers = column.to_numpy(float)
            values = np.where(np.isnan(numbers), None, numbers).tolist()
        elif name in BOOL_FIELDS:
            values = column.to_numpy(bool).astype(int).tolist()
        elif name in INT_FIELDS:
            missing = column.isna().to_numpy()
            numbers = column.fillna(0).astype("int64").to_numpy()
            values = np.where(missing, None, numbers.astype(object)).tolist()
        else:
            values = column.to_numpy(dtype=object).tolist()
        out.append(values)
    return out


def plain_values(projects: gpd.GeoDataFrame, columns: list[str]) -> list[tuple]:
    """Rows of Python values SQLite stores (`plain_columns`, row by row)."""
    return list(zip(*plain_columns(projects, columns), strict=True))


def record_json(record: dict) -> str:
    """A record as the JSON the history keeps: keys in field order, compact, UTF-8 as typed."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def typed_texts(frame: pd.DataFrame, fields=None) -> list[str]:
    """`record_json` of every row of a conformed frame (``fields``, else STORE_FIELDS, with
    the store's types), made a column at a time: the same text as typing each row to a dict
    and dumping it, about ten times faster (an import of 100,000 rows makes 100,000)."""
    fields = STORE_FIELDS if fields is None else tuple(fields)
    template = "{" + ",".join(f"{encode_basestring(name)}:%s" for name in fields) + "}"
    columns = []
    for name in fields:
        column = frame[name]
        if name in FLOAT_FIELDS:
            numbers = column.to_numpy(float)
            missing = np.isnan(numbers)
            if np.isinf(numbers).any():
                raise ValueError(f"{name} holds an infinite number: not storable as JSON")
            texts = [repr(x) for x in numbers.tolist()]
            columns.append(np.where(missing, "null", np.array(texts, dtype=object)).tolist())
        elif name in BOOL_FIELDS:
            columns.append(np.where(column.to_numpy(bool), "true", "false").tolist())
        elif name in INT_FIELDS:
            missing = column.isna().to_numpy()
            numbers = column.fillna(0).astype("int64").to_numpy().tolist()
            columns.append(["null" if m else str(v) for m, v in zip(missing, numbers, strict=True)])
        else:
            columns.append(list(map(encode_basestring, column.to_numpy(dtype=object).tolist())))
    return [template % row for row in zip(*columns, strict=True)]


def record_texts(projects: gpd.GeoDataFrame) -> pd.Series:
    """`record_json` of each project's typed record (what `records` gives), indexed by id."""
    frame = conform(projects)
    return pd.Series(typed_texts(frame), index=frame["id"].to_numpy(), dtype=object)


def records(projects: gpd.GeoDataFrame) -> list[dict]:
    """Projects as typed record dicts (STORE_FIELDS), as the history keeps them."""
    rows = plain_values(conform(projects), list(STORE_FIELDS))
    return [
        {name: typed(name, value) for name, value in zip(STORE_FIELDS, row, strict=True)}
        for row in rows
    ]


def from_records(rows: list[dict], fields=None) -> gpd.GeoDataFrame:
    """Record dicts (from the history) as store projects; the point is (lon, lat). ``fields``
    (`checked_fields`): only those columns are taken and typed, each as `conform` types it,
    so a reader that needs a few of the 37 (the change analysis) does not pay for the rest."""
    names = STORE_FIELDS if fields is None else checked_fields(fields)
    return _projects(pd.DataFrame(list(rows), columns=list(names), dtype=object), names)


ARROW_KINDS = {"float": pa.float64(), "bool": pa.bool_(), "int": pa.int64(), "text": pa.string()}
"""The Arrow type a record's field of each kind (`field_kind`) is parsed as (`json_table`)."""
EXACT_INT = 2**53
"""Integers up to this size are the same as floats: pandas types an integer column with gaps
through float64, so `json_table` leaves bigger ones to `json.loads`."""


def json_table(texts: list[str], kinds: dict[str, str]) -> pa.Table | None:
    """Record JSON texts (the history's) parsed in one pass by Arrow (about 3x faster than
    ``json.loads`` of each, and the columns come typed): a column per name of ``kinds`` (name
    -> `field_kind`), null where a text lacks it; other keys are skipped.

    None when Arrow's answer could differ from ``json.loads``'s (the caller then uses that):
    a text that is not one line, a value not of its field's JSON kind (a number in a text
    field, ``3.0`` or ``true`` in an integer one), a key given twice, a number out of range,
    an integer beyond EXACT_INT, text that is not valid UTF-8 (a lone surrogate). Arrow
    rejects all of these rather than convert them."""
    joined = "\n".join(texts)
    if not texts or "\r" in joined or joined.count("\n") != len(texts) - 1:
        return None
    schema = pa.schema([(name, ARROW_KINDS[kind]) for name, kind in kinds.items()])
    options = pa_json.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
    )
    try:
        table = pa_json.read_json(io.BytesIO(joined.encode()), parse_options=options)
    except (UnicodeEncodeError, pa.ArrowInvalid):
        return None
    if table.num_rows != len(texts):  # a blank text: Arrow skips it, json.loads refuses it
        return None
    for name, kind in kinds.items():
        biggest = pc.max(pc.abs(table[name])).as_py() if kind == "int" else None
        if biggest is not None and biggest > EXACT_INT:
            return None
    return table


def from_table(table: pa.Table, fields=None) -> gpd.GeoDataFrame:
    """Records parsed by `json_table` as store projects: the same frame `from_records` makes
    of the same records parsed by ``json.loads`` (each column handed to `conform` as the same
    values: text and flags as Python objects, numbers as floats with NaN for null)."""
    names = STORE_FIELDS if fields is None else checked_fields(fields)
    frame = pd.DataFrame(
        {name: table[name].to_numpy(zero_copy_only=False) for name in names}, columns=list(names)
    )
    return _projects(frame, names)


def _projects(frame: pd.DataFrame, names: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Untyped record columns as conformed projects, the point from (lon, lat)."""
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(float)
    points = shapely.points(lon, lat)
    points[np.isnan(lon) | np.isnan(lat)] = None
    return conform(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=WGS84)), names)


def baseline_event(record: dict, at: str) -> dict:
    """The event a project stored before history gets: it counts from ``at``."""
    return {
        "project_id": record["id"],
        "at": at,
        "who": "",
        "action": "baseline",
        "source": "stored before history",
        "import_id": None,
        "before": None,
        "after": record_json(record),
        "version": record["version"],
    }


def now() -> str:
    """The time as the store stamps events and imports: ISO 8601 UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
