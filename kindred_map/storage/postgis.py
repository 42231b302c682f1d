"""The project store on PostgreSQL/PostGIS: the GeoPackage store's records, for many writers.

Every function takes the store as a `kindred_map.location.StoreLocation` (or its DSN text);
`connect` alone hands the DSN to the driver and names the store, password masked, in errors."""

import hashlib
import os
import queue
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from kindred_map import boundaries, privacy, schema
from kindred_map.location import StoreLocation, resolve
from kindred_map.paths import BOUNDARIES_DIR
from kindred_map.storage import history, records
from kindred_map.storage.published import forget_published_positions

SCHEMA_VERSION = 5
"""Bumped when `migrate` has something new to add; stored in ``kindred_meta``. 2: history;
3: homes' points moved to HOME_POINTS, no spatial index on projects; 4: the compact history's
payloads (`kindred_map.storage.history.PAYLOADS`); 5: ``projects_public`` shows
``nearest_borough`` (a field PUBLIC_FIELDS gains is filled in by `migrate`)."""
BNG = 27700
SUMMARY_LAYERS = {
    "ward": ("ward_summary", "WD24CD", ("WD24CD", "WD24NM", "LAD24CD", "LAD24NM")),
    "deanery": ("deanery_summary", "deanery_id", ("deanery_id", "deanery_name")),
    "borough": ("borough_summary", "LAD25CD", ("LAD25CD", "LAD25NM", "in_lcr_ca")),
}
"""Boundary layer -> (summary view, the key projects carry, the layer's columns shown)."""
PUBLIC_FIELDS = (
    "name",
    "type",
    "organisation",
    "sector",
    "opening_hours",
    "website",
    "parish",
    "last_checked",
    "location_precision",
    "location_note",
    "WD24CD",
    "WD24NM",
    "LAD25CD",
    "LAD25NM",
    "deanery_id",
    "deanery_name",
    "in_region",
    "nearest_borough",
)
"""What ``projects_public`` shows besides its public id, postcode district and point: no
address, full postcode, coordinates, LSOA or notes, and only real (not synthetic) projects."""
HOME_POINTS = "home_points"
"""Where a home-run (ward_only) record's exact point lives: as WKB in a ``bytea`` column (no
geometry type, so no spatial index, and no statistics: its statistics target is 0), never in
``projects.wgs84``/``geom``. PostGIS's ``_postgis_index_extent``, ``_postgis_stats``,
``_postgis_selectivity`` and ``ST_EstimatedExtent`` read any table's geometry index and
statistics whatever the caller's rights (an OID names a table in any schema), so a reader
could learn a home's position from any geometry column that held it; this table has none."""
IS_HOME = (
    "lower(regexp_replace(coalesce(location_precision, ''), '^\\s+|\\s+$', '', 'g')) = 'ward_only'"
)
"""SQL: the row is a home-run record (as `kindred_map.privacy.is_ward_only` reads it)."""
READER_ROLE = "kindred_reader"
READER_VIEWS = ("projects_public", *(view for view, _, _ in SUMMARY_LAYERS.values()))
SCHEMA_LOCK = 7_150_001
"""Advisory lock key held while the schema is created or migrated."""
ID_LOCK_SPACE = 7_150
ID_LOCK_BUCKETS = 128
"""Advisory locks (in ID_LOCK_SPACE) that writers' ids hash into: see `lock_ids`."""
CHECKED_AFTER_FROM = 10_000
"""A fresh batch of at least this many projects into a store with no project and no event
has its public rows' foreign key and the history's secondary indexes made after its COPYs
(`_checked_after`)."""


POSTGRES_TYPES = {"float": "double precision", "bool": "boolean", "int": "bigint", "text": "text"}


