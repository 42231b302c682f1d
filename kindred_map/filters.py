"""Select projects by type, area, deprivation and realness: shared by the dashboard and exports."""

from collections.abc import Iterable

import geopandas as gpd
import pandas as pd

from kindred_map import boundaries
from kindred_map.boundaries import code_text
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, resolve_types
from kindred_map.text import map_distinct

AREA_FILTERS = {
    "boroughs": ("borough", "LAD25CD", "LAD25NM"),
    "deaneries": ("deanery", "deanery_id", "deanery_name"),
    "wards": ("ward", "WD24CD", "WD24NM"),
}
"""Filter argument -> (boundary layer, code column, name column). Projects carry the same
columns (the joined fields), so a filter matches on the project's own code."""


def _values(values: Iterable | str | None) -> list[str]:
    """A list of stripped, non-empty texts from a string ("a,b"), a list, or None."""
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",")
    return [str(value).strip() for value in values if str(value).strip()]


def area_codes(argument: str, values: Iterable | str | None) -> tuple[list[str], list[str]]:
    """(area codes, values matching none) for codes or names (case-insensitive) of boroughs,
    deaneries or wards, the layer read once for all values (a link may carry hundreds).

    A ward name shared by wards in different boroughs selects all of them."""
    if argument not in AREA_FILTERS:
        raise ValueError(f"unknown area filter {argument!r}; expected one of {list(AREA_FILTERS)}")
    wanted = _values(values)
    if not wanted:  # no filter: the layer is not read (a command line run pays for each read)
        return [], []
    layer, code_column, name_column = AREA_FILTERS[argument]
    areas = boundaries.load(layer)
    codes = areas[code_column].map(code_text)
    lookup: dict[str, list[str]] = {}
    for code, name in zip(codes, areas[name_column].astype(str).str.strip(), strict=True):
        for key in dict.fromkeys((code.casefold(), name.casefold())):
            lookup.setdefault(key, []).append(code)
    selected: list[str] = []
    unknown: list[str] = []
    for value in wanted:
        matches = lookup.get(value.casefold())
        if matches is None:
            unknown.append(value)
        selected.extend(code for code in matches or () if code not in selected)
    return selected, unknown


def resolve_areas(argument: str, values: Iterable | str | None) -> list[str]:
    """`area_codes`, or a ValueError naming the known areas when a value matches none."""
    selected, unknown = area_codes(argument, values)
    if unknown:
        layer, _, name_column = AREA_FILTERS[argument]
        known = ", ".join(sorted(boundaries.load(layer)[name_column].astype(str).unique()))
        raise ValueError(f"no {layer} called {unknown[0]!r}; give a code or one of: {known}")
    return selected


def _imd_deciles(values: Iterable | str | None) -> list[int]:
    deciles = []
    for value in _values(values):
        try:
            decile = int(value)
        except ValueError:
            decile = 0
        if not 1 <= decile <= 10:
            raise ValueError(f"IMD decile must be a whole number from 1 to 10, got {value!r}")
        deciles.append(decile)
    return deciles


def _types(values: Iterable | str | None) -> list[str]:
    """Chosen type keys; none chosen means no type filter (unknown ones raise a ValueError)."""
    chosen = _values(values)
    return list(resolve_types(chosen)) if chosen else []


