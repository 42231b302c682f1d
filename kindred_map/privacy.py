"""Home-run (ward_only) projects leave the tool at their ward's centre, never at their address."""

import re
import unicodedata

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kindred_map import boundaries, columns, hours
from kindred_map.report import empty_issues, issues_for
from kindred_map.text import map_distinct

WARD_ONLY = "ward_only"
SHOWN_AT_WARD_CENTRE = "Shown at the centre of its ward: home-run project, exact location withheld"
LOCATION_WITHHELD = "Location withheld: home-run project with no known ward"
WITHHELD = "[withheld]"
FULL_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)[0-9][A-Z]{2}")
DISTRICT = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")

# --- the scrubber: what free text of a home-run record may not say ------------------------

POSTCODE_IN_TEXT = re.compile(
    r"\b([A-Z]{1,2}[0-9][A-Z0-9]?)[\s._/-]{0,3}[0-9][A-Z]{2}\b", flags=re.IGNORECASE
)
"""A full postcode, however written: "L13 0AB", "l130ab", "L13-0AB", "L13.0AB", "L13/0AB"
(a no-break space is a space once the text is normalised)."""
GRID_REFERENCE_IN_TEXT = re.compile(
    r"\b[HNOST][A-HJ-Z][\s.-]?"
    r"(?:\d{5}[\s.-]?\d{5}|\d{4}[\s.-]?\d{4}|\d{3}[\s.-]?\d{3}|\d{2}[\s.-]?\d{2})\b",
    flags=re.IGNORECASE,
)
"""An OS grid reference of 4 to 10 figures ("SJ 3456 9012", "SJ34569012", "sj345901"): 1 km
to 1 m."""
COORDINATE_IN_TEXT = re.compile(r"(?<![\d.])-?(?:\d{1,3}\.\d{3,}|\d{1,3},\d{4,})(?![\d])")
"""Degrees with 3 or more decimals (about 100 m or finer), also glued to a word ("lat53.41234")
or with a decimal comma ("53,41234")."""
DEGREES_IN_TEXT = re.compile(
    r"\d{1,3}\s*°\s*\d{1,2}(?:[.,]\d+)?\s*['′]?(?:\s*\d{1,2}(?:[.,]\d+)?\s*(?:\"|″|'')?)?"
    r"(?:\s*[NSEW]\b)?",
    flags=re.IGNORECASE,
)
"""Degrees and minutes (and seconds): 53°24'44.4"N, 53° 24.74'."""
GRID_IN_TEXT = re.compile(r"(?<![\d.])(?<!\d,)(?:\d{6,7}|\d{3},\d{3})(?:\.\d+)?(?!\d|,\d)")
"""British National Grid eastings and northings in metres (6 or 7 digits, "E351234",
"351,234")."""
NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fourty|fifty|sixty|"
    "seventy|eighty|ninety|hundred"
)
STREET_WORDS = (
    "street|st|road|rd|avenue|ave|av|avn|lane|ln|la|close|cl|drive|dr|drv|way|wy|crescent|"
    "cres|cresc|cr|grove|gr|grv|gro|gv|place|pl|court|ct|crt|terrace|tce|terr|ter|gardens|"
    "gdns|garden|gdn|walk|wlk|wk|row|hill|hl|view|vw|square|sq|mews|mws|park|pk|green|grn|"
    "rise|vale|parade|pde|croft|cft|brow|fold|boulevard|blvd|bvd|crossway|meadow|meadows|mdw|"
    "chase|wharf|heights|hts|mount|mt|bank|end|fields|field|gate|yard|approach|circus|"
    "esplanade|promenade|prom|quay|passage|broadway|causeway|cottages|cotts|villas|buildings|"
    "bldgs|estate|precinct|side|embankment|dene|lea|dale|grange|glade|copse|nook|path|alley|"
    "wynd|brae|circle|highway|market|hey|heys|brook|wood|common"
)
_HOUSE = rf"(?:\d{{1,4}}[a-z]?|(?:{NUMBER_WORDS})(?:[\s-]+(?:and[\s-]+)?(?:{NUMBER_WORDS}))*)\b"
STREET_IN_TEXT = re.compile(
    r"(?:\b(?:flat|apartment|apt|unit|house|room|no)\.?\s*\d{1,4}[a-z]?\b[\s,]*)?"
    rf"\b{_HOUSE}(?:\s*[-–/]\s*{_HOUSE})?,?[\s_-]+"
    r"(?:[^\W_]+(?:['’][^\W_]+)?\.?[\s_-]+){1,4}"
    rf"(?:{STREET_WORDS})\b\.?",
    flags=re.IGNORECASE,
)
"""A house number and a street: "14 Acacia Avenue", "Flat 2, 3 Mill Lane", "7a High St",
"twenty-two Elm Grv.", "22-24 Elm Grove", "22-elm-grove" (one to four words, then a street
word or its abbreviation). Deliberately broad: it only ever reads home-run records."""
PLACE_PATTERNS = (
    STREET_IN_TEXT,
    GRID_REFERENCE_IN_TEXT,
    DEGREES_IN_TEXT,
    COORDINATE_IN_TEXT,
    GRID_IN_TEXT,
)
"""What `scrub_text` withholds after cutting postcodes to their district, in this order."""


