"""Every change to a stored project, as events in the store's private ``history`` table.

Contract (issues 12, 13 and 15 build on it; both store backends keep the same table and rules):

- Table ``history`` in the store's GeoPackage, private to the tool: not registered in
  ``gpkg_contents``, so GDAL, QGIS and every export ignore it. Columns:
  ``event_id INTEGER PRIMARY KEY`` (increasing: the order of events), ``project_id TEXT``,
  ``at TEXT`` (ISO 8601 UTC, seconds, e.g. ``2026-11-30T01:20:00+00:00``), ``who TEXT``,
  ``action TEXT`` (one of ACTIONS), ``source TEXT`` (``file partner.csv row 7``, ``form``,
  ``cli``, ``undo of import 3``...), ``import_id INTEGER NULL`` (the import batch the event
  belongs to; also set on ``undo`` events of an undone import), ``before TEXT`` (the full
  record as JSON, `record_json`, or NULL for a new project), ``after TEXT`` (the full record as
  JSON, never NULL: a retire keeps the record with ``retired_at``/``retired_reason`` set; an
  undo that removes a project an import created writes the removed record with
  ``"removed": true``), ``version INTEGER`` (the record's version after the event; 0 after a
  removal).
- On PostGIS (`kindred_map.storage.postgis`, schema 2) the table ``history`` has the same columns:
  ``event_id bigserial`` primary key, ``import_id`` and ``version`` bigint, the rest text
  (``before``/``after`` text, not jsonb, so the JSON round-trips byte for byte), indexed on
  (project_id, event_id) and import_id, and not granted to ``kindred_reader``. Events of one
  project are numbered in the order their transactions took its row lock.
- The events hold home-run (``ward_only``) projects' true positions, like the projects table:
  the history is shown to signed-in editors only and never leaves the store.
- A record's JSON holds every field of ``store.STORE_FIELDS`` (which includes lon/lat, the
  point) with the store's types: numbers as numbers, NULL for missing, booleans as booleans.
  Replaying ``after`` of a project's last event up to a date gives the project as of that date.
- Every write that changes projects (an import, add, edit, verify, retire, restore, undo)
  writes its rows and its events in the same transaction: SQLite's (`geopackage._write_batch`)
  under the folder lock, or PostgreSQL's (`postgis.write_batch`) with the ids' rows locked: a
  kill leaves both or neither. An import writes one event per new or changed row (unchanged
  rows: none), all with the batch's ``import_id``.
- Migration: a GeoPackage store without the table gets it on its first write, with one
  ``baseline`` event per existing project at the earliest ``imported_at`` of the import log
  (else the file's modification time): imports from before history existed count from their
  import date. A store that has not been written since can still be read: `read_history`
  gives those same baseline events without writing them. A PostGIS store from before history
  gets the table and the same baseline events (else dated at the migration) once, in
  `postgis.migrate` under its schema lock, run by ``store migrate`` or the next write or
  history read.
- ``store copy`` copies the table as it is (event ids, times, JSON text) between backends.
- Compact format (issue 26; both backends): a batch of COMPACT_FROM events or more keeps
  its records once, not as one JSON text per event: each side (``before`` of its updated
  projects, ``after`` of every event) is one row of the private table PAYLOADS (on a
  GeoPackage not in ``gpkg_contents``, like ``history``; on PostGIS ``payload_id bigserial``,
  ``records bytea``, schema 4, not granted to ``kindred_reader``), its records as a zstd
  Parquet table of the store's typed fields, and the events' ``before``/``after`` hold
  ``=P:R`` (row R of payload P). Readers (`stored_events`, `import_events`,
  `kindred_map.storage.postgis.read_history`, so `read_history`, undo, as-of, the Change page
  and copies) give back the very JSON text the old format holds (`records.typed_texts` made
  it from the same typed columns; tested against the old format on the same events, on both
  backends). Old events stay as they are: a store holds both kinds and reads both; nothing
  is migrated. A copy (`store copy`) writes every event with its JSON text (the destination
  gets the texts, not the payloads). Decision: a payload per import rather than per event
  because 100,000 similar records compress ~20x together and ~2.5x alone; the JSON texts of
  a big batch are never made at all when it is written (`PENDING`).
"""

import io
import os
import re
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kindred_map.storage import records

