"""What an import writes, decided without I/O: the editor's duplicate choices, collisions,
sticky privacy, upkeep carried from stored records, versions, events and counts.

`kindred_map.store` reads the stored records an import names (under its lock or in its
transaction), hands them here, and writes what comes back: both engines decide alike."""

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import ingest, privacy
from kindred_map.report import ImportReport, build_report, empty_issues, issues_for
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS
from kindred_map.storage import history, records

CHOICES = ("merge", "keep both", "skip")
"""merge: the row updates the stored project (takes its id); keep both: stored as a new
project; skip: the row is not imported (reported as rejected by the editor)."""


def name_key(names: pd.Series) -> np.ndarray:
    """Names as compared: lower case (casefolded), letters and digits only."""
    return names.astype(str).str.casefold().str.replace(r"[^a-z0-9]+", "", regex=True).to_numpy()


PLACE_FIELDS = ("lat", "lon", "easting", "northing", "location_precision", *JOINED_FIELDS)
"""A project's position and what follows from it: kept from the stored project on a merge
unless the row gives another postcode (`fill_merged`)."""


def fill_merged(
    projects: gpd.GeoDataFrame, stored: pd.DataFrame, choices: dict | None
) -> gpd.GeoDataFrame:
    """Rows the editor merges into a stored project (`apply_choices` gave them its id) fill it
    in and never blank it: a field the row left blank (not in its ``_given``) keeps the stored
    value, and the stored position, with its areas and precision, is kept unless the row gives
    another postcode (a partner's postcode-only row does not move a project placed at its
    door to the postcode's centre). The row's values win where it gives them."""
    rows = merged_rows(choices, projects["_row"])
    if not rows:
        return projects
    merging = projects["_row"].astype(int).isin(rows) & projects["id"].isin(stored["id"])
    if not merging.any():
        return projects
    projects = projects.copy()
    at = projects.index[merging]
    before = stored.set_index("id").loc[projects.loc[at, "id"]]
    given = projects.loc[at, "_given"]
    for name in RECORD_FIELDS:
        if name in ("id", *PLACE_FIELDS):
            continue
        field = "opening_hours" if name == "schedules" else name  # schedules follow the hours
        blank = ~given.str.contains(rf"(?:^|,){field},", regex=True).to_numpy()
        projects.loc[at[blank], name] = before[name].to_numpy()[blank]
    postcode = projects.loc[at, "postcode"].to_numpy()
    moved = given.str.contains("(?:^|,)postcode,").to_numpy() & (postcode != before["postcode"])
    keep = at[~moved]
    kept = before[~moved]
    for name in PLACE_FIELDS:
        projects.loc[keep, name] = kept[name].to_numpy()
    projects.loc[keep, "postcode"] = kept["postcode"].to_numpy()
    projects.loc[keep, projects.geometry.name] = kept.geometry.to_numpy()
    return projects


def merged_rows(choices: dict | None, rows: pd.Series) -> set[int]:
    """The file rows among ``rows`` the editor's ``choices`` merge into a stored project."""
    merging = {int(row) for row, choice in (choices or {}).items() if tuple(choice)[0] == "merge"}
    if not merging:  # no merge chosen: the file's rows are not read (100,000 of them: 20 ms)
        return set()
    return merging & {int(row) for row in rows}