def _sql_type(name: str) -> str:
    return POSTGRES_TYPES[records.field_kind(name)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


KEPT_PER_STORE = 4
"""Connections `connect` keeps open per store (DSN) in a process for the next caller: a new
one costs the server a backend and PostGIS's load, ~35 ms before the first spatial query,
against ~0.2 ms to check a kept one (benchmarks/results/suite.md); a dashboard asks for the
store's signature on every run, the API on every request."""
_kept: dict[str, list] = {}
_kept_lock = threading.Lock()


def close_kept() -> None:
    """Close the connections this process keeps (`KEPT_PER_STORE`). Before a fork (a child must
    never use, nor close, its parent's connections) and wherever an idle one must not hold a
    database open: one used as a template cannot be copied while anyone is connected to it."""
    with _kept_lock:
        idle = [conn for conns in _kept.values() for conn in conns]
        _kept.clear()
    for conn in idle:
        conn.close()


os.register_at_fork(before=close_kept)


def _reuse(dsn: str):
    """A kept connection to ``dsn`` that still answers, or None."""
    import psycopg

    while True:
        with _kept_lock:
            conns = _kept.get(dsn)
            if not conns:
                return None
            conn = conns.pop()
        try:
            conn.execute("SELECT 1").fetchone()
            conn.rollback()
            return conn
        except psycopg.Error:  # the server restarted, or the database was dropped
            conn.close()


def _keep(dsn: str, conn) -> None:
    """Keep ``conn`` for the next `connect` to ``dsn`` (at most KEPT_PER_STORE), its
    transaction rolled back as closing it would have: nothing uncommitted carries over."""
    import psycopg

    try:
        if conn.closed or conn.broken:
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    except psycopg.Error:
        conn.close()
        return
    with _kept_lock:
        conns = _kept.setdefault(dsn, [])
        if len(conns) < KEPT_PER_STORE:
            conns.append(conn)
            return
    conn.close()


@contextmanager
def connect(dsn: StoreLocation | str):
    """A connection to the store's database (a `StoreLocation` or its DSN); a one-line
    ValueError naming the store, password masked (not a driver error), when unreachable.
    Kept open for the next call (`KEPT_PER_STORE`) unless the block raised; anything the block
    left uncommitted is rolled back. Statements are never prepared on the server, so a kept
    connection sees a schema `migrate` changed like a new one would."""
    import psycopg

    where = resolve(dsn)
    if not where.is_postgis:
        raise ValueError(f"{where} is a GeoPackage, not a PostGIS store (postgresql://...)")
    conn = _reuse(where.dsn)
    if conn is None:
        try:
            conn = psycopg.connect(where.dsn, connect_timeout=10, prepare_threshold=None)
        except psycopg.Error as error:
            reason = where.hide(error)
            raise ValueError(f"cannot connect to the PostGIS store {where}: {reason}") from None
    try:
        yield conn
    except BaseException:
        conn.close()
        raise
    _keep(where.dsn, conn)


# --- schema: created and migrated in place ----------------------------------------------


def _schema_statements() -> list[str]:
    """Idempotent DDL for every table of the store (run by `migrate` in one transaction)."""
    columns = ",\n".join(
        f"{_quote(name)} {_sql_type(name)}" + (" PRIMARY KEY" if name == "id" else "")
        for name in records.STORE_FIELDS
    )
    log_columns = ", ".join(
        f"{_quote(n)} {_sql_type(n)}" for n in records.IMPORT_LOG_FIELDS if n != "import_id"
    )
    public = ", ".join(f"{_quote(n)} {_public_type(n)}" for n in PUBLIC_FIELDS)
    statements = [
        "CREATE EXTENSION IF NOT EXISTS postgis",
        "CREATE TABLE IF NOT EXISTS kindred_meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE IF NOT EXISTS kindred_private (key text PRIMARY KEY, value bytea NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS projects (
            {columns},
            wgs84 geometry(Point, 4326),
            geom geometry(Point, {BNG}) GENERATED ALWAYS AS (ST_Transform(wgs84, {BNG})) STORED
        )""",
        # No spatial index: nothing queries projects by position, and a GiST index keeps the
        # extent of points since changed (its keys never shrink), which a reader can read.
        "DROP INDEX IF EXISTS projects_geom_index",
        f"""CREATE TABLE IF NOT EXISTS {HOME_POINTS} (
            id text PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE, wkb bytea NOT NULL
        )""",
        f"ALTER TABLE {HOME_POINTS} ALTER COLUMN wkb SET STATISTICS 0",
        f"CREATE TABLE IF NOT EXISTS imports (import_id bigserial PRIMARY KEY, {log_columns})",
        f"""CREATE TABLE IF NOT EXISTS {history.TABLE} (
            event_id bigserial PRIMARY KEY, project_id text NOT NULL, at text NOT NULL,
            who text NOT NULL, action text NOT NULL, source text NOT NULL, import_id bigint,
            before text, after text NOT NULL, version bigint NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS {history.TABLE}_project_index "
        f"ON {history.TABLE} (project_id, event_id)",
        f"CREATE INDEX IF NOT EXISTS {history.TABLE}_import_index ON {history.TABLE} (import_id)",
        f"""CREATE TABLE IF NOT EXISTS {history.PAYLOADS} (
            payload_id bigserial PRIMARY KEY, records bytea NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS projects_public_rows (
            store_id text PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
            public_id text NOT NULL, postcode_district text, synthetic boolean NOT NULL,
            {public}, geom geometry(Point, {BNG})
        )""",
    ]
    for name, wanted, sql_type in (
        ("projects", records.STORE_FIELDS, _sql_type),
        ("imports", records.IMPORT_LOG_FIELDS, _sql_type),
        ("projects_public_rows", PUBLIC_FIELDS, _public_type),
    ):
        statements += [
            f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {_quote(n)} {sql_type(n)}" for n in wanted
        ]
    for layer, (_, key, shown) in SUMMARY_LAYERS.items():
        fields = ", ".join(f"{_quote(n)} {_boundary_type(n)}" for n in shown)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS boundary_{layer} ({fields}, population bigint, "
            f"centre geometry(Point, 4326), geom geometry(MultiPolygon, {BNG}), "
            f"PRIMARY KEY ({_quote(key)}))"
        )
    return statements


def _public_type(name: str) -> str:
    """A public row's column type: a store field's, but text for the public location note."""
    return "text" if name == "location_note" else _sql_type(name)


def _boundary_type(name: str) -> str:
    return {"deanery_id": "bigint", "in_lcr_ca": "boolean"}.get(name, "text")


def _view_statements() -> list[str]:
    """The partner views: per-area counts by type (and per 10,000 residents), public projects."""
    types = list(schema.project_types())
    statements = []
    for layer, (view, key, shown) in SUMMARY_LAYERS.items():
        counts = ", ".join(
            f"count(p.id) FILTER (WHERE p.type = '{kind}') AS {_quote(kind)}" for kind in types
        )
        rates = ", ".join(
            f"round(10000.0 * count(p.id) FILTER (WHERE p.type = '{kind}') "
            f"/ nullif(b.population, 0), 2) AS {_quote(kind + '_per_10k')}"
            for kind in types
        )
        area_columns = ", ".join(f"b.{_quote(n)}" for n in shown)
        statements.append(
            f"""CREATE OR REPLACE VIEW {view} AS
            SELECT {area_columns}, b.population, count(p.id) AS projects,
                round(10000.0 * count(p.id) / nullif(b.population, 0), 2) AS projects_per_10k,
                {counts}, {rates}, b.geom::geometry(MultiPolygon, {BNG}) AS geom
            FROM boundary_{layer} b
            LEFT JOIN projects p ON p.{_quote(key)} = b.{_quote(key)} AND NOT p.synthetic
                AND coalesce(p.retired_at, '') = ''
            GROUP BY {area_columns}, b.population, b.geom"""
        )
    statements.append(
        f"""CREATE OR REPLACE VIEW projects_public AS
        SELECT r.public_id AS id, {", ".join(f"r.{_quote(n)}" for n in PUBLIC_FIELDS)},
            r.postcode_district, r.geom::geometry(Point, {BNG}) AS geom
        FROM projects_public_rows r JOIN projects p ON p.id = r.store_id
        WHERE NOT r.synthetic AND coalesce(p.retired_at, '') = ''"""
    )
    return statements


def _reader_statements() -> list[str]:
    """The group role partners' logins join: SELECT on the views and nothing else."""
    grants = ", ".join(READER_VIEWS)
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
                CREATE ROLE {READER_ROLE} NOLOGIN;
            END IF;
        END $$""",
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {READER_ROLE}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {READER_ROLE}",
        f"GRANT SELECT ON {grants} TO {READER_ROLE}",
        f"GRANT SELECT ON spatial_ref_sys TO {READER_ROLE}",
        "GRANT SELECT ON geometry_columns, geography_columns TO PUBLIC",
    ]


def migrate(dsn: StoreLocation | str, directory=BOUNDARIES_DIR) -> int:
    """Create the store's tables, views and reader role, or bring an older schema up to date.

    Idempotent and safe to run while others write (one advisory lock serialises migrations).
    Boundary layers are (re)loaded from ``directory``; the store's secret is made once.
    Returns the schema version."""
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        had_history = _has_history(conn)
        public_before = _columns(conn, "projects_public_rows")
        new_public = bool(public_before) and set(PUBLIC_FIELDS) - public_before
        for statement in _schema_statements():
            conn.execute(statement)
        if not had_history:
            _add_baseline(conn)
        _move_home_points(conn)
        _load_boundaries(conn, directory)
        if new_public:
            # The public rows are made again through the one masking path, and the view,
            # whose columns change, is made anew (its grants by _reader_statements).
            _write_public(conn, _select(conn), _wards(conn))
            conn.execute("DROP VIEW IF EXISTS projects_public")
        for statement in [*_view_statements(), *_reader_statements()]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO kindred_private (key, value) VALUES ('id_secret', %s) "
            "ON CONFLICT (key) DO NOTHING",
            (secrets.token_bytes(32),),
        )
        conn.execute(
            "INSERT INTO kindred_meta VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
    return SCHEMA_VERSION


def _has_history(conn) -> bool:
    return _has_table(conn, history.TABLE)


def _has_table(conn, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()[0]


def _move_home_points(conn) -> None:
    """A store from before HOME_POINTS (schema 2): homes' exact points move out of the
    projects' geometry columns, whose statistics are then made again without them."""
    conn.execute(
        f"INSERT INTO {HOME_POINTS} (id, wkb) SELECT id, ST_AsBinary(wgs84) FROM projects "
        f"WHERE {IS_HOME} AND wgs84 IS NOT NULL "
        "ON CONFLICT (id) DO UPDATE SET wkb = excluded.wkb"
    )
    moved = conn.execute(f"UPDATE projects SET wgs84 = NULL WHERE {IS_HOME} AND wgs84 IS NOT NULL")
    if moved.rowcount:
        _forget_statistics(conn)


def _forget_statistics(conn) -> None:
    """Geometry statistics made again from the rows as this transaction leaves them (ANALYZE
    skips the old versions of rows this transaction changed), so that no statistic a reader's
    PostGIS function reads holds a position that has just become private."""
    conn.execute("ANALYZE projects")
    conn.execute("ANALYZE projects_public_rows")


def _add_baseline(conn) -> None:
    """A store from before history (schema 1): each project gets its version (1), its
    created_at and one ``baseline`` event, dated at the log's first import (else now), as a
    GeoPackage store's migration does (`kindred_map.storage.history`)."""
    first = conn.execute(
        "SELECT min(imported_at) FROM imports WHERE coalesce(imported_at, '') != ''"
    ).fetchone()[0]
    at = str(first) if first else records.now()
    conn.execute(
        "UPDATE projects SET version = coalesce(version, 1), "
        "created_at = coalesce(nullif(created_at, ''), %s)",
        (at,),
    )
    insert_history(conn, [records.baseline_event(r, at) for r in records.records(_select(conn))])


def _load_boundaries(conn, directory) -> None:
    """Replace the boundary tables with the current layers (the summaries' areas and centres)."""
    for layer, (_, _, shown) in SUMMARY_LAYERS.items():
        frame = boundaries.load(layer, directory)
        centres = privacy.ward_centres(frame) if layer == "ward" else frame.representative_point()
        centres = pd.Series(list(centres), index=frame.index)
        metric = frame.to_crs(BNG)
        rows = [
            (
                *[_plain(record[n]) for n in shown],
                int(record["population"]),
                shapely.to_wkb(centre, hex=True),
                shapely.to_wkb(shapely.multipolygons(shapely.get_parts(geometry)), hex=True),
            )
            for (_, record), centre, geometry in zip(
                frame.iterrows(), centres, metric.geometry, strict=True
            )
        ]
        names = ", ".join(_quote(n) for n in shown)
        marks = ", ".join(["%s"] * len(shown))
        conn.execute(f"DELETE FROM boundary_{layer}")
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO boundary_{layer} ({names}, population, centre, geom) VALUES "
                f"({marks}, %s, ST_SetSRID(%s::geometry, 4326), ST_SetSRID(%s::geometry, {BNG}))",
                rows,
            )


