"""Change between two dates per ward, deanery and borough: projects opened and closed, reach, gaps.

The projects open at each date come from the store's history (`store.read_projects(path,
as_of=...)`); both dates are assessed on the same population surface (Census 2021 residents
at their postcodes, `kindred_map.coverage`), so every difference is the projects' doing, not
the population's. Per area:

- projects of the chosen types open at each date (counted in the area their record names at
  that date), ``opened_<type>`` (open at ``to``, not at ``from``, counted where it is at
  ``to``), ``closed_<type>`` (open at ``from``, not at ``to``: retired or removed, counted
  where it was), and ``moved_in``/``moved_out`` (open at both dates, in another area);
- residents within reach at each date and the change; ``newly_reached`` (residents of
  postcodes within reach at ``to`` and not at ``from``) and ``newly_beyond_reach`` (the
  reverse), so newly_reached - newly_beyond_reach = reached_change exactly, per area; the same
  for residents of IMD 2025 deciles 1-2;
- gap score at each date and its change (whole need-weighted people; the table is ordered by
  it: where the gap grew most first), and the gap rank at each date (rank 1 = biggest gap);
  ``gap_rank_change`` = rank then - rank now: positive when the area moved up the list of
  gaps (relatively worse), negative when it moved down.

The store's history starts on the day of its first event (`kindred_map.storage.asof.history_start`):
what it held then (a baseline, or a first import) was there already, not opened; before that
day the store is unknown. A from-date before it is moved to it, with a note (`known_dates`).
Rankings (`ranked`, `summary_text`) name only the areas that moved in the ranked direction.
"""

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import boundaries, coverage, export, store
from kindred_map.schema import resolve_types
from kindred_map.storage import asof

LEVELS = coverage.AREA_LEVELS
PLURALS = {"ward": "wards", "deanery": "deaneries", "borough": "boroughs"}
FIELDS = (
    "id",
    "type",
    "lon",
    "lat",
    "location_precision",
    "synthetic",
    "in_region",
    *(coverage.LEVELS[level][0] for level in LEVELS),
)
"""The store fields the change reads of each project (the replay types only these,
`asof.projects_at_dates`): id and type; the point; what `coverage.assess` and its public
projection (`kindred_map.privacy.public_records`: a home-run project at its ward's centre)
read: precision, synthetic, in_region and the ward code; the area codes projects are counted
in. Opening hours are not among them: the change does not ask what is open when."""


