"""Area profiles: one or two printed A4 pages about one ward, deanery or borough (HTML or PDF).

A profile gives what Local Insight's area reports give for social action: a locator map drawn
here as inline SVG from the EPSG:27700 geometries (no tiles, no network), population, IMD 2025
decile and domain deciles, projects by type with the list, coverage and gap rank at the chosen
distance, the nearest projects beyond the boundary, method notes and attribution.

Every figure comes from the same functions as ``kindred-map area`` and the council pack
(`kindred_map.coverage`, the boundary layers), so they agree to the person. Every text is
HTML-escaped data inserted into plain f-strings, never a template: a project named ``{{7*7}}``
prints as typed.

PDF: WeasyPrint (kept, BSD licence, pure Python on Debian's Pango), chosen over Chromium's
print-to-PDF because it needs no browser process: the dashboard's download button and the
batch mode render offline (the URL fetcher refuses every URL) with no browser; a batch prints
on every core (`write_wards`). Measured against Chromium printing the same pages in
benchmarks/results/profiles.md.
"""

import html
import math
import multiprocessing
import os
import re
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import (
    boundaries,
    cartography,
    coverage,
    export,
    files,
    filters,
    privacy,
    store,
)
from kindred_map.location import Setting
from kindred_map.schema import project_types, resolve_types

LEVELS = ("ward", "deanery", "borough")
AREA_COLUMN = {"ward": "WD24CD", "deanery": "deanery_id", "borough": "LAD25CD"}
"""The joined project field naming a project's area of each level."""
NOUNS = {"ward": "Ward", "deanery": "Deanery", "borough": "Borough"}
DOMAINS = {
    "income_decile": "Income",
    "employment_decile": "Employment",
    "education_decile": "Education, skills and training",
    "health_decile": "Health and disability",
    "crime_decile": "Crime",
    "housing_decile": "Barriers to housing and services",
    "environment_decile": "Living environment",
}
"""IMD 2025 domains shown, as named by MHCLG."""
LISTED_PROJECTS = 30
"""Projects listed by name; more are counted and left to the council pack (keeps <= 2 pages)."""
NEAREST_BEYOND = 5
MAP_WIDTH, MAP_HEIGHT = 440.0, 232.0
"""Locator map size in CSS pixels (it prints at most about 116 x 61 mm): short enough that a
ward's profile listing up to 8 projects fits one page (README, "Area profiles")."""
DOT_PX = 4.0
"""A project's dot radius in the locator map (CSS pixels)."""
LABEL_PX = 8.0
"""Neighbour names' font size in the locator map (CSS pixels)."""
LABEL_BASELINE_EM = 0.5 + (1901 - 483) / 2048 / 2
"""Where DejaVu Sans in a line one em high has its baseline, from the line's top (em): half
the (negative) leading plus the ascent, from the font's ascent and descent (1901 and 483 of
2048 units), as Pango and browsers place it."""
SCALE_BOX = (24.0, 30.0)
"""Room a scale bar needs beyond its bar: width (margins) and height (bar, words, margins)."""
FORMATS = ("pdf", "html")


@dataclass(frozen=True)
class Context:
    """What every profile of one batch shares: the projects shown (home-run ones at their
    ward's centre), their points in EPSG:27700 and area codes, the coverage result and the
    options that made them."""

    projects: gpd.GeoDataFrame
    result: coverage.CoverageResult
    gaps: Mapping[str, pd.DataFrame]
    types: tuple[str, ...]
    distance_m: float
    include_synthetic: bool
    grid: gpd.GeoSeries
    area_codes: Mapping[str, pd.Series]


def context(
    projects: gpd.GeoDataFrame | None = None,
    types: Iterable[str] | str | None = None,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    include_synthetic: bool = False,
    location: Setting = None,
) -> Context:
    """Projects and coverage for profiles (``projects`` default: those of the store at
    ``location``, default the configured one)."""
    if projects is None:
        projects = store.read_projects(location)
    chosen = resolve_types(types)
    real = export.real_projects(projects, include_synthetic)
    shown = filters.filter_projects(
        privacy.public_records(real), types=list(chosen), include_synthetic=True
    )
    result = coverage.assess(real, chosen, distance_m, include_synthetic=True)
    gaps = {}
    for level in LEVELS:
        ranked = result.gaps(level)
        gaps[level] = ranked.assign(_code=boundaries.code_texts(ranked[coverage.LEVELS[level][0]]))
    grid = shown.geometry.to_crs(boundaries.BNG)
    codes = {level: boundaries.code_texts(shown[AREA_COLUMN[level]]) for level in LEVELS}
    return Context(shown, result, gaps, chosen, float(distance_m), include_synthetic, grid, codes)


