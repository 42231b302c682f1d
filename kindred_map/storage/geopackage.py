"""The GeoPackage engine: the store as one SQLite file grown in place under a folder lock.

Every function takes the store file's real path (`kindred_map.store.store_target`). Writes are
SQLite transactions (rollback journal, ``synchronous=FULL``): a kill leaves the last commit.
Whole-store writes go to a temporary file renamed into place. Records are typed and compared
by `kindred_map.storage.records`; what an import decides is `kindred_map.storage.reconcile`."""

import fcntl
import math
import os
import secrets
import sqlite3
import struct
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from kindred_map import ingest, privacy
from kindred_map.files import GPKG_VERSION
from kindred_map.storage import history, records, rtree
from kindred_map.storage.published import forget_published_positions

PROJECTS_LAYER = "projects"

IMPORTS_LAYER = "imports"

STORE_LAYERS = (PROJECTS_LAYER, IMPORTS_LAYER)

PRIVATE_TABLE = "kindred_private"
"""Key/value table for the store's secret (the HMAC key of derived ids). Not registered in
``gpkg_contents``, so GDAL, QGIS and every export ignore it; it never leaves the store."""

NEW_STORE_MODE = 0o600
"""A new store is readable by its owner only: it holds the true positions of home-run projects."""

SQL_CHUNK = 500
"""Ids per ``IN (...)`` query (SQLite allows 999 parameters in older builds)."""


def read_projects(path: Path, include_retired: bool = False) -> gpd.GeoDataFrame:
    """The stored projects as `kindred_map.store.read_projects` gives them (a missing file
    reads as empty; leftovers of a killed import are cleaned first when none is running)."""
    if not path.exists():
        return records.empty_projects()
    recover(path)
    try:
        frame = pyogrio.read_dataframe(path, layer=PROJECTS_LAYER)
    except Exception as error:  # pyogrio raises several DataSourceError kinds
        raise ValueError(f"cannot read the project store {path}: {error}") from error
    projects = records.conform(frame)
    projects["version"] = projects["version"].fillna(1)
    if not include_retired:
        projects = projects[projects["retired_at"].eq("")]
    return projects.sort_values("id", kind="stable").reset_index(drop=True)


def read_imports(path: Path) -> pd.DataFrame:
    """The import log as `kindred_map.store.read_imports` gives it (import ids numbered)."""
    empty = records.empty_imports()
    if not path.exists() or IMPORTS_LAYER not in pyogrio.list_layers(path)[:, 0]:
        return empty
    log = pd.DataFrame(pyogrio.read_dataframe(path, layer=IMPORTS_LAYER, read_geometry=False))
    for name, kind in records.IMPORT_LOG_FIELDS.items():
        if name not in log:
            log[name] = empty[name]
        log[name] = log[name].fillna(0 if kind == "int64" else "").astype(kind)
    unnumbered = log["import_id"].eq(0)
    log.loc[unnumbered, "import_id"] = np.flatnonzero(unnumbered) + 1  # as `_migrate` numbers them
    return log[list(records.IMPORT_LOG_FIELDS)]


@contextmanager
def locked(folder: Path, blocking: bool = True):
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


