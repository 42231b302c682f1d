"""Postcode and name search: a postcode's position and the shown projects nearest to it;
projects found by name."""

import re
import unicodedata
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import boundaries, geocode, privacy
from kindred_map.schema import type_label
from kindred_map.text import cell_text

NEAREST_LIMIT = 10
NAME_LIMIT = 20
"""Most projects a name search lists (the first, best matches)."""
NAME_QUERY_MAX_CHARS = 100
RECORD_COLUMNS = ("type", "WD24NM", "LAD25NM", "location_precision", "synthetic", "id")
"""The fields a nearest-projects row shows (only these are turned into Python values)."""


def find_postcode(text: str) -> dict:
    """A postcode from the shipped postcode layer: position and status. Postcodes just outside
    the region (the rest of the L, CH, WA, WN and PR areas) are found, with a note.

    Raises ValueError with a message for staff when it is malformed or not in the layer."""
    given = str(text or "").strip()
    if not given:
        raise ValueError("Enter a postcode, for example L1 8JQ")
    key = geocode.postcode_keys(pd.Series([given])).iat[0]
    if pd.isna(key) or not re.match(geocode.POSTCODE_PATTERN, key):
        raise ValueError(f"{given!r} is not a valid UK postcode (for example L1 8JQ)")
    row = geocode.postcode_row(key)
    if row is None:
        display = f"{key[:-3]} {key[-3:]}"
        raise ValueError(f"Postcode {display} is not a live or terminated postcode in the region")
    note = ""
    if not bool(row["in_region"]):
        note = (
            f"{row['postcode']} is outside the region: projects near it are listed, but its "
            "residents are not in any figure"
        )
    elif row["status"] == "terminated":
        note = (
            f"{row['postcode']} is a terminated postcode: its position is approximate (centre "
            "of its 2011 output area)"
        )
    return {
        "postcode": str(row["postcode"]),
        "status": str(row["status"]),
        "lat": float(row["lat"]),
        "lon": float(row["lon"]),
        "easting": float(row["easting"]),
        "northing": float(row["northing"]),
        "note": note,
    }


def distances_m(shown: gpd.GeoDataFrame, point: Mapping) -> np.ndarray:
    """Straight-line metres (EPSG:27700) from the point to each shown project, in row order;
    NaN where a project has no position."""
    geometry = shown.geometry
    located = (geometry.notna() & ~geometry.is_empty).to_numpy()
    distance = np.full(len(shown), np.nan)
    grid = geometry[located].to_crs(boundaries.BNG)
    distance[located] = np.hypot(
        grid.x.to_numpy() - point["easting"], grid.y.to_numpy() - point["northing"]
    )
    return distance


def nearest_projects(
    shown: gpd.GeoDataFrame,
    point: Mapping,
    within_m: float,
    limit: int | None = None,
    distance: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every shown project with a position (or the nearest ``limit``), nearest first (then by
    name): straight-line metres from the point, and whether it is within ``within_m``.

    Home-run projects are measured to their ward's centre, where the map shows them. The
    table's text is built for the listed rows only: a search of 10,000 projects stays quick.
    ``distance``: `distances_m` of the same projects and point, when the caller has it."""
    distance = distances_m(shown, point) if distance is None else distance
    located = ~np.isnan(distance)
    names = shown["name"].to_numpy(dtype=object)[located]
    order = pd.DataFrame(
        {
            "metres": np.round(distance[located]).astype("int64"),
            "name": [cell_text(name) or "Unnamed project" for name in names],
        }
    ).sort_values(["metres", "name"], kind="stable")
    if limit is not None:
        order = order.head(limit)
    listed = shown[located].iloc[order.index]
    records = listed[[c for c in RECORD_COLUMNS if c in listed.columns]].to_dict("records")
    table = pd.DataFrame(
        {
            "Name": order["name"].to_numpy(dtype=object),
            "Type": [type_label(cell_text(r.get("type"))) for r in records],
            "Distance (m)": order["metres"].to_numpy(),
            "Within reach": distance[located][order.index] <= within_m,
            "Ward": [cell_text(r.get("WD24NM")) for r in records],
            "Borough": [cell_text(r.get("LAD25NM")) for r in records],
            "Note": [_distance_note(r) for r in records],
            "Id": [cell_text(r.get("id")) for r in records],
        }
    )
    text = ["Name", "Type", "Ward", "Borough", "Note", "Id"]
    return table.astype(dict.fromkeys(text, "str"))  # text even when no row is listed


def _distance_note(record: Mapping) -> str:
    notes = []
    if cell_text(record.get("location_precision")) == privacy.WARD_ONLY:
        notes.append("home-run: distance to its ward centre")
    elif cell_text(record.get("location_precision")) == "street":
        notes.append("approximate location")
    if bool(record.get("synthetic")):
        notes.append("illustrative, not real")
    return "; ".join(notes)


def nearest_text(point: Mapping, nearest: pd.DataFrame, within_m: float, limit: int) -> str:
    """The search result as plain text (for the command line)."""
    within = int(nearest["Within reach"].sum())
    lines = [
        f"{point['postcode']} ({point['status']}): {within:,} project(s) within "
        f"{within_m:,.0f} m (straight line)"
    ]
    if point.get("note"):
        lines.append(point["note"])
    for row in nearest.head(limit).itertuples(index=False):
        note = f" [{row.Note}]" if row.Note else ""
        place = ", ".join(part for part in (row.Ward, row.Borough) if part)
        lines.append(f"{row[2]:>7,} m  {row.Name} ({row.Type}; {place}){note}")
    return "\n".join(lines)


def folded(text) -> str:
    """Text for matching names: accents removed, case folded, runs of spaces and punctuation
    made one space ("Café  Zoë's" -> "cafe zoe s")."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(re.sub(r"[\W_]+", " ", plain.casefold()).split())


def find_by_name(shown: pd.DataFrame, text: str, limit: int = NAME_LIMIT) -> pd.DataFrame:
    """Shown projects whose name (or organisation) holds ``text``, ignoring case, accents and
    punctuation: Id, Name, Type, Ward, Borough; names starting with it first, then by name.

    An empty query finds nothing (it would list every project); a query over
    NAME_QUERY_MAX_CHARS characters raises a ValueError."""
    if len(str(text or "")) > NAME_QUERY_MAX_CHARS:
        raise ValueError(f"Search for at most {NAME_QUERY_MAX_CHARS} characters of a name")
    wanted = folded(text)
    columns = ["Id", "Name", "Type", "Ward", "Borough"]
    if not wanted or not len(shown):
        return pd.DataFrame(columns=columns)
    names = shown["name"].map(cell_text)
    keys = names.map(folded)
    organisations = shown["organisation"].map(cell_text).map(folded)
    found = keys.str.contains(wanted, regex=False) | organisations.str.contains(wanted, regex=False)
    matches = shown[found.to_numpy()]
    table = pd.DataFrame(
        {
            "Id": matches["id"].map(cell_text).to_numpy(),
            "Name": names[found].replace("", "Unnamed project").to_numpy(),
            "Type": matches["type"].map(cell_text).map(type_label).to_numpy(),
            "Ward": matches["WD24NM"].map(cell_text).to_numpy(),
            "Borough": matches["LAD25NM"].map(cell_text).to_numpy(),
            "_first": (~keys[found].str.startswith(wanted)).to_numpy(),
            "_key": keys[found].to_numpy(),
        }
    )
    table = table.sort_values(["_first", "_key", "Id"], kind="stable").head(limit)
    return table[columns].reset_index(drop=True)
