"""Area levels, measures and per-area figures (projects, population, deprivation, gaps)."""

from collections.abc import Iterable
from functools import cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import boundaries, coverage, filters
from kindred_map.schema import project_types

LEVELS = {
    "ward": {"label": boundaries.LAYER_LABELS["ward"], "noun": "Ward"},
    "deanery": {"label": boundaries.LAYER_LABELS["deanery"], "noun": "Deanery"},
    "borough": {"label": boundaries.LAYER_LABELS["borough"], "noun": "Borough"},
    "lsoa": {"label": "LSOAs (2021)", "noun": "LSOA"},
}
"""Area levels the map can shade, with the label shown in the layer chooser."""


PROJECT_AREA_COLUMNS = {"ward": "WD24CD", "deanery": "deanery_id", "borough": "LAD25CD"}


PROJECT_AREA_COLUMNS["lsoa"] = "LSOA21CD"
"""The joined field naming a project's area of each level (blank LSOA for home-run projects)."""


DEANERY_NOTE = (
    "Deanery boundaries are approximate: derived from the parish list and small-area "
    "geography, not official Church of England boundaries."
)


HOME_RUN_LSOA_NOTE = (
    "Home-run projects are not counted by LSOA: that would place them more precisely than "
    "their ward."
)


def _weight_words() -> str:
    """The gap score's weights in words, from `coverage.deprivation_weight` itself."""
    one, three, five = coverage.deprivation_weight([1, 3, 5])
    return f"{one:g} in IMD 2025 deciles 1-2, {three:g} in deciles 3-4 and {five:g} otherwise"


GAP_SCORE_HELP = (
    "Gap score = the people beyond reach, each counted by the deprivation of their small "
    f"area (LSOA): weight {_weight_words()}. 1,000 people beyond reach in the most deprived "
    "20% score 2,000."
)
"""The gap score's formula and weights, shown wherever the score is."""


PER_1000_HELP = (
    "Gap score per 1,000 residents = gap score / residents x 1,000, so areas of different size "
    "compare: 0 means everyone is within reach; the most it can be is 2,000 (everyone beyond "
    "reach and in deciles 1-2)."
)


MEASURES = {
    "projects": {
        "label": "Projects",
        "decimals": 0,
        "help": "How many of the projects shown (after the filters) are in each area.",
    },
    "per_10k": {
        "label": "Projects per 10,000 residents",
        "decimals": 1,
        "help": "Projects shown per 10,000 residents (Census 2021), to compare areas of "
        "different size: 5 means one project for every 2,000 people.",
    },
    "imd_decile": {
        "label": "IMD 2025 decile (1 = most deprived)",
        "decimals": 0,
        "help": "Deprivation: 1 = among the most deprived 10% of small areas in England, 10 = "
        "the least. Wards, deaneries and boroughs have no official decile: the "
        "population-weighted median of their residents' LSOA deciles is shown.",
    },
    "gap_score": {
        "label": "Gap score (need-weighted people beyond reach)",
        "decimals": 0,
        "help": GAP_SCORE_HELP,
    },
    "gap_per_1000": {
        "label": "Gap score per 1,000 residents",
        "decimals": 0,
        "help": PER_1000_HELP,
    },
}
"""What the areas can be shaded by, with a one-line "what this means" (``help``). The gap
measures come from `kindred_map.coverage` for the chosen project types and distance."""


GAP_MEASURES = ("gap_score", "gap_per_1000")


AREA_FILTER_LEVELS = {"boroughs": "borough", "deaneries": "deanery", "wards": "ward"}


def check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown area level {level!r}; choose one of {', '.join(LEVELS)}")


@cache
def area_choices(level: str) -> dict[str, str]:
    """Code -> label of every area of ``level``, sorted by label (wards name their borough)."""
    check_level(level)
    layer = boundaries.LAYERS[level]
    areas = boundaries.load(level)
    codes = boundaries.code_texts(areas[layer["key"]])
    labels = areas[layer["name_field"]].astype(str)
    if level == "ward":
        labels = labels + " (" + areas["LAD24NM"].astype(str) + ")"
    elif level == "lsoa":
        labels = labels + " (" + codes + ")"
    pairs = sorted(zip(codes, labels, strict=True), key=lambda pair: (pair[1].casefold(), pair[0]))
    return dict(pairs)