TABLE = "history"
PAYLOADS = "history_records"
"""A GeoPackage's compact payloads: one row per import batch and side (before/after), the
records as a zstd Parquet table (`insert`); events name their row (`MARK`)."""
MARK = re.compile(r"=(\d+):(\d+)")
"""``before``/``after`` text naming row R of payload P: ``=P:R`` (a record's JSON starts with
``{``, so the two never meet)."""
PENDING = "=?"
"""An event's ``before``/``after`` standing for its row of the batch's payload on that side
(`event_rows`): its JSON text is made only when the batch keeps texts."""
COMPACT_FROM = 20
"""Batches of fewer events keep their JSON text in the events (a payload costs ~4 KB)."""
ACTIONS = ("import", "add", "edit", "verify", "retire", "restore", "undo", "baseline")
COLUMNS = (
    "event_id",
    "project_id",
    "at",
    "who",
    "action",
    "source",
    "import_id",
    "before",
    "after",
    "version",
)
EVENT_FIELDS = COLUMNS[1:]
"""What a caller gives for each event (``event_id`` is assigned by SQLite, in order)."""
SIDES = (COLUMNS.index("before"), COLUMNS.index("after"))
"""Where ``before`` and ``after`` sit in a row of COLUMNS (what `resolve` fills in)."""


