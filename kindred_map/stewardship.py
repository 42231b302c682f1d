"""Editors' changes to one project (add, edit, verify, retire, restore), history, import undo."""

import datetime as dt
import getpass
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from kindred_map import geocode, hours, ingest, join, store
from kindred_map.location import Setting
from kindred_map.paths import BOUNDARIES_DIR
from kindred_map.schema import RECORD_FIELDS
from kindred_map.storage import history
from kindred_map.storage.records import record_json

EDITABLE_FIELDS = tuple(name for name in RECORD_FIELDS if name != "id")
"""What an edit may change; joined fields follow from the position, upkeep fields from actions."""
POSITION_FIELDS = ("lat", "lon", "easting", "northing")
FORM_NAMESPACE = "form"
"""Namespace of ids given to projects added one at a time (imports use the file's name)."""


class VersionConflict(ValueError):
    """Someone else changed the project since the editor read it; nothing was written.

    ``changes`` are the editor's own changes, kept so that they can be applied again."""

    def __init__(self, message: str, changes: dict | None = None):
        super().__init__(message)
        self.changes = dict(changes or {})


@dataclass
class UndoReport:
    """What undoing one import did: projects put back, removed, and left alone."""

    import_id: int
    reverted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """``"id: changed by WHO at AT (action)"``: a later change is kept, never lost."""


def default_who() -> str:
    """The OS user, the CLI's default ``--who`` (blank when the system cannot say)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def describe_change(before: str | None, after: str) -> list[str]:
    """``field: old -> new`` for each field an event changed (a new project: its fields)."""
    old = json.loads(before) if before else {}
    new = json.loads(after)
    return [
        f"{name}: {old[name]!r} -> {value!r}" if name in old else f"{name}: {value!r}"
        for name, value in new.items()
        if name != "version" and old.get(name, "") != value and (old or value not in ("", None))
    ]


def _who(who: str) -> str:
    who = ingest.clean_text(pd.Series([str(who or "")])).iloc[0]
    if not who:
        raise ValueError("say who is making the change (a name, or --who NAME)")
    return who


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _text(name: str, value) -> str:
    """A stored value as the text an import row would carry."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if name == "synthetic":
        return "yes" if value is True or str(value).casefold() in ingest.TRUE_WORDS else "no"
    return str(value)