def _plain(value):
    """A Python value psycopg can send (numpy scalars and NA are not)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _ready(conn) -> bool:
    return conn.execute("SELECT to_regclass('public.projects') IS NOT NULL").fetchone()[0]


def _columns(conn, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    ).fetchall()
    return {row[0] for row in rows}


def ensure(dsn: StoreLocation | str) -> None:
    """Create the schema when the database has none yet (the first write to a new store), or
    migrate it when the schema has fields or the history table the database lacks; otherwise
    take no lock at all."""
    with connect(dsn) as conn:
        current = (
            _ready(conn)
            and _has_history(conn)
            and not (
                set(records.STORE_FIELDS) - _columns(conn, "projects")
                or set(records.IMPORT_LOG_FIELDS) - _columns(conn, "imports")
                or not _has_table(conn, HOME_POINTS)
                or not _has_table(conn, history.PAYLOADS)
            )
        )
    if not current:
        migrate(dsn)


# --- reading ----------------------------------------------------------------------------


def _frame(rows: list, columns: list[str]) -> gpd.GeoDataFrame:
    """Conformed projects from rows of (WKB point, *columns)."""
    frame = pd.DataFrame(rows, columns=["__wkb", *columns])
    points = shapely.from_wkb(frame.pop("__wkb").to_numpy())
    return records.conform(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(points, crs=4326)))


def _select(conn, where: str = "", parameters=(), lock: bool = False) -> gpd.GeoDataFrame:
    """Projects (``p``) with their exact points, homes' from HOME_POINTS (``h``)."""
    present = _columns(conn, "projects")
    columns = [name for name in records.STORE_FIELDS if name in present]
    names = ", ".join(f"p.{_quote(n)}" for n in columns)
    rows = conn.execute(
        f"SELECT coalesce(h.wkb, ST_AsBinary(p.wgs84)), {names} FROM projects p "
        f"LEFT JOIN {HOME_POINTS} h ON h.id = p.id {where} ORDER BY p.id"
        + (" FOR UPDATE OF p" if lock else ""),
        parameters,
    ).fetchall()
    return _frame(rows, columns)


