"""Project tables and area summaries as they may leave the tool (masked, typed, coverage)."""

from collections.abc import Mapping
from datetime import date, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from kindred_map import (
    boundaries,
    columns,
    filters,
    privacy,
)
from kindred_map.coverage import DEFAULT_DISTANCE_M, assess, boundary_effect
from kindred_map.filters import real_projects, stored_flag
from kindred_map.schema import project_types

LEVELS = ("ward", "deanery", "borough")
GEOJSON_DECIMALS = 6
"""RFC 7946 advises no more than 6 decimals (about 10 cm on the ground)."""
PROJECT_LAYERS = ("borough", "ward", "deanery", "lsoa", "postcode")
"""Layers behind a project's joined fields: their vintages and attribution travel with it."""

LEVEL_COLUMNS = {
    "ward": ("WD24CD", "WD24NM", "LAD24CD", "LAD24NM", "population"),
    "deanery": ("deanery_id", "deanery_name", "archdeaconry_name", "population"),
    "borough": ("LAD25CD", "LAD25NM", "in_lcr_ca", "population"),
}
"""Boundary-layer columns kept in each area summary (the layer key first)."""


def _code_or_none(value) -> str | None:
    """An area code as text, None (null in every format) if missing."""
    return boundaries.code_text(value) or None


