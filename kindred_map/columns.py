"""One definition of every column Kindred Map exports: name, type, unit, description, tables.

The pack README's data dictionary, the GeoPackage ``about`` table and ``gpkg_data_columns``,
and a CSV's ``_about.txt`` are all written from here, so they cannot disagree. A writer asks
`describe` for each column it ships; a column without an entry raises a ValueError instead of
leaving undescribed. Percentages are 0-100 everywhere and named ``pct_*``.

Each project column also states what a record may show of it outside the tool (``home``: a
home-run, ``ward_only`` record; ``other``: any other record): `kindred_map.privacy` builds the
one public view of a record from these statements, and a column without one is withheld.
"""

import re
from dataclasses import dataclass

from kindred_map.schema import project_types

PROJECTS = ("projects",)
AREAS = ("ward", "deanery", "borough")
GAPS = tuple(f"gaps_{level}" for level in AREAS)
NEED = tuple(f"need_{level}" for level in AREAS)
CHANGE = tuple(f"change_{level}" for level in AREAS)
"""Tables: ``projects``, the ``<level>`` summaries, the ``gaps_<level>`` tables of
`kindred-map gaps`, the ``need_<level>`` tables of `kindred-map need` and the
``change_<level>`` tables of `kindred-map change`."""
TABLES = (*PROJECTS, *AREAS, *GAPS, *NEED, *CHANGE)

TEXT, CODE, INT, FLOAT, BOOL, DATE = "text", "code", "int", "float", "bool", "date"
KINDS = (TEXT, CODE, INT, FLOAT, BOOL, DATE)
"""Column types: text; code (an identifier kept as text: GSS codes, ids); whole numbers;
decimal numbers; true/false; a calendar date (YYYY-MM-DD)."""

PEOPLE = "people (Census 2021 usual residents)"
PERCENT = "% (0-100)"
PER_10K = "projects per 10,000 residents"
NO_UNIT = "none (text)"
CODE_UNIT = "none (identifier)"
FLAG = "none (true/false)"

SHOWN, SCRUBBED, WITHHELD, DISTRICT, PUBLIC_ID = (
    "shown",
    "scrubbed",
    "withheld",
    "district",
    "public id",
)
VISIBILITIES = (SHOWN, SCRUBBED, WITHHELD, DISTRICT, PUBLIC_ID)
"""What a record may show of a column outside the tool: the value as stored; scrubbed (free
text through `kindred_map.privacy.scrub_text`: postcodes cut to their district, addresses,
coordinates and grid references withheld; schedules keep their times, their notes scrubbed);
withheld (blank); a postcode's district only; a public id (`kindred_map.privacy.public_ids`).
Columns the tool computes itself (type_label, location_note, boundary_vintage) and the
position columns are written after the projection, from the public values."""


@dataclass(frozen=True)
class Column:
    """One exported column: its type (one of KINDS), unit, description and the tables that
    carry it; for project columns, what a home-run (``home``) and any other record (``other``)
    may show of it (one of VISIBILITIES; withheld unless stated)."""

    name: str
    kind: str
    unit: str
    description: str
    tables: tuple[str, ...]
    home: str = WITHHELD
    other: str = WITHHELD


def _columns(tables: tuple[str, ...], *specs: tuple[str, str, str, str]) -> dict[str, Column]:
    return {name: Column(name, kind, unit, text, tables) for name, kind, unit, text in specs}


def _project_columns(tables: tuple[str, ...], *specs: tuple) -> dict[str, Column]:
    """Columns from (name, kind, unit, description, home[, other]): ``other`` is SHOWN unless
    given."""
    found = {}
    for name, kind, unit, text, home, *other in specs:
        shown = other[0] if other else SHOWN
        if not {home, shown} <= set(VISIBILITIES):
            raise ValueError(f"column {name!r}: visibility must be one of {VISIBILITIES}")
        found[name] = Column(name, kind, unit, text, tables, home, shown)
    return found


