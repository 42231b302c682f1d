"""The project store: a GeoPackage (default) or PostGIS database, with an import log.

Every public function takes a store location (`kindred_map.location.StoreLocation`, or a
setting it resolves: a path or a DSN; none: the configured store): a GeoPackage is grown in
place in SQLite transactions under a folder lock; a PostGIS database (`kindred_map.pgstore`) is
written in PostgreSQL transactions with row locks. Both give the same records, counts, reports
and log for the same calls.
"""

import datetime as dt
import fcntl
import hashlib
import math
import os
import secrets
import sqlite3
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from kindred_map import ingest, pgstore, privacy
from kindred_map.location import resolve
from kindred_map.paths import BOUNDARIES_DIR, PUBLISHED_DATA_DIR, PUBLISHED_PROJECT_FILES
from kindred_map.report import ImportReport, build_report, issues_for
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, STEWARD_FIELDS
from kindred_map.storage import asof, history

WGS84 = "EPSG:4326"
PROJECTS_LAYER = "projects"
IMPORTS_LAYER = "imports"
STORE_LAYERS = (PROJECTS_LAYER, IMPORTS_LAYER)
PRIVATE_TABLE = "kindred_private"
"""Key/value table for the store's secret (the HMAC key of derived ids). Not registered in
``gpkg_contents``, so GDAL, QGIS and every export ignore it; it never leaves the store."""
STORE_FIELDS = (*RECORD_FIELDS, *JOINED_FIELDS, *STEWARD_FIELDS)
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
NEW_STORE_MODE = 0o600
"""A new store is readable by its owner only: it holds the true positions of home-run projects."""
DIFFERENT_PLACE_M = 1_000
"""An update naming a different project this far from the stored one is a collision, not an edit."""
SQL_CHUNK = 500
"""Ids per ``IN (...)`` query (SQLite allows 999 parameters in older builds)."""