def validate(
    record: dict, before: dict | None = None, directory: Path = BOUNDARIES_DIR
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """One record through the import's checks: tidy text, type, precision, date, hours, postcode
    look-up or coordinates -> position, then ward, borough, deanery and LSOA joined again.

    ``before`` (the stored record) makes ``ward_only`` sticky: it stays unless ``record`` says
    otherwise. Returns the record (one row, STORE_FIELDS without upkeep values) and warnings;
    a record the import would reject raises ValueError with the reasons."""
    row = {name: _text(name, record.get(name)) for name in RECORD_FIELDS} | {"row": 1}
    records, issues = ingest.normalise(pd.DataFrame([row]))
    reasons = issues.loc[issues["level"] == "rejected", "reason"].tolist()
    if records.empty:
        raise ValueError(f"not saved: {'; '.join(reasons) or 'the record was rejected'}")
    records, hours_issues = hours.fill_schedules(records)
    located, place_issues = geocode.locate(records, directory)
    found = pd.concat([issues, hours_issues, place_issues], ignore_index=True)
    if located.empty:
        reasons = found.loc[found["level"] == "rejected", "reason"].tolist()
        raise ValueError(f"not saved: {'; '.join(reasons) or 'the project cannot be placed'}")
    joined = join.join_projects(located, directory)
    stated = record.get("location_precision", "")
    if before is not None and before.get("location_precision") == "ward_only" and not stated:
        joined["location_precision"] = "ward_only"
    joined["id"] = record.get("id", "")
    warnings = found.loc[found["level"] == "warning", "reason"].tolist()
    return store.conform(joined), warnings


def _event(action, before: dict | None, after: dict, who, source, at, import_id=None) -> dict:
    return {
        "project_id": after["id"],
        "at": at,
        "who": who,
        "action": action,
        "source": source,
        "import_id": import_id,
        "before": None if before is None else record_json(before),
        "after": record_json(after),
        "version": after["version"],
    }


def _stored_one(target, project_id: str) -> dict:
    found = store.records(store.stored_projects(target, [project_id]))
    if not found:
        raise ValueError(f"no project with id {project_id!r} in the store {target.name}")
    return found[0]


def _check_version(target, before: dict, expected_version, changes: dict) -> None:
    """Raise VersionConflict when the stored version is not the one the editor read."""
    if expected_version is None or int(expected_version) == before["version"]:
        return
    latest = history.latest_events(target, [before["id"]]).get(before["id"])
    who, at, action = latest[1:] if latest else ("someone", "an earlier time", "change")
    raise VersionConflict(
        f"{before['name']!r} ({before['id']}) was changed by {who or 'an import'} at {at} "
        f"({action}) after you opened it: it is now version {before['version']}, you had "
        f"version {expected_version}. Nothing was saved; reload the project and apply your "
        f"changes again: {json.dumps(changes, ensure_ascii=False, default=str)}",
        changes,
    )


def _save(target, before: dict | None, after: dict, action, who, source) -> dict:
    """Write one record and its event; the record as saved (with its new version)."""
    at = _now()
    after = after | {"version": (before["version"] if before else 0) + 1}
    if before is None:
        after["created_at"] = at
    projects = store.from_records([after])
    after = store.records(projects)[0]
    store.write_changes(target, projects, [_event(action, before, after, who, source, at)])
    return after


def add_project(
    path: Setting = None,
    record: dict | None = None,
    who: str = "",
    source: str = "form",
    directory: Path = BOUNDARIES_DIR,
) -> dict:
    """Add one project (validated like an import row); returns it as stored, with its id.

    A given id is namespaced ``form:<id>``; without one a random id is drawn. An id already
    stored is refused (edit that project instead)."""
    who = _who(who)
    record = dict(record or {})
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; a project has {list(RECORD_FIELDS)}")
    given = ingest.clean_text(pd.Series([str(record.get("id") or "")])).iloc[0]
    record["id"] = (
        (given if ":" in given else f"{FORM_NAMESPACE}:{given}")
        if given
        else f"{FORM_NAMESPACE}:{secrets.token_hex(5)}"
    )
    record["source"] = record.get("source") or f"added by {who} ({source})"
    projects, _ = validate(record, None, directory)
    with store.editing(path) as target:
        if len(store.stored_projects(target, [record["id"]])):
            raise ValueError(f"a project with id {record['id']!r} is already stored; edit it")
        after = store.records(projects)[0] | {"checked_by": "", "retired_at": ""}
        return _save(target, None, after, "add", who, source)


def edit_project(
    path: Setting,
    project_id: str,
    changes: dict,
    expected_version: int | None,
    who: str,
    source: str = "form",
    directory: Path = BOUNDARIES_DIR,
) -> dict:
    """Change fields of one project, validated like an import; returns the record as saved.

    A new postcode is looked up again (the stored position is dropped unless new coordinates
    are given too); ward, borough, deanery and LSOA are joined again. ``expected_version`` is the
    version the editor read: another change since raises VersionConflict and saves nothing.
    Changing nothing writes nothing."""
    who = _who(who)
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValueError(f"cannot edit {unknown}; editable fields: {list(EDITABLE_FIELDS)}")
    with store.editing(path) as target:
        before = _stored_one(target, project_id)
        _check_version(target, before, expected_version, changes)
        record = {name: before[name] for name in RECORD_FIELDS} | dict(changes)
        moved = [name for name in ("postcode", "address") if name in changes]
        if moved and not set(POSITION_FIELDS) & set(changes):
            record |= dict.fromkeys(POSITION_FIELDS, "")
            if "location_precision" not in changes and before["location_precision"] != "ward_only":
                record["location_precision"] = ""  # placed by the new postcode: geocode says how
        if set(POSITION_FIELDS) & set(changes):
            given = set(POSITION_FIELDS) & set(changes)
            record |= {n: changes.get(n, "") for n in POSITION_FIELDS if n not in given}
        if "opening_hours" in changes and "schedules" not in changes:
            record["schedules"] = ""
        projects, _ = validate(record, before, directory)
        upkeep = {n: before[n] for n in ("checked_by", "retired_at", "retired_reason")}
        after = store.records(projects)[0] | upkeep | {"created_at": before["created_at"]}
        if after | {"version": before["version"]} == before:
            return before
        return _save(target, before, after, "edit", who, source)


def _upkeep(path, project_id, expected_version, who, action, source, change) -> dict:
    """Apply ``change(before) -> dict of upkeep fields`` to one project, version-checked."""
    who = _who(who)
    with store.editing(path) as target:
        before = _stored_one(target, project_id)
        values = change(before)
        _check_version(target, before, expected_version, {"action": action} | values)
        return _save(target, before, before | values, action, who, source)


def verify_project(
    path: Setting,
    project_id: str,
    who: str,
    expected_version: int | None = None,
    on: dt.date | None = None,
    source: str = "form",
) -> dict:
    """Mark a project checked (``last_checked`` = ``on``, default today; ``checked_by`` = who)."""
    on = on or dt.date.today()
    if on > dt.date.today():
        raise ValueError(f"a check date cannot be in the future ({on.isoformat()})")
    return _upkeep(
        path,
        project_id,
        expected_version,
        who,
        "verify",
        source,
        lambda _: {"last_checked": on.isoformat(), "checked_by": _who(who)},
    )


def retire_project(
    path: Setting,
    project_id: str,
    reason: str,
    who: str,
    expected_version: int | None = None,
    source: str = "form",
) -> dict:
    """Close a project: kept in the store with ``retired_at`` (today) and the reason, hidden
    from the map, coverage and exports; `restore_project` reopens it."""
    reason = ingest.clean_text(pd.Series([str(reason or "")])).iloc[0]
    if not reason:
        raise ValueError("give a reason for retiring the project (e.g. 'closed in March')")

    def change(before):
        if before["retired_at"]:
            raise ValueError(f"{project_id!r} was already retired on {before['retired_at']}")
        return {"retired_at": dt.date.today().isoformat(), "retired_reason": reason}

    return _upkeep(path, project_id, expected_version, who, "retire", source, change)


def restore_project(
    path: Setting,
    project_id: str,
    who: str,
    expected_version: int | None = None,
    source: str = "form",
) -> dict:
    """Reopen a retired project (its retirement stays in the history)."""

    def change(before):
        if not before["retired_at"]:
            raise ValueError(f"{project_id!r} is not retired")
        return {"retired_at": "", "retired_reason": ""}

    return _upkeep(path, project_id, expected_version, who, "restore", source, change)


def read_history(path: Setting = None, project_id: str | None = None) -> pd.DataFrame:
    """History events (`kindred_map.storage.history.COLUMNS`), oldest first; of one project if given
    (`kindred_map.store.read_history`: a store not yet migrated gives its baseline events)."""
    return store.read_history(path, project_id)


def undo_import(path: Setting, import_id: int, who: str) -> UndoReport:
    """Revert one import exactly, in one transaction: projects it created are removed, projects
    it changed get back every value they had before it (their version goes on counting).

    A project changed again after the import (an edit, verify, a later import...) is left as it
    is and reported as a conflict: later work is never lost. Each reverted or removed project
    gets an ``undo`` event carrying the import's id; a removed project's event keeps the record
    (``after`` with ``"removed": true``, version 0). Undoing twice is refused."""
    who = _who(who)
    import_id = int(import_id)
    report = UndoReport(import_id)
    with store.editing(path) as target:
        if import_id not in set(store.read_imports(target)["import_id"]):
            raise ValueError(f"no import {import_id} in the store's log (kindred-map imports)")
        events = history.import_events(target, import_id)
        undone = [e for e in events if e[2] == "undo"]
        if undone:
            raise ValueError(
                f"import {import_id} was already undone by {undone[0][5]} at {undone[0][6]}"
            )
        if not events:
            raise ValueError(
                f"import {import_id} changed no project, or predates the store's history"
            )
        named = sorted({e[1] for e in events})
        current = {r["id"]: r for r in store.records(store.stored_projects(target, named))}
        latest = history.latest_events(target, named)  # read after the rows are held
        at, source = _now(), f"undo of import {import_id}"
        writes, deletes, new_events = [], [], []
        for event_id, project_id, _, before, _, _, _ in events:
            last = latest[project_id]
            if last[0] != event_id or project_id not in current:
                report.conflicts.append(
                    f"{project_id}: changed by {last[1] or 'an import'} at {last[2]} ({last[3]})"
                )
                continue
            now = current[project_id]
            if before is None:
                deletes.append(project_id)
                report.removed.append(project_id)
                gone = now | {"removed": True, "version": 0}
                new_events.append(_event("undo", now, gone, who, source, at, import_id))
                continue
            back = json.loads(before) | {"version": now["version"] + 1}
            writes.append(back)
            report.reverted.append(project_id)
            new_events.append(_event("undo", now, back, who, source, at, import_id))
        if new_events:
            store.write_changes(target, store.from_records(writes), new_events, deletes, at)
    return report