PROJECT_COLUMNS = _project_columns(
    PROJECTS,
    ("id", CODE, CODE_UNIT, "Stable project id", PUBLIC_ID),
    ("name", TEXT, NO_UNIT, "Project name", SCRUBBED),
    ("type", CODE, CODE_UNIT, "Project type key (see type_label)", SCRUBBED),
    ("type_label", TEXT, NO_UNIT, "Project type, in words", SCRUBBED),
    ("organisation", TEXT, NO_UNIT, "Organisation running the project", SCRUBBED),
    ("sector", TEXT, NO_UNIT, "The organisation's sector, where the source gives one", SCRUBBED),
    ("address", TEXT, NO_UNIT, "Address (blank for home-run projects)", WITHHELD),
    (
        "postcode",
        TEXT,
        NO_UNIT,
        "Postcode (only the district, e.g. L8, for home-run projects)",
        DISTRICT,
    ),
    ("opening_hours", TEXT, NO_UNIT, "Opening hours as recorded", SCRUBBED),
    (
        "schedules",
        TEXT,
        "none (JSON text; times HH:MM, local time)",
        "Structured opening hours as JSON: a list of {byday (MO,TU,...), opens_at, closes_at "
        "(HH:MM), valid_from, valid_to (YYYY-MM-DD), note}; blank when only the text is known "
        "(hours unknown)",
        SCRUBBED,
    ),
    ("website", TEXT, NO_UNIT, "Website as recorded", SCRUBBED),
    ("parish", TEXT, NO_UNIT, "Church of England parish, where recorded", SCRUBBED),
    ("last_checked", DATE, "date (YYYY-MM-DD)", "Date the record was last checked", SCRUBBED),
    (
        "location_precision",
        CODE,
        CODE_UNIT,
        "exact (the building), street (a street, postcode or place centroid) or ward_only "
        "(home-run project: shown at its ward's centre, never at its address)",
        SHOWN,
    ),
    (
        "location_note",
        TEXT,
        NO_UNIT,
        "How the position shown was chosen, where it is not exact",
        WITHHELD,
    ),
    ("synthetic", BOOL, FLAG, "True for illustrative records that are NOT real projects", SHOWN),
    ("source", TEXT, NO_UNIT, "Where the record came from", SCRUBBED),
    ("WD24CD", CODE, CODE_UNIT, "Ward code (ONS GSS, wards of May 2024)", SHOWN),
    ("WD24NM", TEXT, NO_UNIT, "Ward name", SHOWN),
    (
        "ward_source",
        CODE,
        CODE_UNIT,
        "How the ward was found: postcode (the ONS assignment of its postcode), "
        "nearest_postcode (that of the nearest live postcode) or polygon (the point in the "
        "generalised ward polygon)",
        SHOWN,
    ),
    ("ward_note", TEXT, NO_UNIT, "Why the ward may be doubtful", WITHHELD),
    (
        "LAD25CD",
        CODE,
        CODE_UNIT,
        "Borough code (ONS GSS, local authority districts May 2025)",
        SHOWN,
    ),
    ("LAD25NM", TEXT, NO_UNIT, "Borough name", SHOWN),
    ("deanery_id", CODE, CODE_UNIT, "Church of England deanery id", SHOWN),
    (
        "deanery_name",
        TEXT,
        NO_UNIT,
        "Deanery name (approximate: derived deanery boundaries)",
        SHOWN,
    ),
    ("deanery_note", TEXT, NO_UNIT, "Why the deanery is empty or doubtful", SCRUBBED),
    (
        "LSOA21CD",
        CODE,
        CODE_UNIT,
        "LSOA 2021 code (ONS GSS; blank for home-run projects)",
        WITHHELD,
    ),
    (
        "imd_decile",
        INT,
        "decile (1-10)",
        "IMD 2025 decile of the project's LSOA, 1 = most deprived 10% in England (blank for "
        "home-run projects)",
        WITHHELD,
    ),
    (
        "in_region",
        BOOL,
        FLAG,
        "True if the position lies in the 9 boroughs of the region",
        SHOWN,
    ),
    (
        "nearest_borough",
        TEXT,
        NO_UNIT,
        "Outside the region only: the region borough nearest the position (the project counts "
        "in no area's figures, only for the reach of residents near it); blank inside",
        SCRUBBED,  # computed by the join, but a store field like any other: a home's is scrubbed
    ),
    (
        "lon",
        FLOAT,
        "degrees (WGS84 longitude)",
        "Longitude of the position shown, 6 decimals",
        WITHHELD,
    ),
    (
        "lat",
        FLOAT,
        "degrees (WGS84 latitude)",
        "Latitude of the position shown, 6 decimals",
        WITHHELD,
    ),
    ("easting", INT, "metres (British National Grid)", "Easting of the position shown", WITHHELD),
    (
        "northing",
        INT,
        "metres (British National Grid)",
        "Northing of the position shown",
        WITHHELD,
    ),
    (
        "boundary_vintage",
        TEXT,
        NO_UNIT,
        "Vintage of the boundary and reference layers the area fields come from",
        SHOWN,
    ),
)
"""Every project column an export carries, in order, with what a home-run record shows of it.

A home-run record's lat/lon/easting/northing are withheld by the projection; exports then
write those of the position shown (its ward's centre). Its location_note is the tool's own
(`kindred_map.privacy.SHOWN_AT_WARD_CENTRE`), never one that came with the record."""

