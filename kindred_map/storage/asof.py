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


def records_as_of(events: pd.DataFrame, when, include_retired: bool = False) -> list[dict]:
    """The records of the projects open at ``when`` (and retired by then, with
    ``include_retired``), from history events (contract columns event_id, project_id, at,
    after), in project id order. Removed projects (an undone import) are never included."""
    return records_at(events, [when], include_retired)[0]


def records_at(events: pd.DataFrame, whens, include_retired: bool = False) -> list[list[dict]]:
    """`records_as_of` at each of ``whens``, the history read once (`_open_at`)."""
    parsed, chosen = _open_at(events, whens, include_retired)
    return [[parsed[number] for number in numbers] for numbers in chosen]


def _open_at(events: pd.DataFrame, whens, include_retired: bool):
    """The records parsed (by event id) and, per date, the event ids of the projects open
    then in project id order: the events' times parsed and sorted once, and each record's
    JSON parsed once however many of the dates it is open at."""
    if not len(events):
        return {}, [[] for _ in whens]
    times = event_times(events).dt.tz_convert(None).to_numpy()
    order = np.argsort(events["event_id"].to_numpy(), kind="stable")
    ordered = events.iloc[order]
    times = times[order]
    parsed: dict[int, dict] = {}
    chosen = []
    for when in whens:
        limit = cutoff(when).tz_convert(None).to_datetime64()
        seen = ordered[times <= limit]
        last = seen.drop_duplicates("project_id", keep="last").sort_values("project_id")
        numbers = []
        for number, text in zip(last["event_id"].tolist(), last["after"], strict=True):
            if number not in parsed:
                parsed[number] = json.loads(text)
            record = parsed[number]
            retired = bool(str(record.get("retired_at") or "").strip())
            if not (record.get("removed") or (retired and not include_retired)):
                numbers.append(number)
        chosen.append(numbers)
    return parsed, chosen


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
    """`projects_at` each of ``whens`` from one reading of the history: every record open at
    any of the dates typed once (`_open_at`), each date's projects taken from them.

    ``fields``: only these store columns (with id, lon and lat, `records.checked_fields`),
    each typed exactly as in the full replay: for a reader that uses a few of them (the change
    analysis types ~11 of the 37 fields of ~11,000 records at 13,000 projects). None: all."""
    parsed, chosen = _open_at(events, whens, include_retired)
    numbers = sorted({number for some in chosen for number in some})
    typed = records.from_records([parsed[number] for number in numbers], fields)
    typed.index = pd.Index(numbers, dtype="int64")
    return [
        typed.loc[pd.Index(some, dtype="int64")]
        .sort_values("id", kind="stable")
        .reset_index(drop=True)
        for some in chosen
    ]


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