def conform(projects: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Projects with exactly the store's columns, in order, with the store's types, in WGS84."""
    frame = projects.to_crs(WGS84) if projects.crs is not None else projects.set_crs(WGS84)
    out = {}
    for name in STORE_FIELDS:
        column = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        if name in FLOAT_FIELDS:
            out[name] = (
                pd.to_numeric(column, errors="coerce").astype("float64").round(FLOAT_FIELDS[name])
            )
        elif name in BOOL_FIELDS:
            out[name] = column.fillna(False).astype(bool)
        elif name in INT_FIELDS:
            out[name] = pd.to_numeric(column, errors="coerce").round().astype("Int64")
        else:
            out[name] = column.astype("object").where(column.notna(), "").astype("str")
    return gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=WGS84, index=frame.index)


def empty_projects() -> gpd.GeoDataFrame:
    """A store with no projects (the right columns and types)."""
    return conform(gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84)))


def _empty_imports() -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in IMPORT_LOG_FIELDS.items()})


def store_target(location) -> Path:
    """The file a GeoPackage store names: a symlinked store is written through to its target."""
    where = resolve(location)
    if where.is_postgis:
        raise ValueError(f"{where} is a PostGIS store, not a GeoPackage file")
    return Path(os.path.realpath(where.path))


def read_projects(path=None, include_retired: bool = False, as_of=None) -> gpd.GeoDataFrame:
    """The stored projects: STORE_FIELDS, points in EPSG:4326, sorted by id.

    Retired projects (``retired_at`` set) are left out unless ``include_retired``: the map,
    coverage and exports show open projects only. A ``ward_only`` project's point is its true
    position: keep it inside the tool (use `kindred_map.privacy.public_records` before anything
    leaves). A missing store reads as empty. A store from before history reads as if migrated
    (version 1). Leftovers of a killed import are cleaned first when no import is running.
    ``as_of`` (a date, ISO time or "today"): the projects open then, with their values then,
    replayed from the store's history (`kindred_map.storage.asof`); retired ones only with
    ``include_retired``.
    """
    location = resolve(path)
    if as_of is not None:  # a store not yet migrated replays its baseline events
        return asof.projects_at(read_history(location), as_of, include_retired)
    if location.is_postgis:
        return pgstore.read_projects(location, include_retired)
    path = store_target(location)
    if not path.exists():
        return empty_projects()
    recover(path)
    try:
        frame = pyogrio.read_dataframe(path, layer=PROJECTS_LAYER)
    except Exception as error:  # pyogrio raises several DataSourceError kinds
        raise ValueError(f"cannot read the project store {path}: {error}") from error
    projects = conform(frame)
    projects["version"] = projects["version"].fillna(1)
    if not include_retired:
        projects = projects[projects["retired_at"].eq("")]
    return projects.sort_values("id", kind="stable").reset_index(drop=True)


def read_imports(path=None) -> pd.DataFrame:
    """The import log: one row per import (when, file, counts), oldest first. Also inside
    `editing`, given what it yields."""
    if isinstance(path, pgstore.Transaction):
        return pgstore.read_imports(path)
    location = resolve(path)
    if location.is_postgis:
        return pgstore.read_imports(location)
    path = store_target(location)
    empty = _empty_imports()
    if not path.exists() or IMPORTS_LAYER not in pyogrio.list_layers(path)[:, 0]:
        return empty
    log = pd.DataFrame(pyogrio.read_dataframe(path, layer=IMPORTS_LAYER, read_geometry=False))
    for name, kind in IMPORT_LOG_FIELDS.items():
        if name not in log:
            log[name] = empty[name]
        log[name] = log[name].fillna(0 if kind == "int64" else "").astype(kind)
    unnumbered = log["import_id"].eq(0)
    log.loc[unnumbered, "import_id"] = np.flatnonzero(unnumbered) + 1  # as `_migrate` numbers them
    return log[list(IMPORT_LOG_FIELDS)]


def import_log(store=None) -> pd.DataFrame:
    """The import log (`read_imports`) with ``undone``: "undone on DATE by WHO" for an import
    that was undone (`kindred_map.stewardship.undo_import`), blank for one still in effect."""
    location = resolve(store)
    log = read_imports(location)
    if location.is_postgis:
        with pgstore.transaction(location) as conn:
            rows = history.undone_imports(pgstore.Transaction(conn, location))
    else:
        target = store_target(location)
        rows = history.undone_imports(target) if target.exists() else []
    undone = {int(number): f"undone on {str(at)[:10]} by {who or '-'}" for number, who, at in rows}
    return log.assign(undone=[undone.get(int(number), "") for number in log["import_id"]])


# --- files: locks, leftovers, atomic whole-file writes ----------------------------------


@contextmanager
def _locked(folder: Path, blocking: bool = True):
    """Hold an exclusive lock on the store's folder: two imports at once cannot lose updates.

    Non-blocking: yields False at once when another process holds the lock."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def _leftovers(path: Path) -> list[Path]:
    """Temporary copies of the store (``.projects.XXXX.gpkg`` and their journals) beside it."""
    return sorted(path.parent.glob(f".{path.stem}.*.gpkg*"))


def _clean(path: Path) -> None:
    """Remove temp copies left by a killed import and undo its half-done transaction.

    Call with the folder lock held. SQLite replays a hot journal (``projects.gpkg-journal``)
    when the store is opened, restoring the last commit; a journal still there once we hold
    the write lock belongs to no transaction (a kill before its header was synced) and goes."""
    for leftover in _leftovers(path):
        leftover.unlink(missing_ok=True)
    journal = Path(f"{path}-journal")
    if path.exists() and journal.exists():
        with _connection(path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            journal.unlink(missing_ok=True)
            conn.execute("COMMIT")


def recover(path=None) -> None:
    """Clean up after a killed import (see `_clean`) unless an import is running now."""
    path = store_target(path)
    if not path.parent.exists():
        return
    with _locked(path.parent, blocking=False) as held:
        if held:
            _clean(path)


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _replace_atomically(path: Path, write, mode: int) -> None:
    """Write a new file beside ``path`` with ``write(tmp)``, fsync it, rename it into place.

    A failure at any point leaves ``path`` as it was and no temporary file behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gpkg")
    os.close(fd)
    os.unlink(tmp)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        for leftover in (tmp, f"{tmp}-journal", f"{tmp}-wal", f"{tmp}-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _mode(path: Path) -> int:
    """The store file's permission bits, kept across writes; NEW_STORE_MODE for a new store."""
    return path.stat().st_mode & 0o7777 if path.exists() else NEW_STORE_MODE


def other_layers(path: Path) -> list[str]:
    """Layers in the store's GeoPackage besides ``projects`` and ``imports``.

    Raises ValueError when the file is not a GeoPackage (nothing is written to it then)."""
    if not Path(path).exists():
        return []
    try:
        layers = pyogrio.list_layers(path)[:, 0]
        with _connection(path) as conn:
            conn.execute("SELECT count(*) FROM gpkg_contents").fetchone()
    except Exception as error:  # GDAL and SQLite raise their own kinds
        detail = ingest.hide_folder(str(error), Path(path))
        raise ValueError(f"the store {Path(path).name} is not a GeoPackage: {detail}") from error
    return [name for name in layers if name not in STORE_LAYERS]


def write_store(
    projects: gpd.GeoDataFrame,
    imports: pd.DataFrame,
    path: Path,
    timestamp: str,
    secret: bytes | None = None,
    events: pd.DataFrame | None = None,
) -> None:
    """Replace the whole store with these projects and this log (sample builds, tests).

    Written to a temporary file beside the target (a symlink is followed), fsynced and renamed
    into place, keeping the file's mode; a failure leaves the store as it was. A GeoPackage that
    holds other layers is refused rather than replaced. ``timestamp`` (ISO 8601) is what the
    GeoPackage records as its last change, so the same content always gives the same bytes.
    Imports do not use this: they add and update rows in place (`upsert`). ``secret`` (from
    another store, by `copy`) becomes this store's key for derived ids. ``events`` (history
    events with `kindred_map.storage.history.COLUMNS`, by `copy`) become its history, numbers kept;
    without them the store gets its baseline events on its first write. The map's published
    project files are removed (`forget_published_positions`): any position may have changed.
    """
    location = resolve(path)
    if location.is_postgis:
        pgstore.write_store(projects, imports, location, secret, events)
        forget_published_positions()  # any stored position may have become private
        return
    path = store_target(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    projects = conform(projects).sort_values("id", kind="stable").reset_index(drop=True)
    with _locked(path.parent):
        _clean(path)
        extra = other_layers(path)
        if extra:
            raise ValueError(
                f"{path.name} also holds the layers {extra}; rewriting it as a project store "
                "would delete them. Import into it instead (rows are added beside them), or "
                "use another file"
            )
        mode = _mode(path)
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": timestamp})
        try:
            _replace_atomically(
                path, lambda tmp: _write_layers(projects, imports, tmp, secret, events), mode
            )
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    forget_published_positions()


def _write_layers(
    projects: gpd.GeoDataFrame,
    imports: pd.DataFrame,
    path: Path,
    secret: bytes | None,
    events: pd.DataFrame | None,
) -> None:
    pyogrio.write_dataframe(
        projects, path, layer=PROJECTS_LAYER, driver="GPKG", geometry_type="Point"
    )
    pyogrio.write_dataframe(
        imports[list(IMPORT_LOG_FIELDS)].reset_index(drop=True),
        path,
        layer=IMPORTS_LAYER,
        driver="GPKG",
    )
    with _connection(path) as conn:
        if secret is not None:
            conn.execute(f"CREATE TABLE {PRIVATE_TABLE} (key TEXT PRIMARY KEY, value BLOB)")
            conn.execute(f"INSERT INTO {PRIVATE_TABLE} VALUES ('id_secret', ?)", (secret,))
        if events is not None:
            conn.execute("BEGIN")
            history.create(conn)
            history.insert(conn, events.astype(object).to_dict("records"))
            conn.execute("COMMIT")


def _add_store_layers(path: Path, timestamp: str) -> None:
    """Add empty ``projects`` and ``imports`` layers (made by GDAL) to a new or other GeoPackage."""
    present = set(pyogrio.list_layers(path)[:, 0]) if path.exists() else set()
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": timestamp})
    try:
        if PROJECTS_LAYER not in present:
            pyogrio.write_dataframe(
                empty_projects(), path, layer=PROJECTS_LAYER, driver="GPKG", geometry_type="Point"
            )
        if IMPORTS_LAYER not in present:
            pyogrio.write_dataframe(_empty_imports(), path, layer=IMPORTS_LAYER, driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


# --- SQLite: the GeoPackage written in place --------------------------------------------

ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _wkb(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (after its ``GP`` header and envelope)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0b10000:
        return None
    return bytes(blob[8 + ENVELOPE_BYTES.get((flags >> 1) & 0b111, 0) :])


def gpkg_geometry(geometry, srs_id: int = 4326) -> bytes | None:
    """A GeoPackage geometry blob: ``GP`` header (version 0, little-endian, no envelope) + WKB."""
    if geometry is None or shapely.is_missing(geometry) or shapely.is_empty(geometry):
        return None
    return b"GP\x00\x01" + struct.pack("<i", srs_id) + shapely.to_wkb(geometry, byte_order=1)


POINT_BLOB = struct.Struct("<2sBBi5sdd")
"""Our own point blobs: GP header with no envelope + little-endian WKB point (29 bytes)."""


@lru_cache(maxsize=16)
def _bounds(blob: bytes):
    """(minx, miny, maxx, maxy) of a GeoPackage geometry blob, or None when empty.

    The R-tree triggers ask for four values of each new blob in turn, hence the small cache;
    plain points (what the store writes) are read directly, anything else through shapely."""
    if blob is not None and len(blob) == POINT_BLOB.size and blob[3] == 1:
        magic, _, _, _, wkb_head, x, y = POINT_BLOB.unpack(blob)
        if magic == b"GP" and wkb_head == b"\x01\x01\x00\x00\x00":
            return (x, y, x, y)
    wkb = _wkb(blob)
    return shapely.from_wkb(wkb).bounds if wkb else None


def _spatial_function(index: int):
    def function(blob):
        bounds = _bounds(None if blob is None else bytes(blob))
        return None if bounds is None or math.isnan(bounds[index]) else bounds[index]

    return function


def _is_empty(blob) -> int | None:
    if blob is None:
        return None
    bounds = _bounds(bytes(blob))
    return int(bounds is None or math.isnan(bounds[0]))


@contextmanager
def _connection(path: Path):
    """A SQLite connection to the GeoPackage with the ST_* functions GDAL's R-tree triggers call.

    Autocommit mode: callers open their own ``BEGIN IMMEDIATE`` transaction. The default
    rollback journal with ``synchronous=FULL`` makes a commit durable and a kill -9 at any
    point leave the last committed state."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MB: index and R-tree pages of a batch
        conn.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
        for index, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
            conn.create_function(name, 1, _spatial_function(index), deterministic=True)
        yield conn
    finally:
        conn.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")]


def _declared_type(name: str) -> str:
    if name in FLOAT_FIELDS:
        return "REAL"
    if name in BOOL_FIELDS:
        return "BOOLEAN"
    if name in INT_FIELDS or IMPORT_LOG_FIELDS.get(name) == "int64":
        return "INTEGER"
    return "TEXT"


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring an older store up to date inside the caller's transaction: columns new schema
    fields need, the id index, the private and history tables, import ids (the log's row
    order) and a ``baseline`` event for each project without a version
    (`kindred_map.storage.history`)."""
    for table, wanted in ((PROJECTS_LAYER, STORE_FIELDS), (IMPORTS_LAYER, IMPORT_LOG_FIELDS)):
        present = set(_table_columns(conn, table))
        for name in wanted:
            if name not in present:
                conn.execute(
                    f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {_declared_type(name)}"
                )
    conn.execute(f"CREATE INDEX IF NOT EXISTS projects_id_index ON {PROJECTS_LAYER}(id)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {PRIVATE_TABLE} (key TEXT PRIMARY KEY, value BLOB)")
    conn.execute(f"UPDATE {IMPORTS_LAYER} SET import_id = fid WHERE import_id IS NULL")
    conn.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS imports_id_index ON {IMPORTS_LAYER}(import_id)"
    )
    if history.create(conn):
        at = history.baseline_time(conn, path, IMPORTS_LAYER)
        conn.execute(
            f"UPDATE {PROJECTS_LAYER} SET version = coalesce(version, 1), "
            "created_at = coalesce(nullif(created_at, ''), ?)",
            (at,),
        )
        every = f"SELECT {', '.join(map(_quote, STORE_FIELDS))} FROM {PROJECTS_LAYER}"
        history.insert(conn, [baseline_event(r, at) for r in _typed_rows(conn, every)])


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
        "after": history.record_json(record),
        "version": record["version"],
    }


def _typed(name: str, value):
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


def _typed_rows(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    """Rows of STORE_FIELDS selected by ``sql`` as typed record dicts."""
    return [
        {name: _typed(name, value) for name, value in zip(STORE_FIELDS, row, strict=True)}
        for row in conn.execute(sql, params)
    ]


def records(projects: gpd.GeoDataFrame) -> list[dict]:
    """Projects as typed record dicts (STORE_FIELDS), as the history keeps them."""
    rows = _sql_values(conform(projects), list(STORE_FIELDS))
    return [
        {name: _typed(name, value) for name, value in zip(STORE_FIELDS, row, strict=True)}
        for row in rows
    ]


def from_records(rows: list[dict]) -> gpd.GeoDataFrame:
    """Record dicts (from the history) as store projects; the point is (lon, lat)."""
    frame = pd.DataFrame(list(rows), columns=list(STORE_FIELDS))
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    points = [
        None if math.isnan(x) or math.isnan(y) else shapely.Point(x, y)
        for x, y in zip(lon.to_numpy(float), lat.to_numpy(float), strict=True)
    ]
    return conform(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=WGS84)))


def _geometry_column(conn: sqlite3.Connection) -> str:
    row = conn.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (PROJECTS_LAYER,)
    ).fetchone()
    if row is None:
        raise ValueError(f"the store has no '{PROJECTS_LAYER}' point layer")
    return row[0]


def read_secret(path=None) -> bytes | None:
    """The store's secret key for derived ids, or None for a missing store or one without."""
    location = resolve(path)
    if location.is_postgis:
        return pgstore.read_secret(location)
    path = store_target(location)
    if not path.exists():
        return None
    with _connection(path) as conn:
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (PRIVATE_TABLE,)
        ).fetchone()
        if not present:
            return None
        row = conn.execute(f"SELECT value FROM {PRIVATE_TABLE} WHERE key = 'id_secret'").fetchone()
    return bytes(row[0]) if row else None


