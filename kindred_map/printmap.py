"""The printable map: one dashboard view as an A4 or A3 landscape PDF (vector) or PNG.

What the page's link describes (`kindred_map.view.View`), drawn for paper and slides: a title,
the areas shaded as the page shades them (`classing.colour_classes` of `figures.area_figures`),
the projects shown as markers (home-run ones at their ward's centre: `view.shown_projects`
masks through `privacy.public_records` before any filter), the legend beside the map (never
over it), place names that never collide (`cartography.place_labels`), a scale bar, a north
arrow, the date, the sources and licences every export carries (`export.attribution`,
`export.about`), the approximate-deanery note where deaneries show, and, when the view holds a
postcode search, its reach circle and centre with a legend line saying how many projects are
within it (the page's words). The postcode is the searcher's own input, not a project's, so it
is printed. Drawn with matplotlib
from the boundary layers in British National Grid: no tiles, no network.

Decision: matplotlib (PSF-style licence), because one drawing gives both the vector PDF and
the PNG; the area profiles' inline SVG needs WeasyPrint for its PDF and cannot make a PNG.
Text is data: matplotlib draws strings as glyphs (math text is off), so nothing in a name
can run as markup or a template.
"""

import io
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, Patch, Rectangle
from matplotlib.transforms import Bbox

from kindred_map import (
    boundaries,
    cartography,
    coverage,
    export,
    files,
    mapview,
    privacy,
    search,
)
from kindred_map.classing import DIRECTIONS, colour_classes, type_legend
from kindred_map.colours import legend_notes
from kindred_map.figures import (
    DEANERY_NOTE,
    LEVELS,
    MEASURES,
    area_figures,
    areas_in_view,
    coverage_summary,
    needs_coverage,
)
from kindred_map.schema import project_types
from kindred_map.view import (
    View,
    filter_words,
    open_words,
    shown_projects,
    view_from_query,
)

PAPERS_MM = {"A4": (297.0, 210.0), "A3": (420.0, 297.0)}
"""Landscape paper sizes (width, height) in millimetres."""
FORMATS = ("pdf", "png")
PNG_DPI = 150
"""A4 at 150 dpi is 1754 x 1240 pixels: sharp on a slide, small enough to e-mail."""
PAGE_MAP_PIXELS = (1000, 640)
"""The dashboard map's usual size in pixels: with a link's zoom and centre, the printed map
shows about what that map showed (Web Mercator metres per pixel at the centre's latitude)."""
MARGIN_MM = 10.0
LEGEND_WIDTH_MM = 74.0
FOOTER_PT = 5.6
POINT_MM = 25.4 / 72
INK = "#1f2d3d"
MUTED = "#5c6670"
OUTSIDE_FILL = "#f4f4f1"
"""Areas outside the view's area filters: drawn for context, not shaded."""
WATER = "#e8eef3"
AREA_EDGE = "#ffffff"
BOROUGH_EDGE = INK
MARKER_PT = 4.2
LABEL_PT = {"town": 7.5, "suburb": 6.0}
SUBURB_LABEL_SPAN_M = 25_000
"""Suburb names are drawn (after towns, where they fit) only on maps narrower than this."""
MERCATOR_M_PER_PX_Z0 = 156_543.03392
SEARCH_COLOUR = "#111111"
"""The search circle and its centre, as the page draws them (dashboard.js)."""
SEARCH_DASH = (0, (4, 2.5))
"""The postcode search circle's dash pattern, on the map and in the legend."""
SEARCH_FIT = 1.15
"""A map that fits a search circle shows this many radii each side of it (as the page does)."""
HALO = {"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"}
"""A pale box behind map text: readable over any fill, and the PDF keeps the text as text (a
stroke halo, matplotlib's path effect, would turn it into outlines pdftotext cannot read)."""
RC = {
    "text.parse_math": False,
    "text.usetex": False,
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
}
"""Every text drawn as typed (no math text: a "$" in a name is a dollar sign); fonts embedded
as TrueType, so the PDF's text can be searched and copied (pdftotext reads it)."""


