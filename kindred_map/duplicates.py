"""Likely duplicates of uploaded rows among stored projects, and the editor's choice for each."""

import io
from difflib import SequenceMatcher

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from kindred_map import columns
from kindred_map.schema import RECORD_FIELDS
from kindred_map.storage.reconcile import name_key

NEAR_M = 50.0
"""Two projects this close (metres, EPSG:27700) with similar names are likely one project."""
SIMILAR = 0.8
"""Name similarity (difflib ratio of lower-case letters and digits, 0-1) counted as similar;
a name contained in the other counts too ("St Mary's pantry" / "St Mary's")."""
STRENGTHS = ("strong", "weak")
"""How sure a likely duplicate is (`strength`): a strong one is merged unless the editor says
otherwise (`default_choices`); a weak one waits for the editor's answer."""
FOR_ALL = {
    "merge strong": "Merge every strong match",
    "keep all": "Keep every row as a new project",
    "skip all": "Skip every row that has a likely duplicate",
}
"""The upload page's "apply to all" answers (`choices_for_all`), with their button labels."""
TEMPLATE_FIELDS = tuple(
    name for name in RECORD_FIELDS if name not in ("easting", "northing", "schedules")
)
"""The columns of the upload template: what a partner fills in (grid references and
structured hours are optional extras the import also reads)."""
MATCH_COLUMNS = [
    "row",
    "id",
    "name",
    "postcode",
    "stored_id",
    "stored_name",
    "stored_postcode",
    "stored_retired",
    "distance_m",
    "same_postcode",
    "same_name",
    "similarity",
    "strength",
    "why",
]


def similarity(a: str, b: str) -> float:
    """How alike two name keys are (1.0 when one contains the other)."""
    if not a or not b:
        return 0.0
    if a in b or b in a:
        return 1.0
    return SequenceMatcher(None, a, b).ratio()


def strength(same_name: bool, same_postcode: bool, distance_m: float) -> str:
    """ "strong" when the evidence says one project: the same name once normalised (`name_key`)
    and the same postcode or points within NEAR_M; else "weak" (similar names, or the same name
    farther apart without a shared postcode)."""
    near = bool(np.isfinite(distance_m) and distance_m <= NEAR_M)
    return "strong" if same_name and (same_postcode or near) else "weak"


def _candidate_pairs(incoming: pd.DataFrame, stored: pd.DataFrame) -> np.ndarray:
    """(incoming position, stored position) pairs sharing a postcode or within NEAR_M."""
    pairs = []
    postcodes = pd.DataFrame({"postcode": stored["postcode"].to_numpy(), "j": range(len(stored))})
    given = pd.DataFrame({"postcode": incoming["postcode"].to_numpy(), "i": range(len(incoming))})
    same = given[given["postcode"].ne("")].merge(postcodes, on="postcode")
    pairs.append(same[["i", "j"]].to_numpy())
    sxy = stored[["easting", "northing"]].to_numpy(float)
    ixy = incoming[["easting", "northing"]].to_numpy(float)
    placed_s, placed_i = np.isfinite(sxy).all(axis=1), np.isfinite(ixy).all(axis=1)
    if placed_s.any() and placed_i.any():
        near = cKDTree(sxy[placed_s]).query_ball_point(ixy[placed_i], NEAR_M)
        counts = np.fromiter(map(len, near), int, len(near))
        if counts.sum():
            within = np.concatenate([n for n in near if n]).astype(int)
            pairs.append(
                np.column_stack(
                    [np.repeat(np.flatnonzero(placed_i), counts), np.flatnonzero(placed_s)[within]]
                )
            )
    found = np.concatenate([p.reshape(-1, 2) for p in pairs]).astype(int)
    return np.unique(found, axis=0)


