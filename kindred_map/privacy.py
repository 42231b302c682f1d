"""Home-run (ward_only) projects leave the tool at their ward's centre, never at their address."""

import re

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import boundaries
from kindred_map.report import empty_issues, issues_for

WARD_ONLY = "ward_only"
SHOWN_AT_WARD_CENTRE = "Shown at the centre of its ward: home-run project, exact location withheld"
LOCATION_WITHHELD = "Location withheld: home-run project with no known ward"
WITHHELD = "[withheld]"
REVEALING_FIELDS = (
    "address",
    "lat",
    "lon",
    "easting",
    "northing",
    "LSOA21CD",
    "imd_decile",
    "ward_note",
)
"""Blanked for ward_only records: each places the project more precisely than its ward (the
LSOA and its IMD decile name a neighbourhood of about 1,500 people; a ward note may name the
polygon the point fell in)."""
FREE_TEXT_FIELDS = (
    "name",
    "organisation",
    "opening_hours",
    "website",
    "parish",
    "source",
    "deanery_note",
)
"""Text that may mention where a ward_only project is (e.g. a source note naming its
postcode): postcodes in it are cut to the district, house-number + street addresses and
coordinates withheld."""
FULL_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)[0-9][A-Z]{2}")
DISTRICT = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?[0-9][A-Z]{2}\b", flags=re.IGNORECASE)
COORDINATE_IN_TEXT = re.compile(r"(?<![\w.])-?\d{1,3}\.\d{3,}(?![\w.])")
"""Degrees with 3 or more decimals (about 100 m or finer)."""
GRID_IN_TEXT = re.compile(r"(?<![\w.])\d{6,7}(?:\.\d+)?(?![\w.])")
"""British National Grid eastings and northings in metres (6 or 7 digits)."""
STREET_WORDS = (
    "street|st|road|rd|avenue|ave|lane|ln|close|cl|drive|dr|way|crescent|cres|grove|gr|"
    "place|pl|court|ct|terrace|tce|gardens|gdns|walk|row|hill|view|square|sq|mews|park|"
    "green|rise|vale|parade|croft|brow|fold|boulevard|crossway|meadow|meadows|chase|wharf"
)
STREET_IN_TEXT = re.compile(
    r"(?:\b(?:flat|apartment|apt|unit|house)\s*\d+[a-z]?\b,?\s*)?"
    r"\b\d{1,4}[a-z]?(?:\s*-\s*\d{1,4}[a-z]?)?,?\s+"
    r"(?:[A-Z][\w'’.-]*\s+){1,3}(?:" + STREET_WORDS + r")\b\.?",
    flags=re.IGNORECASE,
)
"""A house number and a street ("14 Acacia Avenue", "Flat 2, 3 Mill Lane", "7a High St"):
one to three words, then a street word. Deliberately broad for home-run records."""


def is_ward_only(projects: pd.DataFrame) -> pd.Series:
    """True for records whose location must not leave more precisely than their ward."""
    precision = projects["location_precision"].astype("string").str.strip().str.lower()
    return (precision == WARD_ONLY).fillna(False).astype(bool)


def outward_code(postcode) -> str | None:
    """ "L8 7XY" -> "L8": the postcode district, shared by thousands of addresses.

    Anything that is not a postcode or a district gives None (it might be part of an address)."""
    if postcode is None or pd.isna(postcode):
        return None
    text = re.sub(r"\s+", "", str(postcode)).upper()
    full = FULL_POSTCODE.fullmatch(text)
    if full:
        return full.group(1)
    return text if DISTRICT.fullmatch(text) else None


def scrub_text(value):
    """Free text with postcodes cut to their district, and house-number + street addresses and
    coordinates withheld."""
    if value is None or pd.isna(value):
        return value
    text = POSTCODE_IN_TEXT.sub(lambda match: match.group(1).upper(), str(value))
    text = STREET_IN_TEXT.sub(WITHHELD, text)
    text = COORDINATE_IN_TEXT.sub(WITHHELD, text)
    return GRID_IN_TEXT.sub(WITHHELD, text)


