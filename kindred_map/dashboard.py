"""The dashboard's logic without widgets: the view and its URL, area figures, search, tables."""

import contextlib
import html
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import boundaries, coverage, export, filters, geocode, maps, privacy
from kindred_map.paths import DATA_DIR, DEFAULT_STORE
from kindred_map.schema import project_types, resolve_types

STORE_ENV = "KINDRED_MAP_STORE"
STALE_MONTHS = 12
"""A record last checked longer ago than this is flagged: the project may have stopped."""
DISTANCE_LIMITS_M = (100, 20_000)
NEAREST_LIMIT = 10
EPS_LIMITS_M = (50, 5_000)
MIN_SAMPLES_LIMITS = (3, 50)
POSTCODE_MAX_CHARS = 16

LEVELS = {
    "ward": {"label": maps.BOUNDARY_LAYERS["ward"]["label"], "noun": "Ward"},
    "deanery": {"label": maps.BOUNDARY_LAYERS["deanery"]["label"], "noun": "Deanery"},
    "borough": {"label": maps.BOUNDARY_LAYERS["borough"]["label"], "noun": "Borough"},
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

MEASURES = {
    "projects": {"label": "Projects", "decimals": 0},
    "per_10k": {"label": "Projects per 10,000 residents", "decimals": 1},
    "imd_decile": {"label": "IMD 2025 decile (1 = most deprived)", "decimals": 0},
    "gap_score": {"label": "Gap score (need-weighted people beyond reach)", "decimals": 0},
    "gap_per_1000": {"label": "Gap score per 1,000 residents", "decimals": 0},
}
"""What the areas can be shaded by. The gap measures come from `kindred_map.coverage` for the
chosen project types and distance."""
GAP_MEASURES = ("gap_score", "gap_per_1000")

SEQUENTIAL_COLOURS = ("#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494")
"""ColorBrewer YlGnBu: sequential, safe for the common colour-vision deficiencies."""
IMD_COLOURS = (
    "#a50026",
    "#d73027",
    "#f46d43",
    "#fdae61",
    "#fee090",
    "#e0f3f8",
    "#abd9e9",
    "#74add1",
    "#4575b4",
    "#313695",
)
"""ColorBrewer RdYlBu (colour-blind safe) for IMD deciles 1 (red, most deprived) to 10."""
ZERO_COLOUR = "#ececec"
NO_DATA_COLOUR = "#bdbdbd"
MAX_CLASSES = 5


# --- the view and the URL ---------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """Everything that decides what the dashboard shows; a link carries it (see `view_to_query`).

    Area filters hold codes (ward and borough GSS codes, deanery ids as text). ``area`` is the
    selected area of ``layer`` whose panel is open."""

    types: tuple[str, ...] = ()
    boroughs: tuple[str, ...] = ()
    deaneries: tuple[str, ...] = ()
    wards: tuple[str, ...] = ()
    imd: tuple[int, ...] = ()
    layer: str = "ward"
    measure: str = "projects"
    postcode: str = ""
    distance: int = int(coverage.DEFAULT_DISTANCE_M)
    area: str = ""
    gaps: bool = False
    clusters: bool = False
    eps: int = 500
    min_samples: int = 3


DEFAULT_VIEW = View()
LIST_FIELDS = ("types", "boroughs", "deaneries", "wards", "imd")
AREA_FILTER_LEVELS = {"boroughs": "borough", "deaneries": "deanery", "wards": "ward"}


def warm_up() -> None:
    """Read and build once what the first page needs (boundary layers, area lists, deprivation
    by area, the postcode index, the default map's geometries), so the first visitor of a
    fresh server waits for none of it. `kindred-map dashboard` calls it before Streamlit starts.
    """
    for level in LEVELS:
        area_choices(level)
        area_deprivation(level)
    geocode.postcode_index()
    from kindred_map import store as stores

    build_map(stores.read_projects(store_path()), DEFAULT_VIEW)


def _split(value) -> list[str]:
    """Values from a query parameter: "a,b", or a list of such (repeated keys)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _last(value) -> str:
    if isinstance(value, list | tuple):
        return str(value[-1]).strip() if value else ""
    return "" if value is None else str(value).strip()


def _whole_number(text: str, limits: tuple[int, int], what: str, problems: list[str]):
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not limits[0] <= number <= limits[1]:
        problems.append(
            f"Ignored {what} {text!r} in the link: give a whole number from "
            f"{limits[0]:,} to {limits[1]:,}"
        )
        return None
    return int(number)


def _area_codes(argument: str, values: list[str], problems: list[str]) -> tuple[str, ...]:
    codes: list[str] = []
    for value in values:
        try:
            found = filters.resolve_areas(argument, [value])
        except ValueError:
            problems.append(f"Ignored unknown {AREA_FILTER_LEVELS[argument]} {value!r} in the link")
            continue
        codes.extend(code for code in found if code not in codes)
    return tuple(codes)


def view_from_query(params: Mapping) -> tuple[View, list[str]]:
    """The view a link describes, and a message for every value that had to be ignored.

    Unknown parameters are left alone (they may belong to someone else); bad values never
    raise: the default is kept and the problem is reported."""
    problems: list[str] = []
    chosen: dict = {}
    known_types = project_types()
    types = _split(params.get("types"))
    for kind in types:
        if kind not in known_types:
            problems.append(f"Ignored unknown project type {kind!r} in the link")
    chosen["types"] = tuple(dict.fromkeys(t for t in types if t in known_types))
    for argument in AREA_FILTER_LEVELS:
        chosen[argument] = _area_codes(argument, _split(params.get(argument)), problems)
    deciles = []
    for text in _split(params.get("imd")):
        decile = _whole_number(text, (1, 10), "IMD decile", problems)
        if decile is not None and decile not in deciles:
            deciles.append(decile)
    chosen["imd"] = tuple(sorted(deciles))
    for name, options in (("layer", LEVELS), ("measure", MEASURES)):
        text = _last(params.get(name))
        if text and text not in options:
            problems.append(
                f"Ignored {name} {text!r} in the link; expected one of {', '.join(options)}"
            )
        elif text:
            chosen[name] = text
    postcode = _last(params.get("postcode"))
    if len(postcode) > POSTCODE_MAX_CHARS:
        problems.append("Ignored the postcode in the link: too long to be a postcode")
    elif postcode:
        chosen["postcode"] = postcode
    for name, limits, what in (
        ("distance", DISTANCE_LIMITS_M, "distance"),
        ("eps", EPS_LIMITS_M, "cluster distance"),
        ("min_samples", MIN_SAMPLES_LIMITS, "cluster size"),
    ):
        text = _last(params.get(name))
        number = _whole_number(text, limits, what, problems) if text else None
        if number is not None:
            chosen[name] = number
    for name in ("gaps", "clusters"):
        chosen[name] = _last(params.get(name)).lower() in ("1", "true", "yes", "on")
    view = replace(DEFAULT_VIEW, **chosen)
    area = _last(params.get("area"))
    if area and area in area_choices(view.layer):
        view = replace(view, area=area)
    elif area:
        problems.append(f"Ignored area {area!r} in the link: not a {view.layer} code")
    return view, problems


def view_to_query(view: View) -> dict[str, str]:
    """The view as query parameters: only what differs from the default, lists comma-joined."""
    query = {}
    for spec in fields(View):
        value = getattr(view, spec.name)
        if value == getattr(DEFAULT_VIEW, spec.name):
            continue
        if spec.name in LIST_FIELDS:
            query[spec.name] = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            query[spec.name] = "1"
        else:
            query[spec.name] = str(value)
    return query


def view_from_state(state: Mapping) -> View:
    """The view from widget values keyed by View field names (missing keys keep defaults)."""
    chosen = {}
    for spec in fields(View):
        if spec.name not in state or state[spec.name] is None:
            continue
        value = state[spec.name]
        if spec.name in LIST_FIELDS:
            value = tuple(int(v) if spec.name == "imd" else str(v) for v in value)
        elif spec.name in ("distance", "eps", "min_samples"):
            value = int(value)
        elif spec.name in ("gaps", "clusters"):
            value = bool(value)
        else:
            value = str(value).strip()
        chosen[spec.name] = value
    return replace(DEFAULT_VIEW, **chosen)


def widget_values(view: View) -> dict:
    """Initial widget values for a view (lists for multiselects), keyed by View field names."""
    values = {}
    for spec in fields(View):
        value = getattr(view, spec.name)
        values[spec.name] = list(value) if spec.name in LIST_FIELDS else value
    return values


def filter_words(view: View) -> dict[str, str]:
    """The view's filters in words (for exports' metadata and captions)."""
    return filters.describe_filters(
        types=list(view.types),
        boroughs=[area_choices("borough")[code] for code in view.boroughs],
        deaneries=[area_choices("deanery")[code] for code in view.deaneries],
        wards=[area_choices("ward")[code] for code in view.wards],
        imd_deciles=list(view.imd),
    )


# --- areas ------------------------------------------------------------------------------


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown area level {level!r}; choose one of {', '.join(LEVELS)}")


@cache
def area_choices(level: str) -> dict[str, str]:
    """Code -> label of every area of ``level``, sorted by label (wards name their borough)."""
    _check_level(level)
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


def split_types(text: str | None) -> list[str]:
    """Project types from "a,b" (None or "" = every type); unknown ones raise a ValueError."""
    return list(resolve_types(text)) if text else []


def decile_label(decile: int) -> str:
    """ "1 (most deprived)" ... "10 (least deprived)" for the IMD decile filter."""
    return {1: "1 (most deprived)", 10: "10 (least deprived)"}.get(decile, str(decile))


def _filter_region(view: View):
    """The filtered region (EPSG:27700): the intersection of the chosen areas; None = all."""
    region = None
    for argument, level in AREA_FILTER_LEVELS.items():
        codes = getattr(view, argument)
        if not codes:
            continue
        shapes = boundaries.load(level).to_crs(boundaries.BNG)
        keys = boundaries.code_texts(shapes[boundaries.LAYERS[level]["key"]])
        part = shapes[keys.isin(codes).to_numpy()].union_all()
        region = part if region is None else region.intersection(part)
    return region


@cache
def _areas_in_filter(level: str, boroughs, deaneries, wards) -> tuple[str, ...] | None:
    view = replace(DEFAULT_VIEW, boroughs=boroughs, deaneries=deaneries, wards=wards)
    if level != "lsoa":
        found = filters.areas_in_filter(level, list(boroughs), list(deaneries), list(wards))
        return None if found is None else tuple(found)
    region = _filter_region(view)
    if region is None:
        return None
    lsoas = boundaries.load("lsoa").to_crs(boundaries.BNG)
    inside = shapely.contains_xy(
        region, *shapely.get_coordinates(lsoas.representative_point().to_numpy()).T
    )
    return tuple(lsoas.loc[inside, "LSOA21CD"].astype(str))


def areas_in_view(level: str, view: View) -> list[str]:
    """Codes of the ``level`` areas inside the view's area filters (every area when none).

    Wards, deaneries and boroughs as in `filters.areas_in_filter` (the exports use it too);
    an LSOA is inside when its representative point lies in the filtered region."""
    _check_level(level)
    found = _areas_in_filter(level, view.boroughs, view.deaneries, view.wards)
    return list(area_choices(level)) if found is None else list(found)


def _weighted_median(frame: pd.DataFrame, key: str, value: str, weight: str) -> pd.Series:
    """Per ``key``: the smallest ``value`` with at least half the weight at or below it."""
    ordered = frame[[key, value, weight]].sort_values([key, value], kind="stable")
    total = ordered.groupby(key)[weight].transform("sum")
    running = ordered.groupby(key)[weight].cumsum()
    return ordered[(running * 2 >= total) & (total > 0)].groupby(key)[value].first()


@cache
def area_deprivation(level: str) -> pd.DataFrame:
    """IMD 2025 per area, indexed by code: ``imd_decile`` and ``share_deciles_1_2``.

    An LSOA has its own decile. A ward, deanery or borough has no official decile: it gets the
    population-weighted median of its residents' LSOA deciles (Census 2021 residents spread
    over postcodes, as in `kindred_map.coverage`), and the share of its residents in deciles
    1-2 (the most deprived 20% in England)."""
    _check_level(level)
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
    if level == "deanery":  # postcodes placed in the derived deanery polygons
        people = coverage.population_points()[[key, "residents", "imd_decile"]].copy()
    else:  # ONS assigns each postcode its ward and borough
        people = pd.DataFrame(boundaries.load("postcode"))
        people = people[people["status"] == "live"]
        deciles = boundaries.load("lsoa").set_index("LSOA21CD")["imd_decile"]
        people = people.assign(imd_decile=people["LSOA21CD"].map(deciles))
        people = people[[key, "residents", "imd_decile"]]
    people[key] = boundaries.code_texts(people[key])
    people = people[(people[key] != "") & people["imd_decile"].notna()]
    people["imd_decile"] = people["imd_decile"].astype("int64")
    median = _weighted_median(people, key, "imd_decile", "residents")
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
    _check_level(level)
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


# --- the choropleth ---------------------------------------------------------------------


def _number_text(value, decimals: int) -> str:
    if value is None or pd.isna(value):
        return "no data"
    return f"{value:,.{decimals}f}"


def _nice_upper(value: float, decimals: int) -> float:
    factor = 10**decimals
    return math.ceil(value * factor - 1e-9) / factor


def colour_classes(values: pd.Series, measure: str) -> tuple[pd.Series, list[dict]]:
    """The fill colour of each value and the legend classes ({label, colour}) for ``measure``.

    IMD deciles get one colour each (1 red = most deprived, 10 blue). Other measures: zero has
    its own pale class, positive values up to five classes of about equal size (quantiles,
    rounded to the measure's precision). Missing values are grey "no data"."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    colours = pd.Series(NO_DATA_COLOUR, index=values.index, dtype="str")
    classes = []
    if measure == "imd_decile":
        for decile, colour in enumerate(IMD_COLOURS, start=1):
            colours[numbers == decile] = colour
            classes.append({"label": str(decile), "colour": colour})
    else:
        decimals = MEASURES[measure]["decimals"]
        if (numbers == 0).any():
            colours[numbers == 0] = ZERO_COLOUR
            classes.append({"label": "0", "colour": ZERO_COLOUR})
        positive = numbers[numbers > 0]
        if len(positive):
            uppers = _class_uppers(positive, decimals)
            palette = SEQUENTIAL_COLOURS[-len(uppers) :] if len(uppers) > 1 else ("#41b6c4",)
            lower = positive.min()
            places = np.searchsorted(np.asarray(uppers), positive.to_numpy(), side="left")
            colours[positive.index] = [palette[min(p, len(palette) - 1)] for p in places]
            step = 10**-decimals
            for upper, colour in zip(uppers, palette, strict=True):
                low, high = _number_text(lower, decimals), _number_text(upper, decimals)
                label = low if low == high else f"{low} to {high}"
                classes.append({"label": label, "colour": colour})
                lower = upper + step
    if numbers.isna().any():
        classes.append({"label": "no data", "colour": NO_DATA_COLOUR})
    return colours, classes


def _class_uppers(positive: pd.Series, decimals: int) -> list[float]:
    distinct = np.unique(np.round(positive.to_numpy(), decimals))
    if len(distinct) <= MAX_CLASSES:
        return [float(v) for v in distinct]
    quantiles = np.quantile(positive.to_numpy(), np.linspace(0, 1, MAX_CLASSES + 1)[1:])
    uppers = sorted({_nice_upper(q, decimals) for q in quantiles})
    uppers[-1] = max(uppers[-1], _nice_upper(positive.max(), decimals))
    return uppers


def choropleth_properties(level: str, figures: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Per-area properties for the map (escaped text for tooltips, the fill colour, the code).

    ``figures`` is `area_figures` for the areas to draw."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if measure not in figures.columns:
        raise ValueError(f"measure {measure!r} needs the coverage figures for {level}")
    colours, _ = colour_classes(figures[measure], measure)
    label = figures["name"]
    if level == "ward":
        label = figures["name"] + " (" + figures["borough"] + ")"
    properties = pd.DataFrame(
        {
            "code": figures.index.astype(str),
            "level": level,
            "name": label.map(html.escape),
            "value": figures[measure].map(lambda v: _number_text(v, MEASURES[measure]["decimals"])),
            "population": figures["population"].map(lambda v: f"{int(v):,}"),
            "projects": figures["projects"].map(lambda v: f"{int(v):,}"),
            "imd": figures["imd_decile"].map(lambda v: _number_text(v, 0)),
            "fill": colours,
        },
        index=figures.index,
    )
    if level == "deanery":
        properties["note"] = "approximate (derived), not official"
    return properties


def choropleth_tooltip(level: str, measure: str) -> dict[str, str]:
    """Tooltip fields (property -> label) for the shaded areas."""
    fields_ = {"name": LEVELS[level]["noun"], "value": MEASURES[measure]["label"]}
    fields_["population"] = "Population (Census 2021)"
    if measure != "projects":
        fields_["projects"] = "Projects shown"
    imd = "IMD 2025 decile" if level == "lsoa" else "IMD 2025 decile (population-weighted)"
    fields_["imd"] = imd
    if level == "deanery":
        fields_["note"] = "Boundary"
    return fields_


def area_from_click(drawing, level: str) -> str | None:
    """The code of the clicked area of ``level`` from st_folium's last_active_drawing, if any."""
    if not isinstance(drawing, Mapping):
        return None
    properties = drawing.get("properties") or {}
    if not isinstance(properties, Mapping) or properties.get("level") != level:
        return None
    code = str(properties.get("code") or "")
    return code if code in area_choices(level) else None


def bounds_of(level: str, codes: Iterable[str]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the given areas in WGS84; the whole region when none."""
    layer = boundaries.load(level)
    keys = boundaries.code_texts(layer[boundaries.LAYERS[level]["key"]])
    chosen = layer[keys.isin(list(codes)).to_numpy()]
    frame = chosen if len(chosen) else boundaries.load("borough")
    west, south, east, north = frame.total_bounds
    return float(west), float(south), float(east), float(north)


# --- projects on the map ----------------------------------------------------------------


def shown_projects(projects: gpd.GeoDataFrame, view: View) -> gpd.GeoDataFrame:
    """The projects the view shows: home-run ones moved to their ward's centre (and their
    address, postcode, LSOA and IMD decile withheld), then filtered.

    Masking comes first, so no filter can reveal more about a home-run project than its ward:
    with an IMD decile filter they drop out (they carry no decile)."""
    masked = privacy.mask_ward_only(projects)
    return filters.filter_projects(
        masked,
        types=list(view.types),
        boroughs=list(view.boroughs),
        deaneries=list(view.deaneries),
        wards=list(view.wards),
        imd_deciles=list(view.imd),
    )


def _parse_dates(values: pd.Series) -> pd.Series:
    """Dates as the store writes them (ISO 8601), else day-first as in UK spreadsheets."""
    text = values.astype("object").where(values.notna(), "").astype(str).str.strip()
    text = text.where(text != "")
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601")
    other = pd.to_datetime(text, errors="coerce", format="mixed", dayfirst=True)
    return iso.where(text.str.match(r"^\d{4}-\d{2}-\d{2}").fillna(False), other)


def stale_mask(last_checked: pd.Series, today: date | None = None) -> pd.Series:
    """True where ``last_checked`` is more than STALE_MONTHS before ``today`` (default: today).

    Missing or unreadable dates are not stale here: `check_status` says "not recorded"."""
    today = pd.Timestamp(today or date.today())
    cutoff = today - pd.DateOffset(months=STALE_MONTHS)
    checked = _parse_dates(last_checked)
    return (checked < cutoff).fillna(False).astype(bool)


def check_status(last_checked: pd.Series, today: date | None = None) -> pd.Series:
    """ "stale" (older than 12 months), "not recorded" or "" for each record."""
    checked = _parse_dates(last_checked)
    status = pd.Series("", index=last_checked.index, dtype="str")
    status[checked.isna().to_numpy()] = "not recorded"
    status[stale_mask(last_checked, today).to_numpy()] = "stale"
    return status


def _text(value) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).strip()


def _type_label(kind: str) -> str:
    types = project_types()
    return types[kind]["label"] if kind in types else kind or "Unknown type"


def _location_note(record: Mapping) -> str:
    precision = _text(record.get("location_precision"))
    if precision == privacy.WARD_ONLY:
        return _text(record.get("location_note")) or privacy.SHOWN_AT_WARD_CENTRE
    if precision == "street":
        return "Approximate location: a street, postcode or place centre, not the building"
    return ""


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
    name = _text(record.get("name")) or "Unnamed project"
    parts = [
        f"<strong>{html.escape(name)}</strong>",
        html.escape(_type_label(_text(record.get("type")))),
    ]
    if bool(record.get("synthetic")):
        parts.append("<em><strong>Illustrative example, not a real project</strong></em>")
    for column, label in POPUP_FIELDS:
        value = _text(record.get(column))
        if value:
            parts.append(f"{html.escape(label)}: {html.escape(value)}")
    website = _text(record.get("website"))
    if SAFE_URL.match(website):
        link = html.escape(website, quote=True)
        parts.append(f'Website: <a href="{link}" target="_blank" rel="noopener">{link}</a>')
    elif website:
        parts.append(f"Website: {html.escape(website)}")
    checked = _text(record.get("last_checked"))
    if check == "stale":
        parts.append(
            f"Last checked: {html.escape(checked)} <strong>(over {STALE_MONTHS} months ago: "
            "check it still runs)</strong>"
        )
    elif check == "not recorded" or not checked:
        parts.append("Last checked: not recorded")
    else:
        parts.append(f"Last checked: {html.escape(checked)}")
    note = _location_note(record)
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
        kind = _text(record.get("type"))
        records.append(
            {
                "lat": round(float(y), maps.COORDINATE_DECIMALS),
                "lon": round(float(x), maps.COORDINATE_DECIMALS),
                "type": re.sub(r"[^a-z0-9_]", "", kind.lower()) or "other",
                "colour": types.get(kind, types["other"])["colour"],
                "home_run": _text(record.get("location_precision")) == privacy.WARD_ONLY,
                "tooltip": html.escape(_text(record.get("name")) or "Unnamed project"),
                "popup": popup_html(record, check),
            }
        )
    return records


def type_legend(shown: pd.DataFrame) -> list[dict]:
    """Legend entries (label, colour, count) for the project types present."""
    types = project_types()
    counts = shown["type"].value_counts()
    return [
        {"label": spec["label"], "colour": spec["colour"], "count": int(counts.get(kind, 0))}
        for kind, spec in types.items()
        if counts.get(kind, 0)
    ]


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


# --- the table --------------------------------------------------------------------------

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
    "website": "Website",
    "id": "Id",
}


def project_table(shown: pd.DataFrame, today: date | None = None) -> pd.DataFrame:
    """The same projects as the map, as a plain table (the accessible equivalent of the map)."""
    table = pd.DataFrame(shown).drop(columns="geometry", errors="ignore").copy()
    table["type_label"] = table["type"].map(_type_label)
    status = check_status(table["last_checked"], today)
    table["check"] = status.map(
        {"stale": f"yes: over {STALE_MONTHS} months", "not recorded": "date not recorded"}
    ).fillna("")
    records = table.to_dict("records")
    table["location"] = [
        (_location_note(record) or "exact") if _text(record.get("location_precision")) else ""
        for record in records
    ]
    table["illustrative"] = table["synthetic"].fillna(False).astype(bool)
    table["imd_decile"] = pd.to_numeric(table["imd_decile"], errors="coerce").astype("Int64")
    for column in TABLE_COLUMNS:
        if column not in ("imd_decile", "illustrative"):
            table[column] = table[column].map(_text)
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


# --- postcode search --------------------------------------------------------------------


def find_postcode(text: str) -> dict:
    """A postcode of the region from the shipped postcode layer: position and status.

    Raises ValueError with a message for staff when it is malformed or not in the region."""
    given = str(text or "").strip()
    if not given:
        raise ValueError("Enter a postcode, for example L1 8JQ")
    key = geocode.postcode_keys(pd.Series([given])).iat[0]
    if pd.isna(key) or not re.match(geocode.POSTCODE_PATTERN, key):
        raise ValueError(f"{given!r} is not a valid UK postcode (for example L1 8JQ)")
    index = geocode.postcode_index()
    display = f"{key[:-3]} {key[-3:]}"
    if key not in index.index:
        raise ValueError(f"Postcode {display} is not a live or terminated postcode in the region")
    row = index.loc[key]
    note = ""
    if row["status"] == "terminated":
        note = (
            f"{row['postcode']} is a terminated postcode: its position is approximate (centre "
            "of its 2011 output area)"
        )
    return {
        "postcode": str(row["postcode"]),
        "status": str(row["status"]),
        "lat": float(row["lat"]),
        "lon": float(row["lon"]),
        "easting": float(row["easting"]),
        "northing": float(row["northing"]),
        "note": note,
    }


def nearest_projects(shown: gpd.GeoDataFrame, point: Mapping, within_m: float) -> pd.DataFrame:
    """Every shown project with a position, nearest first: straight-line metres (EPSG:27700)
    from the point, and whether it is within ``within_m``.

    Home-run projects are measured to their ward's centre, where the map shows them."""
    located = shown[shown.geometry.notna() & ~shown.geometry.is_empty]
    grid = located.geometry.to_crs(boundaries.BNG)
    distance = np.hypot(grid.x.to_numpy() - point["easting"], grid.y.to_numpy() - point["northing"])
    records = located.to_dict("records")
    table = pd.DataFrame(
        {
            "Name": [_text(r.get("name")) or "Unnamed project" for r in records],
            "Type": [_type_label(_text(r.get("type"))) for r in records],
            "Distance (m)": np.round(distance).astype("int64"),
            "Within reach": distance <= within_m,
            "Ward": [_text(r.get("WD24NM")) for r in records],
            "Borough": [_text(r.get("LAD25NM")) for r in records],
            "Note": [_distance_note(r) for r in records],
            "Id": [_text(r.get("id")) for r in records],
        }
    )
    return table.sort_values(["Distance (m)", "Name"], kind="stable").reset_index(drop=True)


def _distance_note(record: Mapping) -> str:
    notes = []
    if _text(record.get("location_precision")) == privacy.WARD_ONLY:
        notes.append("home-run: distance to its ward centre")
    elif _text(record.get("location_precision")) == "street":
        notes.append("approximate location")
    if bool(record.get("synthetic")):
        notes.append("illustrative, not real")
    return "; ".join(notes)


def nearest_text(point: Mapping, nearest: pd.DataFrame, within_m: float, limit: int) -> str:
    """The search result as plain text (for the command line)."""
    within = int(nearest["Within reach"].sum())
    lines = [
        f"{point['postcode']} ({point['status']}): {within:,} project(s) within "
        f"{within_m:,.0f} m (straight line)"
    ]
    if point.get("note"):
        lines.append(point["note"])
    for row in nearest.head(limit).itertuples(index=False):
        note = f" [{row.Note}]" if row.Note else ""
        place = ", ".join(part for part in (row.Ward, row.Borough) if part)
        lines.append(f"{row[2]:>7,} m  {row.Name} ({row.Type}; {place}){note}")
    return "\n".join(lines)


# --- the area panel ---------------------------------------------------------------------


def area_panel(
    level: str, code: str, shown: gpd.GeoDataFrame, figures: pd.DataFrame, today=None
) -> dict:
    """What the panel of one area shows: name, population, IMD, projects by type and the list.

    ``figures``: `area_figures` for ``level`` (gap figures included when computed)."""
    _check_level(level)
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


# --- coverage, uploads, the store, sources ----------------------------------------------


def coverage_summary(projects: gpd.GeoDataFrame, types: Iterable[str], distance_m: float) -> dict:
    """Coverage for the chosen types and distance: headline text, per-area figures and ranked
    gaps by level (ward, deanery, borough; LSOA for shading), from `kindred_map.coverage`."""
    result = coverage.assess(projects, list(types) or None, distance_m)
    return {
        "headline": result.headline_text(),
        "areas": {level: result.by_area(level) for level in LEVELS},
        "gaps": {level: result.gaps(level) for level in coverage.AREA_LEVELS},
    }


@contextlib.contextmanager
def _as_file(name: str, data: bytes):
    """The uploaded bytes as a file of the same name in a temporary folder."""
    safe = Path(str(name)).name or "upload"
    with tempfile.TemporaryDirectory(prefix="kindred-upload-") as folder:
        path = Path(folder) / safe
        path.write_bytes(data)
        yield path


def preview_upload(name: str, data: bytes, mapping: Mapping | None = None):
    """Read, check, place and join an uploaded file without storing it: (projects, report)."""
    from kindred_map import join

    with _as_file(name, data) as path:
        return join.join_file(path, dict(mapping or {}))


def save_upload(name: str, data: bytes, store: Path, mapping: Mapping | None = None):
    """Import an uploaded file into the store (upsert by id, logged); returns the report."""
    from kindred_map import store as stores

    with _as_file(name, data) as path:
        return stores.import_file(path, stores.locate(store), dict(mapping or {}))


def store_path() -> Path | str:
    """The project store: env KINDRED_MAP_STORE (read now, not at import), else the default;
    a ``postgresql://`` DSN names a PostGIS store."""
    from kindred_map import store

    configured = os.environ.get(STORE_ENV, "").strip()
    return store.locate(configured or DEFAULT_STORE)


def store_signature(path: Path | str) -> tuple[str, int, int]:
    """(path, modification time, size) of a GeoPackage, (DSN, rows, last writing transaction)
    of a PostGIS store: changes whenever the store is written."""
    from kindred_map import pgstore

    if pgstore.is_dsn(path):
        return (path, *pgstore.signature(path))
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return str(path), 0, 0
    return str(path), stat.st_mtime_ns, stat.st_size


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


# --- the map ----------------------------------------------------------------------------


def needs_coverage(view: View) -> bool:
    """True when the map shades areas by a gap measure (computed by `kindred_map.coverage`)."""
    return view.measure in GAP_MEASURES


def _type_words(view: View) -> str:
    return coverage.type_phrase(resolve_types(list(view.types) or None))


def legend_notes(view: View, shown: pd.DataFrame) -> list[str]:
    """Notes under the legend: what is approximate, how home-run projects are drawn."""
    notes = []
    if view.measure in GAP_MEASURES:
        notes.append(
            f"Gap score: need-weighted residents beyond {view.distance:,} m (straight line) "
            f"of {_type_words(view)}."
        )
    if view.measure == "imd_decile":
        notes.append("IMD 2025 decile 1 = the most deprived 10% of areas in England.")
    if view.measure == "imd_decile" and view.layer != "lsoa":
        notes.append("An area's decile: population-weighted median of its residents' LSOAs.")
    if view.layer == "deanery":
        notes.append("Deanery boundaries are approximate (derived), not official.")
    if view.gaps:
        notes.append(
            f"Dark veil, red edge: beyond {view.distance:,} m (straight line) of "
            f"{_type_words(view)}."
        )
    if view.clusters:
        notes.append(
            f"Dashed black outlines: clusters of at least {view.min_samples} projects within "
            f"{view.eps:,} m of each other (DBSCAN, exploratory)."
        )
    if privacy.is_ward_only(shown).any():
        notes.append("Dashed outline: home-run project shown at its ward's centre.")
    if shown["synthetic"].fillna(False).astype(bool).any():
        notes.append("Includes illustrative examples, not real projects (see popups).")
    return notes


def _search_bounds(point: Mapping, radius_m: float) -> tuple[float, float, float, float]:
    circle = gpd.GeoSeries(
        [shapely.Point(point["easting"], point["northing"]).buffer(radius_m * 1.15)],
        crs=boundaries.BNG,
    ).to_crs(boundaries.WGS84)
    west, south, east, north = circle.total_bounds
    return float(west), float(south), float(east), float(north)


def _rounded_geojson(frame: gpd.GeoDataFrame, properties: pd.DataFrame) -> dict:
    geometries = shapely.transform(
        np.asarray(frame.geometry), lambda xy: np.round(xy, maps.COORDINATE_DECIMALS)
    )
    features = [
        {
            "type": "Feature",
            "id": str(index),
            "properties": row,
            "geometry": json.loads(shapely.to_geojson(geometry)),
        }
        for index, (geometry, row) in enumerate(
            zip(geometries, properties.to_dict("records"), strict=True)
        )
        if geometry is not None and not shapely.is_empty(geometry)
    ]
    return {"type": "FeatureCollection", "features": features}


def gap_overlay(projects: gpd.GeoDataFrame, view: View):
    """The part of the region beyond reach of the chosen types (not clickable: areas below are)."""
    surface = coverage.gap_surface(projects, list(view.types) or None, view.distance)
    properties = pd.DataFrame({"note": surface["note"].map(html.escape)})
    return maps.overlay_layer(
        _rounded_geojson(surface, properties),
        f"Beyond {view.distance:,} m of {_type_words(view)}",
        maps.GAP_STYLE,
        tooltip={},
        interactive=False,
    )


def cluster_overlay(projects: gpd.GeoDataFrame, view: View):
    """DBSCAN clusters of the shown projects' true positions (home-run projects left out)."""
    from kindred_map import clusters  # scikit-learn and PySAL: imported only when asked for

    chosen = projects[projects["id"].isin(shown_projects(projects, view)["id"])]
    hulls = clusters.point_clusters(chosen, list(view.types) or None, view.eps, view.min_samples)
    labels = {kind: spec["label"] for kind, spec in project_types().items()}
    summary = []
    for row in hulls.to_dict("records"):
        parts = [
            f"{row[column]} {labels[column.removeprefix('n_')].lower()}"
            for column in hulls.columns
            if column.startswith("n_") and row[column]
        ]
        summary.append(html.escape(f"{row['projects']} projects: {', '.join(parts)}"))
    properties = pd.DataFrame({"cluster": hulls["cluster_id"].astype(str), "summary": summary})
    return maps.overlay_layer(
        _rounded_geojson(hulls, properties),
        f"Clusters (within {view.eps:,} m, at least {view.min_samples})",
        maps.CLUSTER_HULL_STYLE,
        tooltip={"cluster": "Cluster", "summary": "Projects"},
    )


def build_map(
    projects: gpd.GeoDataFrame,
    view: View,
    *,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
    today: date | None = None,
    tiles: str | None = None,
    cluster_markers: bool = True,
):
    """The dashboard map for a view: areas of ``view.layer`` inside the filters shaded by
    ``view.measure`` (clickable), the shown projects, the searched postcode's circle, and the
    gap and cluster layers when asked for. ``coverage_areas``: `coverage_summary(...)["areas"]`,
    needed for the gap measures."""
    shown = shown_projects(projects, view)
    level = view.layer
    codes = areas_in_view(level, view)
    if needs_coverage(view) and not coverage_areas:
        raise ValueError(f"the {view.measure} measure needs the coverage figures")
    gap_table = (coverage_areas or {}).get(level)
    figures = area_figures(level, shown, gap_table).loc[codes]
    _, classes = colour_classes(figures[view.measure], view.measure)
    legend = maps.legend_html(
        f"{LEVELS[level]['noun']}: {MEASURES[view.measure]['label']}",
        classes,
        type_legend(shown),
        legend_notes(view, shown),
    )
    bounds = (
        bounds_of(level, codes)
        if len(codes) < len(area_choices(level))
        else bounds_of("borough", [])
    )
    search = None
    if view.postcode:
        with contextlib.suppress(ValueError):
            point = find_postcode(view.postcode)
            search = {
                "lat": point["lat"],
                "lon": point["lon"],
                "radius_m": view.distance,
                "label": point["postcode"],
            }
            bounds = _search_bounds(point, view.distance)
    overlays = []
    if view.gaps:
        overlays.append(gap_overlay(projects, view))
    if view.clusters:
        overlays.append(cluster_overlay(projects, view))
    return maps.dashboard_map(
        maps.area_geojson(level, choropleth_properties(level, figures, view.measure)),
        LEVELS[level]["label"],
        choropleth_tooltip(level, view.measure),
        legend,
        marker_records(shown, today),
        bounds,
        level=level,
        cluster=cluster_markers,
        search=search,
        overlays=tuple(overlays),
        attribution=export.attribution(shown),
        tiles=tiles,
    )


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
