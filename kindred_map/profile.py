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
batch mode render in-process and offline (the URL fetcher refuses every URL); measured about
0.15 s a profile on 2 shared cores (benchmarks/results/profiles.md).
"""

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import boundaries, coverage, export, files, filters, privacy, store
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
MAP_WIDTH, MAP_HEIGHT = 440.0, 330.0
"""Locator map size in CSS pixels (it prints about 116 x 87 mm)."""
FORMATS = ("pdf", "html")


@dataclass(frozen=True)
class Context:
    """What every profile of one batch shares: the projects shown (home-run ones at their
    ward's centre), the coverage result, and the options that made them."""

    projects: gpd.GeoDataFrame
    result: coverage.CoverageResult
    gaps: Mapping[str, pd.DataFrame]
    types: tuple[str, ...]
    distance_m: float
    include_synthetic: bool


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
    return Context(shown, result, gaps, chosen, float(distance_m), include_synthetic)


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


def _area(level: str, code: str) -> pd.Series:
    layer = boundaries.LAYERS[level]
    areas = boundaries.load(level)
    return areas[boundaries.code_texts(areas[layer["key"]]).to_numpy() == code].iloc[0]


def figures(level: str, name_or_code: str, ctx: Context) -> dict:
    """Everything one profile shows, as data: the single source of its numbers."""
    code = resolve(level, name_or_code)
    area = _area(level, code)
    layer = boundaries.LAYERS[level]
    gaps = ctx.gaps[level]
    row = gaps[gaps["_code"] == code]
    gap = row.iloc[0].to_dict() if len(row) else None
    deprived = deprivation(level)
    imd = deprived.loc[code].to_dict() if code in deprived.index else {}
    project_codes = boundaries.code_texts(ctx.projects[AREA_COLUMN[level]])
    inside = ctx.projects[(project_codes == code).to_numpy()]
    labels = {key: spec["label"] for key, spec in project_types().items()}
    by_type = inside["type"].map(lambda t: labels.get(t, t)).value_counts()
    population = int(area["population"])
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
        "nearest": _nearest_beyond(level, code, ctx.projects, project_codes),
        "types": ctx.types,
        "distance_m": ctx.distance_m,
        "synthetic": int(inside["synthetic"].fillna(False).astype(bool).sum()),
        "map": locator_svg(level, code, ctx.projects),
        "attribution": export.attribution(inside),
    }


def _project_rows(inside: gpd.GeoDataFrame) -> list[dict]:
    labels = {key: spec["label"] for key, spec in project_types().items()}
    rows = []
    for record in inside.sort_values(["type", "name"], key=_text_key).to_dict("records"):
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


def _nearest_beyond(level, code, projects, project_codes) -> list[dict]:
    """The projects nearest the area that are not counted in it: straight-line metres from the
    area's edge (EPSG:27700 grid metres; within 0.04% of ground distance here)."""
    outside = projects[(project_codes != code).to_numpy()]
    outside = outside[outside.geometry.notna() & ~outside.geometry.is_empty]
    if outside.empty:
        return []
    shape = _area(level, code)
    edge = gpd.GeoSeries([shape.geometry], crs=boundaries.WGS84).to_crs(boundaries.BNG).iloc[0]
    points = outside.geometry.to_crs(boundaries.BNG)
    metres = shapely.distance(edge, points.to_numpy())
    labels = {key: spec["label"] for key, spec in project_types().items()}
    order = np.argsort(metres, kind="stable")[:NEAREST_BEYOND]
    rows = []
    for index in order:
        record = outside.iloc[index]
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


def _nice_length(span_m: float) -> int:
    """A round scale-bar length near a quarter of the map's width."""
    target = span_m / 4
    for length in (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 25_000, 50_000):
        if length >= target:
            return length
    return 50_000


def _path(geometry, to_px) -> str:
    parts = []
    for polygon in export.tidy_geometries([geometry])[0].geoms:
        for ring in (polygon.exterior, *polygon.interiors):
            xy = to_px(np.asarray(ring.coords))
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f"M{points}Z")
    return " ".join(parts)


