"""The projects as tables and text: the project table, summaries, area panel, downloads, About."""

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd

from kindred_map import boundaries, coverage, export, hours, privacy
from kindred_map.figures import (
    DEANERY_NOTE,
    GAP_SCORE_HELP,
    HOME_RUN_LSOA_NOTE,
    LEVELS,
    PER_1000_HELP,
    PROJECT_AREA_COLUMNS,
    check_level,
)
from kindred_map.freshness import STALE_MONTHS, check_status
from kindred_map.paths import DATA_DIR
from kindred_map.schema import project_types
from kindred_map.text import md_escape
from kindred_map.view import View, filter_words


def cell_text(value) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).strip()


def type_label(kind: str) -> str:
    types = project_types()
    return types[kind]["label"] if kind in types else kind or "Unknown type"


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


def download_bytes(shown: gpd.GeoDataFrame, fmt: str, view: View) -> bytes:
    """The shown projects as a CSV or GeoJSON file (via `kindred_map.export`: home-run ones at
    their ward's centre, the filters written into the GeoJSON's metadata)."""
    if fmt not in ("csv", "geojson"):
        raise ValueError(f"downloads are csv or geojson, not {fmt!r}")
    return export.export_bytes(shown, fmt, parameters=filter_words(view))


def area_panel(
    level: str, code: str, shown: gpd.GeoDataFrame, figures: pd.DataFrame, today=None
) -> dict:
    """What the panel of one area shows: name, population, IMD, projects by type and the list.

    ``figures``: `area_figures` for ``level`` (gap figures included when computed)."""
    check_level(level)
    if code not in figures.index:
        raise ValueError(f"no {level} with code {code!r}")
    row = figures.loc[code]
    if level == "lsoa":
        lsoa = boundaries.load("lsoa").set_index("LSOA21CD").loc[code]
        imd = (
            f"IMD 2025 decile {int(lsoa['imd_decile'])} (rank {int(lsoa['imd_rank']):,} of "
            "33,755 LSOAs in England; 1 = most deprived)"
        )
    elif pd.isna(row["imd_decile"]):
        imd = "IMD 2025: no residents' data"
    else:
        imd = (
            f"IMD 2025 decile {int(row['imd_decile'])} (population-weighted median of its "
            f"residents' LSOAs); {row['share_deciles_1_2']:.0%} of residents live in deciles "
            "1-2, the most deprived 20% in England"
        )
    inside = shown[(boundaries.code_texts(shown[PROJECT_AREA_COLUMNS[level]]) == code).to_numpy()]
    by_type = pd.DataFrame(
        [
            {"Type": spec["label"], "Projects": int(row[f"projects_{kind}"])}
            for kind, spec in project_types().items()
            if row[f"projects_{kind}"]
        ],
        columns=["Type", "Projects"],
    )
    notes = []
    if level == "deanery":
        notes.append(DEANERY_NOTE)
    if level == "lsoa":
        notes.append(HOME_RUN_LSOA_NOTE)
    gap = {}
    if "gap_score" in figures.columns and pd.notna(row["gap_score"]):
        gap = {
            "pct_covered": float(row["pct_covered"]),
            "beyond_reach": int(row["beyond_reach"]),
            "gap_score": float(row["gap_score"]),
            "gap_per_1000": float(row["gap_per_1000"]),
        }
    title = row["name"] + (f" ({row['borough']})" if level == "ward" else "")
    return {
        "level": level,
        "code": code,
        "title": f"{LEVELS[level]['noun']}: {title}",
        "population": int(row["population"]),
        "imd": imd,
        "projects": int(row["projects"]),
        "per_10k": None if pd.isna(row["per_10k"]) else float(row["per_10k"]),
        "by_type": by_type,
        "table": project_table(inside, today),
        "gap": gap,
        "notes": notes,
    }


def area_panel_text(panel: Mapping) -> str:
    """An area panel as plain text (for the command line)."""
    per = "" if panel["per_10k"] is None else f" ({panel['per_10k']:.1f} per 10,000 residents)"
    lines = [
        f"{panel['title']} [{panel['code']}]",
        f"Population (Census 2021): {panel['population']:,}",
        panel["imd"],
        f"Projects: {panel['projects']:,}{per}",
    ]
    lines.extend(f"  {row.Type}: {row.Projects:,}" for row in panel["by_type"].itertuples())
    if panel["gap"]:
        gap = panel["gap"]
        lines.append(
            f"Coverage: {gap['pct_covered']:.1f}% of residents within reach; "
            f"{gap['beyond_reach']:,} beyond reach; gap score {gap['gap_score']:,.0f} "
            f"({gap['gap_per_1000']:,.0f} per 1,000)"
        )
    lines.extend(panel["notes"])
    for row in panel["table"].itertuples(index=False):
        lines.append(f"  - {row.Name} ({row.Type})")
    return "\n".join(lines)


SOURCE_FILES = ("SOURCES.md", "SOURCES.txt", "README.md")


def data_sources_text(data_dir: Path = DATA_DIR) -> str:
    """The project data's sources note from the data folder (written with the sample store)."""
    for name in SOURCE_FILES:
        path = Path(data_dir) / name
        if path.exists():
            return path.read_text(encoding="utf-8")
    return ""


OSM_CREDIT = (
    "Background map (when OpenStreetMap is chosen): © OpenStreetMap contributors, Open "
    "Database Licence (openstreetmap.org/copyright)."
)


METHOD_NOTES = f"""
- **Where a project is**: its postcode's position (OS Code-Point Open) or its own coordinates;
  *approximate* locations (a street, postcode or place centre) say so in their popup.
- **Home-run projects** (`ward_only`) are never shown at their address: the map, the table, the
  search and every download place them at their ward's centre, without address or postcode.
- **Areas**: a project counts in the ward and borough of its postcode where it has one (ONS
  assignment), else of its position. Deanery boundaries are approximate (derived).
- **IMD 2025** deciles are per LSOA (1 = most deprived 10% in England). A ward, deanery or
  borough has no official decile: the dashboard shows the population-weighted median of its
  residents' LSOA deciles (Census 2021 residents spread over postcodes).
- **Distances** are straight lines in British National Grid (EPSG:27700), not walking routes.
- **Gap score** (from the coverage analysis): people beyond reach weighted 2 in IMD deciles 1-2,
  1.5 in deciles 3-4 and 1 otherwise.
- **Stale**: a record last checked more than {STALE_MONTHS} months ago is flagged for checking.
- **Illustrative** (synthetic) records are examples for types with no open data: NOT real
  projects, and marked so everywhere.
"""


ABOUT_LAYERS = ("borough", "ward", "deanery", "lsoa", "postcode")


def layer_sources() -> pd.DataFrame:
    """One row per boundary/reference layer: title, source, vintage, licence, accuracy."""
    rows = []
    for name in ABOUT_LAYERS:
        meta = boundaries.metadata(name)
        rows.append(
            {
                "Layer": meta["title"],
                "Source": meta["source"],
                "Vintage": meta["vintage"],
                "Licence": meta["licence"],
                "Approximate": "yes" if meta.get("approximate") else "no",
                "Accuracy": meta.get("accuracy", ""),
            }
        )
    return pd.DataFrame(rows)


def source_table(sources: list[dict]) -> pd.DataFrame:
    """`export.project_sources` as a table for the About page."""
    rows = [
        {
            "Source": source["name"],
            "Projects": int(source["records"]),
            "Licence": source["licence"],
            "Note": source.get("note") or "",
        }
        for source in sources
    ]
    return pd.DataFrame(rows, columns=["Source", "Projects", "Licence", "Note"])


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