def clean(path: Path) -> None:
    """Remove temp copies left by a killed import and undo its half-done transaction.

    Call with the folder lock held. SQLite replays a hot journal (``projects.gpkg-journal``)
    when the store is opened, restoring the last commit; a journal still there once we hold
    the write lock belongs to no transaction (a kill before its header was synced) and goes."""
    for leftover in _leftovers(path):
        leftover.unlink(missing_ok=True)
    journal = Path(f"{path}-journal")
    if path.exists() and journal.exists():
        with connection(path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            journal.unlink(missing_ok=True)
            conn.execute("COMMIT")


def recover(path: Path) -> None:
    """Clean up after a killed import (see `clean`) unless an import is running now."""
    if not path.parent.exists():
        return
    with locked(path.parent, blocking=False) as held:
        if held:
            clean(path)


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
        with connection(path) as conn:
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
    """Replace the whole store file (`kindred_map.store.write_store`): written to a temporary
    file beside it, fsynced and renamed into place, keeping its mode; a GeoPackage that holds
    other layers is refused. ``timestamp`` is what the GeoPackage records as its last change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    projects = records.conform(projects).sort_values("id", kind="stable").reset_index(drop=True)
    with locked(path.parent):
        clean(path)
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


def _write_layers(
    projects: gpd.GeoDataFrame,
    imports: pd.DataFrame,
    path: Path,
    secret: bytes | None,
    events: pd.DataFrame | None,
) -> None:
    pyogrio.write_dataframe(
        projects,
        path,
        layer=PROJECTS_LAYER,
        driver="GPKG",
        geometry_type="Point",
        dataset_options={"VERSION": GPKG_VERSION},
    )
    pyogrio.write_dataframe(
        imports[list(records.IMPORT_LOG_FIELDS)].reset_index(drop=True),
        path,
        layer=IMPORTS_LAYER,
        driver="GPKG",
    )
    with connection(path) as conn:
        if secret is not None:
            conn.execute(f"CREATE TABLE {PRIVATE_TABLE} (key TEXT PRIMARY KEY, value BLOB)")
            conn.execute(f"INSERT INTO {PRIVATE_TABLE} VALUES ('id_secret', ?)", (secret,))
        if events is not None:
            conn.execute("BEGIN")
            history.create(conn)
            history.insert(conn, events.astype(object))
            conn.execute("COMMIT")


def _add_store_layers(path: Path, timestamp: str) -> None:
    """Add empty ``projects`` and ``imports`` layers (made by GDAL) to a new or other GeoPackage."""
    present = set(pyogrio.list_layers(path)[:, 0]) if path.exists() else set()
    new_file_options = None if path.exists() else {"VERSION": GPKG_VERSION}
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": timestamp})
    try:
        if PROJECTS_LAYER not in present:
            pyogrio.write_dataframe(
                records.empty_projects(),
                path,
                layer=PROJECTS_LAYER,
                driver="GPKG",
                geometry_type="Point",
                dataset_options=new_file_options,
            )
        if IMPORTS_LAYER not in present:
            pyogrio.write_dataframe(
                records.empty_imports(), path, layer=IMPORTS_LAYER, driver="GPKG"
            )
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _wkb(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob (after its ``GP`` header and envelope)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0b10000:
        return None
    return bytes(blob[8 + ENVELOPE_BYTES.get((flags >> 1) & 0b111, 0) :])


def gpkg_geometries(geometries, srs_id: int = 4326) -> list[bytes | None]:
    """GeoPackage geometry blobs: ``GP`` header (version 0, little-endian, no envelope) + WKB;
    None for a missing or empty geometry. The WKB is made in one call (an import of 100,000
    points spent 2.8 s making them one at a time)."""
    values = np.asarray(geometries, dtype=object)
    header = b"GP\x00\x01" + struct.pack("<i", srs_id)
    points = _point_blobs(values, header)
    if points is not None:
        return points
    blank = shapely.is_missing(values) | shapely.is_empty(values)
    wkb = shapely.to_wkb(np.where(blank, None, values), byte_order=1)
    return [None if no else header + one for no, one in zip(blank.tolist(), wkb, strict=True)]


POINT_ROW = np.dtype([("head", "S13"), ("xy", "<f8", 2)])
"""A point's blob as `gpkg_geometries` makes it: header, WKB point header, x, y (29 bytes)."""


def _point_blobs(values: np.ndarray, header: bytes) -> list[bytes] | None:
    """The blobs of 2D points with finite coordinates, packed in one array and cut (what
    shapely's WKB gives, at 40% of its time: the store's projects are such points), or None
    when any geometry is something else."""
    if not len(values) or not (shapely.get_type_id(values) == 0).all():
        return None
    xy = shapely.get_coordinates(values)
    if len(xy) != len(values) or shapely.has_z(values).any() or not np.isfinite(xy).all():
        return None
    rows = np.empty(len(values), POINT_ROW)
    rows["head"] = header + b"\x01\x01\x00\x00\x00"  # little-endian WKB, type 1 (point)
    rows["xy"] = xy
    packed = rows.tobytes()
    size = POINT_ROW.itemsize
    return [packed[at : at + size] for at in range(0, len(packed), size)]


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
def connection(path: Path):
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


SQLITE_TYPES = {"float": "REAL", "bool": "BOOLEAN", "int": "INTEGER", "text": "TEXT"}


def _declared_type(name: str) -> str:
    return SQLITE_TYPES[records.field_kind(name)]


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring an older store up to date inside the caller's transaction: columns new schema
    fields need, the id index, the private and history tables, import ids (the log's row
    order) and a ``baseline`` event for each project without a version
    (`kindred_map.storage.history`)."""
    for table, wanted in (
        (PROJECTS_LAYER, records.STORE_FIELDS),
        (IMPORTS_LAYER, records.IMPORT_LOG_FIELDS),
    ):
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
        every = f"SELECT {', '.join(map(_quote, records.STORE_FIELDS))} FROM {PROJECTS_LAYER}"
        history.insert(conn, [records.baseline_event(r, at) for r in _typed_rows(conn, every)])


def _typed_rows(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    """Rows of STORE_FIELDS selected by ``sql`` as typed record dicts."""
    return [
        {
            name: records.typed(name, value)
            for name, value in zip(records.STORE_FIELDS, row, strict=True)
        }
        for row in conn.execute(sql, params)
    ]


def _geometry_column(conn: sqlite3.Connection) -> str:
    row = conn.execute(
        "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (PROJECTS_LAYER,)
    ).fetchone()
    if row is None:
        raise ValueError(f"the store has no '{PROJECTS_LAYER}' point layer")
    return row[0]


def read_secret(path: Path) -> bytes | None:
    """The store's secret key for derived ids, or None for a missing store or one without."""
    if not path.exists():
        return None
    with connection(path) as conn:
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (PRIVATE_TABLE,)
        ).fetchone()
        if not present:
            return None
        row = conn.execute(f"SELECT value FROM {PRIVATE_TABLE} WHERE key = 'id_secret'").fetchone()
    return bytes(row[0]) if row else None


