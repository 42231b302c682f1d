"""What a project's marker carries: popup and tooltip text, marker records."""

import html
import re
from collections.abc import Mapping
from datetime import date

import geopandas as gpd
import pandas as pd

from kindred_map import maps, privacy
from kindred_map.schema import project_types
from kindred_map.tables import STALE_MONTHS, cell_text, check_status, location_note, type_label

SAFE_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)


POPUP_FIELDS = (
    ("organisation", "Organisation"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("opening_hours", "Opening hours"),
    ("parish", "Parish"),
    ("WD24NM", "Ward"),
    ("LAD25NM", "Borough"),
    ("deanery_name", "Deanery (approximate)"),
    ("imd_decile", "IMD 2025 decile of its LSOA"),
)


def popup_html(record: Mapping, check: str = "") -> str:
    """A project's popup, every value escaped; illustrative, approximate, stale records say so.

    ``check`` is the record's `check_status` ("stale", "not recorded" or "")."""
    name = cell_text(record.get("name")) or "Unnamed project"
    parts = [
        f"<strong>{html.escape(name)}</strong>",
        html.escape(type_label(cell_text(record.get("type")))),
    ]
    if bool(record.get("synthetic")):
        parts.append("<em><strong>Illustrative example, not a real project</strong></em>")
    for column, label in POPUP_FIELDS:
        value = cell_text(record.get(column))
        if value:
            parts.append(f"{html.escape(label)}: {html.escape(value)}")
    website = cell_text(record.get("website"))
    if SAFE_URL.match(website):
        link = html.escape(website, quote=True)
        parts.append(f'Website: <a href="{link}" target="_blank" rel="noopener">{link}</a>')
    elif website:
        parts.append(f"Website: {html.escape(website)}")
    checked = cell_text(record.get("last_checked"))
    if check == "stale":
        parts.append(
            f"Last checked: {html.escape(checked)} <strong>(over {STALE_MONTHS} months ago: "
            "check it still runs)</strong>"
        )
    elif check == "not recorded" or not checked:
        parts.append("Last checked: not recorded")
    else:
        parts.append(f"Last checked: {html.escape(checked)}")
    note = location_note(record)
    if note:
        parts.append(f"<em>{html.escape(note)}</em>")
    return "<br>".join(parts)


def marker_records(shown: gpd.GeoDataFrame, today: date | None = None) -> list[dict]:
    """One marker per project with a position: colour by type, escaped popup and tooltip."""
    types = project_types()
    located = shown[shown.geometry.notna() & ~shown.geometry.is_empty]
    records = []
    lon, lat = located.geometry.x.to_numpy(), located.geometry.y.to_numpy()
    rows = pd.DataFrame(located.drop(columns=located.geometry.name)).to_dict("records")
    checks = check_status(located["last_checked"], today)
    for x, y, record, check in zip(lon, lat, rows, checks, strict=True):
        kind = cell_text(record.get("type"))
        records.append(
            {
                "lat": round(float(y), maps.COORDINATE_DECIMALS),
                "lon": round(float(x), maps.COORDINATE_DECIMALS),
                "type": re.sub(r"[^a-z0-9_]", "", kind.lower()) or "other",
                "colour": types.get(kind, types["other"])["colour"],
                "home_run": cell_text(record.get("location_precision")) == privacy.WARD_ONLY,
                "tooltip": html.escape(cell_text(record.get("name")) or "Unnamed project"),
                "popup": popup_html(record, check),
            }
        )
    return records