def view_from_link(link: str = "", overrides: Mapping[str, str] | None = None) -> View:
    """The view a page link describes (the whole address, or its query with or without the
    "?"), with ``overrides`` (link parameter -> value, e.g. {"layer": "ward"}) on top.

    The page ignores a bad value with a message; here it raises a ValueError listing them, so
    that a printed map never silently differs from what was asked for."""
    query = urlsplit(link).query if "?" in link or "://" in link else link.lstrip("?")
    params: dict = {key: values for key, values in parse_qs(query).items()}
    params |= {key: value for key, value in (overrides or {}).items() if value not in (None, "")}
    view, problems = view_from_query(params)
    if problems:
        raise ValueError("; ".join(problems))
    return view


def view_extent(view: View) -> tuple[float, float, float, float]:
    """(west, south, east, north) in EPSG:27700 of what the view shows: the link's map
    position when it has one, else the chosen area, else the postcode search's circle, else the
    areas the filters keep, else the region (the page fits the same way)."""
    if view.zoom > 0:
        centre = gpd.GeoSeries([shapely.Point(view.lon, view.lat)], crs=boundaries.WGS84)
        point = centre.to_crs(boundaries.BNG).iloc[0]
        per_px = MERCATOR_M_PER_PX_Z0 * np.cos(np.radians(view.lat)) / 2**view.zoom
        half_w, half_h = (size * per_px / 2 for size in PAGE_MAP_PIXELS)
        return point.x - half_w, point.y - half_h, point.x + half_w, point.y + half_h
    found = searched(view)
    if found and not view.area:
        reach = view.distance * SEARCH_FIT
        x, y = found["easting"], found["northing"]
        return x - reach, y - reach, x + reach, y + reach
    level = view.layer
    codes = [view.area] if view.area else areas_in_view(level, view)
    areas = boundaries.load(level)
    keys = boundaries.code_texts(areas[boundaries.LAYERS[level]["key"]])
    chosen = areas[keys.isin(codes).to_numpy()] if codes else areas
    if chosen.empty:
        chosen = boundaries.load("borough")
    west, south, east, north = chosen.to_crs(boundaries.BNG).total_bounds
    pad = 0.04 * max(east - west, north - south, 2_000.0)
    return west - pad, south - pad, east + pad, north + pad


def _fit(extent, width: float, height: float) -> tuple[float, float, float, float]:
    """``extent`` grown to the axes' aspect (``width`` / ``height``), around its centre."""
    west, south, east, north = extent
    span_x, span_y = east - west, north - south
    if span_x / span_y < width / height:
        span_x = span_y * width / height
    else:
        span_y = span_x * height / width
    cx, cy = (west + east) / 2, (south + north) / 2
    return cx - span_x / 2, cy - span_y / 2, cx + span_x / 2, cy + span_y / 2


def searched(view: View) -> dict | None:
    """The view's searched postcode (`search.find_postcode`), or None when there is none or it
    is not found (the page draws nothing then either; `search_words` says so)."""
    if not view.postcode:
        return None
    try:
        return search.find_postcode(view.postcode)
    except ValueError:
        return None


def search_words(view: View, shown: gpd.GeoDataFrame, found: Mapping | None) -> list[str]:
    """The legend's lines for the postcode search, in the page's words: how many of the shown
    projects are within the reach of the postcode (straight line), and its note if any."""
    if not view.postcode:
        return []
    if found is None:
        return [f"Postcode search {view.postcode!r}: not found, no circle drawn."]
    within = int((search.distances_m(shown, found) <= view.distance).sum())
    line = (
        f"Dashed circle: {within:,} project(s) within {view.distance:,} m of "
        f"{found['postcode']} (straight line); the dot is the postcode."
    )
    return [line, found["note"]] if found["note"] else [line]


def title_of(view: View) -> str:
    """ "Wards shaded by gap score (need-weighted people beyond reach)"."""
    noun = LEVELS[view.layer]["noun"]
    plural = "Deaneries" if noun == "Deanery" else f"{noun}s"
    measure = MEASURES[view.measure]["label"]
    if measure[1:2].islower():  # "Gap score" -> "gap score"; "IMD 2025 decile" kept
        measure = measure[0].lower() + measure[1:]
    return f"{plural} shaded by {measure}"