def filter_projects(
    projects: gpd.GeoDataFrame,
    types: Iterable[str] | str | None = None,
    boroughs: Iterable[str] | str | None = None,
    deaneries: Iterable[str] | str | None = None,
    wards: Iterable[str] | str | None = None,
    imd_deciles: Iterable[int] | str | None = None,
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """The projects matching every given filter (None or empty = no filter on that field).

    Types are configured type keys; areas are codes or names; IMD deciles 1-10 (1 = most
    deprived) of the project's LSOA. Illustrative (synthetic) records are dropped unless
    ``include_synthetic`` is given by name: made-up examples never enter a figure by default."""
    keep = pd.Series(True, index=projects.index)
    chosen_types = _types(types)
    if chosen_types:
        keep &= projects["type"].isin(chosen_types)
    for argument, values in (("boroughs", boroughs), ("deaneries", deaneries), ("wards", wards)):
        codes = resolve_areas(argument, values)
        if codes:
            code_column = AREA_FILTERS[argument][1]
            keep &= projects[code_column].map(code_text).isin(codes)
    deciles = _imd_deciles(imd_deciles)
    if deciles:
        keep &= pd.to_numeric(projects["imd_decile"], errors="coerce").isin(deciles)
    if not include_synthetic:
        keep &= ~projects["synthetic"].fillna(False).astype(bool).to_numpy()
    return projects[keep.to_numpy()].copy()


def _check_projects(projects: gpd.GeoDataFrame, fields=None) -> None:
    """A ValueError unless ``projects`` are store records: a GeoDataFrame with a CRS, the
    given store ``fields`` (default: every record and joined field) and point geometries."""
    if not isinstance(projects, gpd.GeoDataFrame) or projects.crs is None:
        raise ValueError("projects must be a GeoDataFrame with a CRS (read them from the store)")
    fields = (*RECORD_FIELDS, *JOINED_FIELDS) if fields is None else fields
    missing = [c for c in fields if c not in projects.columns]
    if missing:
        raise ValueError(
            f"projects lack store columns {missing}; read them with store.read_projects"
        )
    located = projects.geometry.dropna()
    located = located[~located.is_empty]
    if not (located.geom_type == "Point").all():
        raise ValueError(
            f"project geometries must be points, found {sorted(set(located.geom_type))}"
        )


def stored_flag(value) -> bool | None:
    """A stored true/false cell as a bool (text "true", "1", "yes", "y"), None when empty."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y")
    return bool(value)


def real_projects(projects: gpd.GeoDataFrame, include_synthetic: bool = False, fields=None):
    """The projects an export may count: illustrative (synthetic) records only when asked for
    by name (``include_synthetic=True``), so no made-up project reaches a council's figures.
    ``fields``: the store columns the caller reads, which must be there (default: every
    record and joined field; the change analysis reads a few, `kindred_map.change.FIELDS`)."""
    _check_projects(projects, fields)
    if include_synthetic:
        return projects
    synthetic = map_distinct(projects["synthetic"], stored_flag).fillna(False).astype(bool)
    return projects[~synthetic.to_numpy()]


AREA_OVERLAP = 0.5
"""An area belongs to the filtered region when at least this share of it, or of the region,
is shared: wards nest in boroughs (share 1); a ward mostly inside a deanery counts for it."""


def areas_in_filter(
    level: str,
    boroughs: Iterable[str] | str | None = None,
    deaneries: Iterable[str] | str | None = None,
    wards: Iterable[str] | str | None = None,
) -> list[str] | None:
    """Codes of the ``level`` areas (borough, deanery or ward) inside the area filters.

    None when no area filter is set (every area). The filtered region is the intersection of
    the chosen boroughs, deaneries and wards; overlaps are measured in EPSG:27700."""
    chosen = {"boroughs": boroughs, "deaneries": deaneries, "wards": wards}
    region = None
    for argument, values in chosen.items():
        codes = resolve_areas(argument, values)
        if not codes:
            continue
        layer, code_column, _ = AREA_FILTERS[argument]
        shapes = boundaries.load(layer).to_crs(boundaries.BNG)
        part = shapes[shapes[code_column].map(code_text).isin(codes)].union_all()
        region = part if region is None else region.intersection(part)
    if region is None:
        return None
    layer = {spec[0]: spec for spec in AREA_FILTERS.values()}
    if level not in layer:
        raise ValueError(f"no areas of level {level!r}; choose borough, deanery or ward")
    areas = boundaries.load(level).to_crs(boundaries.BNG)
    if region.is_empty:
        return []
    shared = areas.geometry.intersection(region).area
    inside = (shared >= AREA_OVERLAP * areas.geometry.area) | (shared >= AREA_OVERLAP * region.area)
    return areas.loc[inside & (shared > 0), layer[level][1]].map(code_text).tolist()


def describe_filters(
    types: Iterable[str] | str | None = None,
    boroughs: Iterable[str] | str | None = None,
    deaneries: Iterable[str] | str | None = None,
    wards: Iterable[str] | str | None = None,
    imd_deciles: Iterable[int] | str | None = None,
    include_synthetic: bool = False,
) -> dict[str, str]:
    """The filters in force, in words, for an export's README (always says whether illustrative
    records are in)."""
    described = {}
    if _types(types):
        described["Project types"] = ", ".join(_types(types))
    for argument, values in (("boroughs", boroughs), ("deaneries", deaneries), ("wards", wards)):
        if _values(values):
            described[argument.capitalize()] = ", ".join(_values(values))
    if _imd_deciles(imd_deciles):
        described["IMD 2025 deciles"] = ", ".join(str(d) for d in _imd_deciles(imd_deciles))
    described["Illustrative (synthetic) records"] = (
        "INCLUDED (not real projects)" if include_synthetic else "left out"
    )
    return described
