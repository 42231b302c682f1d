"""The words every export carries: sources, attribution, settings, facts, method, README."""

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from kindred_map import (
    __version__,
    boundaries,
    columns,
    privacy,
)
from kindred_map.export.tables import (
    LEVELS,
    PROJECT_LAYERS,
    _unplaced,
    synthetic_notice,
)
from kindred_map.filters import stored_flag
from kindred_map.paths import REFERENCE_DIR

PROJECT_SOURCES = (
    {
        "patterns": ("synthetic",),
        "name": "Illustrative (synthetic) examples",
        "licence": "Made up for illustration: not real projects, no third-party data",
        "attribution": None,
        "note": "Illustrative only: never present them as real provision.",
    },
    {
        "patterns": ("co-operatives uk", "coopsuk"),
        "name": "Co-operatives UK open data (Q2 2023)",
        "licence": "Open Data Commons Attribution Licence (ODC-By 1.0)",
        "attribution": "Contains data from Co-operatives UK",
        "note": "Co-operatives at their registered address's postcode centre: where they are "
        "registered, not necessarily where they trade.",
    },
    {
        "patterns": ("give food", "givefood"),
        "name": "Give Food food bank list",
        "licence": "Public domain (The Unlicense); credit requested",
        "attribution": "Food bank data from Give Food (givefood.org.uk), public domain.",
        "note": "One row per food bank organisation at its main address, c. 2023 to early "
        "2024; distribution centres are not listed. Check current status before publishing.",
    },
    {
        "patterns": ("warm space", "warm-space", "warm_space", "warm welcome", "open innovations"),
        "name": "Warm spaces (Open Innovations aggregation)",
        "licence": "No licence stated: collected from the Warm Welcome Campaign, Sefton Council, "
        "Sefton CVS, St Helens Council, Lancashire County Council and (just outside the "
        "region) Fylde Council directories. Internal use; ask those directories before "
        "republishing.",
        "attribution": "Warm spaces: Open Innovations warm-spaces aggregation of the Warm "
        "Welcome Campaign, Sefton Council, Sefton CVS, St Helens Council, Lancashire County "
        "Council and Fylde Council directories (no licence stated).",
        "note": "Opening times are seasonal; duplicates across directories may remain.",
    },
)
"""Known project data sources, matched by text in a record's ``source``."""

LEAFLET_CREDIT = "Map drawn with Leaflet (leafletjs.com), BSD 2-Clause licence"


def project_sources(projects: pd.DataFrame) -> list[dict]:
    """The known project data sources found in the records' ``source``, then the others,
    grouped by the text before their first ": " (e.g. a news item, without its detail)."""
    if "source" not in projects.columns:
        return []
    sources = privacy.public_values(projects, "source").astype("string").str.strip()
    sources = sources[sources.notna() & (sources != "")]
    lowered = sources.str.lower()
    found, matched = [], pd.Series(False, index=sources.index)
    for spec in PROJECT_SOURCES:
        hit = ~matched & lowered.str.contains("|".join(spec["patterns"]), regex=True)
        if hit.any():
            found.append(spec | {"records": int(hit.sum())})
        matched |= hit
    others = sources[~matched].str.split(": ", n=1).str[0]
    for name, records in others.value_counts().sort_index().items():
        found.append(
            {
                "name": name,
                "licence": "Not recorded in Kindred Map: check with the provider",
                "attribution": None,
                "note": None,
                "records": int(records),
            }
        )
    return found


def attribution(projects: pd.DataFrame) -> list[str]:
    """The exact attribution lines an export must carry: boundary layers, postcodes, projects."""
    lines = boundaries.attribution_lines(PROJECT_LAYERS)
    for source in project_sources(projects):
        if source["attribution"] and source["attribution"] not in lines:
            lines.append(source["attribution"])
    return lines


