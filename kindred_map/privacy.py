"""Home-run (ward_only) projects leave the tool at their ward's centre, never at their address."""

import re

import geopandas as gpd
import pandas as pd

from kindred_map import boundaries

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
postcode): postcodes in it are cut to the district, coordinates withheld."""
FULL_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)[0-9][A-Z]{2}")
DISTRICT = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?[0-9][A-Z]{2}\b", flags=re.IGNORECASE)
COORDINATE_IN_TEXT = re.compile(r"(?<![\w.])-?\d{1,3}\.\d{3,}(?![\w.])")
"""Degrees with 3 or more decimals (about 100 m or finer)."""
GRID_IN_TEXT = re.compile(r"(?<![\w.])\d{6,7}(?:\.\d+)?(?![\w.])")
"""British National Grid eastings and northings in metres (6 or 7 digits)."""


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
    """Free text with postcodes cut to their district and coordinates withheld."""
    if value is None or pd.isna(value):
        return value
    text = POSTCODE_IN_TEXT.sub(lambda match: match.group(1).upper(), str(value))
    text = COORDINATE_IN_TEXT.sub(WITHHELD, text)
    return GRID_IN_TEXT.sub(WITHHELD, text)


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
    the district, postcodes and coordinates in its free text removed, and ``location_note``
    says so. A ward_only record without a known ward keeps no geometry at all. Safe to apply
    twice."""
    masked = scrub_ward_only_text(projects.to_crs(boundaries.WGS84))
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