def _stored_projects(path: Path, ids) -> gpd.GeoDataFrame:
    """The stored projects with these ids (conformed), read by the id index, not the whole file."""
    ids = sorted({str(i) for i in ids if str(i)})
    if not path.exists() or not ids:
        return empty_projects()
    with _connection(path) as conn:
        present = _table_columns(conn, PROJECTS_LAYER)
        if not present:
            return empty_projects()
        geometry = _geometry_column(conn)
        columns = [name for name in STORE_FIELDS if name in present]
        select = ", ".join(_quote(name) for name in [geometry, *columns])
        rows = []
        for start in range(0, len(ids), SQL_CHUNK):
            chunk = ids[start : start + SQL_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows += conn.execute(
                f"SELECT {select} FROM {PROJECTS_LAYER} WHERE id IN ({marks})", chunk
            ).fetchall()
        migrated = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (history.TABLE,)
        ).fetchone()
        baseline = None if migrated else history.baseline_time(conn, path, IMPORTS_LAYER)
    frame = pd.DataFrame(rows, columns=["__geometry", *columns])
    points = [shapely.from_wkb(w) if (w := _wkb(b)) else None for b in frame.pop("__geometry")]
    projects = conform(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=WGS84)))
    if baseline is not None:  # as `_migrate` will set them, in the same transaction
        projects["version"] = projects["version"].fillna(1)
        projects["created_at"] = projects["created_at"].replace("", baseline)
    return projects