def resolve(level: str, name_or_code: str) -> str:
    """The code of the one ``level`` area with this code or name (case-insensitive).

    A name several areas share (e.g. a ward name in two boroughs) raises a ValueError listing
    them with their codes."""
    if level not in LEVELS:
        raise ValueError(f"no profile for level {level!r}; choose one of {', '.join(LEVELS)}")
    layer = boundaries.LAYERS[level]
    areas = boundaries.load(level)
    codes = boundaries.code_texts(areas[layer["key"]])
    names = areas[layer["name_field"]].astype(str)
    wanted = str(name_or_code).strip().casefold()
    found = areas[((codes.str.casefold() == wanted) | (names.str.casefold() == wanted)).to_numpy()]
    if found.empty:
        raise ValueError(f"no {level} called {name_or_code!r}; give its code or exact name")
    if len(found) > 1:
        where = "LAD24NM" if level == "ward" else layer["name_field"]
        choices = ", ".join(
            f"{row[layer['name_field']]} ({row[where]}): {boundaries.code_text(row[layer['key']])}"
            for _, row in found.iterrows()
        )
        raise ValueError(
            f"{len(found)} {level}s are called {name_or_code!r}: give a code ({choices})"
        )
    return boundaries.code_text(found[layer["key"]].iloc[0])


def deprivation(level: str) -> pd.DataFrame:
    """Deprivation figures of every ``level`` area (see `_deprivation`), computed once per
    version of the layer files."""
    names = ("postcode", "lsoa", "ward", "borough", "deanery")
    paths = [boundaries.layer_path(name) for name in names]
    stamp = tuple(path.stat().st_mtime_ns if path.exists() else None for path in paths)
    return _deprivation(level, stamp).copy()


def layer_bng(level: str) -> gpd.GeoDataFrame:
    """The ``level`` boundary layer in EPSG:27700 with its codes as text (``_code``), projected
    once per version of its file and shared by every profile (not to be modified)."""
    path = boundaries.layer_path(level)
    return _layer_bng(level, path.stat().st_mtime_ns if path.exists() else None)


@cache
def _layer_bng(level: str, _stamp) -> gpd.GeoDataFrame:
    areas = boundaries.load(level).to_crs(boundaries.BNG)
    codes = boundaries.code_texts(areas[boundaries.LAYERS[level]["key"]]).to_numpy()
    return areas.assign(_code=codes)


@cache
def _deprivation(level: str, _stamp: tuple) -> pd.DataFrame:
    """Per area of ``level`` (indexed by code): the population-weighted median IMD 2025 decile
    and domain deciles of its residents' LSOAs, and pct_deciles_1_2 (0-100).

    Residents are the Census 2021 population spread over postcodes (`coverage.population_points`,
    the population every figure uses); an area has no official decile, so the median stands in."""
    people = coverage.population_points()
    key = AREA_COLUMN[level]
    lsoa = boundaries.load("lsoa").set_index("LSOA21CD")
    people = people.assign(_code=boundaries.code_texts(people[key]))
    people = people[people["_code"] != ""]
    table = pd.DataFrame(index=pd.Index(sorted(set(people["_code"])), name="code"))
    for column in ("imd_decile", *DOMAINS):
        values = pd.to_numeric(people["LSOA21CD"].map(lsoa[column]), errors="coerce")
        known = people.assign(_value=values)[values.notna().to_numpy()]
        median = coverage.weighted_median(known, "_code", "_value", "residents")
        table[column] = table.index.map(median).astype("Int64")
    deprived = people["residents"].where(people["imd_decile"].isin((1, 2)), 0)
    share = deprived.groupby(people["_code"]).sum() / people.groupby("_code")["residents"].sum()
    table["pct_deciles_1_2"] = table.index.map((100 * share).round(2)).astype(float)
    return table


def figures(level: str, name_or_code: str, ctx: Context) -> dict:
    """Everything one profile shows, as data: the single source of its numbers."""
    areas = layer_bng(level)
    known = areas["_code"] == name_or_code
    code = name_or_code if known.any() else resolve(level, name_or_code)
    area = areas[(areas["_code"] == code).to_numpy()].iloc[0]
    layer = boundaries.LAYERS[level]
    gaps = ctx.gaps[level]
    row = gaps[gaps["_code"] == code]
    gap = row.iloc[0].to_dict() if len(row) else None
    deprived = deprivation(level)
    imd = deprived.loc[code].to_dict() if code in deprived.index else {}
    project_codes = ctx.area_codes[level]
    inside = ctx.projects[(project_codes == code).to_numpy()]
    labels = {key: spec["label"] for key, spec in project_types().items()}
    by_type = inside["type"].map(lambda t: labels.get(t, t)).value_counts()
    population = int(area["population"])
    locator, locator_width = locator_map(level, code, ctx)
    return {
        "level": level,
        "code": code,
        "name": str(area[layer["name_field"]]),
        "borough": str(area["LAD24NM"]) if level == "ward" else None,
        "population": population,
        "imd": imd,
        "projects": len(inside),
        "per_10k": round(10_000 * len(inside) / population, 2) if population else None,
        "by_type": {label: int(number) for label, number in sorted(by_type.items())},
        "listed": _project_rows(inside),
        "gap": gap,
        "areas": len(gaps),
        "nearest": _nearest_beyond(code, layer_bng(level), ctx.projects, ctx.grid, project_codes),
        "types": ctx.types,
        "distance_m": ctx.distance_m,
        "synthetic": int(inside["synthetic"].fillna(False).astype(bool).sum()),
        "map": locator,
        "map_width": locator_width,
        "attribution": export.attribution(inside),
    }