def _stamp(generated: datetime | None) -> str:
    moment = generated or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("the generation time must carry a time zone (use UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SETTINGS_FILE = REFERENCE_DIR / "pack_settings.toml"
SETTINGS_ENV = "KINDRED_MAP_PACK_SETTINGS"
SETTINGS_KEYS = ("owner", "contact", "pack_licence")


def pack_settings(path: Path | str | None = None) -> dict[str, str]:
    """Owner, contact and pack licence for exports: the shipped defaults
    (``reference/pack_settings.toml``), overridden key by key by ``path`` if given, else by the
    file ``KINDRED_MAP_PACK_SETTINGS`` names. An explicit file beats the environment so that
    one command line can make a pack for another partner without touching the shell."""
    settings = tomllib.loads(SETTINGS_FILE.read_text(encoding="utf-8"))
    chosen = path or os.environ.get(SETTINGS_ENV) or None
    if chosen:
        try:
            given = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"cannot read pack settings {chosen}: {error}") from error
        unknown = sorted(set(given) - set(SETTINGS_KEYS))
        if unknown:
            raise ValueError(
                f"pack settings {chosen}: unknown key(s) {unknown}; use {list(SETTINGS_KEYS)}"
            )
        settings |= {key: str(value) for key, value in given.items()}
    return {key: str(settings[key]).strip() for key in SETTINGS_KEYS}


_FOLDERS = r"(?:kindred_map|boundaries|data|shared)/[\w./-]+"
_INTERNAL_PATH = re.compile(rf" ?\({_FOLDERS}\)|;\s*{_FOLDERS}|\b{_FOLDERS}")


def public_text(text: str) -> str:
    """``text`` without the tool's internal file paths (a council has no use for them): a path
    in brackets or after "; " goes with them, so the sentence around it still reads."""
    return _INTERNAL_PATH.sub("", text)