def apply_choices(
    projects: pd.DataFrame, choices: dict | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The editor's choices for likely duplicates, by file row: ``{row: ("merge", stored_id)}``
    gives the row the stored project's id (the import updates it), ``("skip", stored_id)``
    leaves the row out, reported as rejected; ``keep both`` (or no choice) changes nothing.

    ``projects`` carry the file's ``_row``; returns the projects and the report lines."""
    if not choices:  # nothing chosen: every row kept as it is
        _check_merges(projects)
        return projects, empty_issues()
    choices = {int(row): tuple(choice) for row, choice in choices.items()}
    unknown = {choice[0] for choice in choices.values()} - set(CHOICES)
    if unknown:
        raise ValueError(f"unknown duplicate choice(s) {sorted(unknown)}; choose from {CHOICES}")
    rows = projects["_row"].astype(int)
    decided = rows.map(lambda row: choices.get(row, ("keep both", ""))[0]).astype(str)
    target = rows.map(lambda row: str(choices.get(row, ("", ""))[1])).astype(str)
    projects = projects.copy()
    projects.loc[decided.eq("merge"), "id"] = target[decided.eq("merge")]
    skipped = decided.eq("skip")
    issues = issues_for(
        projects[skipped].rename(columns={"_row": "row"}),
        "name",
        "rejected",
        "skipped by the editor: a likely duplicate of " + target[skipped],
    )
    kept = projects[~skipped]
    _check_merges(kept)
    return kept, issues


def _check_merges(kept: pd.DataFrame) -> None:
    """Refuse two kept rows with one id (two merged into the same stored project)."""
    twice = kept["id"].duplicated()
    if twice.any():
        twice = sorted(set(kept.loc[twice, "id"]))
        raise ValueError(f"two rows would be merged into the same project {twice}: skip one")


DIFFERENT_PLACE_M = 1_000
"""An update naming a different project this far from the stored one is a collision, not an edit."""


def _compared(projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame):
    """The stored records' texts (`kindred_map.storage.records.record_texts`, by id) and per
    project whether it is stored (``known``) and whether its record text differs."""
    if not len(stored):  # nothing stored: every project is new, no text to compare
        count = len(projects)
        return pd.Series(dtype=object), np.zeros(count, bool), np.ones(count, bool)
    old = records.record_texts(stored)
    known = projects["id"].isin(old.index).to_numpy()
    new = records.record_texts(projects[known])  # only stored ones can be unchanged
    changed = ~known
    changed[known] = new.to_numpy() != old.reindex(new.index).to_numpy()
    return old, known, changed


def _counts(known: np.ndarray, changed: np.ndarray) -> dict[str, int]:
    return {
        "new": int((~known).sum()),
        "updated": int((known & changed).sum()),
        "unchanged": int((~changed).sum()),
    }


def count_changes(projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame) -> dict[str, int]:
    """How many of ``projects`` are new, updated or unchanged against the ``stored`` records
    (a record is unchanged when its every stored value is: its record text is the same)."""
    _, known, changed = _compared(projects, stored)
    return _counts(known, changed)


def check_ids(projects: pd.DataFrame) -> None:
    """Refuse records without a unique, non-empty id (nothing is written)."""
    if projects["id"].eq("").any() or projects["id"].duplicated().any():
        raise ValueError("every project needs a unique, non-empty id before it is stored")


def carry_upkeep(projects: gpd.GeoDataFrame, stored: gpd.GeoDataFrame, who: str):
    """What an import keeps of the stored records it updates: version, created_at, retirement
    (an import never reopens a retired project: `restore` does), and a check date the file does
    not give. A file giving a new ``last_checked`` is credited to the importer (``checked_by``)."""
    projects = projects.copy()
    if not len(stored):  # nothing stored to carry: only the check dates are credited
        projects["checked_by"] = np.where(projects["last_checked"].eq(""), "", who)
        return projects
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
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict, dict[str, int]]:
    """Versions and created_at of new and changed rows, one ``import`` event for each (a frame
    of `kindred_map.storage.history.EVENT_FIELDS`), the
    records behind the events' texts (`kindred_map.storage.history.insert`'s ``payloads``)
    and the counts. Made a column at a time: record texts are compared, not per-row dicts."""
    projects = projects.copy()
    old, known, changed = _compared(projects, stored)
    projects.loc[~known, "version"] = 1
    projects.loc[~known, "created_at"] = timestamp
    projects.loc[known & changed, "version"] = projects.loc[known & changed, "version"] + 1
    written = records.conform(projects if changed.all() else projects[changed])
    befores = old.reindex(written["id"].to_numpy()).to_numpy()
    updated = written["id"][known[changed]].to_numpy()
    payloads = {
        "before": records.conform(stored).set_index("id", drop=False).loc[updated],
        "after": written,
    }
    events = pd.DataFrame(
        {
            "project_id": written["id"].tolist(),
            "at": timestamp,
            "who": who,
            "action": "import",
            "source": [s for s, change in zip(sources, changed, strict=True) if change],
            "import_id": None,
            "before": [b if isinstance(b, str) else None for b in befores],
            "after": history.PENDING,
            "version": written["version"].astype("int64").tolist(),
        },
        columns=list(history.EVENT_FIELDS),
        dtype=object,
    )
    return projects, events, payloads, _counts(known, changed)