def _project_rows(inside: gpd.GeoDataFrame) -> list[dict]:
    labels = {key: spec["label"] for key, spec in project_types().items()}
    rows = []
    columns = ["name", "type", "organisation", "postcode", "location_precision", "synthetic"]
    ordered = pd.DataFrame(inside[columns]).sort_values(["type", "name"], key=_text_key)
    for record in ordered.to_dict("records"):
        notes = []
        if record["location_precision"] == privacy.WARD_ONLY:
            notes.append("home-run: shown at the ward centre")
        if bool(record["synthetic"]):
            notes.append("ILLUSTRATIVE, not a real project")
        rows.append(
            {
                "name": _plain(record["name"]) or "Unnamed project",
                "type": labels.get(record["type"], str(record["type"])),
                "organisation": _plain(record["organisation"]),
                "postcode": _plain(record["postcode"]),
                "note": "; ".join(notes),
            }
        )
    return rows


def _text_key(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("").str.casefold()


def _plain(value) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value).strip()


def _nearest_beyond(code, areas, projects, grid, project_codes) -> list[dict]:
    """The projects nearest the area that are not counted in it: straight-line metres from the
    area's edge (EPSG:27700 grid metres; within 0.04% of ground distance here)."""
    keep = ((project_codes != code) & grid.notna() & ~grid.is_empty).to_numpy()
    outside = projects[keep]
    if outside.empty:
        return []
    edge = areas.geometry[(areas["_code"] == code).to_numpy()].iloc[0]
    metres = shapely.distance(edge, grid[keep].to_numpy())
    labels = {key: spec["label"] for key, spec in project_types().items()}
    order = np.argsort(metres, kind="stable")[:NEAREST_BEYOND]
    nearest = pd.DataFrame(outside[["name", "type", "WD24NM"]]).iloc[order].to_dict("records")
    rows = []
    for index, record in zip(order, nearest, strict=True):
        where = _plain(record["WD24NM"]) or "outside the region"
        rows.append(
            {
                "name": _plain(record["name"]) or "Unnamed project",
                "type": labels.get(record["type"], str(record["type"])),
                "where": where,
                "metres": int(round(float(metres[index]))),
            }
        )
    return rows


# --- the locator map ----------------------------------------------------------------------


def _path(geometry, to_px) -> str:
    parts = []
    for polygon in export.tidy_geometries([geometry])[0].geoms:
        for ring in (polygon.exterior, *polygon.interiors):
            xy = to_px(np.asarray(ring.coords))
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f"M{points}Z")
    return " ".join(parts)


def locator_map(level: str, code: str, ctx: Context) -> tuple[str, float]:
    """A locator map in British National Grid and its width (CSS pixels): an inline SVG of the
    area shaded, its neighbours outlined, ``ctx``'s projects as dots coloured by type (home-run
    ones dashed at their ward's centre) and a scale bar, with the neighbours' names and the
    scale in HTML over it. Drawn from the boundary layers alone: no tiles, no network.

    The names are HTML text placed on the SVG's pixels rather than SVG text: WeasyPrint lays
    out SVG text a letter at a time, which cost a sixth of a profile's printing time."""
    layer = boundaries.LAYERS[level]
    areas = layer_bng(level)
    codes = areas["_code"].to_numpy()
    shape = areas.geometry[codes == code].iloc[0]
    west, south, east, north = shape.bounds
    margin = max(0.15 * max(east - west, north - south), 800.0)
    west, south, east, north = west - margin, south - margin, east + margin, north + margin
    scale = min(MAP_WIDTH / (east - west), MAP_HEIGHT / (north - south))
    width, height = (east - west) * scale, (north - south) * scale
    frame = shapely.box(west, south, east, north)
    tolerance = 0.6 / scale  # under a pixel

    def to_px(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - west) * scale, (north - xy[:, 1]) * scale])

    shapes = []
    candidates = []
    near = areas.iloc[np.sort(areas.sindex.query(frame, predicate="intersects"))]
    for area_code, geometry, name in zip(
        near["_code"], near.geometry, near[layer["name_field"]].astype(str), strict=True
    ):
        if area_code == code:
            continue
        clipped = geometry.intersection(frame).simplify(tolerance)
        if clipped.is_empty or clipped.area <= 0:
            continue
        shapes.append(_path(clipped, to_px))
        spot = to_px(np.asarray(clipped.representative_point().coords))[0]
        candidates.append((clipped.area, name, spot))
    scale_bar, scale_words, bar_box = _scale_bar(shape, east - west, scale, width, height, to_px)
    labels = _labels(candidates, width, bar_box)
    own = f'<path d="{_path(shape.simplify(tolerance), to_px)}" class="own"/>'
    dots: dict[tuple[str, str, str], list[str]] = {}
    inside = shapely.contains(frame, np.asarray(ctx.grid.to_numpy(), dtype=object))
    located = pd.DataFrame(ctx.projects[["type", "location_precision", "synthetic"]])[inside]
    located = located.to_dict("records")
    types = project_types()
    for record, (x, y) in zip(
        located, to_px(shapely.get_coordinates(ctx.grid[inside])), strict=True
    ):
        colour = types.get(record["type"], types["other"])["colour"]
        dashed = ' stroke-dasharray="2 1.5"' if record["location_precision"] == "ward_only" else ""
        faded = ' fill-opacity="0.35"' if bool(record["synthetic"]) else ""
        dots.setdefault((colour, faded, dashed), []).append(
            f"M{x - DOT_PX:.1f},{y:.1f}a{DOT_PX:g},{DOT_PX:g} 0 1,0 {2 * DOT_PX:g},0"
            f"a{DOT_PX:g},{DOT_PX:g} 0 1,0 {-2 * DOT_PX:g},0Z"
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" role="img" '
        f'aria-label="Locator map of the {html.escape(level)}">'
        "<style>.nb{fill:#f4f4f1;stroke:#8a8f96;stroke-width:.8;fill-rule:evenodd}"
        ".own{fill:#fde9b8;stroke:#1f2d3d;stroke-width:2;fill-rule:evenodd}"
        ".pr{stroke:#222;stroke-width:.8}.sb{fill:#1f2d3d}"
        "</style>"
        f'<rect width="{width:.1f}" height="{height:.1f}" fill="#e8eef3"/>'
        + (f'<path d="{" ".join(shapes)}" class="nb"/>' if shapes else "")
        + own
        + "".join(
            f'<path d="{"".join(circles)}" fill="{html.escape(colour)}"{faded}{dashed} class="pr"/>'
            for (colour, faded, dashed), circles in dots.items()
        )
        + scale_bar
        + "</svg>"
    )
    return f'<div class="map">{svg}{"".join(labels)}{scale_words}</div>', round(width)