def _sql_values(projects: gpd.GeoDataFrame, columns: list[str]) -> list[list]:
    """Rows of Python values SQLite stores: NaN/NA as NULL, booleans as 0/1."""
    out = []
    for name in columns:
        column = projects[name]
        if name in FLOAT_FIELDS:
            numbers = column.to_numpy(float)
            values = np.where(np.isnan(numbers), None, numbers).tolist()
        elif name in BOOL_FIELDS:
            values = column.to_numpy(bool).astype(int).tolist()
        elif name in INT_FIELDS:
            values = [None if pd.isna(v) else int(v) for v in column.astype(object)]
        else:
            values = column.to_numpy(dtype=object).tolist()
        out.append(values)
    return [list(row) for row in zip(*out, strict=True)]


def _fingerprints(projects: gpd.GeoDataFrame) -> pd.Series:
    """One hash per project (by id) of every stored value, to tell updated from unchanged."""
    frame = pd.DataFrame(conform(projects).drop(columns="geometry"))
    text = frame.astype("object").where(frame.notna(), "").astype("str")
    hashes = pd.util.hash_pandas_object(text, index=False)
    return pd.Series(hashes.to_numpy(), index=frame["id"].to_numpy())


def _counts(projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame) -> dict[str, int]:
    before = _fingerprints(stored) if len(stored) else pd.Series(dtype="uint64")
    after = _fingerprints(projects)
    known = after.index.isin(before.index)
    same = known & (after.to_numpy() == before.reindex(after.index).to_numpy())
    return {
        "new": int((~known).sum()),
        "updated": int((known & ~same).sum()),
        "unchanged": int(same.sum()),
    }


