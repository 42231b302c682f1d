"""The dashboard's view: what it shows, carried by the link (URL query <-> view <-> widgets)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

import geopandas as gpd

from kindred_map import coverage, filters, freshness, hours, privacy
from kindred_map.figures import AREA_FILTER_LEVELS, LEVELS, MEASURES, area_choices
from kindred_map.schema import project_types, resolve_types

ZOOM_SNAP = 0.25
"""Quarter zoom steps on the map: fitting the region or an area clear of the controls wastes
at most 16% of the room (half steps wasted up to 29%: issue 23)."""

DISTANCE_LIMITS_M = (100, 20_000)
DISTANCE_CHOICES_M = (400, 800, 1_200, 1_600, 2_000, 3_000, 5_000)
"""The reach distances offered in the dashboard (a link may carry any within the limits)."""
WALKING_M_PER_MINUTE = 80
"""About 4.8 km/h: the walking pace behind "800 m is about a 10-minute walk"."""

EPS_LIMITS_M = (50, 5_000)


MIN_SAMPLES_LIMITS = (3, 50)


POSTCODE_MAX_CHARS = 16


PROJECT_ID_MAX_CHARS = 64
"""Longest project id a link may carry (the selected project; ids are checked on the page)."""
LINK_LIST_MAX_VALUES = 250
"""Values one list of a link (types, boroughs, deaneries, wards, imd, fresh) may hold: more
than the region's 221 wards. A longer list is ignored whole, with a message."""
LINK_LIST_MAX_CHARS = 10_000
"""Characters one list of a link may hold: every ward by name (about 8,200) fits. Checked
before the list is split, so a 269 KB list costs milliseconds, not a minute of CPU."""
QUOTED_MAX_CHARS = 40
"""A value quoted in a message is cut to this many characters."""
MAX_PROBLEMS = 10
"""Messages about a link shown one by one; the rest are counted in one more."""


@dataclass(frozen=True)
class View:
    """Everything that decides what the dashboard shows; a link carries it (see `view_to_query`).

    Area filters hold codes (ward and borough GSS codes, deanery ids as text). ``area`` is the
    selected area of ``layer`` whose panel is open. ``examples``: illustrative (synthetic)
    records are shown only when asked for. ``project``: the id of the project chosen in the
    name search. ``zoom``/``lat``/``lon``: where the map is (0 = not set: the map opens on
    the region; zoom in the map's steps, `ZOOM_SNAP`). ``open_at``: coverage counts
    only projects open then (one of `hours.OPEN_CHOICES`, "" = any time); carried in the link
    as ``open=``. ``inside_only``: coverage counts only projects inside the region (for
    comparison; by default projects just outside reach the residents near them)."""

    types: tuple[str, ...] = ()
    boroughs: tuple[str, ...] = ()
    deaneries: tuple[str, ...] = ()
    wards: tuple[str, ...] = ()
    imd: tuple[int, ...] = ()
    fresh: tuple[str, ...] = ()
    """Freshness statuses shown (`kindred_map.freshness.FRESHNESS`); empty: all."""
    layer: str = "ward"
    measure: str = "projects"
    postcode: str = ""
    distance: int = int(coverage.DEFAULT_DISTANCE_M)
    area: str = ""
    project: str = ""
    gaps: bool = False
    clusters: bool = False
    examples: bool = False
    eps: int = 500
    min_samples: int = 3
    zoom: float = 0.0
    lat: float = 0.0
    lon: float = 0.0
    open_at: str = ""
    inside_only: bool = False


DEFAULT_VIEW = View()


BOOL_FIELDS = ("gaps", "clusters", "examples", "inside_only")
POSITION_LIMITS = {"zoom": (6, 18), "lat": (49.0, 61.0), "lon": (-9.0, 2.0)}
"""A map position in a link: zoom and centre near the region (Great Britain's extent)."""
POSITION_DECIMALS = 5
LIST_FIELDS = ("types", "boroughs", "deaneries", "wards", "imd", "fresh")
QUERY_NAMES = {"open_at": "open"}
"""View fields whose link parameter has another name (the rest use the field's name)."""