def locator_svg(level: str, code: str, projects: gpd.GeoDataFrame) -> str:
    """An inline SVG locator map in British National Grid: the area shaded, its neighbours
    outlined and named, projects as dots coloured by type (home-run ones dashed at their ward's
    centre), a scale bar. Drawn from the boundary layers alone: no tiles, no network."""
    layer = boundaries.LAYERS[level]
    areas = boundaries.load(level).to_crs(boundaries.BNG)
    codes = boundaries.code_texts(areas[layer["key"]]).to_numpy()
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
    labels = []
    for area_code, geometry, name in zip(
        codes, areas.geometry, areas[layer["name_field"]].astype(str), strict=True
    ):
        if area_code == code or not geometry.intersects(frame):
            continue
        clipped = geometry.intersection(frame).simplify(tolerance)
        if clipped.is_empty or clipped.area <= 0:
            continue
        shapes.append(f'<path d="{_path(clipped, to_px)}" class="nb"/>')
        spot = to_px(np.asarray(clipped.representative_point().coords))[0]
        spot[0] = min(max(spot[0], 45.0), width - 45.0)  # keep the name on the map
        labels.append(
            f'<text x="{spot[0]:.1f}" y="{spot[1]:.1f}" class="nbl">{html.escape(name)}</text>'
        )
    own = f'<path d="{_path(shape.simplify(tolerance), to_px)}" class="own"/>'
    dots = []
    located = projects[projects.geometry.notna() & ~projects.geometry.is_empty]
    grid = located.geometry.to_crs(boundaries.BNG)
    types = project_types()
    for (_, record), point in zip(located.iterrows(), grid, strict=True):
        if not frame.contains(point):
            continue
        x, y = to_px(np.array([[point.x, point.y]]))[0]
        colour = types.get(record["type"], types["other"])["colour"]
        dashed = ' stroke-dasharray="2 1.5"' if record["location_precision"] == "ward_only" else ""
        faded = ' fill-opacity="0.35"' if bool(record["synthetic"]) else ""
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{html.escape(colour)}"'
            f'{faded}{dashed} class="pr"/>'
        )
    length = _nice_length(east - west)
    bar = length * scale
    words = f"{length / 1000:g} km" if length >= 1000 else f"{length} m"
    scale_bar = (
        f'<g class="sb"><rect x="10" y="{height - 18:.1f}" width="{bar:.1f}" height="4"/>'
        f'<text x="10" y="{height - 22:.1f}">{words}</text></g>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" role="img" '
        f'aria-label="Locator map of the {html.escape(level)}">'
        "<style>.nb{fill:#f4f4f1;stroke:#8a8f96;stroke-width:.8}"
        ".own{fill:#fde9b8;stroke:#1f2d3d;stroke-width:2;fill-rule:evenodd}"
        ".nbl{font:8px sans-serif;fill:#5c6670;text-anchor:middle}"
        ".pr{stroke:#222;stroke-width:.8}.sb rect{fill:#1f2d3d}.sb text{font:8px sans-serif}"
        "</style>"
        f'<rect width="{width:.1f}" height="{height:.1f}" fill="#e8eef3"/>'
        + "".join(shapes)
        + own
        + "".join(labels)
        + "".join(dots)
        + scale_bar
        + "</svg>"
    )


# --- the page -----------------------------------------------------------------------------