def read_projects(dsn: StoreLocation | str, include_retired: bool = False) -> gpd.GeoDataFrame:
    """The stored projects, as `kindred_map.store.read_projects` returns them (sorted by id;
    retired ones only with ``include_retired``)."""
    with connect(dsn) as conn:
        if not _ready(conn):
            return records.empty_projects()
        where = "" if include_retired else "WHERE coalesce(p.retired_at, '') = ''"
        return _select(conn, where).reset_index(drop=True)


def read_imports(location) -> pd.DataFrame:
    """The import log, oldest first, with the GeoPackage log's columns and types; of a DSN or
    inside an open `Transaction`."""
    if isinstance(location, Transaction):
        return _imports(location.conn)
    with connect(location) as conn:
        if not _ready(conn):
            return records.empty_imports()
        return _imports(conn)


def _imports(conn) -> pd.DataFrame:
    fields = records.IMPORT_LOG_FIELDS
    rows = conn.execute(
        f"SELECT {', '.join(map(_quote, fields))} FROM imports ORDER BY import_id"
    ).fetchall()
    log = pd.DataFrame(rows, columns=list(fields))
    for name, kind in fields.items():
        log[name] = log[name].fillna(0 if kind == "int64" else "").astype(kind)
    return log


def read_history(
    dsn: StoreLocation | str, project_id: str | None = None, columns=history.COLUMNS
) -> list:
    """The history table's rows (``columns`` of `kindred_map.storage.history.COLUMNS`), of one
    project or all, in event order. A store from before history is migrated first (its
    baseline events)."""
    ensure(dsn)
    with connect(dsn) as conn, history.query(Transaction(conn, resolve(dsn))) as run:
        return history.read_rows(run, project_id, columns)


def read_secret(dsn: StoreLocation | str) -> bytes | None:
    """The store's secret key for derived ids (None before the schema exists)."""
    with connect(dsn) as conn:
        if not _ready(conn):
            return None
        row = conn.execute("SELECT value FROM kindred_private WHERE key = 'id_secret'").fetchone()
    return bytes(row[0]) if row else None


