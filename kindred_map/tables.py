"""The projects as tables and text: counts, the project table, gaps, one project."""

from collections.abc import Mapping
from datetime import date

import geopandas as gpd
import pandas as pd

from kindred_map import coverage, hours, privacy
from kindred_map.figures import (
    GAP_SCORE_HELP,
    LEVELS,
    PER_1000_HELP,
    check_level,
)
from kindred_map.freshness import STALE_MONTHS, check_status
from kindred_map.schema import type_label
from kindred_map.text import cell_text, md_escape


def location_note(record: Mapping) -> str:
    precision = cell_text(record.get("location_precision"))
    if precision == privacy.WARD_ONLY:
        return cell_text(record.get("location_note")) or privacy.SHOWN_AT_WARD_CENTRE
    if precision == "street":
        return "Approximate location: a street, postcode or place centre, not the building"
    return ""


def counts_text(shown: gpd.GeoDataFrame, total: int) -> str:
    """ "Showing 42 of 276 projects" with how many are drawn and how."""
    drawn = int((shown.geometry.notna() & ~shown.geometry.is_empty).sum())
    home_run = int(privacy.is_ward_only(shown).sum())
    text = f"Showing {len(shown):,} of {total:,} projects"
    details = []
    if drawn != len(shown):
        details.append(f"{len(shown) - drawn:,} without a position not drawn")
    if home_run:
        details.append(f"{home_run:,} home-run shown at the ward centre")
    synthetic = int(shown["synthetic"].fillna(False).astype(bool).sum())
    if synthetic:
        details.append(f"{synthetic:,} illustrative, not real")
    return text + (f" ({'; '.join(details)})" if details else "")


TABLE_COLUMNS = {
    "name": "Name",
    "type_label": "Type",
    "organisation": "Organisation",
    "address": "Address",
    "postcode": "Postcode",
    "WD24NM": "Ward",
    "LAD25NM": "Borough",
    "deanery_name": "Deanery (approx.)",
    "imd_decile": "IMD decile",
    "last_checked": "Last checked",
    "check": "Check due",
    "location": "Location",
    "illustrative": "Illustrative (not real)",
    "opening_hours": "Opening hours",
    "sector": "Sector",
    "website": "Website",
    "id": "Id",
}