def _split(value) -> list[str]:
    """Values from a query parameter: "a,b", or a list of such (repeated keys)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _list(params: Mapping, name: str, problems: list[str]) -> list[str]:
    """The values of the link's list ``name``, or none (reported) when it is longer than
    LINK_LIST_MAX_CHARS or holds more than LINK_LIST_MAX_VALUES values."""
    value = params.get(name)
    items = value if isinstance(value, list | tuple) else [] if value is None else [value]
    length = sum(len(str(item)) + 1 for item in items) - 1
    if length > LINK_LIST_MAX_CHARS:
        problems.append(
            f"Ignored {name} in the link: {length:,} characters; a list may hold at most "
            f"{LINK_LIST_MAX_CHARS:,}"
        )
        return []
    values = _split(items)
    if len(values) > LINK_LIST_MAX_VALUES:
        problems.append(
            f"Ignored {name} in the link: {len(values):,} values; a list may hold at most "
            f"{LINK_LIST_MAX_VALUES:,}"
        )
        return []
    return values


def _quoted(text: str) -> str:
    """``text`` quoted for a message, cut to QUOTED_MAX_CHARS characters."""
    text = str(text)
    return repr(text if len(text) <= QUOTED_MAX_CHARS else text[:QUOTED_MAX_CHARS] + "...")


def _summarised(problems: list[str]) -> list[str]:
    """At most MAX_PROBLEMS messages, the rest counted in one more."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS + 1
    return [*problems[: MAX_PROBLEMS - 1], f"... and {more:,} more values ignored in the link"]


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
            f"Ignored {what} {_quoted(text)} in the link: give a whole number from "
            f"{limits[0]:,} to {limits[1]:,}"
        )
        return None
    return int(number)


def _types(params: Mapping, problems: list[str]) -> tuple[str, ...]:
    """Known project types from a link's ``types`` (once each, in order); others reported."""
    known_types = project_types()
    types = _list(params, "types", problems)
    for kind in types:
        if kind not in known_types:
            problems.append(f"Ignored unknown project type {_quoted(kind)} in the link")
    return tuple(dict.fromkeys(t for t in types if t in known_types))


def _area_codes(argument: str, values: list[str], problems: list[str]) -> tuple[str, ...]:
    codes, unknown = filters.area_codes(argument, values)
    for value in unknown:
        problems.append(
            f"Ignored unknown {AREA_FILTER_LEVELS[argument]} {_quoted(value)} in the link"
        )
    return tuple(codes)


def _map_position(params: Mapping, problems: list[str]) -> dict:
    """zoom, lat and lon from a link: all three within the limits, else none (reported)."""
    texts = {name: _last(params.get(name)) for name in POSITION_LIMITS}
    if not any(texts.values()):
        return {}
    chosen = {}
    for name, (low, high) in POSITION_LIMITS.items():
        try:
            number = float(texts[name])
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and low <= number <= high):
            problems.append(
                f"Ignored the map position in the link: {name} {_quoted(texts[name])} is not a "
                f"number from {low} to {high}"
            )
            return {}
        chosen[name] = round(number, POSITION_DECIMALS)
    chosen["zoom"] = snap_zoom(chosen["zoom"])
    return chosen


def snap_zoom(zoom: float) -> float:
    """A zoom level on the map's steps (`ZOOM_SNAP`, a quarter): 11.4 -> 11.5."""
    return round(float(zoom) / ZOOM_SNAP) * ZOOM_SNAP


