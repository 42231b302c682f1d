"""The store as it was on a past date, replayed from its history (`kindred_map.storage.history`).

Rules (issue 13, on the history contract of issue 12):

- A date means the end of that day in UTC: ``as_of=2025-06-30`` sees every event stamped
  ``2025-06-30T23:59:59+00:00`` or earlier. A full ISO time (with or without zone; none = UTC)
  is taken as given.
- Each project is its record in the ``after`` of its last event at or before then (events in
  ``event_id`` order); a project with no event by then did not exist yet. Imports from before
  history existed count from the ``baseline`` event the migration dates at the store's first
  import.
- A project is open then unless that record is retired (``retired_at`` set) or was removed
  (``"removed": true``, an undone import). Retirement counts from the retire event, not from a
  ``retired_at`` typed into the record.
- Records keep the values they had then, position included: an edit of position moves the
  project from the edit's time on.
- The history starts on the date of its first event (`history_start`): what the store held at
  the end of that day was there already (a ``baseline`` of projects stored before history
  existed, or a first import), not opened then; before that day the store is unknown.
"""

import datetime as dt
import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map.storage import records


def cutoff(when: "str | dt.date | dt.datetime") -> pd.Timestamp:
    """The last instant (UTC) that ``when`` covers: the end of a date, or the time given."""
    if isinstance(when, dt.datetime):
        stamp = pd.Timestamp(when)
    elif isinstance(when, dt.date):
        return pd.Timestamp(when, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    else:
        text = str(when).strip()
        if text.lower() == "today":
            return cutoff(dt.datetime.now(dt.UTC).date())
        try:
            if len(text) == 10:
                return cutoff(dt.date.fromisoformat(text))
            stamp = pd.Timestamp(text)
        except ValueError as error:
            raise ValueError(
                f"not a date or time: {when!r} (give YYYY-MM-DD, an ISO time or 'today')"
            ) from error
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def event_times(events: pd.DataFrame) -> pd.Series:
    """The events' ``at`` as UTC timestamps; a ValueError names an unreadable one."""
    times = pd.to_datetime(events["at"], utc=True, errors="coerce", format="ISO8601")
    if times.isna().any():
        bad = events.loc[times.isna(), ["event_id", "at"]].iloc[0].tolist()
        raise ValueError(f"history event {bad[0]} has an unreadable time {bad[1]!r}")
    return times


COLUMNS = ("event_id", "project_id", "at", "action", "after")
"""The history columns a replay reads (each project's last event by a date and its record;
`history_start`: the first time and the baselines): a reader that only replays reads these
(`kindred_map.store.read_history`'s ``columns``), ~35% cheaper than every column."""


def records_as_of(events: pd.DataFrame, when, include_retired: bool = False) -> list[dict]:
    """The records of the projects open at ``when`` (and retired by then, with
    ``include_retired``), from history events (contract columns event_id, project_id, at,
    after), in project id order. Removed projects (an undone import) are never included."""
    return records_at(events, [when], include_retired)[0]


def records_at(events: pd.DataFrame, whens, include_retired: bool = False) -> list[list[dict]]:
    """`records_as_of` at each of ``whens``, the history read once (`_last_at`) and each
    record's JSON parsed once however many of the dates it is open at."""
    texts = events["after"].to_numpy(dtype=object) if len(events) else None
    parsed: dict[int, dict] = {}
    out = []
    for rows in _last_at(events, whens):
        chosen = []
        for row in rows.tolist():
            if row not in parsed:
                parsed[row] = json.loads(texts[row])
            record = parsed[row]
            if _is_open(record.get("retired_at"), record.get("removed"), include_retired):
                chosen.append(record)
        out.append(chosen)
    return out


def _is_open(retired_at, removed, include_retired: bool) -> bool:
    """Whether a record is open: not removed, and not retired unless retired ones count."""
    retired = bool(str(retired_at or "").strip())
    return not (removed or (retired and not include_retired))


def _last_at(events: pd.DataFrame, whens) -> list[np.ndarray]:
    """Per date, the rows (positions in ``events``) of each project's last event at or before
    it (events in ``event_id`` order), in project id order: the times parsed and the events
    ordered once, then numpy per date (no per-event Python)."""
    if not len(events):
        return [np.empty(0, dtype=np.int64) for _ in whens]
    order = np.argsort(events["event_id"].to_numpy(), kind="stable")
    times = event_times(events).dt.tz_convert(None).to_numpy()[order]
    ids = events["project_id"].to_numpy(dtype=object)[order]
    projects, _ = pd.factorize(ids, sort=True, use_na_sentinel=False)  # numbered in id order
    out = []
    for when in whens:
        limit = cutoff(when).tz_convert(None).to_datetime64()
        seen = np.flatnonzero(times <= limit)[::-1]  # latest first
        _, last = np.unique(projects[seen], return_index=True)  # each project's latest
        out.append(order[seen[last]])
    return out


def projects_at(
    events: pd.DataFrame, when, include_retired: bool = False, fields=None
) -> gpd.GeoDataFrame:
    """The projects open at ``when`` from history events (`records_as_of`), as
    `store.read_projects` gives them: store columns (only ``fields``, see
    `projects_at_dates`), points in EPSG:4326, sorted by id."""
    return projects_at_dates(events, [when], include_retired, fields)[0]


def projects_at_dates(
    events: pd.DataFrame, whens, include_retired: bool = False, fields=None
) -> list[gpd.GeoDataFrame]:
    """`projects_at` each of ``whens`` from one reading of the history: the records of each
    project's last event by any of the dates parsed and typed once, in one pass
    (`records.json_table`, else ``json.loads`` of each: the same frame), each date's open
    projects taken from them.

    ``fields``: only these store columns (with id, lon and lat, `records.checked_fields`),
    each typed exactly as in the full replay: for a reader that uses a few of them (the change
    analysis types ~11 of the 37 fields of ~11,000 records at 13,000 projects). None: all."""
    lasts = _last_at(events, whens)
    rows = np.unique(np.concatenate([np.empty(0, dtype=np.int64), *lasts]))
    texts = events["after"].to_numpy(dtype=object)[rows].tolist() if len(rows) else []
    names = records.STORE_FIELDS if fields is None else records.checked_fields(fields)
    kinds = {name: records.field_kind(name) for name in names}
    table = records.json_table(texts, kinds | {"retired_at": "text", "removed": "bool"})
    if table is None:
        parsed = [json.loads(text) for text in texts]
        status = [(r.get("retired_at"), r.get("removed")) for r in parsed]
        typed = records.from_records(parsed, fields)
    else:
        status = zip(table["retired_at"].to_pylist(), table["removed"].to_pylist(), strict=True)
        typed = records.from_table(table, fields)
    is_open = np.array([_is_open(*pair, include_retired) for pair in status], dtype=bool)
    out = []
    for last in lasts:
        at = np.searchsorted(rows, last)
        frame = typed.iloc[at[is_open[at]]] if len(at) else typed.iloc[:0]
        out.append(frame.sort_values("id", kind="stable").reset_index(drop=True))
    return out


@dataclass(frozen=True)
class HistoryStart:
    """When a store's history starts: ``on`` the (UTC) date of its first event; ``baseline``
    the projects whose history is a ``baseline`` event (stored before history existed: when
    they opened is not known); ``changes`` the events other than baselines."""

    on: dt.date
    baseline: int
    changes: int

    def text(self) -> str:
        """One sentence for people: when the history starts and what it holds."""
        day = f"{self.on.day} {self.on:%b %Y}"
        if not self.baseline:
            return f"The store's history starts on {day}, with its first recorded event."
        since = (
            "nothing has been recorded since"
            if not self.changes
            else f"{self.changes:,} change{'s' * (self.changes != 1)} recorded since"
        )
        return (
            f"The store's history starts on {day} with a baseline: the {self.baseline:,} "
            "projects stored when the history began, whose opening dates are not known; "
            f"{since}."
        )


def history_start(events: pd.DataFrame, include_synthetic: bool = False) -> HistoryStart | None:
    """When the history of these events (contract columns) starts; None when there are none.
    Baseline projects are counted as the figures count them: illustrative (synthetic) ones
    only with ``include_synthetic``."""
    if not len(events):
        return None
    first = event_times(events).min()
    baseline = events["action"].eq("baseline").to_numpy()
    records = [json.loads(text) for text in events.loc[baseline, "after"]]
    counted = {r["id"] for r in records if include_synthetic or not r.get("synthetic")}
    return HistoryStart(first.date(), len(counted), int((~baseline).sum()))