def signature(dsn: StoreLocation | str) -> tuple[int, int]:
    """(projects, newest writing transaction id): changes with every committed write, so the
    dashboard knows when to read again. One scan of the projects' system column."""
    with connect(dsn) as conn:
        if not _ready(conn):
            return 0, 0
        row = conn.execute(
            "SELECT count(*), coalesce(max(xmin::text::bigint), 0) FROM projects"
        ).fetchone()
    return int(row[0]), int(row[1])


def stored_homes(conn) -> pd.DataFrame:
    """Id, name and postcode of every stored ward_only record."""
    rows = conn.execute(
        "SELECT id, name, postcode FROM projects WHERE location_precision = 'ward_only'"
    ).fetchall()
    return pd.DataFrame(rows, columns=["id", "name", "postcode"]).fillna("").astype("str")


# --- writing ----------------------------------------------------------------------------


def lock_ids(conn, ids) -> None:
    """Hold, until the transaction ends, the lock of each id's bucket (stored or not, taken in
    a fixed order so no two writers deadlock): concurrent writers naming the same ids take
    turns, and none decides on a stale read or inserts over another's new record. The stored
    rows are then read ``FOR UPDATE`` (`stored_projects`). Ids share ID_LOCK_BUCKETS locks
    because PostgreSQL's lock table is small; a big batch takes most of them."""
    buckets = sorted({_lock_bucket(str(i)) for i in ids if str(i)})
    if buckets:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, b) FROM unnest(%s::int[]) AS b",
            (ID_LOCK_SPACE, buckets),
        )


def _lock_bucket(identifier: str) -> int:
    digest = hashlib.blake2b(identifier.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % ID_LOCK_BUCKETS


@dataclass
class Transaction:
    """One open PostgreSQL transaction on a store: what `kindred_map.store.editing` yields for
    a DSN, so that a read-check-write change (`kindred_map.stewardship`) runs in it."""

    conn: object
    location: StoreLocation

    @property
    def name(self) -> str:
        """How the store is named in messages (no password)."""
        return str(self.location)


def stored_projects(conn, ids, lock: bool = True) -> gpd.GeoDataFrame:
    """The stored projects with these ids, locked for this transaction (unless not ``lock``:
    a read that writes nothing, such as an import's preview)."""
    ids = sorted({str(i) for i in ids if str(i)})
    return _select(conn, "WHERE p.id = ANY(%s)", (ids,), lock=lock)


def write_batch(
    conn,
    projects: gpd.GeoDataFrame,
    log_entry: dict | None,
    events: list[dict] = (),
    deletes=(),
    payloads: dict | None = None,
    fresh: bool = False,
) -> int | None:
    """Insert or replace these projects (by id), remove ``deletes``, refresh the public rows,
    log the import and append its history ``events`` (their records kept compactly when
    ``payloads`` give them: `kindred_map.storage.history.event_rows`), inside the caller's
    transaction. ``fresh``: the caller read, under the ids' locks (`lock_ids`), that none of
    these ids is stored, so the rows are copied straight into their tables (no staging, no
    upsert, no stale home points to remove: a 100,000-row import's slowest statements).

    Homes' exact points go to HOME_POINTS, never to a geometry column. When a stored record
    becomes a home, the geometry statistics are made again in the transaction and the map's
    published files are removed (`kindred_map.storage.published`).
    A logged import's ``import_id`` is drawn by the database, set on the events that name
    none, and returned. The log entry, the history's payload and the wards' centres are
    written and read first; then a fresh batch's COPYs are sent by a thread while this one
    makes the next table's rows (`_copying`)."""
    import_id = None if log_entry is None else write_log(conn, log_entry)
    event_names, event_columns = _history_columns(conn, events, payloads, import_id)
    wards = _wards(conn) if len(projects) else None
    after = fresh and len(projects) >= CHECKED_AFTER_FROM and _empty_and_held(conn)
    with _checked_after(conn, after) as indexes, _copying(conn, behind=fresh) as copy:
        copy(history.TABLE, event_names, event_columns, then=indexes)
        if len(projects):
            homes = privacy.is_ward_only(projects).to_numpy()
            turned = (
                not fresh
                and conn.execute(
                    f"SELECT count(*) FROM projects WHERE id = ANY(%s) AND NOT {IS_HOME}",
                    (projects["id"][homes].astype(str).tolist(),),
                ).fetchone()[0]
            )
            fresh_copy = copy if fresh else None
            columns = {name: projects[name] for name in records.STORE_FIELDS}
            points = pd.Series(_ewkb(projects.geometry, 4326), index=projects.index)
            columns["wgs84"] = points.where(~homes, None)
            _copy_upsert(conn, "projects", "id", columns, fresh_copy)
            _write_home_points(conn, projects, homes, fresh_copy)
            _write_public(conn, projects, wards, fresh_copy)
            if turned:
                _forget_statistics(conn)
                forget_published_positions()
    if len(deletes):
        conn.execute("DELETE FROM projects WHERE id = ANY(%s)", (list(deletes),))
    return import_id


def _empty_and_held(conn) -> bool:
    """Whether the store holds no project and no event, its projects, public rows and history
    then held ACCESS EXCLUSIVE until the transaction ends (readers of the store wait for its
    commit, seeing the whole import or, before, nothing). False, nothing more held, when the
    store holds rows, this role does not own those tables, or another transaction holds any
    lock on them: the lock is asked for with NOWAIT (in a savepoint), so this never waits and
    never deadlocks with a reader or another writer."""
    tables = ("projects", "projects_public_rows", history.TABLE)
    ready = (
        f"SELECT NOT (EXISTS (SELECT FROM projects) OR EXISTS (SELECT FROM {history.TABLE})) "
        "AND bool_and(pg_has_role(relowner, 'USAGE')) FROM pg_class "
        f"WHERE oid = ANY(ARRAY{list(tables)}::regclass[])"
    )
    if not conn.execute(ready).fetchone()[0]:
        return False
    try:
        with conn.transaction():
            conn.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE NOWAIT")
    except Exception as error:  # psycopg's LockNotAvailable (imported by `connect` alone)
        if getattr(error, "sqlstate", None) != "55P03":
            raise
        return False
    return conn.execute(ready).fetchone()[0]  # a writer may have committed before the lock


@contextmanager
def _checked_after(conn, after: bool):
    """``after`` (`_empty_and_held`): the public rows' foreign keys and the history's indexes
    other than its key are dropped for the block and made again, from their catalog
    definitions, in the same transaction (DDL is transactional: a failure rolls all of it
    back): the keys when the block ends, the indexes by the statements yielded, which the
    block runs once the history is filled (none without ``after``). Adding a foreign key
    checks every row in one join, where a COPY checks (and locks) each referenced project
    row by row: on a 100,000-row import 0.78 -> 0.42 s of server CPU for the public rows,
    and building the two history indexes once 0.48 -> 0.38 s (`benchmarks/results/
    history.md`). A public row naming no project is still refused: the constraint's check
    fails and the whole import is rolled back."""
    if not after:
        yield []
        return
    keys = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'projects_public_rows'::regclass AND contype = 'f' ORDER BY conname"
    ).fetchall()
    indexes = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c "
        f"ON c.oid = i.indexrelid WHERE i.indrelid = '{history.TABLE}'::regclass "
        "AND NOT i.indisprimary ORDER BY 1"
    ).fetchall()
    for name, _ in keys:
        conn.execute(f"ALTER TABLE projects_public_rows DROP CONSTRAINT {_quote(name)}")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {_quote(name)}")
    yield [definition for _, definition in indexes]
    for name, definition in keys:
        conn.execute(f"ALTER TABLE projects_public_rows ADD CONSTRAINT {_quote(name)} {definition}")