def parse_date(text: "str | dt.date | None", today: dt.date | None = None) -> dt.date:
    """A date from ``YYYY-MM-DD``, ``today`` or a date; a ValueError naming the bad text."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    value = str(text or "").strip().lower()
    if value == "today":
        return today or dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"not a date: {text!r} (give YYYY-MM-DD or 'today')") from error


def _counts(projects: gpd.GeoDataFrame, code: str) -> dict[str, np.ndarray]:
    """Per project: id, type and the area code the record names (text)."""
    area = boundaries.code_texts(projects[code]) if code in projects.columns else None
    return {
        "id": projects["id"].astype(str).to_numpy(dtype=object),
        "type": projects["type"].astype(str).to_numpy(dtype=object),
        "area": np.full(len(projects), "", dtype=object)
        if area is None
        else area.to_numpy(dtype=object),
    }


def _project_changes(
    before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, code: str, types: tuple[str, ...]
) -> pd.DataFrame:
    """Per area code: projects at each date, opened/closed by type, moved in and out."""
    then, now = _counts(before, code), _counts(after, code)
    areas, where = np.unique(np.concatenate([then["area"], now["area"]]), return_inverse=True)
    at_then, at_now = where[: len(then["id"])], where[len(then["id"]) :]
    match = pd.Index(then["id"], dtype=object).get_indexer(now["id"])  # -1: not open then
    found = match >= 0
    moved = np.zeros(len(match), dtype=bool)
    moved[found] = at_then[match[found]] != at_now[found]
    closed = np.ones(len(at_then), dtype=bool)
    closed[match[found]] = False
    opened = ~found

    def count(area: np.ndarray) -> np.ndarray:
        return np.bincount(area, minlength=len(areas))

    parts = {
        "projects_from": count(at_then),
        "projects_to": count(at_now),
        "moved_in": count(at_now[moved]),
        "moved_out": count(at_then[match[moved]]),
    }
    for kind in types:
        parts[f"opened_{kind}"] = count(at_now[opened & (now["type"] == kind)])
        parts[f"closed_{kind}"] = count(at_then[closed & (then["type"] == kind)])
    parts["opened"] = count(at_now[opened])
    parts["closed"] = count(at_then[closed])
    return pd.DataFrame(parts, index=pd.Index(areas, name="_code")).astype("int64")


def change_by_area(
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    level: str,
    types=None,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    population: pd.DataFrame | None = None,
    include_synthetic: bool = False,
) -> pd.DataFrame:
    """The change per area between two sets of open projects (``before`` at the earlier date,
    ``after`` at the later), see the module docstring. Synthetic records count only with
    ``include_synthetic``."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    types = resolve_types(types)
    kept = [export.real_projects(p, include_synthetic, FIELDS) for p in (before, after)]
    kept = [p[p["type"].astype(str).isin(types).to_numpy()] for p in kept]
    results = [
        coverage.assess(p, types, distance_m, population, include_synthetic=include_synthetic)
        for p in kept
    ]
    code, name = coverage.LEVELS[level]
    gaps = [result.gaps(level, median=False).set_index(code) for result in results]
    then, now = gaps
    table = now[[name, "population"]].copy()
    for label, frame in (("from", then), ("to", now)):
        for column in ("reached", "pct_covered", "gap_score", "gap_rank"):
            table[f"{column}_{label}"] = frame[column].reindex(table.index)
    for label in ("from", "to"):  # whole people and tenths of a percent: no false precision
        table[f"pct_covered_{label}"] = table[f"pct_covered_{label}"].round(1)
        table[f"gap_score_{label}"] = table[f"gap_score_{label}"].round(0)
    table["reached_change"] = table["reached_to"] - table["reached_from"]
    table["pct_covered_change"] = (table["pct_covered_to"] - table["pct_covered_from"]).round(1)
    table["gap_score_change"] = table["gap_score_to"] - table["gap_score_from"]
    table["gap_rank_change"] = table["gap_rank_from"] - table["gap_rank_to"]
    newly = _newly(results, level)
    table = table.join(newly, how="left")
    flows = newly.columns
    table[flows] = table[flows].fillna(0).astype("int64")
    changes = _project_changes(kept[0], kept[1], code, types)
    keys = table.index.map(boundaries.code_text)
    changes = changes.reindex(keys).fillna(0).astype("int64")
    changes.index = table.index
    table = table.join(changes)
    table = table.reset_index()
    table.attrs = {"distance_m": float(distance_m), "types": list(types)}
    table.attrs["synthetic_projects"] = sum(r.synthetic for r in results)
    ranked = table.sort_values(
        ["gap_score_change", "newly_beyond_reach_deciles_1_2", code],
        ascending=[False, False, True],
        kind="stable",
    ).reset_index(drop=True)
    ranked.attrs = dict(table.attrs)
    return ranked


def history_start(path, include_synthetic: bool = False) -> "asof.HistoryStart | None":
    """When the history of the store at ``path`` starts (`kindred_map.storage.asof`)."""
    return asof.history_start(store.read_history(path, columns=asof.COLUMNS), include_synthetic)


def known_dates(
    begins: "asof.HistoryStart | None", start: dt.date, end: dt.date
) -> tuple[dt.date, dt.date, str]:
    """``start`` and ``end`` moved to the history's first day when before it, and a note saying
    so ("" when nothing moved): the store before its history is unknown, so a figure from
    then would count what the history starts with (a baseline) as opened."""
    if begins is None or start >= begins.on:
        return start, end, ""
    moved = f"{start} is before"
    if end < begins.on:
        moved = f"{start} and {end} are before"
    note = (
        f"{moved} the store's history starts ({begins.on}): the store before then is "
        f"unknown, so the change is counted from {begins.on}."
    )
    return begins.on, max(end, begins.on), note


def projects_then(
    path, when, include_synthetic: bool = False, today: dt.date | None = None
) -> tuple[gpd.GeoDataFrame, dt.date, str]:
    """The projects open at the end of ``when`` (moved to the history's first day when before
    it, as `change_between` does), with the fields a coverage of them reads (FIELDS), real ones
    only unless ``include_synthetic``; the date used and the note of the move ("" when none).
    One reading of the history (`kindred-map need --reach-from`: coverage on that date)."""
    day = parse_date(when, today)
    events = store.read_history(path, columns=asof.COLUMNS)
    begins = asof.history_start(events, include_synthetic)
    day, _, note = known_dates(begins, day, max(day, today or dt.date.today()))
    projects = asof.projects_at(events, day, fields=FIELDS)
    return export.real_projects(projects, include_synthetic, FIELDS), day, note