def subtitle_of(view: View, generated: datetime) -> str:
    """What the view chose, in words, with the date."""
    labels = {key: spec["label"] for key, spec in project_types().items()}
    words = filter_words(view)
    words["Project types"] = ", ".join(labels[kind] for kind in view.types) or "all"
    if needs_coverage(view) or view.gaps or view.postcode:
        words["Reach"] = f"{view.distance:,} m straight line{open_words(view)}"
    parts = [f"{key}: {value}" for key, value in words.items()]
    return " | ".join([*parts, _date(generated)])


def _deaneries_show(view: View) -> bool:
    return view.layer == "deanery" or bool(view.deaneries)


def legend_parts(
    view: View, shown: pd.DataFrame, classes: list[dict], found: Mapping | None = None
) -> dict:
    """The legend as data: heading, classes, which way is better, project types, the postcode
    search (``found``: `searched`; a postcode not found is said in the notes), notes."""
    notes = legend_notes(view, shown)
    if _deaneries_show(view):
        notes = [n for n in notes if not n.startswith("Deanery boundaries")] + [DEANERY_NOTE]
    return {
        "title": f"{LEVELS[view.layer]['noun']}: {MEASURES[view.measure]['label']}",
        "classes": classes,
        "direction": DIRECTIONS[view.measure],
        "types": type_legend(shown),
        "search": search_words(view, shown, found) if found else [],
        "notes": notes if found else [*search_words(view, shown, found), *notes],
    }


def sources_lines(shown: pd.DataFrame) -> list[str]:
    """The attribution lines (exactly as every export gives them), then each source's
    licence, as `export.about` words them."""
    facts = export.about(shown, "printed map")
    licences = " | ".join(f"{name}: {licence}" for name, licence in facts["licences"].items())
    return [*facts["attribution"], f"Licences: {licences}"]


# --- drawing ---------------------------------------------------------------------------------


def _mm(figure: Figure, left, bottom, width, height) -> list[float]:
    """A figure rectangle given in millimetres from the bottom left, as figure fractions."""
    w, h = (size * 25.4 for size in figure.get_size_inches())
    return [left / w, bottom / h, width / w, height / h]


def _shade(ax, view: View, shown, gap_table) -> list[dict]:
    """The areas of the view's level, filled by the measure's classes (areas the filters leave
    out drawn pale); returns the legend classes."""
    level = view.layer
    layer = boundaries.load(level).to_crs(boundaries.BNG)
    keys = boundaries.code_texts(layer[boundaries.LAYERS[level]["key"]]).to_numpy()
    codes = areas_in_view(level, view)
    table = area_figures(level, shown, gap_table).loc[codes]
    fills, classes = colour_classes(table[view.measure], view.measure)
    colour = pd.Series(keys).map(fills).fillna(OUTSIDE_FILL).to_numpy()
    edge = 0.15 if level == "lsoa" else 0.35
    layer.plot(ax=ax, color=colour, edgecolor=AREA_EDGE, linewidth=edge)
    if view.area and view.area in set(keys):
        layer[keys == view.area].boundary.plot(ax=ax, color=INK, linewidth=2.2)
    if level != "borough":
        boundaries.load("borough").to_crs(boundaries.BNG).boundary.plot(
            ax=ax, color=BOROUGH_EDGE, linewidth=0.9
        )
    if level != "deanery" and view.deaneries:
        deaneries = boundaries.load("deanery").to_crs(boundaries.BNG)
        chosen = boundaries.code_texts(deaneries["deanery_id"]).isin(view.deaneries).to_numpy()
        deaneries[chosen].boundary.plot(ax=ax, color="#6a3d9a", linewidth=1.0, linestyle="--")
    return classes


def _overlays(ax, projects: gpd.GeoDataFrame, view: View) -> None:
    """The gap veil and the cluster outlines, when the view asks for them (the page's own
    layers, from `mapview`)."""
    if view.gaps:
        veil = gpd.GeoDataFrame.from_features(
            mapview.gap_overlay(projects, view)["geojson"]["features"], crs=boundaries.WGS84
        )
        if len(veil):
            veil.to_crs(boundaries.BNG).plot(
                ax=ax, color="#1f2d3d", alpha=0.35, edgecolor="#b00020", linewidth=0.6
            )
    if view.clusters:
        hulls = gpd.GeoDataFrame.from_features(
            mapview.cluster_overlay(projects, view)["geojson"]["features"], crs=boundaries.WGS84
        )
        if len(hulls):
            hulls.to_crs(boundaries.BNG).boundary.plot(
                ax=ax, color="black", linewidth=1.0, linestyle="--"
            )