def label_box(x: float, y: float, text: str) -> tuple[float, float, float, float]:
    """The box of a neighbour's name centred at ``x`` with its baseline at ``y`` (DejaVu Sans:
    ascent 0.76 em, descent 0.24 em)."""
    half = cartography.text_width(text, LABEL_PX) / 2
    return x - half, y - 0.76 * LABEL_PX, x + half, y + 0.24 * LABEL_PX


def map_text(text: str, x: float, baseline: float, cls: str, centred: bool = False) -> str:
    """HTML text for the locator map: ``text`` in DejaVu Sans at LABEL_PX with its baseline at
    ``baseline`` and starting (or, ``centred``, centred) at ``x``, in the map's pixels. Its box
    is as wide as the text (plus a pixel each side, for the centring to absorb), so WeasyPrint
    never measures it."""
    wide = cartography.print_width(text, LABEL_PX) + 2
    left = x - wide / 2 if centred else x - 1
    top = baseline - LABEL_BASELINE_EM * LABEL_PX
    return (
        f'<span class="{cls}" style="left:{left:.2f}px;top:{top:.2f}px;width:{wide:.2f}px">'
        f"{html.escape(text)}</span>"
    )


def _labels(candidates: list, width: float, bar_box) -> list[str]:
    """Neighbours' names, biggest neighbour first, each kept inside the map's width and dropped
    where it would overlap the scale bar or a name already placed."""
    candidates = sorted(candidates, key=lambda item: -item[0])
    placed = []
    for _, name, (x, y) in candidates:
        half = cartography.text_width(name, LABEL_PX) / 2
        if 2 * half > width - 6:
            continue
        x = min(max(x, half + 3), width - half - 3)  # the whole name on the map
        placed.append((name, x, y, label_box(x, y, name)))
    kept = cartography.place_labels([box for *_, box in placed], [bar_box], pad=1.5)
    return [map_text(placed[i][0], placed[i][1], placed[i][2], "nbl", centred=True) for i in kept]


def _scale_bar(shape, span_m: float, scale: float, width: float, height: float, to_px):
    """The scale bar (SVG) in the corner of the map that hides least of the area itself, its
    words (HTML, `map_text`) and its box (bar, words and a margin)."""
    length = cartography.nice_length(span_m)
    bar = length * scale
    box_w, box_h = bar + SCALE_BOX[0], SCALE_BOX[1]
    corners = [
        (0.0, height - box_h),  # bottom left
        (width - box_w, height - box_h),  # bottom right
        (0.0, 0.0),  # top left
        (width - box_w, 0.0),  # top right
    ]
    own = shapely.transform(shape, lambda xy: to_px(np.asarray(xy)))
    boxes = [(x, y, x + box_w, y + box_h) for x, y in corners]
    x, y = corners[cartography.quietest_corner(boxes, own.buffer(0))]
    svg = (
        f'<rect x="{x + 10:.1f}" y="{y + box_h - 12:.1f}" width="{bar:.1f}" height="4" class="sb"/>'
    )
    words = map_text(cartography.scale_words(length), x + 10, y + box_h - 16, "sbw")
    return svg, words, boxes[corners.index((x, y))]


# --- the page -----------------------------------------------------------------------------

