"""The project record: its fields, its types and the values each field may take."""

import csv
from collections.abc import Iterable
from functools import cache
from pathlib import Path

TYPES_FILE = Path(__file__).parent / "reference" / "project_types.csv"

LOCATION_PRECISIONS = ("exact", "street", "ward_only")
"""exact: the building; street: a street, postcode or place centroid; ward_only: a home-run
project whose location must never leave the tool more precisely than its ward."""

RECORD_FIELDS = (
    "id",
    "name",
    "type",
    "organisation",
    "sector",
    "address",
    "postcode",
    "lat",
    "lon",
    "easting",
    "northing",
    "opening_hours",
    "schedules",
    "website",
    "parish",
    "last_checked",
    "location_precision",
    "synthetic",
    "source",
)
"""Fields a project carries as imported. ``lat``/``lon`` are WGS84; ``easting``/``northing`` are
British National Grid (EPSG:27700); a record has either, or only a postcode. ``sector`` is the
organisation's sector where a source gives one (Co-operatives UK's for STOs). ``schedules`` is
the structured opening hours as JSON text (`kindred_map.hours`; blank when only the free text
``opening_hours`` is known, shown as "hours unknown"). ``synthetic`` is
True for illustrative records that are not real projects. ``source`` names where it came from."""

JOINED_FIELDS = (
    "WD24CD",
    "WD24NM",
    "ward_source",
    "ward_note",
    "LAD25CD",
    "LAD25NM",
    "deanery_id",
    "deanery_name",
    "deanery_note",
    "LSOA21CD",
    "imd_decile",
    "in_region",
    "nearest_borough",
)
"""Fields `kindred_map.join` adds: ward (WD24), borough (LAD25), deanery, LSOA 2021 with its
IMD 2025 decile, whether the point lies in the region and, for a point outside it, the name
of the nearest region borough (``nearest_borough``; blank inside the region). ``ward_source``
is ``postcode`` (the record's own postcode), ``nearest_postcode`` (coordinates only: the
nearest live postcode within 500 m) or ``polygon`` (the generalised ward polygon); ``*_note``
explain disagreements or why a field is empty."""

STEWARD_FIELDS = ("version", "checked_by", "retired_at", "retired_reason", "created_at")
"""Fields the store keeps about each record's upkeep (`kindred_map.storage.history`):
``version`` (1 when first stored, +1 per change; the editors' conflict check), ``checked_by``
(who last set ``last_checked``), ``retired_at`` (ISO date; blank while the project is open),
``retired_reason`` and ``created_at`` (ISO 8601 UTC of the project's first event)."""


@cache
def project_types() -> dict[str, dict[str, str]]:
    """The configured project types: ``{type: {"label", "colour", "description"}}``.

    Colours are the Okabe-Ito palette, distinguishable with the common colour-vision
    deficiencies. Edit ``reference/project_types.csv`` to add a type.
    """
    with TYPES_FILE.open(encoding="utf-8") as handle:
        return {row.pop("type"): row for row in csv.DictReader(handle)}


def resolve_types(types: str | Iterable[str] | None) -> tuple[str, ...]:
    """Project types from ``"food_bank,warm_space"``, a list, or None (every configured type).

    Unknown types raise a ValueError listing the valid ones."""
    valid = tuple(project_types())
    if types is None:
        return valid
    if isinstance(types, str):
        types = types.split(",")
    chosen = tuple(dict.fromkeys(str(t).strip() for t in types if str(t).strip()))
    if not chosen:
        return valid
    unknown = [t for t in chosen if t not in valid]
    if unknown:
        raise ValueError(f"unknown project type(s) {unknown}; valid types: {', '.join(valid)}")
    return chosen


def type_label(kind: str) -> str:
    """A project type's label as people read it ("Warm space"), the code itself if unknown."""
    types = project_types()
    return types[kind]["label"] if kind in types else kind or "Unknown type"