def _markers(ax, shown: gpd.GeoDataFrame, extent) -> None:
    """The shown projects, coloured by type: outside the region a hollow ring, home-run ones
    with a dashed edge, illustrative ones faded (as on the page)."""
    located = shown[shown.geometry.notna() & ~shown.geometry.is_empty]
    if located.empty:
        return
    points = located.geometry.to_crs(boundaries.BNG)
    west, south, east, north = extent
    inside = (
        (points.x >= west) & (points.x <= east) & (points.y >= south) & (points.y <= north)
    ).to_numpy()
    located, points = located[inside], points[inside]
    types = project_types()
    colour = located["type"].map(lambda t: types.get(t, types["other"])["colour"]).to_numpy()
    outside = np.asarray(coverage.outside_mask(located), dtype=bool)
    home = privacy.is_ward_only(located).to_numpy()
    faded = located["synthetic"].fillna(False).astype(bool).to_numpy()
    size = MARKER_PT**2
    for mask, style in (
        (~outside & ~home, {"linestyles": "solid"}),
        (~outside & home, {"linestyles": (0, (1.2, 1.0))}),
    ):
        for alpha, chosen in ((1.0, mask & ~faded), (0.35, mask & faded)):
            if chosen.any():
                ax.scatter(
                    points.x[chosen],
                    points.y[chosen],
                    s=size,
                    c=colour[chosen],
                    edgecolors="#222222",
                    linewidths=0.5,
                    alpha=alpha,
                    zorder=4,
                    **style,
                )
    if outside.any():
        ax.scatter(
            points.x[outside],
            points.y[outside],
            s=size,
            facecolors="white",
            edgecolors=colour[outside],
            linewidths=1.2,
            zorder=4,
        )


def _search_circle(ax, view: View, found: Mapping | None) -> None:
    """The postcode search's reach (a dashed circle of ``view.distance``, straight line) and
    its centre, drawn as the page draws them."""
    if found is None:
        return
    centre = shapely.Point(found["easting"], found["northing"])
    ring = gpd.GeoSeries([centre.buffer(view.distance, quad_segs=32)], crs=boundaries.BNG)
    ring.plot(ax=ax, color=SEARCH_COLOUR, alpha=0.05, zorder=5)
    ring.boundary.plot(ax=ax, color=SEARCH_COLOUR, linewidth=1.4, linestyle=SEARCH_DASH, zorder=5)
    ax.scatter(
        [centre.x],
        [centre.y],
        s=(MARKER_PT * 1.3) ** 2,
        c=SEARCH_COLOUR,
        edgecolors="white",
        linewidths=1.2,
        zorder=6,
    )


def _search_dot(ax, found: Mapping | None) -> list[Bbox]:
    """The search centre's box in display units (no place name may cover it), or none."""
    if found is None:
        return []
    x, y = ax.transData.transform((found["easting"], found["northing"]))
    half = MARKER_PT * 1.3 * ax.figure.dpi / 72
    return [Bbox([[x - half, y - half], [x + half, y + half]])]


def _scale_bar(ax, extent, busy) -> Bbox:
    """A scale bar in the corner of the map (bottom left, bottom right or top left; the north
    arrow has the top right) that hides least of ``busy`` (the region's land); returns its box
    in display units."""
    west, south, east, north = extent
    span_x, span_y = east - west, north - south
    length = cartography.nice_length(span_x)
    height = 0.008 * span_y
    box_w, box_h = length + 0.06 * span_x, 0.1 * span_y
    starts = [(west, south), (east - box_w, south), (west, north - box_h)]
    corner = cartography.quietest_corner([(x, y, x + box_w, y + box_h) for x, y in starts], busy)
    x0 = starts[corner][0] + 0.03 * span_x
    y0 = starts[corner][1] + 0.04 * span_y
    half = length / 2
    for start, fill in ((x0, INK), (x0 + half, "white")):
        ax.add_patch(
            Rectangle((start, y0), half, height, facecolor=fill, edgecolor=INK, lw=0.6, zorder=6)
        )
    for x, words in ((x0, "0"), (x0 + length, cartography.scale_words(length))):
        ax.text(
            x,
            y0 + 1.8 * height,
            words,
            ha="center",
            va="bottom",
            fontsize=7,
            color=INK,
            zorder=6,
            bbox=HALO,
        )
    low = ax.transData.transform((x0 - 0.02 * span_x, y0 - 0.5 * height))
    high = ax.transData.transform((x0 + length + 0.02 * span_x, y0 + 5.5 * height))
    return Bbox([low, high])