def likely_duplicates(incoming: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """Pairs (incoming row, stored project) with similar names and the same postcode or within
    NEAR_M: MATCH_COLUMNS, one line per pair with the evidence (both names and postcodes, the
    distance in metres, the `strength`), best match first within each row.

    ``incoming`` are placed projects (``id``, ``name``, ``postcode``, ``easting``, ``northing``
    and the file's ``_row`` or ``row``). A row whose own id is stored updates that project (as
    decided when it was first imported): it is not listed."""
    if incoming.empty or stored.empty:
        return pd.DataFrame(columns=MATCH_COLUMNS)
    rows = incoming["_row"] if "_row" in incoming else incoming.get("row", incoming.index)
    own = incoming["id"].isin(set(stored["id"])).to_numpy()
    stored_keys, new_keys = name_key(stored["name"]), name_key(incoming["name"])
    retired = stored.get("retired_at", pd.Series("", index=stored.index)).fillna("").ne("")
    found = []
    for i, j in _candidate_pairs(incoming, stored):
        score = similarity(new_keys[i], stored_keys[j])
        if own[i] or score < SIMILAR:
            continue
        postcode = incoming["postcode"].iloc[i]
        same_postcode = bool(postcode) and postcode == stored["postcode"].iloc[j]
        apart = float(
            np.hypot(
                incoming["easting"].iloc[i] - stored["easting"].iloc[j],
                incoming["northing"].iloc[i] - stored["northing"].iloc[j],
            )
        )
        same_name = bool(new_keys[i]) and new_keys[i] == stored_keys[j]
        if same_name:
            evidence = ["same name"]
        elif score == 1.0:
            evidence = ["one name contains the other"]
        else:
            evidence = [f"similar name ({score:.0%} alike)"]
        evidence.append("same postcode" if same_postcode else "other postcode")
        evidence.append(f"{apart:,.0f} m apart" if np.isfinite(apart) else "distance unknown")
        found.append(
            [
                rows.iloc[i],
                incoming["id"].iloc[i],
                incoming["name"].iloc[i],
                postcode,
                stored["id"].iloc[j],
                stored["name"].iloc[j],
                stored["postcode"].iloc[j],
                bool(retired.iloc[j]),
                round(apart, 1) if np.isfinite(apart) else np.nan,
                same_postcode,
                same_name,
                round(score, 2),
                strength(same_name, same_postcode, apart),
                ", ".join(evidence),
            ]
        )
    matches = pd.DataFrame(found, columns=MATCH_COLUMNS)
    order = matches.assign(
        _weak=matches["strength"].ne("strong"), _far=matches["distance_m"].fillna(np.inf)
    )
    order = order.sort_values(
        ["row", "_weak", "similarity", "_far", "stored_id"],
        ascending=[True, True, False, True, True],
        kind="stable",
    )
    return matches.loc[order.index].reset_index(drop=True)


def best_matches(matches: pd.DataFrame) -> pd.DataFrame:
    """The best match of each row (the first `likely_duplicates` lists), one line per row."""
    return matches.drop_duplicates("row", keep="first").reset_index(drop=True)


def default_choices(matches: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """The safe answer for each row, by file row: ``("merge", stored_id)`` where its best match
    is strong and no other row strongly matches that same stored project (two rows cannot
    merge into one). Other rows get no answer: the editor is asked, with the evidence."""
    best = best_matches(matches)
    strong = best[best["strength"].eq("strong")]
    shared = strong["stored_id"].duplicated(keep=False)
    return {int(r): ("merge", str(s)) for r, s in strong.loc[~shared, ["row", "stored_id"]].values}


def choices_for_all(matches: pd.DataFrame, answer: str, choices: dict | None = None) -> dict:
    """``choices`` (by file row) with one of FOR_ALL applied: ``merge strong`` merges every
    row `default_choices` would (others keep their answer); ``keep all`` and ``skip all``
    answer every listed row."""
    if answer not in FOR_ALL:
        raise ValueError(f"unknown answer {answer!r} for all rows; choose from {list(FOR_ALL)}")
    best = best_matches(matches)
    choices = dict(choices or {})
    if answer == "merge strong":
        return choices | default_choices(matches)
    choice = "keep both" if answer == "keep all" else "skip"
    return choices | {int(r): (choice, str(s)) for r, s in best[["row", "stored_id"]].values}


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