@contextmanager
def _copying(conn, behind: bool):
    """A function ``copy(table, names, columns, then=())`` that COPYs rows given as columns
    (`_copy`), then runs the statements ``then``, inside the caller's transaction.
    ``behind``: the COPY text is made in this thread and sent, in order, by a worker thread
    while this thread goes on making the next table's text; leaving the block waits for
    every COPY and raises the first that failed (the transaction is then rolled back:
    nothing written). A 100,000-row import's server time (its three COPYs, about 2 s) thus
    overlaps the client's making of the projects' and public rows' text (about 1 s of CPU):
    `benchmarks/results/history.md`. Statements this thread runs meanwhile wait for the
    connection's lock (psycopg holds it through a COPY) and must not read what a queued COPY
    writes (`write_batch` reads and writes everything else first)."""
    if not behind:

        def copy_now(table: str, names: list[str], columns: list, then=()) -> None:
            _copy(conn, table, names, columns)
            for statement in then:
                conn.execute(statement)

        yield copy_now
        return
    jobs = queue.Queue()
    failed = []

    def send() -> None:
        for table, names, text, then in iter(jobs.get, None):
            if not failed:
                try:
                    if text is not None:
                        _send(conn, table, names, text)
                    for statement in then:
                        conn.execute(statement)
                except BaseException as error:  # raised again in the caller's thread
                    failed.append(error)

    def copy(table: str, names: list[str], columns: list, then=()) -> None:
        if failed:
            raise failed[0]
        text = _copy_text(columns) if columns and len(columns[0]) else None
        jobs.put((table, names, text, then))

    worker = threading.Thread(target=send, name="kindred-map-copy", daemon=True)
    worker.start()
    try:
        yield copy
    except BaseException:
        failed.append(None)  # the worker skips what is still queued
        raise
    finally:
        jobs.put(None)
        worker.join()
    if failed:
        raise failed[0]


def _write_home_points(conn, projects: gpd.GeoDataFrame, homes, copy=None) -> None:
    """Homes' exact points as WKB in HOME_POINTS; the batch's other records hold none there
    (``copy``: none of them is stored, so none has a point there to remove: `_copy_upsert`)."""
    if copy is None:
        conn.execute(
            f"DELETE FROM {HOME_POINTS} WHERE id = ANY(%s)",
            (projects["id"][~homes].astype(str).tolist(),),
        )
    placed = projects[homes & ~(projects.geometry.isna() | projects.geometry.is_empty).to_numpy()]
    if len(placed):
        wkb = pd.Series(list(shapely.to_wkb(placed.geometry.to_numpy())), index=placed.index)
        _copy_upsert(conn, HOME_POINTS, "id", {"id": placed["id"], "wkb": wkb}, copy)


def insert_history(conn, events, payloads: dict | None = None, import_id=None) -> None:
    """Append history events (`kindred_map.storage.history.EVENT_FIELDS`, and ``event_id`` when
    each event has one: a copied store keeps its numbers) with one COPY, inside the caller's
    transaction (`_history_columns`)."""
    _copy(conn, history.TABLE, *_history_columns(conn, events, payloads, import_id))