UPKEEP_COLUMNS = _project_columns(
    (),
    ("version", INT, "versions", "Changes to the record so far (1 when first stored)", SHOWN),
    ("checked_by", TEXT, NO_UNIT, "Who last set last_checked", SCRUBBED),
    ("retired_at", DATE, "date (YYYY-MM-DD)", "When the project was retired", SHOWN),
    ("retired_reason", TEXT, NO_UNIT, "Why the project was retired", SCRUBBED),
    ("created_at", TEXT, "ISO 8601 UTC", "When the record was first stored", SHOWN),
)
"""The store's upkeep fields (`kindred_map.schema.STEWARD_FIELDS`): not exported (no table
carries them), but the public view of a record keeps them for the dashboard and the call
sheet."""


def visibility(name: str, home: bool) -> str:
    """What a home-run (``home``) or other record may show of column ``name``: its declared
    VISIBILITIES entry, WITHHELD for a column nobody declared (default-deny)."""
    column = PROJECT_COLUMNS.get(name) or UPKEEP_COLUMNS.get(name)
    if column is None:
        return WITHHELD
    return column.home if home else column.other


AREA_KEYS = {
    "ward": _columns(
        ("ward", "gaps_ward", "need_ward", "change_ward"),
        ("WD24CD", CODE, CODE_UNIT, "Ward code (ONS GSS, wards of May 2024)"),
        ("WD24NM", TEXT, NO_UNIT, "Ward name"),
    )
    | _columns(
        ("ward",),
        ("LAD24CD", CODE, CODE_UNIT, "Code of the ward's borough (ONS GSS)"),
        ("LAD24NM", TEXT, NO_UNIT, "Name of the ward's borough"),
    )
    | _columns(("gaps_ward",), ("LAD25NM", TEXT, NO_UNIT, "Name of the ward's borough")),
    "deanery": _columns(
        ("deanery", "gaps_deanery", "need_deanery", "change_deanery"),
        ("deanery_id", CODE, CODE_UNIT, "Church of England deanery id"),
        ("deanery_name", TEXT, NO_UNIT, "Deanery name (approximate, derived boundaries)"),
    )
    | _columns(("deanery",), ("archdeaconry_name", TEXT, NO_UNIT, "Archdeaconry")),
    "borough": _columns(
        ("borough", "gaps_borough", "need_borough", "change_borough"),
        ("LAD25CD", CODE, CODE_UNIT, "Borough code (ONS GSS, local authority districts May 2025)"),
        ("LAD25NM", TEXT, NO_UNIT, "Borough name"),
    )
    | _columns(
        ("borough",),
        (
            "in_lcr_ca",
            BOOL,
            FLAG,
            "True for the 6 members of the Liverpool City Region Combined Authority",
        ),
    ),
}
"""The area key and name columns of each level (summaries and gap tables)."""

