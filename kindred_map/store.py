"""The project store: one entry point for reading, writing, editing and copying it.

Every public function takes a store location (`kindred_map.location.StoreLocation`, or a
setting it resolves: a path or a DSN; none: the configured store) and hands the work to one
of two engines beneath: a GeoPackage grown in place in SQLite transactions under a folder lock
(`kindred_map.storage.geopackage`), or a PostGIS database written in PostgreSQL transactions
with row locks (`kindred_map.storage.postgis`). Both give the same records, counts, reports
and log for the same calls. What an import writes is decided once, for both, without I/O
(`kindred_map.storage.reconcile`); reading and preparing a file is `kindred_map.importing`.
"""

import os
import secrets
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import pandas as pd

from kindred_map.location import Setting, StoreLocation, resolve
from kindred_map.report import ImportReport
from kindred_map.storage import asof, history, postgis, reconcile
from kindred_map.storage import geopackage as gpkg
from kindred_map.storage.published import forget_published_positions
from kindred_map.storage.records import (
    IMPORT_LOG_FIELDS,
    STORE_FIELDS,
    conform,
    empty_projects,
    from_records,
    now,
    records,
)

__all__ = [
    "IMPORT_LOG_FIELDS",
    "STORE_FIELDS",
    "IdKeyChanged",
    "conform",
    "copy",
    "editing",
    "empty_projects",
    "forget_published_positions",
    "from_records",
    "import_log",
    "import_prepared",
    "import_secret",
    "init",
    "plan_import",
    "read_history",
    "read_imports",
    "read_projects",
    "read_secret",
    "records",
    "same_projects",
    "signature",
    "store_target",
    "stored_projects",
    "upsert",
    "write_changes",
    "write_store",
]
"""The store's public API (record fields and typing come from `kindred_map.storage.records`)."""


class IdKeyChanged(ValueError):
    """A new GeoPackage store got its id secret from another import while this one prepared
    its file with another: nothing was written; prepare the file again (`import_secret`)."""


def store_target(location: Setting) -> Path:
    """The file a GeoPackage store names: a symlinked store is written through to its target."""
    where = resolve(location)
    if where.is_postgis:
        raise ValueError(f"{where} is a PostGIS store, not a GeoPackage file")
    return Path(os.path.realpath(where.path))


# --- reads ------------------------------------------------------------------------------


def read_projects(
    path: Setting = None, include_retired: bool = False, as_of=None
) -> gpd.GeoDataFrame:
    """The stored projects: STORE_FIELDS, points in EPSG:4326, sorted by id.

    Retired projects (``retired_at`` set) are left out unless ``include_retired``: the map,
    coverage and exports show open projects only. A ``ward_only`` project's point is its true
    position: keep it inside the tool (use `kindred_map.privacy.public_records` before anything
    leaves). A missing store reads as empty. A store from before history reads as if migrated
    (version 1). Leftovers of a killed import are cleaned first when no import is running.
    ``as_of`` (a date, ISO time or "today"): the projects open then, with their values then,
    replayed from the store's history (`kindred_map.storage.asof`; a store not yet migrated
    replays the baseline events its next write will store); retired ones only with
    ``include_retired``.
    """
    location = resolve(path)
    if as_of is not None:
        events = read_history(location, columns=asof.COLUMNS)
        return asof.projects_at(events, as_of, include_retired)
    if location.is_postgis:
        return postgis.read_projects(location, include_retired)
    return gpkg.read_projects(store_target(location), include_retired)


def read_imports(path=None) -> pd.DataFrame:
    """The import log: one row per import (when, file, counts), oldest first. Also inside
    `editing`, given what it yields."""
    if isinstance(path, postgis.Transaction):
        return postgis.read_imports(path)
    location = resolve(path)
    if location.is_postgis:
        return postgis.read_imports(location)
    return gpkg.read_imports(store_target(location))