def create(conn: sqlite3.Connection) -> bool:
    """Create the history table and its project index if missing; True when it was created."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    if exists:
        return False
    conn.execute(
        f"CREATE TABLE {TABLE} (event_id INTEGER PRIMARY KEY, project_id TEXT NOT NULL, "
        "at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, "
        "import_id INTEGER, before TEXT, after TEXT NOT NULL, version INTEGER NOT NULL)"
    )
    conn.execute(f"CREATE INDEX {TABLE}_project_index ON {TABLE}(project_id, event_id)")
    conn.execute(f"CREATE INDEX {TABLE}_import_index ON {TABLE}(import_id)")
    return True


def check_actions(events: list[dict]) -> None:
    """Refuse events whose action is not one of ACTIONS (both backends check before writing)."""
    unknown = {e["action"] for e in events} - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown history action(s) {sorted(unknown)}; valid: {ACTIONS}")


def insert(
    conn: sqlite3.Connection, events, payloads: dict | None = None, import_id: int | None = None
) -> None:
    """Append events (`event_rows`: dicts or a frame with EVENT_FIELDS, and ``event_id`` when
    each has one: a copied store keeps its numbers) inside the caller's transaction, their
    records kept compactly when ``payloads`` give them; ``import_id`` is set on events that
    name none."""

    def keep(blob: bytes) -> int:
        return (
            _create_payloads(conn)
            .execute(f"INSERT INTO {PAYLOADS} (records) VALUES (?)", (blob,))
            .lastrowid
        )

    names, rows = event_rows(events, payloads, keep, import_id)
    conn.executemany(
        f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        rows,
    )


def event_rows(
    events, payloads: dict | None, keep, import_id: int | None = None
) -> tuple[tuple, list[list]]:
    """The columns and rows both backends append for these events (a list of dicts, or a
    frame of their columns: an import's), checked, made a column at a time; ``import_id`` set
    on the events that name none.

    ``payloads`` (``{"before": frame, "after": frame}``, from
    `kindred_map.storage.reconcile.batch`): conformed records, one row per event whose text on
    that side is not None, in event order, each row the record that text is (or PENDING:
    its text is made here only if needed). A batch of COMPACT_FROM events or more then stores
    each side's records once, as one compressed table (``keep(bytes) -> payload id``), and
    its events name their row (``=P:R``) instead of holding the JSON: an import of 100,000
    new projects keeps ~5 MB of history, not ~100 MB. Readers give the same text back
    (`resolve`)."""
    names, columns = event_columns(events, payloads, keep, import_id)
    return names, list(zip(*columns, strict=True))


def event_columns(
    events, payloads: dict | None, keep, import_id: int | None = None
) -> tuple[tuple, list[list]]:
    """`event_rows` as columns (what both backends' bulk writes take), each made whole."""
    if isinstance(events, pd.DataFrame):
        names = COLUMNS if "event_id" in events else EVENT_FIELDS
        columns = {name: events[name].tolist() for name in names}
    else:
        names = COLUMNS if events and "event_id" in events[0] else EVENT_FIELDS
        columns = {name: [event[name] for event in events] for name in names}
    check_actions([{"action": action} for action in set(columns["action"])])
    if import_id is not None:
        columns["import_id"] = [number or import_id for number in columns["import_id"]]
    columns = {name: _sqlite_column(values) for name, values in columns.items()}
    compact = len(events) >= COMPACT_FROM
    for side, frame in (payloads or {}).items():
        values = columns[side]
        given = [at for at, value in enumerate(values) if value is not None]
        if len(given) != len(frame):
            raise ValueError(f"{len(frame)} {side} records for {len(given)} events")
        if not len(frame):
            continue
        if compact:
            payload = keep(_packed(frame))
            marks = [f"={payload}:{number}" for number in range(len(given))]
        elif PENDING in (values[at] for at in given):
            marks = records.typed_texts(frame)
        else:
            continue
        values = list(values)
        if len(given) == len(values):
            values = list(marks)
        else:
            for at, mark in zip(given, marks, strict=True):
                values[at] = mark
        columns[side] = values
    if PENDING in columns["before"] or PENDING in columns["after"]:
        raise ValueError("an event's record was not given: nothing written")
    return names, list(columns.values())


def _create_payloads(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {PAYLOADS} (payload_id INTEGER PRIMARY KEY, "
        "records BLOB NOT NULL)"
    )
    return conn


PAYLOAD_LEVEL = 3
"""zstd level of a payload. Measured on a 100,000-record import (`benchmarks/results/
history.md`): level 1 0.106 s / 5.02 MB, 3 0.120 s / 4.84 MB, 5 0.159 s / 4.62 MB, 9 0.235 s /
4.53 MB. Level 3 costs 0.3 MB of a 62 MB store (0.5%) and saves 0.115 s of a 3.6 s import."""


def _packed(frame: pd.DataFrame) -> bytes:
    """Conformed records as zstd Parquet bytes (STORE_FIELDS, their types kept: the fields
    are the payload's own, so a field added to the schema later does not change its texts)."""
    table = pa.Table.from_pandas(
        pd.DataFrame(frame[list(records.STORE_FIELDS)]).reset_index(drop=True),
        preserve_index=False,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=PAYLOAD_LEVEL)
    return sink.getvalue()


def _unpacked(blob: bytes, rows: list[int]) -> list[str]:
    """The JSON texts of these rows of a payload (as `kindred_map.storage.records.record_json`
    made them when the batch was written)."""
    table = pq.read_table(io.BytesIO(blob)).take(rows)
    return records.typed_texts(table.to_pandas(), table.column_names)


def resolve(run, rows: list, columns: tuple[int, ...]) -> list:
    """Rows with every ``=P:R`` in these columns replaced by the JSON text it names, each
    payload read once (``run``: `query`'s); rows in the old format pass as they are."""
    if not any(
        type(row[column]) is str and row[column].startswith("=")  # JSON starts with "{"
        for column in columns
        for row in rows
    ):
        return rows  # the old format only: no regular expression per row
    wanted: dict[int, set[int]] = {}
    for row in rows:
        for column in columns:
            found = isinstance(row[column], str) and MARK.fullmatch(row[column])
            if found:
                wanted.setdefault(int(found[1]), set()).add(int(found[2]))
    if not wanted:
        return rows
    texts = {}
    for payload, numbers in wanted.items():
        blob = run(f"SELECT records FROM {PAYLOADS} WHERE payload_id = ?", (payload,))
        if not blob:
            raise ValueError(f"history payload {payload} is missing: the store is damaged")
        ordered = sorted(numbers)
        for number, text in zip(ordered, _unpacked(blob[0][0], ordered), strict=True):
            texts[f"={payload}:{number}"] = text
    out = []
    for row in rows:
        row = list(row)
        for column in columns:
            if isinstance(row[column], str) and row[column].startswith("="):
                row[column] = texts[row[column]]
        out.append(row)
    return out


PLAIN_TYPES = {str, int, type(None)}


def _sqlite_column(values: list) -> list:
    """A column of event values as SQLite binds them (`_sqlite_value`), untouched when plain."""
    if set(map(type, values)) <= PLAIN_TYPES:
        return values
    return [_sqlite_value(value) for value in values]


def _sqlite_value(value):
    """A value SQLite binds: numpy scalars as Python ones, pandas' NA as NULL."""
    if value is None or type(value) in (str, int):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def baseline_time(conn: sqlite3.Connection, path: Path, imports_table: str) -> str:
    """When a store's pre-history projects count from: its first import, else the file's mtime."""
    first = conn.execute(
        f"SELECT min(imported_at) FROM {imports_table} WHERE coalesce(imported_at, '') != ''"
    ).fetchone()[0]
    if first:
        return str(first)
    mtime = pd.Timestamp(os.stat(path).st_mtime, unit="s", tz="UTC")
    return mtime.isoformat(timespec="seconds")


def checked_columns(columns) -> tuple[str, ...]:
    """History columns a reader asks for, in COLUMNS order, always with ``event_id`` (the
    order of events): a ValueError names an unknown one."""
    unknown = sorted(set(columns) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown history column(s) {unknown}; valid: {', '.join(COLUMNS)}")
    return tuple(name for name in COLUMNS if name in columns or name == "event_id")


def sides(columns: tuple[str, ...]) -> tuple[int, ...]:
    """Where ``before`` and ``after`` sit in a row of these columns (what `resolve` fills)."""
    return tuple(columns.index(name) for name in ("before", "after") if name in columns)


def frame(rows: list, project_id: str | None = None, columns=COLUMNS) -> pd.DataFrame:
    """Events as a DataFrame with ``columns`` (`checked_columns`; ``import_id`` nullable),
    oldest first."""
    names = checked_columns(columns)
    events = pd.DataFrame(rows, columns=list(names), dtype=object)
    if project_id is not None:
        events = events[events["project_id"] == project_id]
    for name in names:
        if name in ("event_id", "version"):
            events[name] = events[name].astype("int64")
        elif name == "import_id":
            events[name] = events[name].astype("Int64")
        else:
            events[name] = events[name].astype(object).where(events[name].notna(), None)
    if not events["event_id"].is_monotonic_increasing:  # readers give event order already
        events = events.sort_values("event_id", kind="stable")
    return events.reset_index(drop=True)


@contextmanager
def query(target):
    """``run(sql, params) -> rows`` on a GeoPackage file (read-only) or inside an open PostGIS
    transaction (`kindred_map.postgis.Transaction`): the one place history reads dispatch.
    SQL is written with ``?`` marks, as ``%s`` for PostgreSQL. A GeoPackage without the
    history table (not written since history existed) has no stored events: no rows."""
    if isinstance(target, Path):
        with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as conn:
            present = _present(conn)
            yield lambda sql, params=(): conn.execute(sql, params).fetchall() if present else []
    else:
        yield lambda sql, params=(): target.conn.execute(sql.replace("?", "%s"), params).fetchall()


def _present(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
        ).fetchone()
    )


def exists(path: Path) -> bool:
    """True when the GeoPackage store has a history table (it has been written since)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return _present(conn)


def stored_events(path: Path, project_id: str | None = None, columns=COLUMNS) -> list | None:
    """The history table's rows (of one project, or all; ``columns`` of them,
    `checked_columns`), or None when the store has none."""
    if not exists(path):
        return None
    with query(path) as run:
        return read_rows(run, project_id, columns)


def read_rows(run, project_id: str | None = None, columns=COLUMNS) -> list:
    """Rows of the history table (``columns``, `checked_columns`), of one project or all, in
    event order, their records' texts resolved (``run``: `query`'s; both backends)."""
    names = checked_columns(columns)
    where, params = ("WHERE project_id = ?", (project_id,)) if project_id else ("", ())
    rows = run(f"SELECT {', '.join(names)} FROM {TABLE} {where} ORDER BY event_id", params)
    return resolve(run, rows, sides(names))


def import_events(target, import_id: int) -> list:
    """(event_id, project_id, action, before, after, who, at) of one import's events (a store's
    file, or a PostGIS transaction)."""
    with query(target) as run:
        rows = run(
            f"SELECT event_id, project_id, action, before, after, who, at FROM {TABLE} "
            "WHERE import_id = ? ORDER BY event_id",
            (int(import_id),),
        )
        return resolve(run, rows, (3, 4))


def undone_imports(target) -> list:
    """(import_id, who, at) of each undone import, from its ``undo`` events (a store's file, or
    a PostGIS transaction)."""
    with query(target) as run:
        return run(
            f"SELECT import_id, min(who), min(at) FROM {TABLE} "
            "WHERE action = 'undo' AND import_id IS NOT NULL GROUP BY import_id ORDER BY import_id"
        )


def latest_events(target, ids) -> dict[str, tuple]:
    """``{project_id: (event_id, who, at, action)}`` of each project's latest event (a store's
    file, or a PostGIS transaction)."""
    ids = sorted(set(ids))
    latest = {}
    with query(target) as run:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = run(
                f"SELECT project_id, event_id, who, at, action FROM {TABLE} WHERE event_id IN "
                f"(SELECT max(event_id) FROM {TABLE} WHERE project_id IN ({marks}) "
                "GROUP BY project_id)",
                chunk,
            )
            latest |= {row[0]: tuple(row[1:]) for row in rows}
    return latest