STYLE = """
@page { size: A4; margin: 13mm 13mm 14mm 13mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 7.5pt sans-serif;
    color: #5c6670; } }
body { font: 9pt/1.35 "DejaVu Sans", sans-serif; color: #1f2d3d; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 1mm; }
h2 { font-size: 10.5pt; margin: 2.2mm 0 0.8mm; border-bottom: 0.6pt solid #c5ccd3; }
p { margin: 0 0 1.5mm; }
.sub { color: #5c6670; margin-bottom: 2mm; }
.warn { border: 1pt solid #b00020; color: #b00020; padding: 2mm; font-weight: bold; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
td, th { text-align: left; vertical-align: top; padding: 0.3mm 1.5mm 0.3mm 0; }
th { font-weight: bold; }
.num { text-align: right; white-space: nowrap; }
.nw { white-space: nowrap; }
.layout td { padding: 0; }
.layout td.right { padding-left: 4mm; }
.facts td { border-bottom: 0.4pt solid #e1e5e9; }
.list td, .list th { border-bottom: 0.4pt solid #e1e5e9; font-size: 8pt; }
.small { font-size: 6.8pt; line-height: 1.25; color: #39434d; margin-bottom: 0.6mm; }
.notes .small { font-size: 6.5pt; line-height: 1.2; margin-bottom: 0.4mm; }
h2 { break-after: avoid; }
.list tr, .notes { break-inside: avoid; }
.key span { display: inline-block; width: 7pt; height: 7pt; border-radius: 50%;
  border: 0.6pt solid #222; margin: 0 1.5mm 0 3mm; vertical-align: -1pt; }
svg { display: block; }
.map { position: relative; }
.nbl, .sbw { position: absolute; font-size: 8px; line-height: 8px; white-space: nowrap; }
.nbl { color: #5c6670; text-align: center; }
.sbw { color: #000; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:,.{decimals}f}"


FACT_LABELS = {
    "population": "Population (Census 2021)",
    "imd_decile": "IMD 2025 decile (median)",
    "pct_deciles_1_2": "Residents in deciles 1-2",
    "projects": "Projects",
    "per_10k": "Projects per 10,000",
    "reached": "Within reach",
    "pct_covered": "Covered",
    "beyond_reach": "Beyond reach",
    "beyond_reach_deciles_1_2": "Beyond reach, deciles 1-2",
    "median_distance_m": "Median distance to nearest",
    "gap_score": "Gap score",
    "gap_per_1000": "Gap score per 1,000",
    "gap_rank": "Gap rank",
}
"""Short labels (one printed line each); the method notes say what each means."""


def _fact_rows(data: dict) -> list[tuple[str, str]]:
    imd = data["imd"]
    decile = imd.get("imd_decile")
    values = {
        "population": _number(data["population"]),
        "imd_decile": "n/a" if decile is None or pd.isna(decile) else str(int(decile)),
        "pct_deciles_1_2": f"{_number(imd.get('pct_deciles_1_2'), 2)}%",
        "projects": _number(data["projects"]),
        "per_10k": _number(data["per_10k"], 2),
    }
    gap = data["gap"]
    if gap:
        values |= {
            "reached": _number(gap["reached"]),
            "pct_covered": f"{_number(gap['pct_covered'], 2)}%",
            "beyond_reach": _number(gap["beyond_reach"]),
            "beyond_reach_deciles_1_2": _number(gap["beyond_reach_deciles_1_2"]),
            "median_distance_m": f"{_number(gap['median_distance_m'])} m",
            "gap_score": _number(gap["gap_score"], 1),
            "gap_per_1000": _number(gap["gap_per_1000"], 1),
            "gap_rank": f"{int(gap['gap_rank'])} of {data['areas']}",
        }
    return [(FACT_LABELS[key], value) for key, value in values.items()]


PX_PER_MM = 96 / 25.4
CONTENT_PX = (210 - 2 * 13) * PX_PER_MM
"""The printed width in CSS pixels: A4 less the side margins of STYLE's @page rule."""
MAP_COLUMN, HALF_COLUMN, GUTTER_PX = 0.62, 0.48, 4 * PX_PER_MM
"""The two-column rows' left column (share of the width) and the gap after it."""
CELL_PAD_PX = 1.5 * PX_PER_MM
"""A list cell's right padding (STYLE: ``td, th``); the left one is 0."""
LIST_PX, BODY_PX = 8 * 4 / 3, 9 * 4 / 3
"""Font sizes of list tables and of the body (and the facts), in CSS pixels."""


def column_widths(mins: list[float], maxs: list[float], width: float) -> list[float]:
    """Column widths (each with its padding) of a ``width`` wide table whose columns need at
    least ``mins`` (the longest word) and at most ``maxs`` (the whole text on one line): the
    CSS automatic table layout (css-tables-3 width distribution, as WeasyPrint and browsers
    do it), computed here once so that every table prints with ``table-layout: fixed``,
    whose layout never measures the cells' text (a third of WeasyPrint's time before)."""
    if sum(maxs) <= width:  # room for all: the spare width in proportion to each one's text
        total = sum(maxs)
        return [w * width / total if total else width / len(maxs) for w in maxs]
    spare, stretch = width - sum(mins), sum(b - a for a, b in zip(mins, maxs, strict=True))
    if spare <= 0 or not stretch:
        return list(mins)
    return [a + (b - a) * spare / stretch for a, b in zip(mins, maxs, strict=True)]


BREAK_AFTER = re.compile(r"(?<=[-/])(?=[^\W\d])|\s+")
"""Where a line may break (Unicode line breaking as Pango applies it, in part): at spaces and
after a hyphen or slash followed by a letter ("Co-|operative"). An unlisted break only makes a
column wider than needed, never too narrow."""


def _text_extent(text: str, size: float, bold: bool, wraps: bool) -> tuple[float, float]:
    """(min, max) content widths of a cell's text: its longest unbreakable piece, its whole."""
    whole = cartography.print_width(text, size, bold)
    if not wraps:
        return whole, whole
    pieces = [piece for piece in BREAK_AFTER.split(text) if piece]
    return max((cartography.print_width(p, size, bold) for p in pieces), default=0.0), whole