def change_between(
    path,
    date_from,
    date_to,
    level: str,
    types=None,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    include_synthetic: bool = False,
    today: dt.date | None = None,
) -> gpd.GeoDataFrame:
    """The change per area between two dates of the store at ``path`` (projects as of each
    date from its history), with ``date_from``/``date_to`` columns and the area polygons
    (EPSG:4326). ``date_from`` must not be after ``date_to``; dates before the history starts
    are moved to its first day (`known_dates`). ``attrs``: ``dates``, ``history`` (when the
    history starts and what it holds, `HistoryStart.text`) and ``note`` (the move, or "")."""
    start, end = parse_date(date_from, today), parse_date(date_to, today)
    if start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    events = store.read_history(path, columns=asof.COLUMNS)
    begins = asof.history_start(events, include_synthetic)
    start, end, note = known_dates(begins, start, end)
    before, after = asof.projects_at_dates(events, [start, end], fields=FIELDS)
    table = change_by_area(before, after, level, types, distance_m, None, include_synthetic)
    table.insert(2, "date_from", start.isoformat())
    table.insert(3, "date_to", end.isoformat())
    layer = coverage.area_layer(export.typed_table(table, f"change_{level}"), level)
    history = begins.text() if begins else "The store has no history yet: no project is stored."
    layer.attrs |= {"dates": f"{start} to {end}", "history": history, "note": note}
    return layer