def _has_projects(conn: sqlite3.Connection) -> bool:
    """Whether the projects table holds any row (one index step, not a count)."""
    return conn.execute(f"SELECT 1 FROM {PROJECTS_LAYER} LIMIT 1").fetchone() is not None


def stored_projects(path: Path, ids) -> gpd.GeoDataFrame:
    """The stored projects with these ids (conformed), read by the id index, not the whole file."""
    if not path.exists():
        return records.empty_projects()
    with connection(path) as conn:
        present = _table_columns(conn, PROJECTS_LAYER)
        if not present or not _has_projects(conn):  # a new store: 200,000 ids not sorted
            return records.empty_projects()
        ids = set(map(str, ids))  # one str() an id: an import names 200,000 (ids, file ids)
        ids.discard("")
        ids = sorted(ids)
        if not ids:
            return records.empty_projects()
        geometry = _geometry_column(conn)
        columns = [name for name in records.STORE_FIELDS if name in present]
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
    projects = records.conform(
        gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=records.WGS84))
    )
    if baseline is not None:  # as `_migrate` will set them, in the same transaction
        projects["version"] = projects["version"].fillna(1)
        projects["created_at"] = projects["created_at"].replace("", baseline)
    return projects


def _write_batch(
    path: Path,
    projects: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str,
    secret: bytes | None,
    events: list[dict] = (),
    deletes: list[str] = (),
    payloads: dict | None = None,
) -> int | None:
    """Insert new ids, update stored ones, remove ``deletes``, log the import and append its
    history ``events`` (with ``payloads``: `kindred_map.storage.history.insert`), in one SQLite
    transaction: a kill leaves all of it or none. When a
    stored record becomes home-run, the map's published files go before this returns
    (`forget_published_positions`).

    A logged import gets the next ``import_id``, also set on events that name none; returned."""
    homes = set(projects.loc[privacy.is_ward_only(projects).to_numpy(), "id"])
    with connection(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(conn, path)
            geometry = _geometry_column(conn)
            columns = list(records.STORE_FIELDS)
            values = records.plain_columns(projects, columns)
            blobs = gpkg_geometries(projects.geometry.array)
            stored = []
            ids = values[0] if _has_projects(conn) else []  # a new store: nothing to look up
            for start in range(0, len(ids), SQL_CHUNK):
                chunk = ids[start : start + SQL_CHUNK]
                marks = ", ".join("?" * len(chunk))
                stored += conn.execute(
                    f"SELECT id, location_precision FROM {PROJECTS_LAYER} WHERE id IN ({marks})",
                    chunk,
                ).fetchall()
            stored = pd.DataFrame(stored, columns=["id", "location_precision"])
            known = projects["id"].isin(stored["id"]).to_numpy()
            turned_private = bool((stored["id"].isin(homes) & ~privacy.is_ward_only(stored)).any())
            names = [geometry, *columns]
            rows = zip(blobs, *values, strict=True)
            if known.any():
                rows = list(rows)
                updates = [(*rows[i], rows[i][1]) for i in np.flatnonzero(known)]
                rows = [rows[i] for i in np.flatnonzero(~known)]
                assignments = ", ".join(f"{_quote(n)} = ?" for n in names)
                conn.executemany(f"UPDATE {PROJECTS_LAYER} SET {assignments} WHERE id = ?", updates)
            counters = _drop_feature_counters(conn)
            added = projects.geometry.array[~known]
            with _bulk_spatial_index(conn, geometry, added):
                conn.executemany(
                    f"INSERT INTO {PROJECTS_LAYER} ({', '.join(map(_quote, names))}) "
                    f"VALUES ({', '.join('?' * len(names))})",
                    rows,
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
                log_names = list(records.IMPORT_LOG_FIELDS)
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
            history.insert(conn, events, payloads, import_id)
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


@contextmanager
def _bulk_spatial_index(conn: sqlite3.Connection, geometry: str, added):
    """Insert rows with GDAL's R-tree insert trigger set aside, then index them in one go.

    The trigger calls five Python functions per row (most of an import's write time); here
    the bounds of the ``added`` geometries (in the order their rows are inserted) are taken
    in one call, matched to the new rows' fids, and the trigger is put back, inside the same
    transaction. A batch at least as big as the index is indexed by building the whole tree
    anew, packed (`kindred_map.storage.rtree.rebuild`: SQLite's R*Tree takes entries one at a
    time, 0.9 s for 100,000); a smaller one is inserted into it. A layer without a spatial
    index is left without one."""
    name = f"rtree_{PROJECTS_LAYER}_{geometry}"
    trigger = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
        (f"{name}_insert",),
    ).fetchone()
    if trigger is None:
        yield
        return
    last = conn.execute(f"SELECT coalesce(max(fid), 0) FROM {PROJECTS_LAYER}").fetchone()[0]
    conn.execute(f"DROP TRIGGER {_quote(trigger[0])}")
    yield
    count, first, final = conn.execute(
        f"SELECT count(*), min(fid), max(fid) FROM {PROJECTS_LAYER} WHERE fid > ?", (last,)
    ).fetchone()
    if count != len(added):
        raise ValueError(f"{count} rows inserted for {len(added)} records: nothing written")
    if count and final - first + 1 == count:  # distinct fids: consecutive, not read one by one
        fids = np.arange(first, final + 1, dtype=np.int64)
    else:
        select = f"SELECT fid FROM {PROJECTS_LAYER} WHERE fid > ? ORDER BY fid"
        fids = np.array([row[0] for row in conn.execute(select, (last,))], dtype=np.int64)
    bounds = shapely.bounds(np.asarray(added, dtype=object))
    placed = ~np.isnan(bounds[:, 0])
    fids, bounds = fids[placed], bounds[placed]
    indexed = conn.execute(f"SELECT count(*) FROM {_quote(name + '_rowid')}").fetchone()[0]
    if len(fids) and len(fids) >= indexed:
        rtree.rebuild(conn, name, rtree.cells(fids, *(bounds[:, i] for i in (0, 2, 1, 3))))
    else:
        entries = zip(fids.tolist(), *(bounds[:, i].tolist() for i in (0, 2, 1, 3)), strict=True)
        conn.executemany(f"INSERT OR REPLACE INTO {_quote(name)} VALUES (?, ?, ?, ?, ?)", entries)
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


@contextmanager
def held(path: Path):
    """The store file held for one read-check-write (its folder locked, leftovers of a killed
    write cleaned, a file that is not a GeoPackage refused); yields ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.parent):
        clean(path)
        other_layers(path)
        yield path


def write(
    path: Path,
    projects: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str,
    secret: bytes | None = None,
    events: list[dict] = (),
    deletes: list[str] = (),
    payloads: dict | None = None,
) -> int | None:
    """Write conformed records, removals, a log entry and history events (their records kept
    compactly when ``payloads`` give them: `kindred_map.storage.history.insert`) in one
    transaction (inside `held`), the store's layers made first if missing; returns the batch's
    ``import_id`` (None when not logged). A SQLite failure is a ValueError: store unchanged."""
    try:
        _prepare_target(path, timestamp)
        return _write_batch(path, projects, log_entry, timestamp, secret, events, deletes, payloads)
    except sqlite3.Error as error:
        raise ValueError(f"cannot write the store {path.name}: {error}; it is unchanged") from error


def stored_homes(path: Path) -> pd.DataFrame:
    """Id, name and postcode of every stored ward_only record (few; a scan of one column)."""
    columns = ["id", "name", "postcode"]
    if not path.exists():
        return pd.DataFrame(columns=columns, dtype="str")
    with connection(path) as conn:
        if "location_precision" not in _table_columns(conn, PROJECTS_LAYER):
            return pd.DataFrame(columns=columns, dtype="str")
        rows = conn.execute(
            f"SELECT id, name, postcode FROM {PROJECTS_LAYER} "
            "WHERE location_precision = 'ward_only'"
        ).fetchall()
    return pd.DataFrame(rows, columns=columns).fillna("").astype("str")


def read_history(
    target: Path, project_id: str | None = None, columns=history.COLUMNS
) -> pd.DataFrame:
    """History events (``columns``), as `kindred_map.store.read_history` gives them: a store
    not written since history existed gives the baseline events its next write will store."""
    names = history.checked_columns(columns)
    if not target.exists():
        return history.frame([], columns=names)
    rows = history.stored_events(target, project_id, names)
    if rows is None:
        events = baseline_history(target)
        if project_id is not None:
            events = events[events["project_id"] == project_id]
        return history.frame(events[list(names)].to_numpy().tolist(), columns=names)
    return history.frame(rows, columns=names)


def baseline_history(path: Path) -> pd.DataFrame:
    """The ``baseline`` events an unmigrated store will get on its next write (nothing written)."""
    with connection(path) as conn:
        at = history.baseline_time(conn, path, IMPORTS_LAYER)
    projects = read_projects(path, include_retired=True)
    projects["created_at"] = projects["created_at"].replace("", at)
    events = [records.baseline_event(record, at) for record in records.records(projects)]
    rows = [[number, *e.values()] for number, e in enumerate(events, start=1)]
    return history.frame(rows)


def init(path: Path, create: bool = True) -> str:
    """Create the store file (layers, secret) or bring it up to date (`kindred_map.store.init`);
    ``create=False`` refuses a file that does not exist yet."""
    if not create and not path.exists():
        raise ValueError(f"no store at {path}: create it with `kindred-map store init`")
    with held(path):
        _prepare_target(path, records.now())
        with connection(path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            _migrate(conn, path)
            conn.execute(
                f"INSERT OR IGNORE INTO {PRIVATE_TABLE} (key, value) VALUES ('id_secret', ?)",
                (secrets.token_bytes(32),),
            )
            conn.execute("COMMIT")
    return f"GeoPackage store {path}"
