"""The area panel: one area's population, deprivation, projects by type, gap and list."""

from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from kindred_map import boundaries
from kindred_map.figures import (
    DEANERY_NOTE,
    HOME_RUN_LSOA_NOTE,
    LEVELS,
    PROJECT_AREA_COLUMNS,
    check_level,
)
from kindred_map.schema import project_types
from kindred_map.tables import project_table


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