POPULATION = Column(
    "population",
    INT,
    PEOPLE,
    "Census 2021 usual residents: each LSOA's residents spread over its residential postcodes, "
    "summed by the postcodes in the area",
    (*AREAS, *GAPS, *NEED, *CHANGE),
)

SUMMARY_COLUMNS = _columns(
    AREAS,
    ("projects", INT, "projects", "Projects in the area (after the export's filters)"),
    ("projects_per_10k", FLOAT, PER_10K, "Projects per 10,000 residents"),
    (
        "synthetic_projects",
        INT,
        "projects",
        "Of which illustrative records, NOT real projects (0 unless the export included them)",
    ),
    (
        "home_run_projects",
        INT,
        "projects",
        "Of which home-run projects (counted here, shown at the ward centre)",
    ),
    ("boundary_vintage", TEXT, NO_UNIT, "Vintage of the area boundaries"),
)

REACH_COLUMNS = ("reached", "beyond_reach", "pct_covered")
"""Coverage columns the need tables carry too."""

COVERAGE_COLUMNS = _columns(
    (*AREAS, *GAPS),
    ("reached", INT, PEOPLE, "Residents within the reach distance of a project of the types"),
    (
        "coverage_population",
        INT,
        PEOPLE,
        "Residents as the coverage figures count them, where that differs from population",
    ),
    ("beyond_reach", INT, PEOPLE, "Residents beyond the reach distance (population - reached)"),
    ("pct_covered", FLOAT, PERCENT, "Share of residents within reach: 100 x reached / population"),
    (
        "residents_deciles_1_2",
        INT,
        PEOPLE,
        "Residents of LSOAs in IMD 2025 deciles 1-2 (the most deprived 20% in England)",
    ),
    ("beyond_reach_deciles_1_2", INT, PEOPLE, "Of those, residents beyond reach"),
    (
        "pct_deciles_1_2",
        FLOAT,
        PERCENT,
        "Share of residents living in IMD 2025 deciles 1-2: 100 x residents_deciles_1_2 / "
        "population",
    ),
    (
        "median_distance_m",
        FLOAT,
        "metres (straight line, ground distance)",
        "Population-weighted median distance from residents to the nearest project of the "
        "types (blank when there is none)",
    ),
    (
        "gap_score",
        FLOAT,
        "need-weighted people",
        "Residents beyond reach weighted by their LSOA's IMD 2025 decile: 2 for deciles 1-2, "
        "1.5 for deciles 3-4, 1 otherwise",
    ),
    (
        "gap_per_1000",
        FLOAT,
        "need-weighted people per 1,000 residents",
        "1000 x gap_score / population: compares areas of different size",
    ),
    (
        "gap_rank",
        INT,
        "rank (1 = biggest gap)",
        "Rank by gap_score among all areas of this level in the region (ties: more people in "
        "deciles 1-2 beyond reach first, then by code)",
    ),
)
"""Coverage and gap figures (kindred_map.coverage), with an export's --distance."""
COVERAGE_COLUMNS |= {
    name: Column(name, c.kind, c.unit, c.description, (*c.tables, *NEED))
    for name, c in COVERAGE_COLUMNS.items()
    if name in REACH_COLUMNS
}

PERCENTILE = "national percentile (0-100; lower = more deprived)"
DECILE = "decile (1 = most deprived 10% in England)"
NEED_DOMAINS = {
    "imd": "Index of Multiple Deprivation",
    "income": "income domain",
    "employment": "employment domain",
    "health": "health deprivation and disability domain",
    "barriers": "barriers to housing and services domain",
    "environment": "living environment domain",
}