def resolve_area(level: str, text: str) -> str:
    """The code of an area of ``level`` given its code, name or label (case-insensitive)."""
    choices = area_choices(level)
    wanted = str(text).strip().casefold()
    for code in choices:
        if wanted == code.casefold():
            return code
    names = boundaries.load(level)
    layer = boundaries.LAYERS[level]
    matches = [
        code
        for code, name in zip(
            boundaries.code_texts(names[layer["key"]]),
            names[layer["name_field"]].astype(str),
            strict=True,
        )
        if wanted in (name.casefold(), choices.get(code, "").casefold())
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(
            f"{text!r} names {len(matches)} {level}s: give the code, one of {', '.join(matches)}"
        )
    raise ValueError(f"no {level} with the code or name {text!r}")


def _filter_region(chosen: dict[str, tuple[str, ...]]):
    """The filtered region (EPSG:27700): the intersection of the chosen areas (codes by filter
    argument: boroughs, deaneries, wards); None = all."""
    region = None
    for argument, level in AREA_FILTER_LEVELS.items():
        codes = chosen[argument]
        if not codes:
            continue
        shapes = boundaries.load(level).to_crs(boundaries.BNG)
        keys = boundaries.code_texts(shapes[boundaries.LAYERS[level]["key"]])
        part = shapes[keys.isin(codes).to_numpy()].union_all()
        region = part if region is None else region.intersection(part)
    return region


@cache
def _areas_in_filter(level: str, boroughs, deaneries, wards) -> tuple[str, ...] | None:
    if level != "lsoa":
        found = filters.areas_in_filter(level, list(boroughs), list(deaneries), list(wards))
        return None if found is None else tuple(found)
    region = _filter_region({"boroughs": boroughs, "deaneries": deaneries, "wards": wards})
    if region is None:
        return None
    lsoas = boundaries.load("lsoa").to_crs(boundaries.BNG)
    inside = shapely.contains_xy(
        region, *shapely.get_coordinates(lsoas.representative_point().to_numpy()).T
    )
    return tuple(lsoas.loc[inside, "LSOA21CD"].astype(str))


def areas_in_view(level: str, view) -> list[str]:
    """Codes of the ``level`` areas inside the `View`'s area filters (every area when none).

    Wards, deaneries and boroughs as in `filters.areas_in_filter` (the exports use it too);
    an LSOA is inside when its representative point lies in the filtered region."""
    check_level(level)
    found = _areas_in_filter(level, view.boroughs, view.deaneries, view.wards)
    return list(area_choices(level)) if found is None else list(found)


@cache
def area_deprivation(level: str) -> pd.DataFrame:
    """IMD 2025 per area, indexed by code: ``imd_decile`` and ``share_deciles_1_2``.

    An LSOA has its own decile. A ward, deanery or borough has no official decile: it gets the
    population-weighted median of its residents' LSOA deciles (Census 2021 residents spread
    over postcodes, as in `kindred_map.coverage`), and the share of its residents in deciles
    1-2 (the most deprived 20% in England)."""
    check_level(level)
    if level == "lsoa":
        lsoas = boundaries.load("lsoa")
        table = pd.DataFrame(
            {
                "imd_decile": pd.to_numeric(lsoas["imd_decile"]).astype("Int64").to_numpy(),
                "share_deciles_1_2": lsoas["imd_decile"].isin((1, 2)).astype(float).to_numpy(),
            },
            index=lsoas["LSOA21CD"].astype(str),
        )
        return table
    key = boundaries.LAYERS[level]["key"]
    # the live region postcodes: ONS assigns each its ward and borough; its deanery is the
    # derived deanery polygon it lies in (precomputed in the population table)
    people = coverage.population_points(columns=(key, "residents", "imd_decile"))
    people[key] = boundaries.code_texts(people[key])
    people = people[(people[key] != "") & people["imd_decile"].notna()]
    people["imd_decile"] = people["imd_decile"].astype("int64")
    median = coverage.weighted_median(people, key, "imd_decile", "residents")
    deprived = people["residents"].where(people["imd_decile"].isin((1, 2)), 0)
    residents = people.groupby(key)["residents"].sum()
    share = deprived.groupby(people[key]).sum() / residents.where(residents > 0)
    return pd.DataFrame(
        {"imd_decile": median.astype("Int64"), "share_deciles_1_2": share.round(3)}
    ).rename_axis(None)


def area_figures(
    level: str, shown: pd.DataFrame, coverage_table: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per area of ``level`` (indexed by code): name, population, projects in total and
    by type (``projects_<type>``), per 10,000 residents, IMD 2025 (see `area_deprivation`)
    and, given the coverage table for this level, the gap figures.

    ``shown`` are the projects on the map (filtered, home-run ones masked): a project counts in
    the area its joined code names."""
    check_level(level)
    layer = boundaries.LAYERS[level]
    areas = boundaries.load(level)
    codes = boundaries.code_texts(areas[layer["key"]])
    table = pd.DataFrame(
        {
            "name": areas[layer["name_field"]].astype(str).to_numpy(),
            "population": pd.to_numeric(areas["population"]).astype("int64").to_numpy(),
        },
        index=pd.Index(codes, name="code"),
    )
    if level == "ward":
        table.insert(1, "borough", areas["LAD24NM"].astype(str).to_numpy())
    project_codes = (
        boundaries.code_texts(shown[PROJECT_AREA_COLUMNS[level]]) if len(shown) else pd.Series()
    )
    table["projects"] = table.index.map(project_codes.value_counts()).fillna(0).astype("int64")
    population = table["population"].where(table["population"] > 0)
    table["per_10k"] = (10_000 * table["projects"] / population).round(2)
    deprivation = area_deprivation(level)
    table["imd_decile"] = table.index.map(deprivation["imd_decile"]).astype("Int64")
    table["share_deciles_1_2"] = table.index.map(deprivation["share_deciles_1_2"]).astype(float)
    for kind in project_types():
        mask = (shown["type"] == kind).to_numpy() if len(shown) else np.array([], bool)
        counts = project_codes[mask].value_counts()
        table[f"projects_{kind}"] = table.index.map(counts).fillna(0).astype("int64")
    if coverage_table is not None:
        key = coverage.LEVELS[level][0]
        gaps = coverage_table.set_index(boundaries.code_texts(coverage_table[key]))
        for column in ("pct_covered", "beyond_reach", "gap_score", "gap_per_1000"):
            table[column] = table.index.map(gaps[column]).astype(float)
    return table


def coverage_summary(
    projects: gpd.GeoDataFrame,
    types: Iterable[str],
    distance_m: float,
    examples: bool = False,
    open_at: str = "",
    inside_only: bool = False,
) -> dict:
    """Coverage for the chosen types and distance: headline text, per-area figures and ranked
    gaps by level (ward, deanery, borough; LSOA for shading), from `kindred_map.coverage`.

    Illustrative (synthetic) records reach nobody unless ``examples``: they are not real.
    ``open_at`` ("sat 10:00", "weekend"...; "" = any time): only projects open then reach
    anyone; those with unknown hours are counted apart in the headline, never as open.
    ``inside_only``: projects outside the region reach nobody (for comparison; by default
    they count for the residents near them)."""
    result = coverage.assess(
        projects,
        list(types) or None,
        distance_m,
        include_synthetic=examples,
        open_at=open_at or None,
        include_outside=not inside_only,
    )
    return {
        "headline": result.headline_text(),
        "areas": {level: result.by_area(level) for level in LEVELS},
        "gaps": {level: result.gaps(level) for level in coverage.AREA_LEVELS},
    }


def needs_coverage(view) -> bool:
    """True when the map shades areas by a gap measure (computed by `kindred_map.coverage`)."""
    return view.measure in GAP_MEASURES
