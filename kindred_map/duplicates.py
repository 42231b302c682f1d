"""Likely duplicates of uploaded rows among stored projects, and the editor's choice for each."""

import io
import secrets
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pandas as pd

from kindred_map import columns
from kindred_map.schema import RECORD_FIELDS

NEAR_M = 50.0
"""Two projects this close (metres, EPSG:27700) with similar names are likely one project."""
SIMILAR = 0.8
"""Name similarity (difflib ratio of lower-case letters and digits, 0-1) counted as similar;
a name contained in the other counts too ("St Mary's pantry" / "St Mary's")."""
CHOICES = ("merge", "keep both", "skip")
"""merge: the row updates the stored project (takes its id); keep both: stored as a new
project; skip: the row is not imported (reported as rejected by the editor)."""
TEMPLATE_FIELDS = tuple(
    name for name in RECORD_FIELDS if name not in ("easting", "northing", "schedules")
)
"""The columns of the upload template: what a partner fills in (grid references and
structured hours are optional extras the import also reads)."""
MATCH_COLUMNS = ["row", "id", "name", "postcode", "stored_id", "stored_name", "why", "similarity"]


def _key(names: pd.Series) -> np.ndarray:
    return names.astype(str).str.casefold().str.replace(r"[^a-z0-9]+", "", regex=True).to_numpy()


def similarity(a: str, b: str) -> float:
    """How alike two name keys are (1.0 when one contains the other)."""
    if not a or not b:
        return 0.0
    if a in b or b in a:
        return 1.0
    return SequenceMatcher(None, a, b).ratio()


def likely_duplicates(incoming: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """Pairs (incoming row, stored project) with similar names and the same postcode or within
    NEAR_M: MATCH_COLUMNS, one line per pair, best match first within each row.

    ``incoming`` are placed projects (``id``, ``name``, ``postcode``, ``easting``, ``northing``
    and the file's ``_row`` or ``row``); a stored project with the row's own id is the row's
    update, not a duplicate."""
    if incoming.empty or stored.empty:
        return pd.DataFrame(columns=MATCH_COLUMNS)
    rows = incoming["_row"] if "_row" in incoming else incoming.get("row", incoming.index)
    stored_keys, new_keys = _key(stored["name"]), _key(incoming["name"])
    sx, sy = stored["easting"].to_numpy(float), stored["northing"].to_numpy(float)
    found = []
    for i, (x, y) in enumerate(incoming[["easting", "northing"]].to_numpy(float)):
        apart = np.hypot(sx - x, sy - y)
        same_pc = stored["postcode"].to_numpy() == incoming["postcode"].iloc[i]
        same_pc &= incoming["postcode"].iloc[i] != ""
        near = np.nan_to_num(apart, nan=np.inf) <= NEAR_M
        for j in np.flatnonzero(same_pc | near):
            if stored["id"].iloc[j] == incoming["id"].iloc[i]:
                continue
            score = similarity(new_keys[i], stored_keys[j])
            if score < SIMILAR:
                continue
            why = "same postcode" if same_pc[j] else f"{apart[j]:.0f} m apart"
            found.append(
                [
                    rows.iloc[i],
                    incoming["id"].iloc[i],
                    incoming["name"].iloc[i],
                    incoming["postcode"].iloc[i],
                    stored["id"].iloc[j],
                    stored["name"].iloc[j],
                    why,
                    round(score, 2),
                ]
            )
    matches = pd.DataFrame(found, columns=MATCH_COLUMNS)
    return matches.sort_values(["row", "similarity"], ascending=[True, False], kind="stable")


def find_in_file(
    path: Path, target: Path, mapping: dict | None = None, source: str | None = None
) -> pd.DataFrame:
    """`likely_duplicates` of a file's rows, with the ids an import into ``target`` would
    give them (retired projects count: a closed project sent again is worth a look)."""
    from kindred_map import ingest, join, store

    secret = store.read_secret(target) or secrets.token_bytes(32)
    namespace = ingest.id_namespace(source if source else Path(path).stem)
    projects, _ = join.prepare_file(Path(path), mapping, None, secret=secret, namespace=namespace)
    return likely_duplicates(projects, store.read_projects(target, include_retired=True))


def template_csv() -> bytes:
    """The upload template as CSV: a header row of the import columns (UTF-8 with BOM)."""
    return ("\ufeff" + ",".join(TEMPLATE_FIELDS) + "\r\n").encode("utf-8")


def template_xlsx() -> bytes:
    """The upload template as XLSX: sheet ``projects`` (the header row) and sheet ``about``
    describing each column (from `kindred_map.columns`)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "projects"
    sheet.append(list(TEMPLATE_FIELDS))
    about = book.create_sheet("about")
    about.append(["column", "format", "meaning"])
    for name in TEMPLATE_FIELDS:
        column = columns.PROJECT_COLUMNS.get(name)
        about.append([name, column.unit if column else "", column.description if column else ""])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def apply_choices(
    projects: pd.DataFrame, choices: dict | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The editor's choices for likely duplicates, by file row: ``{row: ("merge", stored_id)}``
    gives the row the stored project's id (the import updates it), ``("skip", stored_id)``
    leaves the row out, reported as rejected; ``keep both`` (or no choice) changes nothing.

    ``projects`` carry the file's ``_row``; returns the projects and the report lines."""
    from kindred_map.report import issues_for

    choices = {int(row): tuple(choice) for row, choice in (choices or {}).items()}
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
    if kept["id"].duplicated().any():
        twice = sorted(set(kept.loc[kept["id"].duplicated(), "id"]))
        raise ValueError(f"two rows would be merged into the same project {twice}: skip one")
    return kept, issues