def _date_value(value) -> date | None:
    """A calendar date from a date, a timestamp or ISO text (YYYY-MM-DD...); None if none.

    Text that is not an ISO date raises a ValueError: the store keeps dates as ISO text, so
    anything else is a broken store, not a date to guess."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise ValueError(f"last_checked {text!r} is not a YYYY-MM-DD date") from error


def _typed(frame: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Columns in the dtype every format can write (nullable ints and booleans, text)."""
    for column, kind in kinds.items():
        values = frame[column]
        if kind in ("text", "code"):
            frame[column] = values.map(_code_or_none if kind == "code" else _text).astype("string")
        elif kind == "int":
            frame[column] = pd.to_numeric(values, errors="coerce").round().astype("Int64")
        elif kind == "float":
            frame[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif kind == "bool":
            frame[column] = values.map(stored_flag).astype("boolean")
        elif kind == "date":
            dates = values.map(_date_value).astype("object")
            frame[column] = pd.array(dates, dtype=pd.ArrowDtype(pa.date32()))
    return frame


def typed_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A table's columns in the types columns.py gives them for ``table`` (dates as dates, so
    a GeoPackage gets DATE fields); a column without a definition is a ValueError."""
    kinds = {
        name: columns.describe(name, table).kind for name in frame.columns if name != "geometry"
    }
    typed = _typed(pd.DataFrame(frame).copy(), kinds)
    typed.attrs = dict(frame.attrs)
    return typed


def _text(value) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, datetime | date):
        return _date_value(value).isoformat()
    return str(value)


def _vintage_text(names) -> str:
    return "; ".join(f"{name}: {boundaries.metadata(name)['vintage']}" for name in names)


def synthetic_notice(projects: pd.DataFrame) -> str | None:
    """The warning every file carries in its first lines when it holds illustrative records."""
    made_up = int(projects["synthetic"].map(stored_flag).fillna(False).astype(bool).sum())
    if not made_up:
        return None
    return (
        f"WARNING: INCLUDES {made_up} ILLUSTRATIVE (SYNTHETIC) RECORD(S) THAT ARE NOT REAL "
        "PROJECTS (synthetic = true). Every count and coverage figure here includes them: do "
        "not use it as evidence of real provision."
    )


def project_table(projects: gpd.GeoDataFrame, include_synthetic: bool = False) -> gpd.GeoDataFrame:
    """The projects as they may leave the tool: synthetic records dropped (unless
    ``include_synthetic``), ward_only records masked, columns in `columns.PROJECT_COLUMNS`
    order, lon/lat and easting/northing of the position shown, EPSG:4326."""
    return public_project_table(privacy.public_records(real_projects(projects, include_synthetic)))


def public_project_table(public: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """`project_table` of projects already through `privacy.public_records` (left unchanged):
    an export of several tables makes the public view once."""
    table = public.copy()
    shown = table.geometry
    located = (shown.notna() & ~shown.is_empty).to_numpy()
    grid = shown.to_crs(boundaries.BNG)
    for column, values, decimals in (
        ("lon", shown.x, GEOJSON_DECIMALS),
        ("lat", shown.y, GEOJSON_DECIMALS),
        ("easting", grid.x, 0),
        ("northing", grid.y, 0),
    ):
        table[column] = np.where(located, np.round(values.to_numpy(dtype=float), decimals), np.nan)
    labels = {key: spec["label"] for key, spec in project_types().items()}
    table["type_label"] = table["type"].map(lambda t: labels.get(t, t))
    street = table["location_precision"].astype("string").str.strip().str.lower() == "street"
    no_note = table["location_note"].isna()
    table["location_note"] = table["location_note"].astype("object")
    table.loc[(street & no_note).fillna(False).to_numpy(), "location_note"] = (
        "Approximate: placed at a street, postcode or place centre"
    )
    table["boundary_vintage"] = _vintage_text(PROJECT_LAYERS)
    kinds = {name: column.kind for name, column in columns.PROJECT_COLUMNS.items()}
    table = _typed(pd.DataFrame(table), kinds)
    return gpd.GeoDataFrame(
        table[list(columns.PROJECT_COLUMNS)], geometry=shown.to_numpy(), crs=boundaries.WGS84
    )


def _type_keys(projects: pd.DataFrame) -> list[str]:
    configured = list(project_types())
    extra = sorted(set(projects["type"].dropna().astype(str)) - set(configured))
    return configured + extra


COVERAGE_KEYS = {
    "ward": ("WD24CD", "WD24NM"),
    "deanery": ("deanery_id", "deanery_name"),
    "borough": ("LAD25CD", "LAD25NM"),
}
"""Key and name columns of coverage tables (names the summary lacks, e.g. a ward's LAD25NM,
are dropped: the summary names the borough already)."""


def _merge_coverage(summary: gpd.GeoDataFrame, coverage: pd.DataFrame, level: str):
    """Add per-area coverage and gap figures, keyed by the level's area code.

    A figure named like a summary column is dropped when it agrees for every area, else kept
    as ``coverage_<name>`` (e.g. a population counted another way)."""
    key = boundaries.LAYERS[level]["key"]
    figures = pd.DataFrame(coverage)
    if key not in figures.columns:
        figures = figures.reset_index()
    if key not in figures.columns:
        raise ValueError(f"{level} coverage figures need a {key} column or index")
    names = [name for _, name in COVERAGE_KEYS.values() if name not in summary.columns]
    figures = figures.drop(columns=names, errors="ignore")
    figures = figures.assign(_code=figures[key].map(boundaries.code_text)).drop(columns=key)
    if figures["_code"].duplicated().any():
        raise ValueError(f"{level} coverage figures repeat an area code")
    if not set(figures["_code"]) & set(summary["_code"]):
        raise ValueError(f"none of the coverage figures' codes is a {level} code")
    figures = figures.drop(columns="geometry", errors="ignore").set_index("_code")
    aligned = figures.reindex(summary["_code"])
    for column in [c for c in figures.columns if c in summary.columns]:
        ours = summary[column].reset_index(drop=True).astype("string")
        theirs = aligned[column].reset_index(drop=True).astype("string")
        given = theirs.notna()
        same = (ours[given] == theirs[given]).fillna(False).all()
        if same:
            aligned = aligned.drop(columns=column)
        else:
            aligned = aligned.rename(columns={column: f"coverage_{column}"})
    merged = pd.concat([summary.reset_index(drop=True), aligned.reset_index(drop=True)], axis=1)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=summary.crs)


def _check_coverage(coverage: pd.DataFrame | None, include_synthetic: bool) -> None:
    """Refuse coverage figures that counted synthetic records in an export that leaves them out
    (`coverage.CoverageResult` tables say how many they counted in ``attrs``)."""
    counted = 0 if coverage is None else int(coverage.attrs.get("synthetic_projects", 0))
    if counted and not include_synthetic:
        raise ValueError(
            f"these coverage figures count {counted} synthetic (illustrative) project(s): "
            "compute them without (coverage.assess(..., include_synthetic=False)) or export "
            "with include_synthetic=True"
        )


def area_summary(
    projects: gpd.GeoDataFrame,
    level: str,
    coverage: pd.DataFrame | None = None,
    area_filters: Mapping[str, object] | None = None,
    include_synthetic: bool = False,
    *,
    masked: bool = False,
) -> gpd.GeoDataFrame:
    """One row per ward, deanery or borough (EPSG:4326): projects in total and by type, per
    10,000 residents, and the coverage and gap figures when given (keyed by area code).
    Synthetic records count only with ``include_synthetic`` (coverage figures likewise).

    Projects count in the area their joined code names (the postcode's ward where known), as
    their public view (`privacy.public_records`) gives it: a type only a home gives is scrubbed.
    ``area_filters`` (boroughs, deaneries, wards, as for `filters.filter_projects`; other keys
    are ignored) keep only the areas inside the filtered region, zero-project areas included.
    ``masked``: ``projects`` are that public view already, synthetic records left out unless
    ``include_synthetic`` (an export of several tables makes the view once)."""
    if level not in LEVELS:
        raise ValueError(f"no summary by {level!r}; choose one of {', '.join(LEVELS)}")
    if not masked:
        projects = privacy.public_records(real_projects(projects, include_synthetic))
    _check_coverage(coverage, include_synthetic)
    key = boundaries.LAYERS[level]["key"]
    areas = boundaries.load(level)
    summary = gpd.GeoDataFrame(areas[[*LEVEL_COLUMNS[level], "geometry"]], crs=areas.crs)
    summary["_code"] = summary[key].map(boundaries.code_text)
    chosen = {k: v for k, v in (area_filters or {}).items() if k in filters.AREA_FILTERS}
    kept = filters.areas_in_filter(level, **chosen)
    if kept is not None:
        summary = summary[summary["_code"].isin(kept)].reset_index(drop=True)
    codes = projects[key].map(boundaries.code_text)
    population = pd.to_numeric(summary["population"], errors="coerce")

    def per_10k(counts: pd.Series) -> pd.Series:
        return (counts / population.where(population > 0) * 10_000).round(2)

    def count(mask: pd.Series) -> pd.Series:
        tally = codes[mask.to_numpy()].value_counts()
        return summary["_code"].map(tally).fillna(0).astype("int64")

    everything = pd.Series(True, index=projects.index)
    summary["projects"] = count(everything)
    summary["projects_per_10k"] = per_10k(summary["projects"])
    for type_key in _type_keys(projects):
        column = f"projects_{type_key}"
        summary[column] = count(projects["type"].astype("string") == type_key)
        summary[f"{column}_per_10k"] = per_10k(summary[column])
    summary["synthetic_projects"] = count(projects["synthetic"].map(stored_flag).fillna(False))
    summary["home_run_projects"] = count(privacy.is_ward_only(projects))
    summary["boundary_vintage"] = _vintage_text([level])
    if coverage is not None:
        summary = _merge_coverage(summary, coverage, level)
    summary[key] = summary["_code"].astype("string")
    names = [c for c in summary.columns if c not in ("_code", "geometry")]
    kinds = {name: columns.describe(name, level).kind for name in names}
    summary = _typed(pd.DataFrame(summary[[*names, "geometry"]]), kinds)
    return gpd.GeoDataFrame(summary, geometry="geometry", crs=areas.crs)


def reach_distance(coverage: Mapping[str, pd.DataFrame] | None) -> float | None:
    """The reach distance the coverage tables were computed at (`coverage` tables say so)."""
    for table in (coverage or {}).values():
        if table is not None and "distance_m" in table.attrs:
            return float(table.attrs["distance_m"])
    return None


def coverage_figures(
    projects: gpd.GeoDataFrame,
    types=None,
    distance_m: float | None = None,
    include_synthetic: bool = False,
    include_outside: bool = True,
) -> dict[str, pd.DataFrame]:
    """Per-area coverage and gap figures (with ``gap_rank``) fit to leave the tool, for
    ``coverage=``. Projects just outside the region count for the residents near them unless
    ``include_outside`` is False (see `kindred_map.coverage`).

    Home-run projects count at their ward's centre (as exported), not at their true position:
    figures from the true position would hint where in its ward a home-run project is.
    ``types`` and ``distance_m`` (default: kindred_map.coverage's) as for coverage.assess;
    synthetic records count only with ``include_synthetic``."""
    public = privacy.public_records(projects)
    public = public[public.geometry.notna() & ~public.geometry.is_empty]
    distance = DEFAULT_DISTANCE_M if distance_m is None else distance_m
    options = {"include_synthetic": include_synthetic}
    result = assess(public, types, distance, include_outside=include_outside, **options)
    tables = {level: result.gaps(level) for level in LEVELS}
    if include_outside and result.outside:
        inside = assess(public, types, distance, include_outside=False, **options)
        effect = boundary_effect(result, inside, "borough")
        newly = dict(zip(effect["LAD25NM"], effect["newly_within_reach"].astype(int), strict=True))
        for table in tables.values():
            table.attrs["newly_within_reach"] = newly
    return tables


def _unplaced(projects: pd.DataFrame, level: str) -> int:
    """Projects that count in no area of ``level`` (outside the region or the diocese)."""
    key = boundaries.LAYERS[level]["key"]
    known = set(boundaries.load(level)[key].map(boundaries.code_text))
    return int((~projects[key].map(boundaries.code_text).isin(known)).sum())