def _north_arrow(ax) -> Bbox:
    """A north arrow in the top-right corner (grid north: within 1.5 degrees of true north
    across the region); returns its box in display units."""
    x, y = 0.965, 0.86
    ax.add_patch(
        FancyArrow(
            x,
            y,
            0,
            0.08,
            width=0.008,
            head_width=0.028,
            head_length=0.035,
            length_includes_head=True,
            transform=ax.transAxes,
            color=INK,
            zorder=6,
        )
    )
    label = ax.text(
        x, y - 0.01, "N", ha="center", va="top", fontsize=9, weight="bold", transform=ax.transAxes
    )
    renderer = ax.figure.canvas.get_renderer()
    box = label.get_window_extent(renderer)
    tip = ax.transAxes.transform([(x - 0.02, y + 0.085)])
    return Bbox([[tip[0][0], box.y0], [tip[0][0] + ax.bbox.width * 0.04, tip[0][1]]])


def _place_labels(ax, extent, obstacles: list[Bbox]) -> list[str]:
    """Town names (suburbs too on a close map) by priority, dropped where they would overlap
    another name, the scale bar, the north arrow or the map's edge. Returns the names drawn."""
    places = boundaries.load("place").to_crs(boundaries.BNG)
    west, south, east, north = extent
    x, y = places.geometry.x.to_numpy(), places.geometry.y.to_numpy()
    inside = (x > west) & (x < east) & (y > south) & (y < north)
    kinds = ["town"] + (["suburb"] if east - west < SUBURB_LABEL_SPAN_M else [])
    order = [
        index
        for kind in kinds
        for index in np.flatnonzero(inside & (places["kind"] == kind).to_numpy())
    ]
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.bbox
    texts, boxes = [], []
    for index in order:
        kind = places["kind"].iloc[index]
        text = ax.text(
            x[index],
            y[index],
            str(places["name"].iloc[index]),
            ha="center",
            va="center",
            fontsize=LABEL_PT[kind],
            style="italic" if kind == "suburb" else "normal",
            color=INK,
            zorder=5,
            bbox=HALO,
        )
        box = text.get_window_extent(renderer)
        texts.append(text)
        boxes.append((box.x0, box.y0, box.x1, box.y1))
    edges = [
        (frame.x0 - 1e4, frame.y0 - 1e4, frame.x0 + 2, frame.y1 + 1e4),
        (frame.x1 - 2, frame.y0 - 1e4, frame.x1 + 1e4, frame.y1 + 1e4),
        (frame.x0 - 1e4, frame.y0 - 1e4, frame.x1 + 1e4, frame.y0 + 2),
        (frame.x0 - 1e4, frame.y1 - 2, frame.x1 + 1e4, frame.y1 + 1e4),
    ]
    blocked = [(b.x0, b.y0, b.x1, b.y1) for b in obstacles] + edges
    kept = set(cartography.place_labels(boxes, blocked, pad=1.5))
    for index, text in enumerate(texts):
        if index not in kept:
            text.remove()
    return [texts[index].get_text() for index in sorted(kept)]


def _legend_block(ax, handles: list, title: str, top: float) -> float:
    """One titled block of legend entries from ``top`` (axes fraction) down; returns its
    bottom."""
    block = ax.legend(
        handles=handles,
        title=title,
        loc="upper left",
        bbox_to_anchor=(0, top),
        frameon=False,
        fontsize=7.5,
        title_fontsize=8.5,
        alignment="left",
        borderaxespad=0,
    )
    block.get_title().set_weight("bold")
    ax.add_artist(block)
    extent = block.get_window_extent(ax.figure.canvas.get_renderer())
    return ax.transAxes.inverted().transform(extent)[0][1]


