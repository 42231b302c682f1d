"""What a project's marker carries: position, type, tooltip and popup text, all escaped."""

import re
from collections.abc import Mapping
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import coverage, hours, maps, privacy
from kindred_map.freshness import STALE_MONTHS, check_status
from kindred_map.schema import project_types, type_label
from kindred_map.tables import location_note
from kindred_map.text import cell_text

SAFE_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)


POPUP_FIELDS = (
    ("organisation", "Organisation"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("opening_hours", "Opening hours"),
    ("sector", "Sector"),
    ("parish", "Parish"),
    ("WD24NM", "Ward"),
    ("LAD25NM", "Borough"),
    ("deanery_name", "Deanery (approximate)"),
    ("imd_decile", "IMD 2025 decile of its LSOA"),
)


def popup_html(record: Mapping, check: str = "") -> str:
    """A project's popup, every value escaped; illustrative, approximate, stale records say so.

    Opening hours always show: `hours.describe` of its ``schedules`` (else "hours unknown",
    with the listed text), so a missing line never reads as "no hours needed".

    ``check`` is the record's `check_status` ("stale", "not recorded" or "")."""
    name = cell_text(record.get("name")) or "Unnamed project"
    parts = [
        f"<strong>{maps.html_text(name)}</strong>",
        maps.html_text(type_label(cell_text(record.get("type")))),
    ]
    if bool(record.get("synthetic")):
        parts.append("<em><strong>Illustrative example, not a real project</strong></em>")
    nearest = cell_text(record.get("nearest_borough"))
    if "in_region" in record and not bool(record["in_region"]):
        near = f" (nearest borough: {nearest})" if nearest else ""
        parts.append(
            f"<em>Outside the region{maps.html_text(near)}: counts for the reach of residents "
            "near it, in no area's figures</em>"
        )
    for column, label in POPUP_FIELDS:
        value = cell_text(record.get(column))
        if column == "opening_hours":
            value = hours.describe(record.get("schedules"), value)
        if value:
            parts.append(f"{maps.html_text(label)}: {maps.html_text(value)}")
    website = cell_text(record.get("website"))
    if SAFE_URL.match(website):
        link = maps.html_text(website)
        parts.append(f'Website: <a href="{link}" target="_blank" rel="noopener">{link}</a>')
    elif website:
        parts.append(f"Website: {maps.html_text(website)}")
    checked = cell_text(record.get("last_checked"))
    if check == "stale":
        parts.append(
            f"Last checked: {maps.html_text(checked)} <strong>(over {STALE_MONTHS} months ago: "
            "check it still runs)</strong>"
        )
    elif check == "not recorded" or not checked:
        parts.append("Last checked: not recorded")
    else:
        parts.append(f"Last checked: {maps.html_text(checked)}")
    note = location_note(record)
    if note:
        parts.append(f"<em>{maps.html_text(note)}</em>")
    return "<br>".join(parts)


def marker_data(located: gpd.GeoDataFrame, today: date | None = None) -> tuple[dict, list[str]]:
    """The markers of projects with a position, as compact arrays (one entry per project, in
    ``located``'s order: lat, lon, type index into colours, home-run flag, escaped name for the
    tooltip), and their popups (escaped HTML) in the same order, loaded by the map on demand.

    Work per project happens once per store and day, never per filter change."""
    types = project_types()
    kinds = [cell_text(kind) for kind in located["type"]]
    known = list(dict.fromkeys(kind if kind in types else "other" for kind in kinds))
    position = {kind: index for index, kind in enumerate(known)}
    rows = pd.DataFrame(located.drop(columns=located.geometry.name)).to_dict("records")
    checks = check_status(located["last_checked"], today)
    markers = {
        "lat": np.round(located.geometry.y.to_numpy(), maps.COORDINATE_DECIMALS).tolist(),
        "lon": np.round(located.geometry.x.to_numpy(), maps.COORDINATE_DECIMALS).tolist(),
        "type": [position[kind if kind in types else "other"] for kind in kinds],
        "colours": [types[kind]["colour"] for kind in known],
        "home": [
            int(cell_text(value) == privacy.WARD_ONLY) for value in located["location_precision"]
        ],
        "outside": coverage.outside_mask(located).astype(int).tolist(),
        "name": [maps.html_text(cell_text(row.get("name")) or "Unnamed project") for row in rows],
    }
    popups = [popup_html(row, check) for row, check in zip(rows, checks, strict=True)]
    return markers, popups