def _need_specs() -> list[tuple[str, str, str, str]]:
    specs = [
        (
            "imd_pct_2019",
            FLOAT,
            PERCENTILE,
            "Resident-weighted mean of the LSOAs' IMD 2019 national percentile (100 x rank / "
            "32,844); merged LSOAs 2021 take their 2011 parents' population-weighted mean rank",
        ),
        (
            "imd_pct_2025",
            FLOAT,
            PERCENTILE,
            "Resident-weighted mean of the LSOAs' IMD 2025 national percentile (100 x rank / "
            "33,755)",
        ),
        (
            "imd_pct_change",
            FLOAT,
            "percentile points (negative = relatively more deprived)",
            "imd_pct_2025 - imd_pct_2019",
        ),
    ]
    for short, title in NEED_DOMAINS.items():
        for year in (2019, 2025):
            specs.append(
                (
                    f"{short}_decile_{year}",
                    INT,
                    DECILE,
                    f"Resident-weighted median of the LSOAs' IoD {year} {title} deciles",
                )
            )
        specs.append(
            (
                f"{short}_decile_change",
                INT,
                "deciles (negative = more deprived)",
                f"{short}_decile_2025 - {short}_decile_2019",
            )
        )
    return specs + [
        (
            "residents_deciles_1_2_2019",
            INT,
            PEOPLE,
            "Residents of LSOAs in IMD 2019 deciles 1-2 (LSOA 2021, moved from 2011)",
        ),
        ("residents_deciles_1_2_2025", INT, PEOPLE, "Residents of LSOAs in IMD 2025 deciles 1-2"),
        (
            "change_deciles_1_2",
            INT,
            PEOPLE,
            "residents_deciles_1_2_2025 - residents_deciles_1_2_2019",
        ),
        (
            "residents_approximate_2019",
            INT,
            PEOPLE,
            "Residents of merged LSOAs 2021, whose 2019 figures are approximate",
        ),
        (
            "need_rose",
            BOOL,
            FLAG,
            "True when imd_pct_change is -1 or less or the median IMD decile fell",
        ),
        (
            "reach_basis",
            CODE,
            CODE_UNIT,
            "now: reach judged on coverage today only (no history); between dates: coverage "
            "then and now",
        ),
        (
            "pct_covered_region",
            FLOAT,
            PERCENT,
            "The region's share of residents within reach (the bar for reach_basis now)",
        ),
        (
            "pct_covered_before",
            FLOAT,
            PERCENT,
            "Share of residents within reach at the earlier date",
        ),
        (
            "reach_not_improved",
            BOOL,
            FLAG,
            "reach_basis now: pct_covered below pct_covered_region; between dates: pct_covered "
            "not above pct_covered_before",
        ),
        (
            "need_rose_reach_not",
            BOOL,
            FLAG,
            "Need rose and reach did not: need_rose and reach_not_improved",
        ),
    ]


NEED_COLUMNS = _columns(NEED, *_need_specs())
"""Need over time (kindred_map.need): IMD 2019 -> 2025 per area."""

AT_DATE = {"from": "at the earlier date (--from)", "to": "at the later date (--to)"}


def _change_specs() -> list[tuple[str, str, str, str]]:
    specs = []
    for when, words in AT_DATE.items():
        specs += [
            (f"reached_{when}", INT, PEOPLE, f"Residents within reach {words}"),
            (f"pct_covered_{when}", FLOAT, PERCENT, f"Share of residents within reach {words}"),
            (
                f"gap_score_{when}",
                INT,
                "need-weighted people",
                f"Gap score {words} (residents beyond reach weighted 2 in IMD 2025 deciles 1-2, "
                "1.5 in 3-4, 1 otherwise), to the nearest whole",
            ),
            (
                f"gap_rank_{when}",
                INT,
                "rank (1 = biggest gap)",
                f"Rank by gap score among the areas of this level {words}",
            ),
            (
                f"projects_{when}",
                INT,
                "projects",
                f"Open projects of the types in the area {words}",
            ),
        ]
    return specs + [
        ("reached_change", INT, PEOPLE, "reached_to - reached_from"),
        ("pct_covered_change", FLOAT, "percentage points", "pct_covered_to - pct_covered_from"),
        (
            "gap_score_change",
            INT,
            "need-weighted people",
            "gap_score_to - gap_score_from (positive = the gap grew)",
        ),
        (
            "gap_rank_change",
            INT,
            "ranks",
            "gap_rank_from - gap_rank_to (positive = moved up the list of gaps, relatively worse)",
        ),
        (
            "newly_reached",
            INT,
            PEOPLE,
            "Residents of postcodes within reach at the later date and not at the earlier",
        ),
        (
            "newly_beyond_reach",
            INT,
            PEOPLE,
            "Residents of postcodes within reach at the earlier date and not at the later "
            "(newly_reached - newly_beyond_reach = reached_change)",
        ),
        (
            "newly_reached_deciles_1_2",
            INT,
            PEOPLE,
            "Of newly_reached, residents of LSOAs in IMD 2025 deciles 1-2",
        ),
        (
            "newly_beyond_reach_deciles_1_2",
            INT,
            PEOPLE,
            "Of newly_beyond_reach, residents of LSOAs in IMD 2025 deciles 1-2",
        ),
        ("opened", INT, "projects", "Projects open at the later date and not at the earlier"),
        (
            "closed",
            INT,
            "projects",
            "Projects open at the earlier date and not at the later (retired or removed)",
        ),
        ("moved_in", INT, "projects", "Projects open at both dates that moved into the area"),
        ("moved_out", INT, "projects", "Projects open at both dates that moved out of the area"),
        ("date_from", DATE, "date (YYYY-MM-DD)", "The earlier date"),
        ("date_to", DATE, "date (YYYY-MM-DD)", "The later date"),
    ]