def view_from_query(params: Mapping) -> tuple[View, list[str]]:
    """The view a link describes, and a message for every value that had to be ignored.

    Unknown parameters are left alone (they may belong to someone else); bad values never
    raise: the default is kept and the problem is reported."""
    problems: list[str] = []
    chosen: dict = {}
    chosen["types"] = _types(params, problems)
    for argument in AREA_FILTER_LEVELS:
        chosen[argument] = _area_codes(argument, _list(params, argument, problems), problems)
    deciles = []
    for text in _list(params, "imd", problems):
        decile = _whole_number(text, (1, 10), "IMD decile", problems)
        if decile is not None and decile not in deciles:
            deciles.append(decile)
    chosen["imd"] = tuple(sorted(deciles))
    fresh = _list(params, "fresh", problems)
    for status in fresh:
        if status not in freshness.FRESHNESS:
            problems.append(f"Ignored unknown freshness {_quoted(status)} in the link")
    chosen["fresh"] = tuple(s for s in freshness.FRESHNESS if s in fresh)
    for name, options in (("layer", LEVELS), ("measure", MEASURES)):
        text = _last(params.get(name))
        if text and text not in options:
            problems.append(
                f"Ignored {name} {_quoted(text)} in the link; expected one of {', '.join(options)}"
            )
        elif text:
            chosen[name] = text
    postcode = _last(params.get("postcode"))
    if len(postcode) > POSTCODE_MAX_CHARS:
        problems.append("Ignored the postcode in the link: too long to be a postcode")
    elif postcode:
        chosen["postcode"] = postcode
    project = _last(params.get("project"))
    if len(project) > PROJECT_ID_MAX_CHARS:
        problems.append("Ignored the project in the link: too long to be a project id")
    elif project:
        chosen["project"] = project
    for name, limits, what in (
        ("distance", DISTANCE_LIMITS_M, "distance"),
        ("eps", EPS_LIMITS_M, "cluster distance"),
        ("min_samples", MIN_SAMPLES_LIMITS, "cluster size"),
    ):
        text = _last(params.get(name))
        number = _whole_number(text, limits, what, problems) if text else None
        if number is not None:
            chosen[name] = number
    for name in BOOL_FIELDS:
        chosen[name] = _last(params.get(name)).lower() in ("1", "true", "yes", "on")
    chosen |= _map_position(params, problems)
    open_at = " ".join(_last(params.get("open")).lower().split())
    if open_at in hours.OPEN_CHOICES:
        chosen["open_at"] = open_at
    elif open_at:
        problems.append(
            f"Ignored open {_quoted(open_at)} in the link; expected one of "
            f"{', '.join(hours.OPEN_CHOICES)}"
        )
    view = replace(DEFAULT_VIEW, **chosen)
    area = _last(params.get("area"))
    if area and area in area_choices(view.layer):
        view = replace(view, area=area)
    elif area:
        problems.append(f"Ignored area {_quoted(area)} in the link: not a {view.layer} code")
    return view, _summarised(problems)


def view_to_query(view: View) -> dict[str, str]:
    """The view as query parameters: only what differs from the default, lists comma-joined."""
    query = {}
    for spec in fields(View):
        value = getattr(view, spec.name)
        if value == getattr(DEFAULT_VIEW, spec.name):
            continue
        name = QUERY_NAMES.get(spec.name, spec.name)
        if spec.name in LIST_FIELDS:
            query[name] = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            query[name] = "1"
        elif spec.name == "zoom":
            query[name] = f"{value:g}"  # 11 or 11.5
        else:
            query[name] = str(value)
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
        elif spec.name == "zoom":
            value = snap_zoom(value)
        elif spec.name in ("lat", "lon"):
            value = round(float(value), POSITION_DECIMALS)
        elif spec.name in BOOL_FIELDS:
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
        include_synthetic=view.examples,
    )


def reach_choices(view: View) -> tuple:
    """What coverage depends on: types, distance, examples, open_at, inside_only (a cache key
    that panning, shading or searching leaves alone)."""
    return view.types, view.distance, view.examples, view.open_at, view.inside_only