def import_log(store: Setting = None) -> pd.DataFrame:
    """The import log (`read_imports`) with ``undone``: "undone on DATE by WHO" for an import
    that was undone (`kindred_map.stewardship.undo_import`), blank for one still in effect."""
    location = resolve(store)
    log = read_imports(location)
    if location.is_postgis:
        with postgis.transaction(location) as conn:
            rows = history.undone_imports(postgis.Transaction(conn, location))
    else:
        target = store_target(location)
        rows = history.undone_imports(target) if target.exists() else []
    undone = {int(number): f"undone on {str(at)[:10]} by {who or '-'}" for number, who, at in rows}
    return log.assign(undone=[undone.get(int(number), "") for number in log["import_id"]])


def read_secret(path: Setting = None) -> bytes | None:
    """The store's secret key for derived ids, or None for a missing store or one without."""
    location = resolve(path)
    if location.is_postgis:
        return postgis.read_secret(location)
    return gpkg.read_secret(store_target(location))


def read_history(
    location: Setting = None, project_id: str | None = None, columns=history.COLUMNS
) -> pd.DataFrame:
    """History events (`kindred_map.storage.history.COLUMNS`, or only ``columns`` of them:
    `kindred_map.storage.asof.COLUMNS` for a replay to a date), oldest first; of one project
    if given.

    A GeoPackage not written since history existed gives the baseline events its next write
    will store (nothing is written); a PostGIS store from before history is migrated. A
    missing store has no history."""
    location = resolve(location)
    if location.is_postgis:
        names = history.checked_columns(columns)
        return history.frame(postgis.read_history(location, project_id, names), columns=names)
    return gpkg.read_history(store_target(location), project_id, columns)


def signature(location: Setting = None) -> tuple[StoreLocation, int, int]:
    """(location, modification time, size) of a GeoPackage, (location, rows, last writing
    transaction) of a PostGIS store: changes whenever the store is written."""
    location = resolve(location)
    if location.is_postgis:
        return (location, *postgis.signature(location))
    try:
        stat = location.path.stat()
    except FileNotFoundError:
        return location, 0, 0
    return location, stat.st_mtime_ns, stat.st_size


# --- whole-store writes -----------------------------------------------------------------