def project_table(shown: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    """The same projects as the map, as a plain table (the accessible equivalent of the map).

    "Opening hours" is `hours.describe` of the structured ``schedules`` ("hours unknown" with
    the listed text when there are none); "Sector" is empty where no source gives one."""
    table = pd.DataFrame(shown).drop(columns="geometry", errors="ignore").copy()
    table["type_label"] = table["type"].map(type_label)
    status = check_status(table["last_checked"], today)
    table["check"] = status.map(
        {"stale": f"yes: over {STALE_MONTHS} months", "not recorded": "date not recorded"}
    ).fillna("")
    records = table.to_dict("records")
    table["location"] = [
        (location_note(record) or "exact") if cell_text(record.get("location_precision")) else ""
        for record in records
    ]
    table["illustrative"] = table["synthetic"].fillna(False).astype(bool)
    table["opening_hours"] = hours.describe_projects(table)
    if "sector" not in table.columns:
        table["sector"] = ""
    table["imd_decile"] = pd.to_numeric(table["imd_decile"], errors="coerce").astype("Int64")
    for column in TABLE_COLUMNS:
        if column not in ("imd_decile", "illustrative"):
            table[column] = table[column].map(cell_text)
    out = table[list(TABLE_COLUMNS)].rename(columns=TABLE_COLUMNS)
    return out.sort_values(["Name", "Id"], key=lambda s: s.str.casefold()).reset_index(drop=True)


def table_summary(table: pd.DataFrame) -> str:
    """How many of the table's projects are stale or have no check date, in a sentence."""
    stale = int(table["Check due"].str.startswith("yes").sum())
    undated = int((table["Check due"] == "date not recorded").sum())
    return (
        f"{len(table):,} projects: {stale:,} last checked over {STALE_MONTHS} months ago "
        f"(stale), {undated:,} with no check date recorded."
    )


GAP_COLUMNS = {
    "gap_rank": ("Rank", "1 = the biggest gap score: where most people in need are unreached."),
    "population": ("Residents (people)", "Census 2021 residents."),
    "pct_covered": (
        "Within reach (%)",
        "Share of residents within the reach distance (straight line) of a project shown.",
    ),
    "beyond_reach": ("Beyond reach (people)", "Residents further than the reach distance."),
    "beyond_reach_deciles_1_2": (
        "Beyond reach, most deprived 20% (people)",
        "Residents beyond reach who live in IMD 2025 deciles 1-2 (England's most deprived 20%).",
    ),
    "pct_deciles_1_2": (
        "Residents in most deprived 20% (%)",
        "Share of all residents living in IMD 2025 deciles 1-2.",
    ),
    "median_distance_m": (
        "Median distance to nearest (metres)",
        "Half the residents live closer than this to a project shown (straight line).",
    ),
    "gap_score": ("Gap score", GAP_SCORE_HELP),
    "gap_per_1000": ("Gap score per 1,000 residents", PER_1000_HELP),
}
"""The gaps table's columns as shown: heading with unit, and a one-line "what this means"."""


def gaps_table(ranked: pd.DataFrame, level: str) -> pd.DataFrame:
    """A `CoverageResult.gaps` table for reading: human headings with units (see GAP_COLUMNS),
    whole people and metres, percentages to 1 decimal, scores to whole numbers."""
    check_level(level)
    if level not in coverage.AREA_LEVELS:
        raise ValueError(f"gaps are ranked by {', '.join(coverage.AREA_LEVELS)}, not {level!r}")
    code, name = coverage.LEVELS[level]
    out = pd.DataFrame({"Rank": ranked["gap_rank"].astype("int64")})
    out[LEVELS[level]["noun"]] = ranked[name].astype(str)
    if level == "ward" and "LAD25NM" in ranked.columns:
        out["Borough"] = ranked["LAD25NM"].astype(str)
    for column, (heading, _help) in list(GAP_COLUMNS.items())[1:]:
        values = pd.to_numeric(ranked[column], errors="coerce")
        if column in ("pct_covered", "pct_deciles_1_2"):
            out[heading] = values.round(1)
        else:
            out[heading] = values.round(0).astype("Int64")
    out.attrs = {"code": ranked[code].astype(str).tolist(), **ranked.attrs}
    return out.reset_index(drop=True)


def column_help(heading: str) -> str:
    """The "what this means" line of a gaps-table heading ("" for name columns)."""
    return next((text for shown, text in GAP_COLUMNS.values() if shown == heading), "")


CARD_FIELDS = (
    "Type",
    "Organisation",
    "Address",
    "Postcode",
    "Ward",
    "Borough",
    "Opening hours",
    "Sector",
    "Website",
    "Last checked",
    "Check due",
    "Location",
)


def project_card(shown: pd.DataFrame, project_id: str, today: date | None = None) -> dict:
    """One shown project for the name search's answer: ``title`` (Markdown-escaped) and its
    non-empty fields as a two-column table (escaped for ``st.table``).

    Home-run projects arrive masked (ward centre, no address or postcode) and the location
    line says so. Raises ValueError when the id is not among the shown projects."""
    rows = shown[shown["id"].astype(str) == str(project_id)]
    if not len(rows):
        raise ValueError(f"no project with id {project_id!r} is shown with these filters")
    table = project_table(rows.head(1), today)
    record = table.iloc[0]
    facts = [(field, cell_text(record[field])) for field in CARD_FIELDS]
    if record["Illustrative (not real)"]:
        facts.append(("Illustrative", "yes: an example, not a real project"))
    frame = pd.DataFrame([f for f in facts if f[1]], columns=["Field", "Value"])
    return {
        "title": md_escape(record["Name"] or "Unnamed project"),
        "facts": frame.assign(Value=frame["Value"].map(md_escape)),
    }