def names_a_place(value) -> bool:
    """True when text holds a full postcode or a house number and street."""
    if value is None or pd.isna(value):
        return False
    text = str(value)
    return bool(POSTCODE_IN_TEXT.search(text) or STREET_IN_TEXT.search(text))


def public_id(value) -> str:
    """An id fit to leave the tool: a full postcode in it cut to its district ("HOME-L34 2AA" ->
    "HOME-L34"), a house number and street or coordinates withheld; other ids unchanged.

    Nothing of the removed part is kept (no hash that trying every postcode could match). Use
    `public_ids` on a whole column: it keeps the results unique."""
    return str(scrub_text("" if value is None or pd.isna(value) else value))


def public_ids(ids: pd.Series) -> pd.Series:
    """`public_id` of each id, made unique again: a replaced id that meets another id gets
    "#2", "#3"... in order of the original ids. Ids without a place in them are kept."""
    original = ids.astype("object").where(ids.notna(), "").astype("str")
    public = original.map(public_id)
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
    """Report lines for home-run records whose name or organisation names a place (postcode or
    house number + street): exports withhold it, and the partner should know."""
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


def scrub_ward_only_text(projects: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ward_only records' free text names no postcode or coordinate."""
    scrubbed = projects.copy()
    hidden = is_ward_only(scrubbed)
    if hidden.any():
        for field in FREE_TEXT_FIELDS:
            if field in scrubbed.columns:
                scrubbed[field] = scrubbed[field].astype("object")
                scrubbed.loc[hidden, field] = scrubbed.loc[hidden, field].map(scrub_text)
    return scrubbed


def ward_centres(wards: gpd.GeoDataFrame | None = None) -> pd.Series:
    """A point inside each ward (its representative point), indexed by WD24CD, in EPSG:4326."""
    wards = boundaries.load("ward") if wards is None else wards.to_crs(boundaries.WGS84)
    return pd.Series(wards.representative_point().to_numpy(), index=wards["WD24CD"].astype(str))


def mask_ward_only(
    projects: gpd.GeoDataFrame, wards: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """A copy in EPSG:4326 where every ward_only record sits at its ward's centre.

    Its address, coordinates, LSOA, IMD decile and ward note are blanked, its postcode cut to
    the district, postcodes, addresses and coordinates in its free text removed, and
    ``location_note`` says so. A ward_only record without a known ward keeps no geometry at
    all. Every record's ``id`` goes through `public_ids` (a user id may hold a postcode). Safe
    to apply twice."""
    masked = scrub_ward_only_text(projects.to_crs(boundaries.WGS84))
    if "id" in masked.columns:
        masked["id"] = public_ids(masked["id"])
    if "location_note" not in masked.columns:
        masked["location_note"] = pd.Series(pd.NA, index=masked.index, dtype="string")
    hidden = is_ward_only(masked)
    if not hidden.any():
        return masked
    centres = ward_centres(wards)
    ward_codes = masked.loc[hidden, "WD24CD"].astype("string").str.strip()
    known = ward_codes.isin(centres.index).fillna(False).astype(bool)
    points = [centres[code] if ok else None for code, ok in zip(ward_codes, known, strict=True)]
    masked.loc[hidden, masked.geometry.name] = gpd.GeoSeries(
        points, index=ward_codes.index, crs=boundaries.WGS84
    )
    for field in REVEALING_FIELDS:
        if field in masked.columns:
            masked[field] = masked[field].astype("object")
            masked.loc[hidden, field] = None
    if "postcode" in masked.columns:
        masked["postcode"] = masked["postcode"].astype("object")
        masked.loc[hidden, "postcode"] = masked.loc[hidden, "postcode"].map(outward_code)
    masked["location_note"] = masked["location_note"].astype("object")
    notes = known.map({True: SHOWN_AT_WARD_CENTRE, False: LOCATION_WITHHELD})
    masked.loc[hidden, "location_note"] = notes
    return masked