def write_store(
    projects: gpd.GeoDataFrame,
    imports: pd.DataFrame,
    path: Setting,
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
    events with `kindred_map.storage.history.COLUMNS`, by `copy`) become its history, numbers
    kept; without them the store gets its baseline events on its first write. The map's
    published project files are removed (`forget_published_positions`): any position may have
    changed.
    """
    location = resolve(path)
    if location.is_postgis:
        postgis.write_store(projects, imports, location, secret, events)
    else:
        gpkg.write_store(projects, imports, store_target(location), timestamp, secret, events)
    forget_published_positions()


def init(location: Setting, create: bool = True) -> str:
    """Create a store (tables, secret; on PostGIS also the boundary tables, partner views and
    reader role) or bring an existing one up to date. Idempotent; keeps every record.

    ``create=False`` (``store migrate``) refuses a GeoPackage that does not exist yet."""
    location = resolve(location)
    if location.is_postgis:
        version = postgis.migrate(location)
        return f"PostGIS store {location} at schema version {version}"
    return gpkg.init(store_target(location), create)


def same_projects(first: gpd.GeoDataFrame, second: gpd.GeoDataFrame) -> bool:
    """True when two reads of a store hold the same records: every value, every point exactly."""
    if not first.drop(columns="geometry").equals(second.drop(columns="geometry")):
        return False
    missing = first.geometry.isna().to_numpy() | first.geometry.is_empty.to_numpy()
    other_missing = second.geometry.isna().to_numpy() | second.geometry.is_empty.to_numpy()
    exact = first.geometry.geom_equals_exact(second.geometry, 0).to_numpy()
    return bool(((missing & other_missing) | (~missing & ~other_missing & exact)).all())


def copy(source: Setting, destination: Setting) -> dict[str, int]:
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
    write_store(projects, log, destination, now(), secret, events)
    copied, copied_log = read_projects(destination, include_retired=True), read_imports(destination)
    same = (
        copied_log.equals(log)
        and read_history(destination).equals(events)
        and secret in (None, read_secret(destination))
    )
    if not (same and same_projects(copied, projects)):
        raise ValueError(f"the copy in {destination.name} differs from its source")
    return {"projects": len(projects), "imports": len(log), "events": len(events)}


# --- changes: the store held for one read-check-write -----------------------------------


@contextmanager
def editing(path: Setting = None):
    """The store held for one read-check-write change: yields what `stored_projects`,
    `write_changes`, `read_imports` and `kindred_map.storage.history`'s readers take.

    A GeoPackage: its folder lock is held and its file yielded (leftovers of a killed write
    are cleaned first; a file that is not a GeoPackage is refused). PostGIS: one transaction
    is open (`kindred_map.storage.postgis.Transaction`); `stored_projects` locks the rows it
    reads, so a concurrent change to the same project waits and then sees the new version.
    Leaving the block commits; an exception rolls back (nothing written)."""
    location = resolve(path)
    if location.is_postgis:
        with postgis.transaction(location) as conn:
            yield postgis.Transaction(conn, location)
        return
    with gpkg.held(store_target(location)) as target:
        yield target


def stored_projects(target, ids) -> gpd.GeoDataFrame:
    """The stored projects with these ids, retired or not, as the next write will see them
    (an older store's version 1 and baseline time filled in). Call inside `editing`; on
    PostGIS the ids are locked until the change ends (`kindred_map.storage.postgis.lock_ids`)."""
    if isinstance(target, postgis.Transaction):
        postgis.lock_ids(target.conn, ids)
        return postgis.stored_projects(target.conn, ids)
    return gpkg.stored_projects(target, ids)


def _stored_homes(target) -> pd.DataFrame:
    """Id, name and postcode of every stored ward_only record (inside `editing`)."""
    if isinstance(target, postgis.Transaction):
        return postgis.stored_homes(target.conn)
    return gpkg.stored_homes(target)


def _write(
    target,
    projects,
    log_entry,
    timestamp,
    secret=None,
    events=(),
    deletes=(),
    payloads=None,
    fresh=False,
):
    """Write conformed records, removals, a log entry and events in `editing`'s transaction;
    the batch's ``import_id`` (None when not logged). ``payloads``: the records behind the
    events' texts, which both backends keep compactly for a big batch
    (`kindred_map.storage.history.event_rows`). ``fresh``: none of the records is stored
    (read in this transaction), which PostGIS writes without upserting."""
    if isinstance(target, postgis.Transaction):
        return postgis.write_batch(
            target.conn, projects, log_entry, events, list(deletes), payloads, fresh
        )
    deletes = list(deletes)
    return gpkg.write(target, projects, log_entry, timestamp, secret, events, deletes, payloads)


def write_changes(
    target,
    projects: gpd.GeoDataFrame,
    events: list[dict],
    deletes: list[str] = (),
    timestamp: str | None = None,
) -> None:
    """Write changed records, removals and their history events in one transaction (inside
    `editing`). The records must carry their new ``version``; each event its ``import_id``."""
    _write(target, conform(projects), None, timestamp or now(), None, events, deletes)


def _write_batch(target, projects, stored, log_entry, timestamp, who, secret=None) -> dict:
    """Write one import batch inside `editing` (its ids held): upkeep carried, versions and
    events made (`kindred_map.storage.reconcile.batch`); counts and ``import_id``."""
    projects, events, payloads, counts, log_entry = reconcile.batch(
        projects, stored, log_entry, timestamp, who
    )
    fresh = not projects["id"].isin(stored["id"]).any()
    import_id = _write(target, projects, log_entry, timestamp, secret, events, (), payloads, fresh)
    return counts | {"import_id": import_id}


def upsert(
    projects: gpd.GeoDataFrame,
    path: Setting = None,
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
    reconcile.check_ids(projects)
    if not len(projects):
        return {"new": 0, "updated": 0, "unchanged": 0, "import_id": None}
    with editing(path) as target:
        stored = stored_projects(target, projects["id"])
        return _write_batch(target, projects, stored, log_entry, timestamp or now(), who)


# --- imports of prepared rows (`kindred_map.importing` prepares them) -------------------


def import_secret(store: Setting = None) -> bytes:
    """The id secret an import into ``store`` derives ids with: the stored one (a PostGIS
    store is created first if new), or for a GeoPackage without one a new one that
    `import_prepared` stores with the import's first rows."""
    location = resolve(store)
    if location.is_postgis:
        postgis.ensure(location)
    else:
        gpkg.other_layers(store_target(location))  # a file that is not a GeoPackage: refused
    return read_secret(location) or secrets.token_bytes(32)


def _decide(target, projects, report, choices, shown: str, lock: bool = True):
    """`kindred_map.storage.reconcile.decide` given the stored records the rows name (read
    here, by `stored_projects` inside `editing`; on PostGIS without row locks when not
    ``lock``, for a preview): the records, the stored records read, the report."""
    projects, chosen = reconcile.apply_choices(projects, choices)
    ids = reconcile.named_ids(projects)
    if lock or not isinstance(target, postgis.Transaction):
        stored = stored_projects(target, ids)
    else:
        stored = postgis.stored_projects(target.conn, ids, lock=False)
    homes = _stored_homes(target)
    kept, report = reconcile.decide(projects, chosen, report, choices, stored, homes, shown)
    return kept, stored, report


def import_prepared(
    projects: gpd.GeoDataFrame,
    report: ImportReport,
    store: Setting = None,
    secret: bytes | None = None,
    log_entry: dict | None = None,
    who: str = "",
    choices: dict | None = None,
) -> ImportReport:
    """Store prepared rows (`kindred_map.importing.prepare`, with ``secret`` from
    `import_secret`): in one transaction the stored records they name are held, the rows
    reconciled with them and the editor's duplicate ``choices`` applied
    (`kindred_map.storage.reconcile.decide`), then written with ``log_entry`` (file, its
    SHA-256, note; counts added here) and one history event per new or changed row. Returns
    the report with its counts and ``import_id``. Nothing is written when no row is left.

    A GeoPackage without a secret stores ``secret``; one that got another meanwhile raises
    IdKeyChanged (the rows' derived ids would be keyed wrongly; nothing is written)."""
    location = resolve(store)
    with editing(location) as target:
        new_secret = None
        if not location.is_postgis:
            stored_secret = gpkg.read_secret(target)
            if stored_secret is None:
                new_secret = secret
            elif secret is not None and stored_secret != secret:
                raise IdKeyChanged(
                    f"the store {location.name} got its id key from another import meanwhile: "
                    "import the file again"
                )
        kept, stored, report = _decide(target, projects, report, choices, str(location))
        if kept.empty:
            return report
        reconcile.check_ids(kept)
        entry = (log_entry or {}) | {
            "rows_read": report.rows_read,
            "imported": report.imported,
            "rejected": report.rejected,
            "warned": report.warned,
            "projects": report.records,
        }
        counts = _write_batch(target, kept, stored, entry, now(), who, new_secret)
    return reconcile.counted(report, counts)


def plan_import(
    projects: gpd.GeoDataFrame,
    report: ImportReport,
    store: Setting = None,
    choices: dict | None = None,
    who: str = "",
) -> ImportReport:
    """What `import_prepared` will do with these prepared rows and duplicate ``choices``,
    written nowhere: the report with its new, updated, unchanged, merged and skipped counts
    (no ``import_id``). ``projects`` and ``report`` come from `kindred_map.importing.prepare`
    given the store's secret and the file's namespace, as the import prepares them; the counts
    then equal the import's unless the store changes in between."""
    location = resolve(store)
    if location.is_postgis:
        with postgis.connect(location) as conn:
            target = postgis.Transaction(conn, location)
            kept, stored, report = _decide(
                target, projects, report, choices, str(location), lock=False
            )
    else:
        target = store_target(location)
        kept, stored, report = _decide(target, projects, report, choices, str(location))
    if kept.empty:
        return report
    counts = reconcile.count_changes(reconcile.carry_upkeep(conform(kept), stored, who), stored)
    return replace(report, **counts)