def _legend(ax, parts: Mapping) -> None:
    """The legend in its own panel beside the map: classes as filled squares, project types
    as dots with counts, which way is better, then the notes (wrapped)."""
    ax.set_axis_off()
    handles = [
        Patch(facecolor=entry["colour"], edgecolor="#8a8f96", label=entry["label"])
        for entry in parts["classes"]
    ]
    renderer = ax.figure.canvas.get_renderer()
    inverse = ax.transAxes.inverted()
    title = "\n".join(textwrap.wrap(parts["title"], 40))
    top = _legend_block(ax, handles, title, 1.0) - 0.015
    direction = ax.text(
        0,
        top,
        "\n".join(textwrap.wrap(parts["direction"], 48)),
        fontsize=7,
        va="top",
        color=MUTED,
        transform=ax.transAxes,
    )
    top = inverse.transform(direction.get_window_extent(renderer))[0][1] - 0.025
    if parts["types"]:
        dots = [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markersize=MARKER_PT + 1,
                markerfacecolor=entry["colour"],
                markeredgecolor="#222222",
                markeredgewidth=0.5,
                label=f"{entry['label']} ({entry['count']:,})",
            )
            for entry in parts["types"]
        ]
        top = _legend_block(ax, dots, "Projects shown", top) - 0.025
    else:
        ax.text(
            0,
            top,
            "No project matches the filters.",
            fontsize=7.5,
            va="top",
            transform=ax.transAxes,
        )
        top -= 0.05
    if parts["search"]:
        ring = Line2D(  # drawn as the map draws the circle: a dashed line
            [],
            [],
            color=SEARCH_COLOUR,
            linewidth=1.4,
            linestyle=SEARCH_DASH,
            label="\n".join(textwrap.wrap(parts["search"][0], 44)),
        )
        top = _legend_block(ax, [ring], "Postcode search", top) - 0.02
    for note in [*parts["search"][1:], *parts["notes"]]:
        text = ax.text(
            0,
            top,
            "\n".join(textwrap.wrap(note, 52)),
            fontsize=6.8,
            va="top",
            color=INK,
            transform=ax.transAxes,
        )
        top = inverse.transform(text.get_window_extent(renderer))[0][1] - 0.012


def figure(
    projects: gpd.GeoDataFrame,
    view: View,
    *,
    paper: str = "A4",
    generated: datetime | None = None,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
) -> Figure:
    """The printable map of ``view`` as a matplotlib Figure (landscape ``paper``: A4 or A3).

    ``projects``: the store's records (masked here, before filtering); ``coverage_areas``:
    `figures.coverage_summary(...)["areas"]` when the caller has it (computed otherwise, for
    the gap measures only)."""
    if paper not in PAPERS_MM:
        raise ValueError(f"paper must be one of {', '.join(PAPERS_MM)}, not {paper!r}")
    with rc_context(RC):
        return _figure(projects, view, paper, generated, coverage_areas)


def _wrap(text: str, width_mm: float, points: float) -> list[str]:
    """``text`` in lines that fit ``width_mm`` at ``points`` (DejaVu Sans averages under
    0.56 em a character in running text)."""
    return textwrap.wrap(text, max(20, int(width_mm / (points * POINT_MM * 0.56))))