FILTER_FIELDS = (*LIST_FIELDS, "examples")
"""The fields that decide which projects are shown (the rest decide how)."""


def filter_view(view: View) -> View:
    """The view with only its FILTER_FIELDS kept: one cache key for every view that shows the
    same projects (whatever their shading, search or selection)."""
    return replace(DEFAULT_VIEW, **{name: getattr(view, name) for name in FILTER_FIELDS})


def distance_choices(current: int) -> list[int]:
    """The offered reach distances, with ``current`` (from a link, say 850) among them."""
    return sorted(set(DISTANCE_CHOICES_M) | {int(current)})


def distance_label(metres: int) -> str:
    """ "800 m (10 min walk)"; beyond a half-hour walk, kilometres: short for the sidebar."""
    minutes = round(metres / WALKING_M_PER_MINUTE)
    if minutes <= 30:
        return f"{metres:,} m ({minutes} min walk)"
    return f"{metres:,} m ({metres / 1000:g} km)"


def decile_label(decile: int) -> str:
    """ "1 (most deprived)" ... "10 (least deprived)" for the IMD decile filter."""
    return {1: "1 (most deprived)", 10: "10 (least deprived)"}.get(decile, str(decile))


def shown_projects(projects: gpd.GeoDataFrame, view: View) -> gpd.GeoDataFrame:
    """The projects the view shows: home-run ones moved to their ward's centre (and their
    address, postcode, LSOA and IMD decile withheld), then filtered.

    Masking comes first, so no filter can reveal more about a home-run project than its ward:
    with an IMD decile filter they drop out (they carry no decile). Illustrative (synthetic)
    records are left out unless ``view.examples``."""
    return filter_masked(privacy.public_records(projects), view)


def filter_masked(masked: gpd.GeoDataFrame, view: View) -> gpd.GeoDataFrame:
    """`shown_projects` of projects already masked by `privacy.public_records`: the dashboard
    masks each store once (masking 10,000 projects takes longer than any filter)."""
    shown = filters.filter_projects(
        masked,
        types=list(view.types),
        boroughs=list(view.boroughs),
        deaneries=list(view.deaneries),
        wards=list(view.wards),
        imd_deciles=list(view.imd),
        include_synthetic=view.examples,
    )
    if view.fresh:
        shown = shown[freshness.status(shown).isin(view.fresh).to_numpy()]
    return shown


def open_words(view: View) -> str:
    """ " of a project open at weekend (any time Saturday or Sunday)" for captions, "" when
    the view counts projects open at any time."""
    return f" of a project open {hours.window(view.open_at).label}" if view.open_at else ""


def type_words(view: View) -> str:
    return coverage.type_phrase(resolve_types(list(view.types) or None))


# --- the Change page's choices, carried by its own link ----------------------------------

CHANGE_DAYS_BACK = 365
"""The Change page compares today with this many days before, unless its link gives dates."""
CHANGE_DISTANCE_LIMITS_M = (100, 5_000)
CHANGE_KEYS = {
    "start": "change_from",
    "end": "change_to",
    "level": "change_level",
    "distance": "change_distance",
    "types": "change_types",
    "measure": "change_measure",
    "area": "change_area",
}
"""ChangeView field -> the Change page's widget key."""


@dataclass(frozen=True)
class ChangeView:
    """What the Change page shows. ``start``/``end``: the two dates (None: `CHANGE_DAYS_BACK`
    days ago and today, so a link without dates stays relative to the day it is opened);
    ``level``: ward, deanery or borough; ``distance``: reach in metres; ``types``: project
    types (empty: all); ``measure``: the map's colour ("": the first measure); ``area``: the
    area whose timeline is drawn ("": the first listed). In the link as ``from``, ``to``,
    ``level``, ``distance``, ``types``, ``measure``, ``area``."""

    start: date | None = None
    end: date | None = None
    level: str = "ward"
    distance: int = int(coverage.DEFAULT_DISTANCE_M)
    types: tuple[str, ...] = ()
    measure: str = ""
    area: str = ""