def batch(
    projects: gpd.GeoDataFrame,
    stored: gpd.GeoDataFrame,
    log_entry: dict | None,
    timestamp: str,
    who: str,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict, dict[str, int], dict | None]:
    """What one batch writes on either backend, given the stored records it names: the records
    (upkeep carried, versions counted), one ``import`` event per new or changed row naming its
    file row (the private ``_row`` column) when known, the counts of new, updated and
    unchanged projects, and the full log entry (None when not logged). Between the events and
    the counts: the records behind the events' texts (`_import_events`), which a GeoPackage
    keeps compactly."""
    rows = projects["_row"] if "_row" in projects else pd.Series("", index=projects.index)
    named = projects["source"].astype(str)
    if log_entry is not None and log_entry.get("file"):
        named = pd.Series(f"file {log_entry['file']}", index=projects.index)
    sources = [
        f"{s} row {r}" if r else s
        for s, r in zip(named.tolist(), rows.astype(str).tolist(), strict=True)
    ]
    projects = carry_upkeep(records.conform(projects), stored, who)
    projects, events, payloads, counts = _import_events(projects, stored, timestamp, who, sources)
    return projects, events, payloads, counts, _full_log_entry(log_entry, counts, timestamp, who)


def _full_log_entry(log_entry: dict | None, counts: dict, timestamp: str, who: str):
    """An import log row: every field (0 or blank when not given), the batch's counts, a time
    and who; its ``import_id`` is drawn when it is written."""
    if log_entry is None:
        return None
    blank = {name: 0 if kind == "int64" else "" for name, kind in records.IMPORT_LOG_FIELDS.items()}
    entry = blank | log_entry | counts | {"import_id": 0}
    entry["imported_at"] = entry["imported_at"] or timestamp
    entry["who"] = entry["who"] or who
    return {
        name: int(entry[name]) if kind == "int64" else str(entry[name])
        for name, kind in records.IMPORT_LOG_FIELDS.items()
    }


def _clearly_different(projects: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """True where two records sharing an id are different projects: names unlike (neither
    contains the other) and positions more than DIFFERENT_PLACE_M apart."""
    new, old = name_key(projects["name"]), name_key(stored["name"])
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
    places = set(zip(name_key(homes["name"]), homes["postcode"], strict=True))
    same_id = projects["_file_id"].ne("") & projects["_file_id"].isin(bare)
    pairs = zip(name_key(projects["name"]), projects["postcode"], strict=True)
    same_place = np.array([pair in places for pair in pairs], bool)
    return same_id.to_numpy() | same_place


def named_ids(projects: pd.DataFrame) -> set[str]:
    """The stored ids an import of these rows (choices applied) may touch: their ids and the
    bare file ids an older store may keep (`reconcile`)."""
    return {*projects["id"].tolist(), *projects["_file_id"].tolist()}


def decide(
    projects: gpd.GeoDataFrame,
    chosen: pd.DataFrame,
    report: ImportReport,
    choices: dict | None,
    stored: gpd.GeoDataFrame,
    homes: pd.DataFrame,
    shown_store: str,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """What an import of prepared rows (`kindred_map.join.prepare_file`) writes, once the
    editor's ``choices`` are applied (`apply_choices`: ``projects`` and its report lines
    ``chosen``): merged rows filled from the stored records they name (`fill_merged`), every
    row reconciled with ``stored`` (the records with `named_ids`) and ``homes`` (`reconcile`),
    home-run names that give an address reported. Returns the records and the full report
    (counts zero until written or planned): an import and its preview both decide here, so
    the preview counts what the import then does."""
    projects = fill_merged(projects, stored, choices)
    projects, issues = reconcile(projects, stored, homes)
    homes = projects[privacy.is_ward_only(projects).to_numpy()]  # only theirs are checked
    issues = [chosen, issues, privacy.address_issues(homes.rename(columns={"_row": "row"}))]
    merged = merged_rows(choices, projects["_row"])
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
    return projects, report


def counted(report: ImportReport, counts: dict) -> ImportReport:
    """The report with the batch's counts and import number."""
    report.new, report.updated, report.unchanged = (
        counts["new"],
        counts["updated"],
        counts["unchanged"],
    )
    report.import_id = counts["import_id"]
    return report