CHANGE_COLUMNS = _columns(CHANGE, *_change_specs())
"""Change between two dates (kindred_map.change) per area."""

_TYPE_COUNT = re.compile(r"^projects_(?P<type>.+?)(?P<per>_per_10k)?$")
_TYPE_CHANGE = re.compile(r"^(?P<what>opened|closed)_(?P<type>.+)$")


def _type_label(key: str) -> str:
    types = project_types()
    return types[key]["label"] if key in types else f"{key} (not a configured type)"


def _type_change_column(name: str) -> Column | None:
    """``opened_<type>`` and ``closed_<type>``: projects opened and closed by type."""
    found = _TYPE_CHANGE.match(name)
    if not found:
        return None
    words = {"opened": "open at the later date only", "closed": "open at the earlier date only"}
    text = f"Projects of type {_type_label(found['type'])} {found['what']} ({words[found['what']]})"
    return Column(name, INT, "projects", text, CHANGE)


def _type_column(name: str) -> Column | None:
    """``projects_<type>`` and ``projects_<type>_per_10k``: counts by project type."""
    found = _TYPE_COUNT.match(name)
    if not found:
        return None
    label = _type_label(found["type"])
    if found["per"]:
        return Column(name, FLOAT, PER_10K, f"Projects of type {label} per 10,000 residents", AREAS)
    return Column(name, INT, "projects", f"Projects of type {label}", AREAS)


def describe(name: str, table: str) -> Column:
    """The definition of column ``name`` in ``table`` (one of TABLES); a ValueError when there
    is none, so no undescribed column can be shipped."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {', '.join(TABLES)}")
    level = table.rsplit("_", 1)[-1]
    candidates = [
        PROJECT_COLUMNS.get(name),
        AREA_KEYS.get(level, {}).get(name),
        POPULATION if name == "population" else None,
        SUMMARY_COLUMNS.get(name),
        COVERAGE_COLUMNS.get(name),
        NEED_COLUMNS.get(name),
        CHANGE_COLUMNS.get(name),
        _type_column(name) if table in AREAS else None,
        _type_change_column(name) if table in CHANGE else None,
    ]
    for column in candidates:
        if column is not None and table in column.tables:
            return column
    raise ValueError(f"column {name!r} of the {table} table has no definition in columns.py")


def dictionary(table: str, names) -> list[Column]:
    """The definitions of a table's columns, in its order (geometry left out)."""
    return [describe(name, table) for name in names if name != "geometry"]


def dictionary_lines(table: str, names) -> list[str]:
    """The data dictionary of one table as text lines, for READMEs and ``_about.txt``."""
    return [
        f"- {column.name} ({column.kind}; unit: {column.unit}): {column.description}"
        for column in dictionary(table, names)
    ]