def _public(value):
    if isinstance(value, Mapping):
        return {_public(key): _public(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_public(item) for item in value]
    return public_text(value) if isinstance(value, str) else value


def about(
    projects: pd.DataFrame,
    what: str,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
) -> dict:
    """Facts every export carries: a warning first if ``projects`` hold illustrative records,
    then title, time, owner, contact, pack licence, parameters, licences, attribution and
    vintages. ``settings``: as `pack_settings` returns (default: `pack_settings()`)."""
    settings = pack_settings() if settings is None else settings
    licences = {
        boundaries.metadata(name)["title"]: boundaries.metadata(name)["licence"]
        for name in PROJECT_LAYERS
    }
    licences |= {source["name"]: source["licence"] for source in project_sources(projects)}
    notice = synthetic_notice(projects) if "synthetic" in projects.columns else None
    facts = {"notice": notice} if notice else {}
    facts |= {
        "title": f"Kindred Map export: {what}",
        "generated": _stamp(generated),
        "generator": f"Kindred Map {__version__}",
        "owner": settings["owner"],
        "contact": settings["contact"],
        "pack_licence": settings["pack_licence"],
        "parameters": {str(k): str(v) for k, v in (parameters or {}).items()},
        "boundary_vintage": {name: boundaries.metadata(name)["vintage"] for name in PROJECT_LAYERS},
        "licences": licences,
        "attribution": attribution(projects),
    }
    return _public(facts)


GPKG_NAME = "kindred_map.gpkg"
"""The GeoPackage's name inside a pack (and its README)."""
NO_CONTACT = "none was given when this export was made; ask the person or team who sent it to you."


def start_here(contents: Mapping[str, str]) -> list[str]:
    """The plain-words opening of an export's README, for a council officer who has never used
    Kindred Map: how to open the files it ships (``contents``), what to check first."""
    lines = ["Start here", "----------"]
    if "map.html" in contents:
        lines.append(
            "- To see the projects and each area's figures on a map, open map.html in any web "
            "browser; it works without the internet."
        )
    tools = ["the .csv files in Excel"]
    if GPKG_NAME in contents:
        tools.append(f"{GPKG_NAME} in QGIS or ArcGIS")
    lines += [
        f"- To work with the figures, open {' or '.join(tools)}. Each column is explained at "
        "the end of this file.",
        "- Before you quote a figure: reach is measured in a straight line, not along roads, "
        "so real journeys are longer; deanery boundaries are approximate; a project run from "
        "someone's home is shown only at the centre of its ward.",
        "- Before you publish anything from this export, check the licences below: some "
        "project lists allow internal use only.",
    ]
    return lines


GAP_WEIGHTS = "w = 2 for IMD 2025 deciles 1-2, 1.5 for deciles 3-4 and 1 otherwise"


def method_lines(distance_m: float | None = None) -> list[str]:
    """How every figure is made, in words (pack README, CSV sidecars, area profiles)."""
    reach = f"{distance_m:g} m" if distance_m else "the distance under Parameters"
    ward_meta = boundaries.metadata("ward")
    inside = ward_meta.get("measured", {}).get("live_postcodes_inside_own_polygon_pct")
    inside_text = f"{inside:.1f}%" if inside is not None else "most"
    return [
        "- Population: each LSOA's Census 2021 usual residents are spread over its residential "
        "postcodes in whole people (largest remainder); an area's population is the sum over "
        "the postcodes in it, so every level adds up to the region's total exactly.",
        f"- Reach: a resident is within reach when the straight-line (as the crow flies) ground "
        f"distance from their postcode to the nearest project of the chosen types is at most "
        f"{reach}. Not a walking route: rivers, railways and main roads are ignored, so "
        "real access is worse than these figures near such barriers.",
        f"- Gap score = sum over residents beyond reach of w(IMD 2025 decile of their LSOA), "
        f"{GAP_WEIGHTS}: need-weighted people beyond reach. gap_per_1000 = 1000 x gap_score / "
        "population; gap_rank ranks every area of a level in the region by gap_score (1 = "
        "biggest gap).",
        "- Percentages are 0-100 everywhere (columns pct_*).",
        "- Projects count in the area their codes name: a project with a valid postcode takes "
        "its postcode's ward and borough (ONS assignment at full resolution); otherwise the "
        "nearest live postcode's, or the generalised ward polygon's (column ward_source). "
        f"Ward shapes are generalised to 200 m: only {inside_text} of postcodes lie inside "
        "their own ward's polygon, so do not re-assign points to wards with these shapes.",
        "- Across the boundary: a project just outside the 9 boroughs (in_region = false; "
        "nearest_borough names the region borough nearest it) is placed and exported, and "
        "counts for the region's residents within reach of it, on either side of the "
        "boundary, unless Parameters say only projects inside the region count (the "
        "comparison). It counts in no area's project figures, and residents outside the "
        "region are never counted.",
        "- Home-run projects (location_precision = ward_only) never leave with their address: "
        "they are shown at their ward's centre, their address, LSOA and IMD decile are blank "
        "and their postcode is cut to the district; they count for coverage at that centre.",
        "- Deanery boundaries are APPROXIMATE, derived, not official. "
        + boundaries.metadata("deanery")["method"].removeprefix("Derived, not official. "),
        "- Coordinates: GeoJSON in WGS84 (RFC 7946, 6 decimals); GeoPackage in British National "
        "Grid (EPSG:27700); CSV carries both. Geometries are valid, without repeated vertices, "
        "and every area layer is MultiPolygon.",
    ]


def _boundary_lines(coverage: Mapping[str, pd.DataFrame]) -> list[str]:
    """What the projects outside the region did to this export's coverage (from the coverage
    tables' ``attrs``, see `coverage_figures`)."""
    found = [table.attrs for table in coverage.values() if table is not None]
    attrs = next((attrs for attrs in found if "outside_projects" in attrs), {})
    if not attrs:
        return []
    if not attrs.get("include_outside", True):
        return ["- Only projects inside the region count for reach in these figures."]
    newly = attrs.get("newly_within_reach") or {}
    if not attrs["outside_projects"] or not newly:
        return [
            "- No project of the chosen types lies outside the region: reach is the same "
            "counted either way."
        ]
    parts = "; ".join(f"{name} {count:,}" for name, count in newly.items() if count)
    return [
        f"- {attrs['outside_projects']} project(s) of the chosen types lie outside the "
        f"region. Counting them moves {sum(newly.values()):,} residents from beyond reach to "
        f"within reach (by borough: {parts or 'none'})."
    ]


def layer_lines() -> list[str]:
    """Vintage, source, generalisation and accuracy (with measured figures) of every layer."""
    lines = []
    for name in PROJECT_LAYERS:
        meta = boundaries.metadata(name)
        flag = " APPROXIMATE." if meta.get("approximate") else ""
        measured = meta.get("measured") or {}
        figures = "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in measured.items())
        lines.append(
            f"- {meta['title']}: {meta['vintage']}. Source: {meta['source']}. Generalisation: "
            f"{meta['generalisation']}. Accuracy: {meta['accuracy']}{flag}"
            + (f" Measured: {figures}." if figures else "")
        )
    return lines


TABLE_TITLES = (
    {"projects": "Projects"}
    | {lvl: f"{lvl.capitalize()} summary" for lvl in LEVELS}
    | {f"change_{lvl}": f"{lvl.capitalize()} change between two dates" for lvl in LEVELS}
)


def readme_text(
    projects: gpd.GeoDataFrame,
    contents: Mapping[str, str],
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    summaries: Mapping[str, pd.DataFrame] | None = None,
    coverage_levels=(),
    settings: Mapping[str, str] | None = None,
    distance_m: float | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    coverage: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """README for an export: a warning first if it holds illustrative records; what, when, who
    (owner, contact, licence), parameters, method, layers (vintage, generalisation, accuracy),
    licences, attribution and the data dictionary of every table shipped (``tables``: table
    name -> frame, from `kindred_map.columns`).

    ``projects``: the records exported (synthetic ones only if the export includes them);
    ``contents`` maps each file to what it holds; ``summaries`` are the area tables shipped;
    ``coverage`` the coverage tables they were given (`coverage_figures`), whose ``attrs`` say
    what the projects outside the region changed."""
    facts = about(projects, "council pack", parameters, generated, settings)
    hidden = int(privacy.is_ward_only(projects).sum())
    synthetic = int(projects["synthetic"].map(stored_flag).fillna(False).astype(bool).sum())
    lines = [facts["notice"], ""] if "notice" in facts else []
    lines += [
        "Kindred Map export",
        "==================",
        "",
        "Community social action projects in the Liverpool City Region, with their ward, "
        "borough, deanery and LSOA, and summaries by area.",
        "",
        *start_here(contents),
        "",
        "What",
        "----",
        *[f"- {name}: {text}" for name, text in contents.items()],
        "",
        "When and who",
        "------------",
        f"- Generated {facts['generated']} (UTC) by {facts['generator']}.",
        f"- Owner: {facts['owner']}",
        f"- Contact: {facts['contact'] or NO_CONTACT}",
        f"- Licence of this pack: {facts['pack_licence']}",
        "",
        "Parameters",
        "----------",
    ]
    if facts["parameters"]:
        lines += [f"- {key}: {value}" for key, value in facts["parameters"].items()]
    else:
        lines.append("- No filters: every real project in the store.")
    lines += [
        f"- Projects exported: {len(projects)} ({hidden} home-run, {synthetic} illustrative).",
        "",
        "Method",
        "------",
        *method_lines(distance_m),
    ]
    for level in summaries or {}:
        unplaced = _unplaced(projects, level)
        if unplaced:
            where = "the diocese" if level == "deanery" else "the region"
            lines.append(
                f"- {unplaced} exported project(s) fall in no {level} (outside {where}) and "
                f"are not counted in the {level} summary."
            )
    if coverage_levels:
        lines.append(
            "- Coverage and gap figures (" + ", ".join(coverage_levels) + " summaries) are "
            "computed with the reach distance and project types under Parameters."
        )
        lines += _boundary_lines(coverage or {})
    else:
        lines.append("- Coverage and gap figures: not computed for this export.")
    lines += ["", "Layers: vintage, generalisation and accuracy", "-" * 44, *layer_lines()]
    for source in project_sources(projects):
        note = f" {source['note']}" if source["note"] else ""
        lines.append(f"- Projects from {source['name']}: {source['records']} record(s).{note}")
    lines += ["", "Licences", "--------"]
    lines += [f"- {name}: {licence}" for name, licence in facts["licences"].items()]
    lines += [
        f"- {LEAFLET_CREDIT} (embedded in the HTML map).",
        "",
        "Attribution (reproduce these lines exactly wherever the data is shown)",
        "-----------------------------------------------------------------------",
        *facts["attribution"],
    ]
    for table, frame in (tables or {}).items():
        title = f"{TABLE_TITLES.get(table, table)} columns (type; unit: description)"
        lines += ["", title, "-" * len(title), *columns.dictionary_lines(table, frame.columns)]
    return public_text("\n".join(lines) + "\n")