def _history_columns(conn, events, payloads: dict | None, import_id) -> tuple[list, list]:
    """Names and columns of the events' rows: a big batch's records kept once in PAYLOADS
    (inserted here), as on a GeoPackage, and ``import_id`` set on events that name none
    (`kindred_map.storage.history.event_columns`); no columns for no events."""
    if not len(events):
        return [], []

    def keep(blob: bytes) -> int:
        return conn.execute(
            f"INSERT INTO {history.PAYLOADS} (records) VALUES (%s) RETURNING payload_id", (blob,)
        ).fetchone()[0]

    names, columns = history.event_columns(events, payloads, keep, import_id)
    return list(names), columns


def _write_public(conn, projects: gpd.GeoDataFrame, wards: gpd.GeoDataFrame, copy=None) -> None:
    """The public rows of these projects: `kindred_map.privacy.public_records` applied, as in
    every export, so ward_only projects sit at their ward's centre with no address or postcode,
    their text scrubbed and their ids public (``wards``: `_wards`; ``copy``: a fresh batch's,
    `_copy_upsert`)."""
    masked = privacy.public_records(projects, wards).to_crs(BNG)
    columns = {
        "store_id": projects["id"],
        "public_id": masked["id"],
        "postcode_district": privacy.outward_codes(masked["postcode"]),
        "synthetic": masked["synthetic"].astype(bool),
        **{name: masked[name] for name in PUBLIC_FIELDS},
        "geom": pd.Series(_ewkb(masked.geometry, BNG), index=masked.index),
    }
    _copy_upsert(conn, "projects_public_rows", "store_id", columns, copy)


def _ewkb(geometries: gpd.GeoSeries, srid: int) -> list:
    """Hex EWKB (with the SRID) of each geometry, None for a missing or empty one."""
    values = geometries.to_numpy()
    missing = shapely.is_missing(values) | shapely.is_empty(values)
    hex_ewkb = shapely.to_wkb(shapely.set_srid(values, srid), hex=True, include_srid=True)
    return [None if gone else text for gone, text in zip(missing, hex_ewkb, strict=True)]