def normalised(value) -> str:
    """Text as the scrubber reads it: NFKC (no-break and other odd spaces become spaces, full-
    width digits plain digits) with format characters (zero-width spaces, soft hyphens) removed,
    so that none of them can hide a postcode or a number."""
    text = str(value)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def scrub_text(value):
    """Free text with postcodes cut to their district, and addresses (house number and street),
    grid references, coordinates and eastings/northings withheld. Missing stays missing; the
    text comes back normalised (see `normalised`). Safe to apply twice."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value
    text = normalised(value)
    if not any(char.isdigit() for char in text):  # only a house number in words is possible
        return STREET_IN_TEXT.sub(WITHHELD, text)
    text = POSTCODE_IN_TEXT.sub(lambda match: match.group(1).upper(), text)
    for pattern in PLACE_PATTERNS:
        text = pattern.sub(WITHHELD, text)
    return text


def names_a_place(value) -> bool:
    """True when text holds a full postcode, an address, a grid reference or coordinates."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return False
    text = normalised(value)
    return any(p.search(text) for p in (POSTCODE_IN_TEXT, *PLACE_PATTERNS))


def scrub_schedules(value):
    """Structured opening hours (JSON text, `kindred_map.hours`) with every note scrubbed and
    nothing but the schedule fields kept; text that is not valid schedules is withheld (None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value
    try:
        items = hours.loads(value)
    except ValueError:
        return None
    return hours.dumps([item | {"note": scrub_text(item["note"])} for item in items])


SCRUBBERS = {"schedules": scrub_schedules}
"""Columns scrubbed by something other than `scrub_text`."""


def is_ward_only(projects: pd.DataFrame) -> pd.Series:
    """True for records whose location must not leave more precisely than their ward."""
    precision = projects["location_precision"].astype("string").str.strip().str.lower()
    return (precision == WARD_ONLY).fillna(False).astype(bool)


def outward_code(postcode) -> str | None:
    """ "L8 7XY" -> "L8": the postcode district, shared by thousands of addresses.

    Anything that is not a postcode or a district gives None (it might be part of an address)."""
    if postcode is None or pd.isna(postcode):
        return None
    text = re.sub(r"[\W_]+", "", normalised(postcode)).upper()
    full = FULL_POSTCODE.fullmatch(text)
    if full:
        return full.group(1)
    return text if DISTRICT.fullmatch(text) else None


def outward_codes(postcodes: pd.Series) -> pd.Series:
    """`outward_code` of each value (object Series, None for none): ASCII text a column at a
    time by pyarrow's RE2 with the same patterns (for ASCII, ``[\\W_]`` is ``[^A-Za-z0-9]``),
    any other value by `outward_code` itself, once per distinct value."""
    if not isinstance(postcodes.dtype, pd.StringDtype):
        return pd.Series(map_distinct(postcodes, outward_code), dtype=object)
    given = pa.array(postcodes, from_pandas=True)
    text = pc.utf8_upper(pc.replace_substring_regex(given, "[^A-Za-z0-9]+", ""))
    full = pc.extract_regex(text, f"^(?P<district>{DISTRICT.pattern})[0-9][A-Z]{{2}}$")
    district = pc.if_else(pc.match_substring_regex(text, f"^{DISTRICT.pattern}$"), text, None)
    codes = pc.coalesce(pc.struct_field(full, "district"), district).to_pylist()
    out = pd.Series(codes, index=postcodes.index, dtype=object)
    other = ~pc.fill_null(pc.string_is_ascii(given), True).to_numpy(zero_copy_only=False)
    if other.any():
        out[other] = map_distinct(postcodes[other], outward_code).astype(object)
    return out


def public_id(value) -> str:
    """An id fit to leave the tool: a full postcode in it cut to its district ("HOME-L34 2AA" ->
    "HOME-L34"), an address, grid reference or coordinates withheld; other ids unchanged.

    Nothing of the removed part is kept (no hash that trying every postcode could match). Use
    `public_ids` on a whole column: it keeps the results unique."""
    return str(scrub_text("" if value is None or pd.isna(value) else value))


def public_ids(ids: pd.Series, changeable: pd.Series | None = None) -> pd.Series:
    """`public_id` of each id where ``changeable`` (default: every id), made unique again: a
    replaced id that meets another id gets "#2", "#3"... in order of the original ids. Ids
    without a place in them, and those not changeable, are kept as they are."""
    original = ids.astype("object").where(ids.notna(), "").astype("str")
    public = original.copy()
    if changeable is None:
        changeable = pd.Series(True, index=ids.index)
    mask = changeable.to_numpy(dtype=bool)
    public[mask] = original[mask].map(public_id)
    changed = public.ne(original)
    if not changed.any():
        return public
    taken = set(original[~changed])
    # The last suffix given to each replaced id: numbering goes on from it, so that 10,000 ids
    # replaced by the same text take linear time, not quadratic (155 s before, at 10,000).
    last_number: dict[str, int] = {}
    unique = public.to_numpy(dtype=object, copy=True)
    order = np.flatnonzero(changed.to_numpy())
    order = order[np.argsort(original.to_numpy(dtype=object)[order], kind="stable")]
    for position in order.tolist():
        base = unique[position]
        number = last_number.get(base, 1)
        candidate = base if number == 1 else f"{base}#{number}"
        while candidate in taken:
            number += 1
            candidate = f"{base}#{number}"
        last_number[base] = number
        taken.add(candidate)
        unique[position] = candidate
    return pd.Series(unique, index=public.index, dtype="object")


def address_issues(projects: pd.DataFrame) -> pd.DataFrame:
    """Report lines for home-run records whose name or organisation names a place (postcode,
    address, grid reference or coordinates): exports withhold it, and the partner should know."""
    hidden = is_ward_only(projects) if len(projects) else pd.Series(dtype=bool)
    frames = []
    for field in ("name", "organisation"):
        if field not in projects:
            continue
        found = hidden & projects[field].map(names_a_place).astype(bool)
        frames.append(
            issues_for(
                projects[found],
                field,
                "warning",
                f"the {field} of this home-run project holds what looks like an address or "
                "postcode: exports show it withheld; consider renaming it",
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else empty_issues()


def ward_centres(wards: gpd.GeoDataFrame | None = None) -> pd.Series:
    """A point inside each ward (its representative point), indexed by WD24CD, in EPSG:4326."""
    wards = boundaries.load("ward") if wards is None else wards.to_crs(boundaries.WGS84)
    return pd.Series(wards.representative_point().to_numpy(), index=wards["WD24CD"].astype(str))


# --- the one public view of a record --------------------------------------------------------


def _shown_as(values: pd.Series, rule: str, name: str) -> pd.Series:
    """``values`` as a record may show them under ``rule`` (a `columns.VISIBILITIES` entry;
    ids are made public by `public_ids`, over the whole column). Each distinct text is
    scrubbed once."""
    if rule == columns.SHOWN or rule == columns.PUBLIC_ID:
        return values
    if rule in (columns.SCRUBBED, columns.DISTRICT):
        change = outward_code if rule == columns.DISTRICT else SCRUBBERS.get(name, scrub_text)
        distinct = {value: change(value) for value in values.dropna().unique()}
        return values.astype("object").map(lambda value: distinct.get(value, value))
    return pd.Series([None] * len(values), index=values.index, dtype="object")


def _public_column(values: pd.Series, hidden: np.ndarray, name: str) -> pd.Series | None:
    """`public_values` of one column, with ``hidden`` (`is_ward_only`) given."""
    home, other = columns.visibility(name, True), columns.visibility(name, False)
    if home == other == columns.WITHHELD:
        return None
    as_stored = {columns.SHOWN, columns.PUBLIC_ID}  # ids are made public over the whole column
    if home == other or hidden.all():
        return _shown_as(values, home, name)
    if not hidden.any() or {home, other} <= as_stored:
        return _shown_as(values, other, name)
    public = _shown_as(values, other, name).astype("object").to_numpy(copy=True)
    public[hidden] = _shown_as(values[hidden], home, name).to_numpy(dtype=object)
    return pd.Series(public, index=values.index, name=values.name, dtype="object")


def public_values(projects: pd.DataFrame, name: str) -> pd.Series | None:
    """Column ``name`` of ``projects`` as it may leave the tool, by the column's declaration in
    `kindred_map.columns` (home-run and other records apart); None when no record may show any
    of it (withheld, or never declared). Ids are made public by `public_records`."""
    return _public_column(projects[name], is_ward_only(projects).to_numpy(), name)


def public_records(projects: pd.DataFrame, wards: gpd.GeoDataFrame | None = None):
    """The one public view of projects, which every output is built from: a copy holding only
    the columns `kindred_map.columns` declares (default-deny: a column nobody declared is
    dropped), each as its declaration lets a record show it; a GeoDataFrame in EPSG:4326 when
    ``projects`` is one (else a DataFrame without positions).

    A home-run (ward_only) record sits at its ward's centre (no geometry at all when its ward
    is unknown), with ``location_note`` saying so; its address, coordinates, LSOA, IMD decile
    and ward note are withheld, its postcode cut to the district, its free text (name,
    organisation, sector, hours and their notes, website, parish, source...) scrubbed
    (`scrub_text`) and its id made public (`public_ids`: an id holding a postcode is cut, and
    kept unique). Other records are shown as stored. Safe to apply twice."""
    located = isinstance(projects, gpd.GeoDataFrame)
    frame = projects.to_crs(boundaries.WGS84) if located else pd.DataFrame(projects)
    hidden = is_ward_only(frame)
    kept = {}
    for name in frame.columns:
        if located and name == frame.geometry.name:
            continue
        values = _public_column(frame[name], hidden.to_numpy(), name)
        if values is not None:
            kept[name] = values
    public = pd.DataFrame(kept, index=frame.index)
    if "id" in public.columns:
        home_id = columns.visibility("id", True) == columns.PUBLIC_ID
        other_id = columns.visibility("id", False) == columns.PUBLIC_ID
        changeable = (hidden & home_id) | (~hidden & other_id)
        public["id"] = public_ids(public["id"], changeable)
    if "location_note" not in public.columns:
        public["location_note"] = pd.Series(pd.NA, index=public.index, dtype="object")
    public["location_note"] = public["location_note"].astype("object")
    if "location_precision" in public.columns and hidden.any():
        public["location_precision"] = public["location_precision"].astype("object")
        public.loc[hidden, "location_precision"] = WARD_ONLY  # as every output compares it
    if not located:
        public.loc[hidden, "location_note"] = SHOWN_AT_WARD_CENTRE
        return public
    points = frame.geometry.copy()
    if hidden.any():
        centres = ward_centres(wards)
        if "WD24CD" in frame.columns:
            codes = frame.loc[hidden, "WD24CD"].astype("string").str.strip()
        else:
            codes = pd.Series(pd.NA, index=frame.index[hidden.to_numpy()], dtype="string")
        known = codes.isin(centres.index).fillna(False).astype(bool)
        points[hidden] = gpd.GeoSeries(
            [centres[code] if ok else None for code, ok in zip(codes, known, strict=True)],
            index=codes.index,
            crs=boundaries.WGS84,
        )
        public.loc[hidden, "location_note"] = known.map(
            {True: SHOWN_AT_WARD_CENTRE, False: LOCATION_WITHHELD}
        )
    return gpd.GeoDataFrame(public, geometry=points.rename("geometry"), crs=boundaries.WGS84)