STYLE = """
@page { size: A4; margin: 13mm 13mm 14mm 13mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font: 7.5pt sans-serif;
    color: #5c6670; } }
body { font: 9pt/1.35 "DejaVu Sans", sans-serif; color: #1f2d3d; margin: 0; }
h1 { font-size: 16pt; margin: 0 0 1mm; }
h2 { font-size: 10.5pt; margin: 4mm 0 1.5mm; border-bottom: 0.6pt solid #c5ccd3; }
p { margin: 0 0 1.5mm; }
.sub { color: #5c6670; margin-bottom: 3mm; }
.warn { border: 1pt solid #b00020; color: #b00020; padding: 2mm; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; vertical-align: top; padding: 0.6mm 1.5mm 0.6mm 0; }
th { font-weight: bold; }
.num { text-align: right; white-space: nowrap; }
.layout td { padding: 0; }
.facts td { border-bottom: 0.4pt solid #e1e5e9; }
.list td, .list th { border-bottom: 0.4pt solid #e1e5e9; font-size: 8pt; }
.small { font-size: 7.5pt; color: #39434d; }
.key span { display: inline-block; width: 7pt; height: 7pt; border-radius: 50%;
  border: 0.6pt solid #222; margin: 0 1.5mm 0 3mm; vertical-align: -1pt; }
svg { display: block; }
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


def _table(headers: list[str], rows: list[list[str]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="list"><tr>{head}</tr>{body}</table>'


def render(data: dict, generated: datetime | None = None) -> str:
    """The profile page (a complete HTML document; every text escaped)."""
    moment = (generated or datetime.now(UTC)).astimezone(UTC)
    level, noun = data["level"], NOUNS[data["level"]]
    title = f"{noun}: {data['name']}" + (f" ({data['borough']})" if data["borough"] else "")
    what = coverage.type_phrase(data["types"])
    labels = [spec["label"] for key, spec in project_types().items() if key in data["types"]]
    type_words = "all types" if len(labels) == len(project_types()) else ", ".join(labels)
    facts = "".join(
        f'<tr><td>{_e(label)}</td><td class="num">{_e(value)}</td></tr>'
        for label, value in _fact_rows(data)
    )
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
        numeric=[1],
    )
    by_type = _table(
        ["Type", "Projects"], [[label, str(n)] for label, n in data["by_type"].items()], [1]
    )
    if not data["by_type"]:
        by_type = "<p>None of the chosen types.</p>"
    listed = data["listed"][:LISTED_PROJECTS]
    more = len(data["listed"]) - len(listed)
    project_list = _table(
        ["Project", "Type", "Organisation", "Postcode", "Note"],
        [[r["name"], r["type"], r["organisation"], r["postcode"], r["note"]] for r in listed],
    )
    if more:
        project_list += (
            f"<p class='small'>... and {more} more: the council pack lists them all.</p>"
        )
    if not data["listed"]:
        project_list = "<p>No project of the chosen types is recorded here.</p>"
    nearest = _table(
        ["Project", "Type", "Ward", "Metres from the boundary"],
        [[r["name"], r["type"], r["where"], _number(r["metres"])] for r in data["nearest"]],
        numeric=[3],
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
    attribution = "".join(f"<p class='small'>{_e(line)}</p>" for line in data["attribution"])
    stamp = moment.strftime("%d %B %Y")
    reach = f"{data['distance_m']:g}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{STYLE}</style></head><body>
{warning}<h1>{_e(title)}</h1>
<p class="sub">Kindred Map area profile &middot; {_e(noun)} code {_e(data["code"])} &middot;
Project types: {_e(type_words)} &middot; Reach {_e(reach)} m &middot; {_e(stamp)}</p>
<table class="layout"><tr><td style="width:62%">{data["map"]}
<p class="small key">{key}</p></td>
<td style="padding-left:4mm"><table class="facts">{facts}</table></td></tr></table>
<table class="layout"><tr><td style="width:48%;padding-right:4mm"><h2>Deprivation (IMD 2025)</h2>
{domains}</td><td><h2>Projects by type</h2>{by_type}</td></tr></table>
<h2>Projects in this {_e(level)}</h2>{project_list}
<h2>Nearest projects beyond the boundary</h2>{nearest}
<h2>Method</h2>{"".join(f"<p class='small'>{_e(n)}</p>" for n in notes)}
<h2>Sources and attribution</h2>{attribution}
</body></html>
"""


def pdf_bytes(page: str) -> bytes:
    """The page printed to PDF by WeasyPrint, offline: every URL is refused, and a page that
    asks for one (a profile never does) fails with a ValueError instead of reaching out."""
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    offline = URLFetcher(allowed_protocols=(), fail_on_errors=True)
    try:
        return weasyprint.HTML(string=page, url_fetcher=offline).write_pdf()
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


def write_all(folder: Path, borough: str, ctx: Context, fmt: str = "pdf") -> list[Path]:
    """One profile per ward of ``borough`` (name or code) in ``folder``, named
    ``<ward name>_<code>.<fmt>``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    boroughs = filters.resolve_areas("boroughs", borough)
    wards = boundaries.load("ward")
    chosen = wards[wards["LAD24CD"].astype(str).isin(boroughs).to_numpy()]
    written = []
    for _, ward in chosen.sort_values("WD24NM").iterrows():
        name = f"{_slug(str(ward['WD24NM']))}_{ward['WD24CD']}.{fmt}"
        written.append(write_profile(Path(folder) / name, "ward", str(ward["WD24CD"]), ctx))
    return written