COPY_ESCAPES = (
    ("\\", "\\\\"),
    ("\t", "\\t"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\b", "\\b"),
    ("\f", "\\f"),
    ("\v", "\\v"),
)
"""Characters COPY's text format escapes (backslash first), as psycopg's ``write_row`` does."""

ESCAPED = "[" + "".join(character for character, _ in COPY_ESCAPES).replace("\\", "\\\\") + "]"
"""A column with none of these is written as it is (most are: numbers, codes, geometry)."""


def _psycopg_text(value) -> str | None:
    """One value as psycopg's ``write_row`` writes it (None for any missing value)."""
    if value is None or value is pd.NA or value != value:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _copy_field(values) -> pa.Array:
    """A column (a Series or a list) as the text of COPY's text format, a column at a time:
    missing values as ``\\N``; text escaped; numbers as their shortest round-trip text (the same
    double or integer is stored as from Python's ``str``); booleans ``true``/``false``; bytes
    as escaped hex (``bytea``); a column of mixed Python values a value at a time
    (`_psycopg_text`)."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        plain = values.tolist() if isinstance(values, pd.Series) else values
        array = pa.array([_psycopg_text(v) for v in plain], pa.large_string())
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        array = pa.array(
            [None if v is None else "\\x" + v.hex() for v in array.to_pylist()], pa.large_string()
        )
    array = pc.cast(array, pa.large_string())
    if pc.any(pc.match_substring_regex(array, ESCAPED)).as_py():
        for old, new in COPY_ESCAPES:
            array = pc.replace_substring(array, old, new)
    return pc.fill_null(array, "\\N")


def _copy(conn, table: str, names: list[str], columns: list) -> None:
    """COPY rows given as columns into ``table`` (`_copy_text`, `_send`)."""
    if columns and len(columns[0]):
        _send(conn, table, names, _copy_text(columns))


def _copy_text(columns: list) -> memoryview:
    """Rows given as columns as COPY's text, one buffer (`_copy_field`; lines joined by pyarrow
    and handed over as they lie in its buffer, UTF-8): psycopg's ``write_row``, a row at a
    time, took 0.55 s of CPU for 100,000 projects, this 0.3 s."""
    fields = [_copy_field(column) for column in columns]
    text = pa.large_string()
    fields[-1] = pc.binary_join_element_wise(fields[-1], pa.scalar("\n", text), pa.scalar("", text))
    lines = pc.binary_join_element_wise(*fields, pa.scalar("\t", text))
    offsets, data = lines.buffers()[1:]
    first, last = np.frombuffer(offsets, np.int64)[[lines.offset, lines.offset + len(lines)]]
    return memoryview(data)[first:last]


def _send(conn, table: str, names: list[str], text: memoryview) -> None:
    """One COPY of ``text`` (`_copy_text`) into ``table``."""
    quoted = ", ".join(_quote(n) for n in names)
    with conn.cursor().copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        copy.write(text if conn.info.encoding == "utf-8" else bytes(text).decode())


def _copy_upsert(conn, table: str, key: str, columns: dict[str, pd.Series], copy=None) -> None:
    """Insert or replace rows (by ``key``) of ``table``: COPY into a temporary table, then one
    ``INSERT ... ON CONFLICT DO UPDATE`` (much faster than a statement per row). ``copy`` (a
    fresh batch, no key stored: `write_batch`): the rows go straight into the table by it (a
    stored key would fail the whole transaction, never be overwritten silently)."""
    names = list(columns)
    quoted = ", ".join(_quote(n) for n in names)
    if copy is not None:
        copy(table, names, list(columns.values()))
        return
    conn.execute(f"CREATE TEMP TABLE staged ON COMMIT DROP AS SELECT {quoted} FROM {table} LIMIT 0")
    _copy(conn, "staged", names, list(columns.values()))
    updates = ", ".join(f"{_quote(n)} = excluded.{_quote(n)}" for n in names if n != key)
    conn.execute(
        f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM staged "
        f"ON CONFLICT ({_quote(key)}) DO UPDATE SET {updates}"
    )
    conn.execute("DROP TABLE staged")


def _wards(conn) -> gpd.GeoDataFrame:
    """The wards' centres as loaded by `migrate` (points stand in for the polygons: the
    representative point of a point is itself)."""
    rows = conn.execute('SELECT "WD24CD", ST_AsBinary(centre) FROM boundary_ward').fetchall()
    return gpd.GeoDataFrame(
        {"WD24CD": [r[0] for r in rows]},
        geometry=[shapely.from_wkb(bytes(r[1])) for r in rows],
        crs=4326,
    )


def write_store(
    projects: gpd.GeoDataFrame,
    imports: pd.DataFrame,
    dsn: StoreLocation | str,
    secret=None,
    events: pd.DataFrame | None = None,
) -> None:
    """Replace every project, the import log and the history (``events`` with their
    `kindred_map.storage.history.COLUMNS`, ids kept; None: a baseline event per project, as
    `_add_baseline` dates them) and the secret, when given, in one transaction."""
    ensure(dsn)
    projects = records.conform(projects)
    with connect(dsn) as conn, conn.transaction():
        conn.execute(f"LOCK TABLE projects, imports, {history.TABLE} IN EXCLUSIVE MODE")
        for table in ("projects", "imports", history.TABLE, history.PAYLOADS):
            conn.execute(f"DELETE FROM {table}")
        write_batch(conn, projects, None)
        _forget_statistics(conn)  # the replaced rows' points may have become homes' now
        for _, entry in imports.iterrows():
            write_log(conn, entry.to_dict())
        if events is None:  # as a GeoPackage written whole gets them on its next write
            _add_baseline(conn)
        else:
            insert_history(conn, events.astype(object))
        for table, key in (("imports", "import_id"), (history.TABLE, "event_id")):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), "
                f"coalesce(max({key}), 0) + 1, false) FROM {table}"
            )
        if secret is not None:
            conn.execute(
                "INSERT INTO kindred_private VALUES ('id_secret', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (secret,),
            )


def write_log(conn, entry: dict) -> int:
    """Append one import log entry; its ``import_id`` (drawn by the database for a new one)."""
    fields = list(records.IMPORT_LOG_FIELDS)
    if not _plain(entry.get("import_id")):  # a new import: the database numbers it
        fields.remove("import_id")
    return conn.execute(
        f"INSERT INTO imports ({', '.join(map(_quote, fields))}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING import_id",
        [_plain(entry[n]) for n in fields],
    ).fetchone()[0]


@contextmanager
def transaction(dsn: StoreLocation | str):
    """A connection inside one transaction (schema created first if the database has none)."""
    ensure(dsn)
    with connect(dsn) as conn, conn.transaction():
        yield conn


def grant_reader(dsn: StoreLocation | str, name: str, password: str | None) -> None:
    """A login role ``name`` in ``kindred_reader``: SELECT on the partner views and nothing
    else. ``name`` may be ``kindred_reader`` itself, which then may log in.

    Only a new role, or one that is already a reader login, is created or changed: an existing
    superuser, the role running this (the store's owner), the owner of the store's tables and
    any other existing role are refused, so that a typo cannot make the superuser a reader or
    reset its password."""
    from psycopg import sql

    if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ValueError(f"role name {name!r}: use letters, digits and _ (starting with a letter)")
    ensure(dsn)
    with connect(dsn) as conn, conn.transaction():
        role = sql.Identifier(name)
        exists = conn.execute(
            "SELECT rolsuper, pg_has_role(oid, %s, 'MEMBER'), rolname IN (current_user, "
            "session_user, (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = "
            "to_regclass('projects'))) FROM pg_roles WHERE rolname = %s",
            (READER_ROLE, name),
        ).fetchone()
        if exists and (exists[0] or exists[2]):
            raise ValueError(
                f"{name} is a superuser or owns the store: grant-reader makes reader logins "
                "only; choose a new role name"
            )
        if exists and not exists[1]:
            raise ValueError(
                f"role {name} already exists and is not a {READER_ROLE} login: grant-reader "
                "creates reader logins and resets their passwords only; choose a new role name"
            )
        verb = sql.SQL("ALTER" if exists else "CREATE")
        conn.execute(sql.SQL("{} ROLE {} LOGIN").format(verb, role))
        if password is not None:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
        if name != READER_ROLE:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER_ROLE), role))