def _widths(cells: list[list[tuple[str, bool]]], width: float, size: float, nowrap) -> list:
    """Content widths (without padding) of the columns of a table of rows of (text, bold)."""
    mins, maxs = [0.0] * len(cells[0]), [0.0] * len(cells[0])
    for row in cells:
        for i, (text, bold) in enumerate(row):
            low, high = _text_extent(str(text), size, bold, i not in nowrap)
            mins[i], maxs[i] = max(mins[i], low + CELL_PAD_PX), max(maxs[i], high + CELL_PAD_PX)
    return [w - CELL_PAD_PX for w in column_widths(mins, maxs, width)]


def _table(
    headers: list[str],
    rows: list[list[str]],
    width: float,
    numeric: Iterable[int] = (),
    nowrap: Iterable[int] = (),
) -> str:
    """A list table ``width`` CSS pixels wide; ``numeric`` columns align right, they and
    ``nowrap`` ones never wrap. Its columns are as wide as the automatic table layout would
    make them, given to the fixed layout on the header's cells."""
    classes = {i: ' class="num"' for i in numeric} | {i: ' class="nw"' for i in nowrap}
    cells = [[(h, True) for h in headers]] + [[(v, False) for v in row] for row in rows]
    widths = _widths(cells, width, LIST_PX, set(classes))
    head = "".join(
        f'<th{classes.get(i, "")} style="width:{w:.2f}px">{_e(h)}</th>'
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{classes.get(i, '')}>{_e(v)}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    # A header row in <thead> is repeated when a long list runs on to page 2.
    return f'<table class="list"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _facts(rows: list[tuple[str, str]], width: float) -> str:
    """The facts beside the map: label and figure, the figures right-aligned."""
    label_w, value_w = _widths([[(a, False), (b, False)] for a, b in rows], width, BODY_PX, {1})
    first, *rest = rows
    return (
        f'<table class="facts"><tr><td style="width:{label_w:.2f}px">{_e(first[0])}</td>'
        f'<td class="num" style="width:{value_w:.2f}px">{_e(first[1])}</td></tr>'
        + "".join(f'<tr><td>{_e(a)}</td><td class="num">{_e(b)}</td></tr>' for a, b in rest)
        + "</table>"
    )


def _columns(left: str, right: str, left_width: float, cls: str = "layout") -> str:
    """Two columns side by side: ``left`` ``left_width`` CSS pixels wide, then the gutter."""
    return (
        f'<table class="{cls}"><tr><td style="width:{left_width:.2f}px">{left}</td>'
        f'<td class="right">{right}</td></tr></table>'
    )


def render(data: dict, generated: datetime | None = None) -> str:
    """The profile page (a complete HTML document; every text escaped)."""
    moment = (generated or datetime.now(UTC)).astimezone(UTC)
    level, noun = data["level"], NOUNS[data["level"]]
    title = f"{noun}: {data['name']}" + (f" ({data['borough']})" if data["borough"] else "")
    what = coverage.type_phrase(data["types"])
    labels = [spec["label"] for key, spec in project_types().items() if key in data["types"]]
    type_words = "all types" if len(labels) == len(project_types()) else ", ".join(labels)
    map_width = max(MAP_COLUMN * CONTENT_PX, data["map_width"])
    half = HALF_COLUMN * CONTENT_PX - GUTTER_PX  # the left column of the lower rows
    facts = _facts(_fact_rows(data), CONTENT_PX - map_width - GUTTER_PX)
    types = project_types()
    present = {row["type"] for row in data["listed"]} | {row["type"] for row in data["nearest"]}
    key = "".join(
        f'<span style="background:{_e(spec["colour"])}"></span>{_e(spec["label"])}'
        for spec in types.values()
        if spec["label"] in present
    )
    domains = _table(
        ["IMD 2025 domain", "Decile"],
        [
            [label, "n/a" if pd.isna(data["imd"].get(column)) else str(int(data["imd"][column]))]
            for column, label in DOMAINS.items()
        ]
        if data["imd"]
        else [],
        half,
        numeric=[1],
    )
    by_type = _table(
        ["Type", "Projects"],
        [[label, str(n)] for label, n in data["by_type"].items()],
        CONTENT_PX - half - GUTTER_PX,
        numeric=[1],
    )
    nothing = (
        "No project is recorded here."
        if type_words == "all types"
        else f"No project of the chosen types ({type_words}) is recorded here."
    )
    if not data["by_type"]:
        by_type = f"<p>{_e(nothing)}</p>"
    listed = data["listed"][:LISTED_PROJECTS]
    more = len(data["listed"]) - len(listed)
    columns = ["Project", "Type", "Organisation", "Postcode"]
    fields = ["name", "type", "organisation", "postcode"]
    if any(r["note"] for r in listed):  # an empty column would take width from the names
        columns, fields = [*columns, "Note"], [*fields, "note"]
    # Type and postcode on one line each: a project takes one row unless its names are long.
    project_list = _table(
        columns, [[r[f] for f in fields] for r in listed], CONTENT_PX, nowrap=[1, 3]
    )
    if more:
        project_list += (
            f"<p class='small'>... and {more} more: the council pack lists them all.</p>"
        )
    if not data["listed"]:
        project_list = f"<p>{_e(nothing)}</p>"
    nearest = _table(
        ["Project", "Type", "Ward", "Metres from edge"],
        [[r["name"], r["type"], r["where"], _number(r["metres"])] for r in data["nearest"]],
        CONTENT_PX,
        numeric=[3],
        nowrap=[1, 2],
    )
    if any(row["metres"] == 0 for row in data["nearest"]):
        nearest += (
            "<p class='small'>0 m: on or inside the drawn (generalised) boundary, but its "
            "postcode places it in the neighbouring area.</p>"
        )
    warning = ""
    if data["synthetic"]:
        warning = (
            f"<p class='warn'>Includes {data['synthetic']} ILLUSTRATIVE (synthetic) record(s) that "
            "are NOT real projects: every count and coverage figure here includes them.</p>"
        )
    notes = [
        f"Within reach / covered: residents whose postcode is at most {data['distance_m']:g} m "
        f"in a straight line from the nearest project ({what}); not a walking route.",
        "Population: Census 2021 residents of each LSOA spread over its residential postcodes; "
        "the area's figure is the sum over the postcodes in it.",
        f"Gap score: need-weighted people beyond reach, each resident weighted "
        f"{export.GAP_WEIGHTS}; gap rank 1 = the biggest gap among the region's "
        f"{data['areas']} {level}s.",
        "IMD 2025 decile (median): an area has no official decile; shown is the "
        "population-weighted median of its residents' LSOA deciles (each domain likewise); "
        "1 = most deprived 10% in England. Residents in deciles 1-2: the most deprived 20%.",
        "Home-run projects are shown and counted at their ward's centre, never their address.",
    ]
    if level == "ward":
        notes.append(
            "Ward shapes are generalised to 200 m; projects take their postcode's ward (ONS)."
        )
    if level == "deanery":
        notes.append(
            "Deanery boundaries are APPROXIMATE: derived from the parish list and small areas, "
            "not official Church of England boundaries."
        )
    # One paragraph, each exact line ended by " | ": short lines share a printed line.
    attribution = (
        "<h2>Sources and attribution</h2>"
        f"<p class='small'>{' | '.join(_e(line) for line in data['attribution'])}</p>"
    )
    method = "<h2>Method</h2>" + "".join(f"<p class='small'>{_e(n)}</p>" for n in notes)
    stamp = moment.strftime("%d %B %Y")
    reach = f"{data['distance_m']:g}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{STYLE}</style></head><body>
{warning}<h1>{_e(title)}</h1>
<p class="sub">Kindred Map area profile &middot; {_e(noun)} code {_e(data["code"])} &middot;
Project types: {_e(type_words)} &middot; Reach {_e(reach)} m &middot; {_e(stamp)}</p>
{_columns(f'{data["map"]}<p class="small key">{key}</p>', facts, map_width)}
{_columns(f"<h2>Deprivation (IMD 2025)</h2>{domains}", f"<h2>Projects by type</h2>{by_type}", half)}
<h2>Projects in this {_e(level)}</h2>{project_list}
<h2>Nearest projects beyond the boundary</h2>{nearest}
{_columns(method, attribution, half, "layout notes")}
</body></html>
"""


def _weasyprint():
    """WeasyPrint, imported when first needed (about 0.5 s: commands that print nothing skip it)."""
    import weasyprint

    return weasyprint


_PRINTER = threading.local()
UNUSED_UA_RULES = (
    "::marker",
    "::footnote-call",
    "::footnote-marker",
    "::note-call",
    "::note-marker",
    "::note-callback",
)
"""WeasyPrint's user-agent rules for pseudo-elements of every element that a profile never
has (it has no list item, footnote or note). Each made WeasyPrint compute six more styles for
every element of the page: a fifth of a profile's time."""


def _printer():
    """What every page this thread prints shares, made on its first page: the font
    configuration (Pango's font map, so fonts are loaded and measured once, not per page: 10%
    of a profile's time), the profile stylesheet parsed once, the user-agent stylesheet without
    UNUSED_UA_RULES, and the offline URL fetcher. Per thread, as Pango's font map is not shared
    across threads (the dashboard prints in its session's thread), and remade in a forked
    worker rather than inherited from its parent."""
    if getattr(_PRINTER, "pid", None) != os.getpid():
        weasyprint = _weasyprint()
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher

        fonts = FontConfiguration()
        _PRINTER.fonts = fonts
        _PRINTER.style = weasyprint.CSS(string=STYLE, font_config=fonts)
        _PRINTER.user_agent = _lean_user_agent(weasyprint)
        _PRINTER.offline = URLFetcher(allowed_protocols=(), fail_on_errors=True)
        _PRINTER.pid = os.getpid()
    return _PRINTER


def _lean_user_agent(weasyprint):
    """WeasyPrint's HTML user-agent stylesheet less its one-line UNUSED_UA_RULES, or None (use
    WeasyPrint's own) when the file is not where WeasyPrint 62-70 keeps it or has none of them."""
    from importlib.resources import files

    try:
        rules = (files("weasyprint.css") / "html5_ua.css").read_text("utf-8").splitlines()
    except OSError:
        return None
    kept = [
        rule
        for rule in rules
        if not (rule.startswith(UNUSED_UA_RULES) and rule.rstrip().endswith("}"))
    ]
    return weasyprint.CSS(string="\n".join(kept)) if len(kept) < len(rules) else None


def pdf_bytes(page: str) -> bytes:
    """The page printed to PDF by WeasyPrint, offline: every URL is refused, and a page that
    asks for one (a profile never does) fails with a ValueError instead of reaching out.

    A profile page's own stylesheet is given to WeasyPrint already parsed (the same rules,
    applied the same way: no other sheet is in the page). The output is the same as
    WeasyPrint's with its defaults (tested pixel for pixel)."""
    weasyprint = _weasyprint()
    from weasyprint.urls import FatalURLFetchingError

    shared = _printer()
    inline = f"<style>{STYLE}</style>"
    sheets = [shared.style] if inline in page else []
    document = weasyprint.HTML(string=page.replace(inline, "", 1), url_fetcher=shared.offline)
    if shared.user_agent is not None:
        # WeasyPrint asks the document for its user-agent sheets; this one's are the lean ones.
        document._ua_stylesheets = lambda forms=False: [shared.user_agent]
    try:
        return document.write_pdf(font_config=shared.fonts, stylesheets=sheets)
    except FatalURLFetchingError as error:
        raise ValueError(f"profiles fetch nothing: {error}") from None


def profile_html(
    level: str,
    name_or_code: str,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    types: Iterable[str] | str | None = None,
    projects: gpd.GeoDataFrame | None = None,
    include_synthetic: bool = False,
    generated: datetime | None = None,
    ctx: Context | None = None,
) -> str:
    """The profile of one ward, deanery or borough as a self-contained HTML page.

    ``projects`` default: the store's; ``types`` (default every type) choose the projects
    listed and the coverage figures; ``ctx`` (from `context`) reuses projects and coverage
    across many profiles."""
    ctx = ctx or context(projects, types, distance_m, include_synthetic)
    return render(figures(level, name_or_code, ctx), generated)


def profile_pdf(
    level: str,
    name_or_code: str,
    distance_m: float = coverage.DEFAULT_DISTANCE_M,
    types: Iterable[str] | str | None = None,
    projects: gpd.GeoDataFrame | None = None,
    include_synthetic: bool = False,
    generated: datetime | None = None,
    ctx: Context | None = None,
) -> bytes:
    """The profile as an A4 PDF (one or two pages): `profile_html` printed by WeasyPrint."""
    page = profile_html(
        level, name_or_code, distance_m, types, projects, include_synthetic, generated, ctx
    )
    return pdf_bytes(page)


def _slug(text: str) -> str:
    kept = "".join(c if c.isalnum() else "_" for c in text.strip())
    return "_".join(part for part in kept.split("_") if part) or "area"


def write_profile(path: Path, level: str, name_or_code: str, ctx: Context) -> Path:
    """Write one profile by the path's extension (.pdf or .html), atomically."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"a profile is written as .pdf or .html, not {path.name!r}")
    page = profile_html(level, name_or_code, ctx=ctx)
    payload = pdf_bytes(page) if fmt == "pdf" else page.encode("utf-8")
    return files.write_bytes(path, payload)


def _print_to(path: Path, page: str) -> Path:
    """A pool worker's job: print one page and write it (module level, so workers can run it)."""
    return files.write_bytes(path, pdf_bytes(page))


def write_wards(
    folder: Path, codes: Iterable[str], ctx: Context, fmt: str = "pdf", workers: int | None = None
) -> list[Path]:
    """One profile per ward code in ``folder``, named ``<ward name>_<code>.<fmt>``, in the order
    given; returns the paths.

    PDFs are printed by ``workers`` processes (default: one per core this process may use).
    WeasyPrint is single-threaded Python, so a batch on two cores takes about half the time.
    This process builds each page (it holds the store and coverage) while the workers print the
    ones before it; workers are forked, so they start at once with WeasyPrint already imported
    (a batch function: not for use inside a threaded server such as the dashboard, which prints
    its one profile in-process)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    wards = layer_bng("ward").set_index("_code")
    jobs = []
    for code in codes:
        code = resolve("ward", code)
        name = f"{_slug(str(wards.at[code, 'WD24NM']))}_{code}.{fmt}"
        jobs.append((Path(folder) / name, code))
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers}")
    workers = min(workers or len(os.sched_getaffinity(0)), len(jobs))
    if fmt == "html" or workers <= 1:
        return [write_profile(path, "ward", code, ctx) for path, code in jobs]
    _weasyprint()  # imported before the fork: every worker has it
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=fork) as pool:
        printed = [
            pool.submit(_print_to, path, profile_html("ward", code, ctx=ctx)) for path, code in jobs
        ]
        return [future.result() for future in printed]


def write_all(
    folder: Path, borough: str | None, ctx: Context, fmt: str = "pdf", workers: int | None = None
) -> list[Path]:
    """One profile per ward of ``borough`` (name or code; None: every ward of the region) in
    ``folder``, in ward name order (see `write_wards`)."""
    wards = layer_bng("ward")
    if borough is not None:
        boroughs = filters.resolve_areas("boroughs", borough)
        wards = wards[wards["LAD24CD"].astype(str).isin(boroughs).to_numpy()]
    return write_wards(folder, wards.sort_values("WD24NM")["_code"], ctx, fmt, workers)