CHANGE_QUERY_NAMES = {"start": "from", "end": "to"}


def change_dates(view: ChangeView, today: date) -> tuple[date, date]:
    """The view's two dates, the defaults filled in for ``today``."""
    return view.start or today - timedelta(days=CHANGE_DAYS_BACK), view.end or today


def change_view_from_query(params: Mapping, measures) -> tuple[ChangeView, list[str]]:
    """The Change page's view a link describes, and a message for every value ignored
    (``measures``: the map's measure names). Never raises; unknown parameters are left alone."""
    problems: list[str] = []
    chosen: dict = {}
    for field in ("start", "end"):
        name = CHANGE_QUERY_NAMES[field]
        text = _last(params.get(name))
        if not text:
            continue
        try:
            chosen[field] = date.fromisoformat(text)
        except ValueError:
            problems.append(
                f"Ignored {name} {_quoted(text)} in the link: give a date as YYYY-MM-DD"
            )
    for name, options in (("level", coverage.AREA_LEVELS), ("measure", tuple(measures))):
        text = _last(params.get(name))
        if text in options:
            chosen[name] = text
        elif text:
            problems.append(
                f"Ignored {name} {_quoted(text)} in the link; expected one of {', '.join(options)}"
            )
    text = _last(params.get("distance"))
    number = _whole_number(text, CHANGE_DISTANCE_LIMITS_M, "distance", problems) if text else None
    if number is not None:
        chosen["distance"] = number
    chosen["types"] = _types(params, problems)
    area = _last(params.get("area"))
    if len(area) > PROJECT_ID_MAX_CHARS:
        problems.append("Ignored the area in the link: too long to be an area code")
    elif area:
        chosen["area"] = area  # checked against the level's areas by the page
    return ChangeView(**chosen), _summarised(problems)


def change_view_to_query(view: ChangeView) -> dict[str, str]:
    """The Change page's view as query parameters: only what differs from the default."""
    query = {}
    for spec in fields(ChangeView):
        value = getattr(view, spec.name)
        if value == spec.default:
            continue
        name = CHANGE_QUERY_NAMES.get(spec.name, spec.name)
        if spec.name == "types":
            query[name] = ",".join(value)
        elif isinstance(value, date):
            query[name] = value.isoformat()
        else:
            query[name] = str(value)
    return query


def change_widget_values(view: ChangeView, today: date, measures) -> dict:
    """Initial widget values (keyed by `CHANGE_KEYS`) for the Change page's view."""
    start, end = change_dates(view, today)
    values = {"start": start, "end": end, "level": view.level, "distance": view.distance}
    values |= {"types": list(view.types), "measure": view.measure or list(measures)[0]}
    values["area"] = view.area or None
    return {CHANGE_KEYS[field]: value for field, value in values.items()}


def change_view_from_state(state: Mapping, today: date, measures, first_area: str) -> ChangeView:
    """The Change page's view from its widgets; a value equal to its default is left out of the
    view (dates relative to ``today``, the first measure, ``first_area``), so that the link
    carries only what was chosen."""
    value = {field: state.get(key) for field, key in CHANGE_KEYS.items()}
    default_start, _ = change_dates(ChangeView(), today)
    return ChangeView(
        start=None if value["start"] in (None, default_start) else value["start"],
        end=None if value["end"] in (None, today) else value["end"],
        level=str(value["level"] or ChangeView.level),
        distance=int(value["distance"] or ChangeView.distance),
        types=tuple(str(kind) for kind in value["types"] or ()),
        measure="" if value["measure"] in (None, list(measures)[0]) else str(value["measure"]),
        area="" if value["area"] in (None, first_area) else str(value["area"]),
    )
