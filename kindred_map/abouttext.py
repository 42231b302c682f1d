"""The About page's words: layer sources and licences, project sources, credits, method notes."""

from pathlib import Path

import pandas as pd

from kindred_map import boundaries
from kindred_map.freshness import STALE_MONTHS
from kindred_map.paths import DATA_DIR

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