def timeline(
    path,
    level: str,
    area: str,
    date_from,
    date_to,
    types=None,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    steps: int = 12,
    include_synthetic: bool = False,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """One area over time: at ``steps`` evenly spaced dates from ``date_from`` (moved to the
    history's first day when before it, as `change_between` does) to ``date_to`` (both
    included), its open projects of the types, residents within reach, % covered and
    residents of IMD deciles 1-2 within reach (the small "over time" chart)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if not 2 <= steps <= 60:
        raise ValueError(f"steps must be 2 to 60, got {steps}")
    start, end = parse_date(date_from, today), parse_date(date_to, today)
    if start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    events = store.read_history(path, columns=asof.COLUMNS)
    start, end, _ = known_dates(asof.history_start(events, include_synthetic), start, end)
    code = coverage.LEVELS[level][0]
    wanted = boundaries.code_text(area)
    span = (end - start).days
    days = sorted({start + dt.timedelta(days=round(span * i / (steps - 1))) for i in range(steps)})
    types = resolve_types(types)
    rows = []
    replayed = asof.projects_at_dates(events, days, fields=FIELDS)
    for day, then in zip(days, replayed, strict=True):
        projects = export.real_projects(then, include_synthetic, FIELDS)
        chosen = projects[projects["type"].astype(str).isin(types).to_numpy()]
        result = coverage.assess(chosen, types, distance_m, include_synthetic=include_synthetic)
        table = result.by_area(level, median=False)
        row = table[table[code].map(boundaries.code_text) == wanted]
        if row.empty:
            raise ValueError(f"no {level} with code {area!r}")
        row = row.iloc[0]
        inside = chosen[code].map(boundaries.code_text) == wanted
        covered_deprived = row["residents_deciles_1_2"] - row["beyond_reach_deciles_1_2"]
        rows.append(
            {
                "date": day.isoformat(),
                "projects": int(inside.sum()),
                "reached": int(row["reached"]),
                "pct_covered": float(row["pct_covered"]),
                "reached_deciles_1_2": int(covered_deprived),
            }
        )
    return pd.DataFrame(rows)


DIRECTIONS = {"grew": "where the gap grew most", "shrank": "where the gap shrank most"}
"""Ranking direction -> its heading: areas whose gap score rose, or fell."""


def ranked(table: pd.DataFrame, direction: str = "grew") -> pd.DataFrame:
    """The areas whose gap score moved in ``direction`` (one of DIRECTIONS), most first; an
    area whose gap did not move that way is not ranked (an empty table: none did). Ties: more
    residents of IMD deciles 1-2 newly beyond reach (grew) or newly reached (shrank) first."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
    grew = direction == "grew"
    change = pd.to_numeric(table["gap_score_change"], errors="coerce")
    moved = table.assign(_change=change)[(change > 0) if grew else (change < 0)]
    deprived = "newly_beyond_reach_deciles_1_2" if grew else "newly_reached_deciles_1_2"
    order = moved.sort_values(["_change", deprived], ascending=[not grew, False], kind="stable")
    return order.drop(columns="_change")


def unchanged(table: pd.DataFrame) -> bool:
    """True when no area changed between the dates: no project opened, closed or moved, and
    no resident came within or went beyond reach."""
    moving = ["opened", "closed", "moved_in", "moved_out", "newly_reached", "newly_beyond_reach"]
    return not table[moving].to_numpy().any()


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def totals_text(table: pd.DataFrame, level: str) -> str:
    """One line: the dates, projects opened and closed, residents newly within and beyond reach
    (all, and in IMD deciles 1-2), and how many areas of the level there are."""
    dates = f"{table['date_from'].iloc[0]} to {table['date_to'].iloc[0]}" if len(table) else ""
    totals = table[["opened", "closed", "newly_reached", "newly_beyond_reach"]].sum()
    deprived = table[["newly_reached_deciles_1_2", "newly_beyond_reach_deciles_1_2"]].sum()
    return (
        f"{dates}: {_plural(int(totals['opened']), 'project')} opened, "
        f"{int(totals['closed']):,} closed; {int(totals['newly_reached']):,} residents newly "
        f"within reach, {int(totals['newly_beyond_reach']):,} newly beyond reach (IMD deciles "
        f"1-2: {int(deprived.iloc[0]):,} and {int(deprived.iloc[1]):,}); "
        f"{len(table):,} {PLURALS[level]} compared"
    )


def area_text(row: dict, level: str) -> str:
    """One area's change on one line, numbers formatted: gap score and rank, share within reach
    (percentage points), residents within reach."""
    code, name = coverage.LEVELS[level]
    return (
        f"{row[name]} ({row[code]}): gap score {row['gap_score_change']:+,.0f} "
        f"({row['gap_score_from']:,.0f} -> {row['gap_score_to']:,.0f} need-weighted people), "
        f"gap rank {row['gap_rank_from']:,.0f} -> {row['gap_rank_to']:,.0f}; within reach "
        f"{row['pct_covered_from']:.1f}% -> {row['pct_covered_to']:.1f}% "
        f"({row['pct_covered_change']:+.1f} points, {row['reached_change']:+,.0f} residents)"
    )


def summary_text(table: pd.DataFrame, level: str, top: int = 10) -> str:
    """Printable lines: the totals, then up to ``top`` areas where the gap grew most and where
    it shrank most, each naming only areas that moved that way (else saying none did)."""
    lines = [totals_text(table, level)]
    if top <= 0:
        return lines[0]
    for direction, heading in DIRECTIONS.items():
        moved = ranked(table, direction)
        if moved.empty:
            lines.append(f"{heading.capitalize()}: none, no {level}'s gap {direction}")
            continue
        shown = f"{min(top, len(moved)):,} of the {len(moved):,} whose gap {direction}"
        lines.append(f"{heading.capitalize()} ({shown}):")
        lines += [f"  {area_text(row, level)}" for row in moved.head(top).to_dict("records")]
    return "\n".join(lines)


def _newly(results: list, level: str) -> pd.DataFrame:
    """Residents of postcodes newly within reach and newly beyond it, all and in deciles 1-2,
    per area of ``level`` (indexed by its code)."""
    then, now = results
    residents = now.points["residents"].to_numpy()
    reached_then = then.points["nearest_m"].to_numpy() <= then.distance_m
    reached_now = now.points["nearest_m"].to_numpy() <= now.distance_m
    deprived = now.points["imd_decile"].isin(coverage.DEPRIVED_DECILES).fillna(False).to_numpy()
    gained = reached_now & ~reached_then
    lost = reached_then & ~reached_now
    areas = now.areas_of(level)
    group, keys = areas.group, areas.keys
    inside = group >= 0

    def total(mask: np.ndarray) -> np.ndarray:
        people = np.where(mask, residents, 0)[inside]
        return np.bincount(group[inside], weights=people, minlength=len(keys)).astype("int64")

    code = coverage.LEVELS[level][0]
    return pd.DataFrame(
        {
            "newly_reached": total(gained),
            "newly_beyond_reach": total(lost),
            "newly_reached_deciles_1_2": total(gained & deprived),
            "newly_beyond_reach_deciles_1_2": total(lost & deprived),
        },
        index=pd.Index(keys[code].array, name=code),
    )