def _write_batch(
    path: Path,
    projects: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str,
    secret: bytes | None,
    events: list[dict] = (),
    deletes: list[str] = (),
) -> int | None:
    """Insert new ids, update stored ones, remove ``deletes``, log the import and append its
    history ``events``, in one SQLite transaction: a kill leaves all of it or none. When a
    stored record becomes home-run, the map's published files go before this returns
    (`forget_published_positions`).

    A logged import gets the next ``import_id``, also set on events that name none; returned."""
    homes = set(projects.loc[privacy.is_ward_only(projects).to_numpy(), "id"])
    with _connection(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(conn, path)
            geometry = _geometry_column(conn)
            columns = list(STORE_FIELDS)
            values = _sql_values(projects, columns)
            blobs = [gpkg_geometry(g) for g in projects.geometry]
            stored = []
            ids = projects["id"].tolist()
            for start in range(0, len(ids), SQL_CHUNK):
                chunk = ids[start : start + SQL_CHUNK]
                marks = ", ".join("?" * len(chunk))
                stored += conn.execute(
                    f"SELECT id, location_precision FROM {PROJECTS_LAYER} WHERE id IN ({marks})",
                    chunk,
                ).fetchall()
            stored = pd.DataFrame(stored, columns=["id", "location_precision"])
            known = set(stored["id"])
            turned_private = bool((stored["id"].isin(homes) & ~privacy.is_ward_only(stored)).any())
            names = [geometry, *columns]
            updates = [
                [blob, *row, row[0]]
                for blob, row in zip(blobs, values, strict=True)
                if row[0] in known
            ]
            inserts = [
                [blob, *row] for blob, row in zip(blobs, values, strict=True) if row[0] not in known
            ]
            counters = _drop_feature_counters(conn)
            assignments = ", ".join(f"{_quote(n)} = ?" for n in names)
            conn.executemany(f"UPDATE {PROJECTS_LAYER} SET {assignments} WHERE id = ?", updates)
            with _bulk_spatial_index(conn, geometry):
                conn.executemany(
                    f"INSERT INTO {PROJECTS_LAYER} ({', '.join(map(_quote, names))}) "
                    f"VALUES ({', '.join('?' * len(names))})",
                    inserts,
                )
            for start in range(0, len(deletes), SQL_CHUNK):
                chunk = list(deletes[start : start + SQL_CHUNK])
                conn.execute(
                    f"DELETE FROM {PROJECTS_LAYER} WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            import_id = None
            if log_entry is not None:
                import_id = conn.execute(
                    f"SELECT coalesce(max(import_id), 0) + 1 FROM {IMPORTS_LAYER}"
                ).fetchone()[0]
                log_entry = log_entry | {"import_id": import_id}
                log_names = list(IMPORT_LOG_FIELDS)
                conn.execute(
                    f"INSERT INTO {IMPORTS_LAYER} ({', '.join(map(_quote, log_names))}) "
                    f"VALUES ({', '.join('?' * len(log_names))})",
                    [log_entry[name] for name in log_names],
                )
            if secret is not None:
                conn.execute(
                    f"INSERT OR IGNORE INTO {PRIVATE_TABLE} (key, value) VALUES ('id_secret', ?)",
                    (secret,),
                )
            history.insert(conn, [e | {"import_id": e["import_id"] or import_id} for e in events])
            for sql in counters:
                conn.execute(sql)
            _update_contents(conn, timestamp)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if turned_private:
        forget_published_positions()
    return import_id


def forget_published_positions(folder: Path = PUBLISHED_DATA_DIR) -> list[Path]:
    """Remove the map's files built from the store's projects (marker positions, popups:
    `kindred_map.paths.PUBLISHED_PROJECT_FILES`), called when a save makes a stored position
    private (and by whole-store writes): the files holding it are no longer served (Streamlit
    answers 404), not kept for the days `kindred_map.assets.publish` keeps old files. The
    dashboard writes new ones on its next run (the store changed). Returns the files removed."""
    removed = []
    for prefix in PUBLISHED_PROJECT_FILES:
        for path in Path(folder).glob(f"{prefix}-*.json"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def _bulk_spatial_index(conn: sqlite3.Connection, geometry: str):
    """Insert rows with GDAL's R-tree insert trigger set aside, then index them in one go.

    The trigger calls five Python functions per row (most of an import's write time); here
    the new rows' bounds are read from their blobs once and the trigger is put back, inside
    the same transaction. A layer without a spatial index is left without one."""
    rtree = f"rtree_{PROJECTS_LAYER}_{geometry}"
    trigger = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (f"{rtree}_insert",),
    ).fetchone()
    if trigger is None:
        yield
        return
    last = conn.execute(f"SELECT coalesce(max(fid), 0) FROM {PROJECTS_LAYER}").fetchone()[0]
    conn.execute(f"DROP TRIGGER {_quote(trigger[0])}")
    yield
    added = conn.execute(
        f"SELECT fid, {_quote(geometry)} FROM {PROJECTS_LAYER} WHERE fid > ?", (last,)
    ).fetchall()
    entries = []
    for fid, blob in added:
        bounds = _bounds(None if blob is None else bytes(blob))
        if bounds is not None and not math.isnan(bounds[0]):
            entries.append((fid, bounds[0], bounds[2], bounds[1], bounds[3]))
    conn.executemany(f"INSERT OR REPLACE INTO {_quote(rtree)} VALUES (?, ?, ?, ?, ?)", entries)
    conn.execute(trigger[1])


def _drop_feature_counters(conn: sqlite3.Connection) -> list[str]:
    """Drop GDAL's per-row feature-count triggers for this transaction; their SQL, to restore.

    Each would update ``gpkg_ogr_contents`` once per inserted row; `_update_contents` sets the
    count once instead, and the triggers are put back before the commit."""
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
        "AND name LIKE 'trigger%feature_count%'",
        (PROJECTS_LAYER,),
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {_quote(name)}")
    return [sql for _, sql in triggers]


def _update_contents(conn: sqlite3.Connection, timestamp: str) -> None:
    """Keep what GDAL reads about the layers true: last change, extent, feature counts."""
    extent = conn.execute(
        f"SELECT min(lon), min(lat), max(lon), max(lat) FROM {PROJECTS_LAYER}"
    ).fetchone()
    conn.execute(
        "UPDATE gpkg_contents SET last_change = ?, min_x = ?, min_y = ?, max_x = ?, max_y = ? "
        "WHERE table_name = ?",
        (timestamp, *extent, PROJECTS_LAYER),
    )
    conn.execute(
        "UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?", (timestamp, IMPORTS_LAYER)
    )
    for table in STORE_LAYERS:
        conn.execute(
            "UPDATE gpkg_ogr_contents SET feature_count = "
            f"(SELECT count(*) FROM {_quote(table)}) WHERE lower(table_name) = lower(?)",
            (table,),
        )


def _prepare_target(path: Path, timestamp: str) -> None:
    """Make sure the GeoPackage has the store's layers: a new store is created whole (mode 0600)
    and renamed into place; a GeoPackage with other layers gets ours beside them."""
    if not path.exists():
        _replace_atomically(path, lambda tmp: _add_store_layers(tmp, timestamp), NEW_STORE_MODE)
    elif set(STORE_LAYERS) - set(pyogrio.list_layers(path)[:, 0]):
        _add_store_layers(path, timestamp)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _log_entry(path: Path, report: ImportReport, namespace: str) -> dict:
    """The import log's row for one file's import (both backends write the same)."""
    return {
        "file": path.name,
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows_read": report.rows_read,
        "imported": report.imported,
        "rejected": report.rejected,
        "warned": report.warned,
        "projects": report.records,
        "note": f"ids namespaced {namespace!r}",
    }


def _check_ids(projects: pd.DataFrame) -> None:
    if projects["id"].eq("").any() or projects["id"].duplicated().any():
        raise ValueError("every project needs a unique, non-empty id before it is stored")


def _carry_upkeep(projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, who: str):
    """What an import keeps of the stored records it updates: version, created_at, retirement
    (an import never reopens a retired project: `restore` does), and a check date the file does
    not give. A file giving a new ``last_checked`` is credited to the importer (``checked_by``)."""
    projects = projects.copy()
    before = stored.set_index("id").reindex(projects["id"])
    known = projects["id"].isin(stored["id"]).to_numpy()
    for name in ("version", "created_at", "retired_at", "retired_reason"):
        projects.loc[known, name] = before.loc[known, name].to_numpy()
    was = before["last_checked"].fillna("").to_numpy()
    blank = known & projects["last_checked"].eq("").to_numpy()
    projects.loc[blank, "last_checked"] = was[blank]
    same = projects["last_checked"].to_numpy() == was
    projects["checked_by"] = np.where(
        known & same,
        before["checked_by"].fillna("").to_numpy(),
        np.where(projects["last_checked"].eq(""), "", who),
    )
    return projects


def _import_events(
    projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, timestamp: str, who: str, sources
) -> tuple[gpd.GeoDataFrame, list[dict]]:
    """Versions and created_at of new and changed rows, and one ``import`` event for each."""
    projects = projects.copy()
    old = _fingerprints(stored) if len(stored) else pd.Series(dtype="uint64")
    new = _fingerprints(projects)
    known = new.index.isin(old.index)
    changed = ~known | (new.to_numpy() != old.reindex(new.index).to_numpy())
    projects.loc[~known, "version"] = 1
    projects.loc[~known, "created_at"] = timestamp
    projects.loc[known & changed, "version"] = projects.loc[known & changed, "version"] + 1
    befores = {r["id"]: r for r in records(stored)}
    events = [
        {
            "project_id": after["id"],
            "at": timestamp,
            "who": who,
            "action": "import",
            "source": source,
            "import_id": None,
            "before": history.record_json(befores[after["id"]]) if after["id"] in befores else None,
            "after": history.record_json(after),
            "version": after["version"],
        }
        for after, source, change in zip(records(projects), sources, changed, strict=True)
        if change
    ]
    return projects, events


def _batch(
    projects: gpd.GeoDataFrame,
    stored: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str,
    who: str,
) -> tuple[gpd.GeoDataFrame, list[dict], dict[str, int], dict | None]:
    """What one batch writes on either backend, given the stored records it names: the records
    (upkeep carried, versions counted), one ``import`` event per new or changed row naming its
    file row (the private ``_row`` column) when known, the counts of new, updated and
    unchanged projects, and the full log entry (None when not logged)."""
    rows = projects["_row"] if "_row" in projects else pd.Series("", index=projects.index)
    named = projects["source"].astype(str)
    if log_entry is not None and log_entry.get("file"):
        named = pd.Series(f"file {log_entry['file']}", index=projects.index)
    sources = [f"{s} row {r}" if r else s for s, r in zip(named, rows.astype(str), strict=True)]
    projects = _carry_upkeep(conform(projects), stored, who)
    counts = _counts(projects, stored)
    projects, events = _import_events(projects, stored, timestamp, who, sources)
    return projects, events, counts, _full_log_entry(log_entry, counts, timestamp, who)


def _full_log_entry(log_entry: dict | None, counts: dict, timestamp: str, who: str):
    """An import log row: every field (0 or blank when not given), the batch's counts, a time
    and who; its ``import_id`` is drawn when it is written."""
    if log_entry is None:
        return None
    blank = {name: 0 if kind == "int64" else "" for name, kind in IMPORT_LOG_FIELDS.items()}
    entry = blank | log_entry | counts | {"import_id": 0}
    entry["imported_at"] = entry["imported_at"] or timestamp
    entry["who"] = entry["who"] or who
    return {
        name: int(entry[name]) if kind == "int64" else str(entry[name])
        for name, kind in IMPORT_LOG_FIELDS.items()
    }


def _store_batch(
    path: Path,
    projects: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str | None,
    secret: bytes | None = None,
    who: str = "",
) -> dict[str, int]:
    """Write one batch to a GeoPackage (folder lock held): counts of new, updated and
    unchanged projects, and the batch's ``import_id`` (None when not logged)."""
    timestamp = timestamp or _now()
    stored = _stored_projects(path, projects["id"])
    projects, events, counts, log_entry = _batch(projects, stored, log_entry, timestamp, who)
    try:
        _prepare_target(path, timestamp)
        import_id = _write_batch(path, projects, log_entry, timestamp, secret, events)
    except sqlite3.Error as error:
        raise ValueError(f"cannot write the store {path.name}: {error}; it is unchanged") from error
    return counts | {"import_id": import_id}


def _pg_batch(conn, projects: gpd.GeoDataFrame, stored, log_entry, timestamp, who) -> dict:
    """Write one batch to PostGIS inside the caller's transaction (its ids locked): counts and
    ``import_id`` as `_store_batch` returns them."""
    projects, events, counts, log_entry = _batch(projects, stored, log_entry, timestamp, who)
    return counts | {"import_id": pgstore.write_batch(conn, projects, log_entry, events)}


def upsert(
    projects: gpd.GeoDataFrame,
    path=None,
    log_entry: dict | None = None,
    timestamp: str | None = None,
    who: str = "",
) -> dict[str, int]:
    """Insert new projects and replace those whose id is already stored, in one transaction.

    Rows are added and updated in place (the file is not rewritten); other layers in the
    GeoPackage are kept; a symlinked store is written through. Returns counts of new, updated
    and unchanged projects. ``log_entry`` (file, counts) is added to the import log with these
    counts. No projects: the store is not touched at all.
    """
    _check_ids(projects)
    if not len(projects):
        return {"new": 0, "updated": 0, "unchanged": 0, "import_id": None}
    location = resolve(path)
    if location.is_postgis:
        with pgstore.transaction(location) as conn:
            pgstore.lock_ids(conn, projects["id"])
            stored = pgstore.stored_projects(conn, projects["id"])
            return _pg_batch(conn, projects, stored, log_entry, timestamp or _now(), who)
    path = store_target(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        _clean(path)
        other_layers(path)
        return _store_batch(path, projects, log_entry, timestamp, who=who)


# --- imports: ids, collisions and sticky privacy ----------------------------------------


def _name_key(names: pd.Series) -> pd.Series:
    return names.astype("str").str.casefold().str.replace(r"[^a-z0-9]+", "", regex=True)


def _clearly_different(projects: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """True where two records sharing an id are different projects: names unlike (neither
    contains the other) and positions more than DIFFERENT_PLACE_M apart."""
    new, old = _name_key(projects["name"]).to_numpy(), _name_key(stored["name"]).to_numpy()
    alike = np.array([a in b or b in a for a, b in zip(new, old, strict=True)], bool)
    apart = np.hypot(
        projects["easting"].to_numpy(float) - stored["easting"].to_numpy(float),
        projects["northing"].to_numpy(float) - stored["northing"].to_numpy(float),
    )
    return ~alike & (np.nan_to_num(apart, nan=np.inf) > DIFFERENT_PLACE_M)


def reconcile(
    projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, homes: pd.DataFrame
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Decide, row by row, what an import may change in the stored records it names.

    ``projects`` come from `kindred_map.join.prepare_file` (with its private ``_row``,
    ``_file_id`` and ``_precision_stated`` columns); ``stored`` are the stored records with
    those ids or their bare file ids; ``homes`` every stored ward_only record's id, name and
    postcode. Returns the records to write and the report lines:

    - An id stored before namespacing (the bare file id, from this same file name) keeps it.
    - Same id, but a clearly different project (`_clearly_different`): rejected, not updated.
    - ``location_precision`` is sticky: a row that does not state it keeps the stored value;
      lowering a stored ``ward_only`` needs the file's own column value and is reported.
    - A new record that states no precision but has a stored home's file id (in any
      namespace), or its name and postcode, is stored ward_only too, and reported.
    """
    projects = projects.copy()
    stored = stored.set_index("id", drop=False)
    legacy = (
        ~projects["id"].isin(stored.index)
        & projects["_file_id"].ne("")
        & projects["_file_id"].isin(stored.index)
    )
    same_file = (
        stored["source"].reindex(projects.loc[legacy, "_file_id"]).to_numpy()
        == projects.loc[legacy, "source"].to_numpy()
    )
    legacy[legacy] = same_file
    projects.loc[legacy, "id"] = projects.loc[legacy, "_file_id"]
    rows = projects.rename(columns={"_row": "row"})
    issues = []

    known = projects["id"].isin(stored.index).to_numpy()
    before = stored.reindex(projects["id"])
    clash = known.copy()
    clash[known] = _clearly_different(projects[known], before[known])
    reason = [
        f"id {i!r} is already stored for {n!r}, {d:,.0f} m away: a different project, so it "
        "was not updated. Give it its own id (or import with --source NAME)"
        for i, n, d in zip(
            projects.loc[clash, "id"],
            before.loc[clash, "name"],
            np.hypot(
                projects.loc[clash, "easting"].to_numpy(float)
                - before.loc[clash, "easting"].to_numpy(float),
                projects.loc[clash, "northing"].to_numpy(float)
                - before.loc[clash, "northing"].to_numpy(float),
            ),
            strict=True,
        )
    ]
    issues.append(
        issues_for(rows[clash], "id", "rejected", pd.Series(reason, index=rows.index[clash]))
    )

    stated = projects["_precision_stated"].astype(bool).to_numpy()
    was = before["location_precision"].fillna("").to_numpy()
    keep = known & ~clash & ~stated & (was != "")
    projects.loc[keep, "location_precision"] = was[keep]
    lowered = known & ~clash & stated & (was == "ward_only")
    lowered &= projects["location_precision"].ne("ward_only").to_numpy()
    issues.append(
        issues_for(
            rows[lowered],
            "location_precision",
            "warning",
            "location_precision lowered from ward_only to "
            + projects.loc[lowered, "location_precision"]
            + " by the file's own column: this home-run project's address and position will "
            "now be shown",
        )
    )
    like_home = ~known & ~stated & _like_a_stored_home(projects, homes)
    projects.loc[like_home, "location_precision"] = "ward_only"
    issues.append(
        issues_for(
            rows[like_home],
            "location_precision",
            "warning",
            "a stored home-run (ward_only) project has this id or this name and postcode: "
            "stored as ward_only too. Import with the same --source to update it, or state "
            "location_precision",
        )
    )
    kept = projects[~clash]
    return gpd.GeoDataFrame(kept, crs=projects.crs), pd.concat(issues, ignore_index=True)


def _like_a_stored_home(projects: pd.DataFrame, homes: pd.DataFrame) -> np.ndarray:
    """True where a row matches a stored ward_only record by its file id (in any namespace) or
    by name and postcode: most likely the same home, sent in a file of another name."""
    if homes.empty:
        return np.zeros(len(projects), bool)
    bare = set(homes["id"].str.split(":").str[-1])
    places = set(zip(_name_key(homes["name"]), homes["postcode"], strict=True))
    same_id = projects["_file_id"].ne("") & projects["_file_id"].isin(bare)
    pairs = zip(_name_key(projects["name"]), projects["postcode"], strict=True)
    same_place = np.array([pair in places for pair in pairs], bool)
    return same_id.to_numpy() | same_place


def _stored_homes(path: Path) -> pd.DataFrame:
    """Id, name and postcode of every stored ward_only record (few; a scan of one column)."""
    columns = ["id", "name", "postcode"]
    if not path.exists():
        return pd.DataFrame(columns=columns, dtype="str")
    with _connection(path) as conn:
        if "location_precision" not in _table_columns(conn, PROJECTS_LAYER):
            return pd.DataFrame(columns=columns, dtype="str")
        rows = conn.execute(
            f"SELECT id, name, postcode FROM {PROJECTS_LAYER} "
            "WHERE location_precision = 'ward_only'"
        ).fetchall()
    return pd.DataFrame(rows, columns=columns).fillna("").astype("str")


def import_file(
    path: Path,
    store=None,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
    source: str | None = None,
    who: str = "",
    choices: dict | None = None,
    constants: dict | None = None,
) -> ImportReport:
    """Import a project file into the store: read, check, place, join, reconcile, upsert, log.

    Ids given in the file are stored as ``<namespace>:<id>``, the namespace being ``source``
    (``--source``) or else the file's name without its extension, tidied by
    `kindred_map.ingest.id_namespace`; derived ids use the store's secret. Re-importing the
    same file changes no project. Nothing is written if any step fails or no row is imported.
    ``choices`` are the editor's answers about likely duplicates, by file row
    (`kindred_map.duplicates.apply_choices`); ``who`` is named in the history and the log;
    ``constants`` give fields the file has no column for one value for every row
    (`kindred_map.ingest.check_constants`). `plan_import` says beforehand what this will do.
    """
    from kindred_map import join

    path = Path(path)
    location = resolve(store)
    if location.is_postgis:
        return _import_into_postgis(
            path, location, mapping, sheet, directory, source, who, choices, constants
        )
    target = store_target(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    namespace = ingest.id_namespace(source if source else path.stem)
    with _locked(target.parent):
        _clean(target)
        other_layers(target)
        stored_secret = read_secret(target)
        secret = stored_secret or secrets.token_bytes(32)
        projects, report = join.prepare_file(
            path, mapping, sheet, directory, secret, namespace, constants
        )
        projects, _, report = _decide(projects, report, choices, *_readers(target), str(location))
        if projects.empty:
            return report
        entry = _log_entry(path, report, namespace)
        _check_ids(projects)
        new_secret = None if stored_secret else secret
        counts = _store_batch(target, projects, entry, None, new_secret, who)
    return _counted(report, counts)


def _readers(target: Path):
    """`_decide`'s readers of a GeoPackage store: stored projects by id, stored homes."""
    return (lambda ids: _stored_projects(target, ids)), (lambda: _stored_homes(target))


def _decide(projects, report: ImportReport, choices, read_stored, read_homes, shown_store: str):
    """What an import of prepared rows (`kindred_map.join.prepare_file`) writes: the editor's
    duplicate choices applied, the rows reconciled with the stored records they name
    (``read_stored(ids)``, then ``read_homes()``, as `reconcile` takes them). Returns the
    records, the stored records read and the full report (counts zero until written or
    planned). `import_file` and `plan_import` both decide here, so a preview counts what the
    import then does."""
    from kindred_map import duplicates, privacy

    projects, chosen = duplicates.apply_choices(projects, choices)
    stored = read_stored({*projects["id"], *projects["_file_id"]})
    projects = duplicates.fill_merged(projects, stored, choices)
    projects, issues = reconcile(projects, stored, read_homes())
    issues = [chosen, issues, privacy.address_issues(projects.rename(columns={"_row": "row"}))]
    merged = duplicates.merged_rows(choices, projects["_row"])
    typed = report.issues["row"].isin(merged) & report.issues["reason"].eq(ingest.NO_TYPE)
    report = replace(
        report,
        issues=build_report(report.file, [], [report.issues[~typed], *issues]).issues,
        records=len(projects),
        store=shown_store,
        new=0,
        updated=0,
        unchanged=0,
        merged=len(merged),
        skipped=len(chosen),
    )
    return projects, stored, report


def plan_import(
    projects: gpd.GeoDataFrame,
    report: ImportReport,
    store=None,
    choices: dict | None = None,
    who: str = "",
) -> ImportReport:
    """What `import_file` will do with these prepared rows and duplicate ``choices``, written
    nowhere: the report with its new, updated, unchanged, merged and skipped counts (no
    ``import_id``). ``projects`` and ``report`` come from `kindred_map.join.prepare_file` given
    the store's secret (`read_secret`) and the file's namespace, as the import prepares them;
    the counts then equal the import's unless the store changes in between."""
    location = resolve(store)
    if location.is_postgis:
        with pgstore.connect(location) as conn:
            kept, stored, report = _decide(
                projects,
                report,
                choices,
                lambda ids: pgstore.stored_projects(conn, ids, lock=False),
                lambda: pgstore.stored_homes(conn),
                str(location),
            )
    else:
        readers = _readers(store_target(location))
        kept, stored, report = _decide(projects, report, choices, *readers, str(location))
    if kept.empty:
        return report
    counts = _counts(_carry_upkeep(conform(kept), stored, who), stored)
    return replace(report, **counts)


def _counted(report: ImportReport, counts: dict) -> ImportReport:
    """The report with the batch's counts and import number."""
    report.new, report.updated, report.unchanged = (
        counts["new"],
        counts["updated"],
        counts["unchanged"],
    )
    report.import_id = counts["import_id"]
    return report


# --- single changes: the editors' writes (`kindred_map.stewardship`) ---------------------


@contextmanager
def editing(path=None):
    """The store held for one read-check-write change: yields what `stored_projects`,
    `write_changes`, `read_imports` and `kindred_map.storage.history`'s readers take.

    A GeoPackage: its folder lock is held and its file yielded (leftovers of a killed write
    are cleaned first; a file that is not a GeoPackage is refused). PostGIS: one transaction
    is open (`kindred_map.pgstore.Transaction`); `stored_projects` locks the rows it reads,
    so a concurrent change to the same project waits and then sees the new version. Leaving
    the block commits; an exception rolls back (nothing written)."""
    location = resolve(path)
    if location.is_postgis:
        with pgstore.transaction(location) as conn:
            yield pgstore.Transaction(conn, location)
        return
    target = store_target(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent):
        _clean(target)
        other_layers(target)
        yield target


def stored_projects(target, ids) -> gpd.GeoDataFrame:
    """The stored projects with these ids, retired or not, as the next write will see them
    (an older store's version 1 and baseline time filled in). Call inside `editing`; on
    PostGIS the ids are locked until the change ends (`kindred_map.pgstore.lock_ids`)."""
    if isinstance(target, pgstore.Transaction):
        pgstore.lock_ids(target.conn, ids)
        return pgstore.stored_projects(target.conn, ids)
    return _stored_projects(target, ids)


def write_changes(
    target,
    projects: gpd.GeoDataFrame,
    events: list[dict],
    deletes: list[str] = (),
    timestamp: str | None = None,
) -> None:
    """Write changed records, removals and their history events in one transaction (inside
    `editing`). The records must carry their new ``version``; each event its ``import_id``."""
    if isinstance(target, pgstore.Transaction):
        pgstore.write_batch(target.conn, conform(projects), None, events, list(deletes))
        return
    timestamp = timestamp or _now()
    try:
        _prepare_target(target, timestamp)
        _write_batch(target, conform(projects), None, timestamp, None, events, list(deletes))
    except sqlite3.Error as error:
        raise ValueError(
            f"cannot write the store {target.name}: {error}; it is unchanged"
        ) from error


def read_history(location=None, project_id: str | None = None) -> pd.DataFrame:
    """History events (`kindred_map.storage.history.COLUMNS`), oldest first; of one project if
    given.

    A GeoPackage not written since history existed gives the baseline events its next write
    will store (nothing is written); a PostGIS store from before history is migrated. A
    missing store has no history."""
    location = resolve(location)
    if location.is_postgis:
        return history.frame(pgstore.read_history(location, project_id))
    target = store_target(location)
    if not target.exists():
        return history.frame([])
    rows = history.stored_events(target, project_id)
    if rows is None:
        events = baseline_history(target)
        return history.frame(events.to_numpy().tolist(), project_id)
    return history.frame(rows)


def baseline_history(path=None) -> pd.DataFrame:
    """The ``baseline`` events an unmigrated store will get on its next write (nothing written)."""
    path = store_target(path)
    with _connection(path) as conn:
        at = history.baseline_time(conn, path, IMPORTS_LAYER)
    projects = read_projects(path, include_retired=True)
    projects["created_at"] = projects["created_at"].replace("", at)
    events = [baseline_event(record, at) for record in records(projects)]
    rows = [[number, *e.values()] for number, e in enumerate(events, start=1)]
    return history.frame(rows)


# --- PostGIS imports ---------------------------------------------------------------------


def _import_into_postgis(
    path, location, mapping, sheet, directory, source, who, choices, constants
):
    """`import_file` on PostGIS: the file is read and joined with no lock held; then, in one
    transaction, the ids it names are locked (`kindred_map.pgstore.lock_ids`), reconciled with
    the stored rows and written with the log entry and history events (`_batch`)."""
    from kindred_map import join

    namespace = ingest.id_namespace(source if source else path.stem)
    pgstore.ensure(location)
    secret = pgstore.read_secret(location)
    projects, report = join.prepare_file(
        path, mapping, sheet, directory, secret, namespace, constants
    )
    with pgstore.transaction(location) as conn:

        def read_stored(ids):
            pgstore.lock_ids(conn, ids)
            return pgstore.stored_projects(conn, ids)

        projects, stored, report = _decide(
            projects,
            report,
            choices,
            read_stored,
            lambda: pgstore.stored_homes(conn),
            str(location),
        )
        if projects.empty:
            return report
        _check_ids(projects)
        entry = _log_entry(path, report, namespace)
        counts = _pg_batch(conn, projects, stored, entry, _now(), who)
    return _counted(report, counts)


# --- whole stores: create, migrate, copy between backends -------------------------------


def init(location, create: bool = True) -> str:
    """Create a store (tables, secret; on PostGIS also the boundary tables, partner views and
    reader role) or bring an existing one up to date. Idempotent; keeps every record.

    ``create=False`` (``store migrate``) refuses a GeoPackage that does not exist yet."""
    location = resolve(location)
    if location.is_postgis:
        version = pgstore.migrate(location)
        return f"PostGIS store {location} at schema version {version}"
    path = store_target(location)
    if not create and not path.exists():
        raise ValueError(f"no store at {path}: create it with `kindred-map store init`")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        _clean(path)
        other_layers(path)
        _prepare_target(path, _now())
        with _connection(path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            _migrate(conn, path)
            conn.execute(
                f"INSERT OR IGNORE INTO {PRIVATE_TABLE} (key, value) VALUES ('id_secret', ?)",
                (secrets.token_bytes(32),),
            )
            conn.execute("COMMIT")
    return f"GeoPackage store {path}"


def same_projects(first: gpd.GeoDataFrame, second: gpd.GeoDataFrame) -> bool:
    """True when two reads of a store hold the same records: every value, every point exactly."""
    if not first.drop(columns="geometry").equals(second.drop(columns="geometry")):
        return False
    missing = first.geometry.isna().to_numpy() | first.geometry.is_empty.to_numpy()
    other_missing = second.geometry.isna().to_numpy() | second.geometry.is_empty.to_numpy()
    exact = first.geometry.geom_equals_exact(second.geometry, 0).to_numpy()
    return bool(((missing & other_missing) | (~missing & ~other_missing & exact)).all())


def copy(source, destination) -> dict[str, int]:
    """Copy a store to another location, either backend to either: every project (retired
    ones too), the import log, the history (event numbers, times and JSON text as they are)
    and the secret (so derived ids stay the same; a store without one, made before secrets,
    leaves the destination's own). A GeoPackage not written since history existed is copied
    as its next write would migrate it: its baseline events, its projects' created_at. The
    destination must hold no projects and no log (nothing is merged or overwritten); the
    copy is read back and compared. Returns the counts copied."""
    source, destination = resolve(source), resolve(destination)
    projects, log = read_projects(source, include_retired=True), read_imports(source)
    events = read_history(source)
    if not source.is_postgis and len(projects) and not history.exists(store_target(source)):
        projects["created_at"] = projects["created_at"].replace("", events["at"].iloc[0])
    if len(read_projects(destination, include_retired=True)) or len(read_imports(destination)):
        raise ValueError(
            f"{destination.name} already holds projects or imports: copy into a new store"
        )
    secret = read_secret(source)
    write_store(projects, log, destination, _now(), secret, events)
    copied, copied_log = read_projects(destination, include_retired=True), read_imports(destination)
    same = (
        copied_log.equals(log)
        and read_history(destination).equals(events)
        and secret in (None, read_secret(destination))
    )
    if not (same and same_projects(copied, projects)):
        raise ValueError(f"the copy in {destination.name} differs from its source")
    return {"projects": len(projects), "imports": len(log), "events": len(events)}