def _date(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _figure(projects, view, paper, generated, coverage_areas) -> Figure:
    moment = (generated or datetime.now(UTC)).astimezone(UTC)
    if needs_coverage(view) and not coverage_areas:
        coverage_areas = coverage_summary(
            projects, view.types, view.distance, view.examples, view.open_at, view.inside_only
        )["areas"]
    shown = shown_projects(projects, view)
    found = searched(view)
    width_mm, height_mm = PAPERS_MM[paper]
    text_w = width_mm - 2 * MARGIN_MM
    footer_lines = [
        line
        for source in [
            f"Sources and licences. Printed {_date(moment)} by Kindred Map; {len(shown):,} "
            "projects shown.",
            *sources_lines(shown),
        ]
        for line in _wrap(source, text_w, FOOTER_PT)
    ]
    footer = MARGIN_MM * 0.7 + len(footer_lines) * FOOTER_PT * 1.3 * POINT_MM + 3
    subtitle = _wrap(subtitle_of(view, moment), text_w, 7.5)
    header = MARGIN_MM + 9 + len(subtitle) * 7.5 * 1.3 * POINT_MM
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4))
    FigureCanvasAgg(fig)
    map_w = text_w - LEGEND_WIDTH_MM - 4
    map_h = height_mm - header - footer
    ax = fig.add_axes(_mm(fig, MARGIN_MM, footer, map_w, map_h))
    extent = _fit(view_extent(view), map_w, map_h)
    ax.set_facecolor(WATER)
    gap_table = (coverage_areas or {}).get(view.layer)
    classes = _shade(ax, view, shown, gap_table)
    _overlays(ax, projects, view)
    _markers(ax, shown, extent)
    _search_circle(ax, view, found)
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for spine in ax.spines.values():
        spine.set_color(INK)
        spine.set_linewidth(0.8)
    land = boundaries.load("borough").to_crs(boundaries.BNG).union_all()
    obstacles = [_scale_bar(ax, extent, land), _north_arrow(ax), *_search_dot(ax, found)]
    _place_labels(ax, extent, obstacles)
    title = "Kindred Map: " + title_of(view)
    if shown["synthetic"].fillna(False).astype(bool).any():
        title = "ILLUSTRATIVE DATA INCLUDED. " + title
    top = height_mm - MARGIN_MM
    fig.text(*_mm(fig, MARGIN_MM, top - 5, 0, 0)[:2], title, fontsize=14, weight="bold", color=INK)
    fig.text(
        *_mm(fig, MARGIN_MM, top - 7.5, 0, 0)[:2],
        "\n".join(subtitle),
        fontsize=7.5,
        color=MUTED,
        va="top",
        linespacing=1.3,
    )
    legend_ax = fig.add_axes(
        _mm(fig, width_mm - MARGIN_MM - LEGEND_WIDTH_MM, footer, LEGEND_WIDTH_MM, map_h)
    )
    _legend(legend_ax, legend_parts(view, shown, classes, found))
    fig.text(
        *_mm(fig, MARGIN_MM, footer - 3, 0, 0)[:2],
        "\n".join(footer_lines),
        fontsize=FOOTER_PT,
        color=INK,
        va="top",
        linespacing=1.3,
    )
    return fig


def map_bytes(
    projects: gpd.GeoDataFrame,
    view: View,
    fmt: str = "pdf",
    *,
    paper: str = "A4",
    generated: datetime | None = None,
    coverage_areas: Mapping[str, pd.DataFrame] | None = None,
) -> bytes:
    """The printable map as PDF (vector, text kept as text) or PNG bytes."""
    return render(
        figure(projects, view, paper=paper, generated=generated, coverage_areas=coverage_areas), fmt
    )


def render(fig: Figure, fmt: str) -> bytes:
    """One drawn map as ``fmt`` bytes (pdf or png)."""
    if fmt not in FORMATS:
        raise ValueError(f"a printable map is written as pdf or png, not {fmt!r}")
    buffer = io.BytesIO()
    options = {"dpi": PNG_DPI} if fmt == "png" else {"metadata": {"Creator": "Kindred Map"}}
    with rc_context(RC):
        fig.savefig(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_maps(
    paths: list[Path],
    projects: gpd.GeoDataFrame,
    view: View,
    *,
    paper: str = "A4",
    generated: datetime | None = None,
) -> list[Path]:
    """Draw the view once and write it to each path by its extension (.pdf or .png),
    atomically."""
    paths = [Path(path) for path in paths]
    formats = [path.suffix.lower().lstrip(".") for path in paths]
    for path, fmt in zip(paths, formats, strict=True):
        if fmt not in FORMATS:
            raise ValueError(f"a printable map is written as .pdf or .png, not {path.name!r}")
    fig = figure(projects, view, paper=paper, generated=generated)
    return [
        files.write_bytes(path, render(fig, fmt)) for path, fmt in zip(paths, formats, strict=True)
    ]
