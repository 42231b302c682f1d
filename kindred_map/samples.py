"""Build the sample project store from real open records, the seed projects and marked examples."""

import hashlib
import html
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from kindred_map import boundaries, geocode, hours, ingest, join, store
from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR, DEFAULT_STORE
from kindred_map.report import build_report, issues_for
from kindred_map.schema import RECORD_FIELDS

BUILD_TIMESTAMP = "2025-10-31T00:00:00Z"
"""Recorded as the store's last change: fixed (the newest source, warm spaces checked October
2025) so that building twice gives identical bytes."""
MERGE_DISTANCE_M = 200
"""Warm-space venues with the same name listed by several directories within this distance are
one venue."""
RAW_FILES = {
    "givefood": "givefood_foodbanks/foodbanks_region_givefood.csv",
    "warm_spaces": "openinnovations_warm_spaces/warm_spaces_region.csv",
    "warm_spaces_ring": "openinnovations_warm_spaces/warm_spaces_ring5km.csv",
    "places": "os_open_names_places/os_open_names_populated_places_region.csv",
    "coops": "coops_uk_2023q2/coopsuk_lcr_candidates.csv",
}
RING_NOTE = "; listed as within 5 km outside the region (ring file)"
COOPS_ATTRIBUTION = "Contains data from Co-operatives UK"
"""Required by the Co-operatives UK open data licence (ODC-By 1.0)."""
POSTCODE_IN_TEXT = r"\b([A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})\b"
NOK_SOURCE = (
    "Network of Kindness news item (Together Liverpool, autumn 2024; "
    "shared/seeds/network-of-kindness.txt)"
)
SEED_PROJECTS = (
    {
        "id": "seed-christ-church-norris-green-pow",
        "name": "Christ Church Norris Green Place of Welcome",
        "type": "place_of_welcome",
        "organisation": "Christ Church Norris Green",
        "parish": "Liverpool: Christ Church, Norris Green",
        "opening_hours": "Weekly drop-in (day not stated in the source)",
        "place": "Norris Green",
        "what": "weekly Place of Welcome drop-in for the public",
    },
    {
        "id": "seed-st-giles-aintree-prison-leavers",
        "name": "Welcoming Prison Leavers course at St Giles Aintree",
        "type": "church_project",
        "organisation": "St Giles Aintree with The Welcome Directory and Altcourse prison "
        "chaplaincy",
        "parish": "Aintree: St Giles w St Peter",
        "opening_hours": "27 and 30 November 2024 (two-part course)",
        "place": "Aintree",
        "what": "a two-part course hosted by the church, an event rather than an ongoing project",
    },
    {
        "id": "seed-st-gabriels-huyton-quarry-hub",
        "name": "St Gabriel's Huyton Quarry community social action hub and cafe",
        "type": "church_project",
        "organisation": "St Gabriel's church, Huyton Quarry",
        "parish": "Huyton Quarry: St Gabriel",
        "opening_hours": "",
        "place": "Huyton",
        "what": "a £30,000 community social action hub and cafe (Huyton Quarry is not in the "
        "gazetteer, so the Huyton centroid is used)",
    },
    {
        "id": "seed-st-luke-st-jude-west-derby-lunch-club",
        "name": "St Luke's and St Jude's West Derby lunch club",
        "type": "church_project",
        "organisation": "St Luke's and St Jude's, West Derby",
        "parish": "West Derby St Luke and Stockbridge Village St Jude",
        "opening_hours": "",
        "place": "West Derby",
        "what": "a lunch club to alleviate loneliness and food insecurity",
    },
)
"""Projects named in shared/seeds. No postcode for them is in the data, so each is placed at
the OS Open Names centroid of its place (location_precision street), and says so."""
SYNTHETIC_PANTRY_BOROUGHS = (
    "Halton",
    "Knowsley",
    "Liverpool",
    "Sefton",
    "St. Helens",
    "Warrington",
    "West Lancashire",
    "Wigan",
)


def _raw(raw: Path, key: str) -> Path:
    path = Path(raw) / RAW_FILES[key]
    if not path.exists():
        raise ValueError(f"raw file missing: {path} (is --raw pointing at shared/data/raw?)")
    return path


def _blank_records(count: int) -> pd.DataFrame:
    return pd.DataFrame({name: [""] * count for name in RECORD_FIELDS})


def givefood_records(raw: Path) -> pd.DataFrame:
    """Give Food's food bank organisations (main address), as project records."""
    table = pd.read_csv(_raw(raw, "givefood"), dtype="str").fillna("")
    records = _blank_records(len(table))
    records["id"] = "givefood-" + table["name"].map(_slug)
    records["name"] = table["name"]
    records["type"] = "food_bank"
    records["organisation"] = (
        table["network"]
        .map({"Trussell Trust": "Trussell Trust network", "IFAN": "IFAN member"})
        .fillna(table["network"])
    )
    for column in ("address", "postcode", "lat", "lon"):
        records[column] = table[column]
    records["location_precision"] = "exact"
    records["source"] = (
        "Give Food foodbanks.csv (public domain), c. 2023-24: the organisation's main address, "
        "not each distribution point; Give Food ward: " + table["givefood_ward"]
    )
    records["row"] = np.arange(2, len(table) + 2)
    return records


def warm_space_records(raw: Path, key: str = "warm_spaces") -> pd.DataFrame:
    """Warm spaces: a venue listed by several directories (same name, within 200 m) is merged.

    Typed ``warm_space``, or ``place_of_welcome`` when the listing calls itself a Place of
    Welcome; the source's keyword category guess is kept in ``source``. ``key``:
    ``warm_spaces`` (the 9 boroughs) or ``warm_spaces_ring`` (the venues within 5 km outside
    them, `ring_table`).
    """
    table = pd.read_csv(_raw(raw, key), dtype="str").fillna("")
    if key == "warm_spaces_ring":
        table = ring_table(table)
    for column in ("title", "address", "description", "hours_text"):
        table[column] = table[column].map(html.unescape)
    table["row"] = np.arange(2, len(table) + 2)
    table = _merge_listings(table)
    records = _blank_records(len(table))
    records["id"] = "warmspace-" + (table["title"] + "|" + table["lat"] + "|" + table["lon"]).map(
        lambda text: hashlib.sha256(text.encode()).hexdigest()[:10]
    )
    records["name"] = table["title"].to_numpy()
    welcome = (table["title"] + " " + table["description"]).str.contains(
        r"places? of welcome", case=False
    )
    records["type"] = np.where(welcome, "place_of_welcome", "warm_space")
    records["address"] = table["address"].to_numpy()
    found = table["address"].str.upper().str.findall(POSTCODE_IN_TEXT)
    records["postcode"] = found.map(lambda hits: hits[-1] if hits else "").to_numpy()
    records["lat"] = table["lat"].to_numpy()
    records["lon"] = table["lon"].to_numpy()
    records["opening_hours"] = table["hours_text"].to_numpy()
    records["schedules"] = [
        hours.dumps(hours.parse_listing(text, osm))
        for text, osm in zip(table["hours_text"], table["hours_osm"], strict=True)
    ]
    records["website"] = table["url"].to_numpy()
    records["location_precision"] = np.where(table["loc_pcd"].eq("True"), "street", "exact")
    records["source"] = (
        "Open Innovations warm spaces aggregation (licence not stated), directory: "
        + table["source"]
        + "; category guess: "
        + table["category_guess"]
        + (RING_NOTE if key == "warm_spaces_ring" else "")
    ).to_numpy()
    records["row"] = table["row"].to_numpy()
    records["same_as"] = table["same_as"].to_numpy()
    return records


def ring_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ring file in the region file's columns: its ``hours_text`` holds the source's JSON
    (``_text``, the listing's words; ``opening``, the aggregator's OpenStreetMap reading) and
    it has no keyword category guess."""
    table = table.copy()
    listed = table["hours_text"].map(_hours_json)
    table["hours_text"] = listed.str[0]
    table["hours_osm"] = listed.str[1]
    table["category_guess"] = "none (not given for venues outside the region)"
    return table


def _hours_json(text: str) -> tuple[str, str]:
    """(listing text, OpenStreetMap hours) from the ring file's JSON; plain text as it is."""
    try:
        value = json.loads(text)
    except ValueError:
        return text, ""
    if not isinstance(value, dict):
        return text, ""
    return str(value.get("_text", "")), str(value.get("opening", ""))


def _merge_listings(table: pd.DataFrame) -> pd.DataFrame:
    """Mark repeat listings of a venue: same normalised title within MERGE_DISTANCE_M.

    A repeat gets ``same_as`` (the row number of the first listing); the first listing's
    ``source`` names every directory that lists it.
    """
    key = table["title"].str.casefold().str.replace(r"[^a-z0-9]", "", regex=True)
    x, y = geocode.to_bng(table["lon"].astype(float), table["lat"].astype(float))
    table = table.copy()
    table["same_as"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    firsts: list[int] = []
    for position in range(len(table)):
        first = next(
            (
                kept
                for kept in firsts
                if key.iat[kept] == key.iat[position]
                and np.hypot(x[kept] - x[position], y[kept] - y[position]) <= MERGE_DISTANCE_M
            ),
            None,
        )
        if first is None:
            firsts.append(position)
            continue
        table.iloc[position, table.columns.get_loc("same_as")] = table["row"].iat[first]
        directories = table["source"].iat[first].split(" + ")
        if table["source"].iat[position] not in directories:
            directories.append(table["source"].iat[position])
        table.iloc[first, table.columns.get_loc("source")] = " + ".join(directories)
    return table


def coops_records(raw: Path) -> pd.DataFrame:
    """Co-operatives UK's open data (Q2 2023) for the region's candidates, typed ``sto``.

    Each is at its registered address's postcode centroid (``location_precision`` street):
    where the co-operative is registered, not necessarily where it trades. Its sector is kept
    in ``sector``; legal form and identifier in ``source``. Candidates outside the 9 boroughs
    are dropped after the join (`build_sample_store` names them in the build report).
    """
    table = pd.read_csv(_raw(raw, "coops"), dtype="str").fillna("")
    records = _blank_records(len(table))
    records["id"] = "coopsuk-" + table["Identifier"].str.lower()
    records["name"] = table["Name"].map(html.unescape)
    records["type"] = "sto"
    records["organisation"] = records["name"]
    records["sector"] = table["Sector"]
    street = table["Street Address"].str.replace(r"\s*\n\s*", ", ", regex=True)
    records["address"] = (street + ", " + table["Locality"]).str.strip(", ")
    records["postcode"] = table["Postcode"]
    records["lat"] = table["Geo Container Latitude"]
    records["lon"] = table["Geo Container Longitude"]
    records["website"] = table["Website"]
    records["location_precision"] = "street"
    records["source"] = (
        "Co-operatives UK open data, Q2 2023 (ODC-By 1.0; "
        + COOPS_ATTRIBUTION
        + "), identifier "
        + table["Identifier"]
        + ", legal form "
        + table["Legal Form"].where(table["Legal Form"].ne(""), "not stated")
        + ": registered address, placed at its postcode centroid"
    )
    records["row"] = np.arange(2, len(table) + 2)
    return records


def shared_postcodes(projects: pd.DataFrame) -> int:
    """How many records sit at a postcode another record shares (a registered office such as
    a secondary co-operative or an agent, rather than where each trades)."""
    postcodes = projects["postcode"].astype(str).str.replace(" ", "").str.upper()
    postcodes = postcodes[postcodes.ne("")]
    return int(postcodes.duplicated(keep=False).sum())


def seed_records(raw: Path) -> pd.DataFrame:
    """The projects named in the seeds, each at its place's OS Open Names centroid."""
    places = pd.read_csv(_raw(raw, "places"))
    places = places[places["place_type"] != "Postcode district"].drop_duplicates("name")
    places = places.set_index("name")
    records = _blank_records(len(SEED_PROJECTS))
    for position, seed in enumerate(SEED_PROJECTS):
        if seed["place"] not in places.index:
            raise ValueError(f"place {seed['place']!r} not in OS Open Names")
        place = places.loc[seed["place"]]
        for column in ("id", "name", "type", "organisation", "parish", "opening_hours"):
            records.loc[position, column] = seed[column]
        records.loc[position, "lat"] = f"{place['lat']:.4f}"
        records.loc[position, "lon"] = f"{place['lon']:.4f}"
        records.loc[position, "location_precision"] = "street"
        records.loc[position, "source"] = (
            f"{NOK_SOURCE}: {seed['what']}. Placed at the OS Open Names centroid of "
            f"{seed['place']}, not at the church: no postcode for it is in the data."
        )
    records["row"] = np.arange(1, len(records) + 1)
    return records


def synthetic_records(directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """Clearly marked examples of the one type with no open data (pantries).

    Each sits at a real postcode chosen by rule, not at a real project: at the residential
    postcode nearest each borough's population-weighted centre, and one home-run pantry
    (ward_only, so the dashboard shows how those are masked) at the one nearest the
    population-weighted centre of Knowsley's least deprived LSOA. STOs are real now
    (`coops_records`).
    """
    postcodes = boundaries.region_postcodes(boundaries.load("postcode", directory))
    live = postcodes[(postcodes["status"] == "live") & (postcodes["residents"] > 0)]
    live = live.sort_values("pcd_key")
    names = boundaries.load("borough", directory).set_index("LAD25NM")["LAD25CD"]
    lsoas = boundaries.load("lsoa", directory).sort_values(["LAD24CD", "imd_rank", "LSOA21CD"])
    rows = []
    for borough in SYNTHETIC_PANTRY_BOROUGHS:
        chosen = _central_postcode(live[live["LAD25CD"] == names[borough]])
        rows.append(
            _synthetic(
                "pantry",
                "Example pantry",
                borough,
                chosen,
                "street",
                "the borough's population-weighted centre",
            )
        )
    least_deprived = lsoas.drop_duplicates("LAD24CD", keep="last").set_index("LAD24CD")
    home_area = live[live["LSOA21CD"] == least_deprived.loc[names["Knowsley"], "LSOA21CD"]]
    rows.append(
        _synthetic(
            "pantry",
            "Example home-run pantry",
            "Knowsley",
            _central_postcode(home_area),
            "ward_only",
            "the population-weighted centre of its least deprived LSOA (run from a home: "
            "shown only by ward)",
        )
    )
    records = pd.DataFrame(rows)
    records["row"] = np.arange(1, len(records) + 1)
    return records


def _central_postcode(postcodes: pd.DataFrame) -> pd.Series:
    """The postcode nearest the resident-weighted centre of ``postcodes`` (ties: lowest code)."""
    weights = postcodes["residents"].to_numpy(float)
    cx = np.average(postcodes["easting"], weights=weights)
    cy = np.average(postcodes["northing"], weights=weights)
    distance = np.hypot(postcodes["easting"] - cx, postcodes["northing"] - cy)
    order = np.lexsort((postcodes["pcd_key"].to_numpy(str), distance.round(3).to_numpy()))
    return postcodes.iloc[order[0]]


def _synthetic(kind, label, borough, postcode, precision, rule) -> dict:
    record = dict.fromkeys(RECORD_FIELDS, "")
    record |= {
        "id": f"synthetic-{kind}-{_slug(borough)}" + ("-home" if precision == "ward_only" else ""),
        "name": f"{label} (synthetic), {borough}",
        "type": kind,
        "organisation": "Synthetic example: not a real organisation",
        "postcode": postcode["postcode"],
        "location_precision": precision,
        "synthetic": "yes",
        "source": f"SYNTHETIC example, not a real project: no open data lists {kind}s. Placed "
        f"at a real postcode centroid ({postcode['postcode']}) nearest {rule}.",
    }
    return record


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def build_sample_store(
    raw: Path = DEFAULT_RAW_DIR,
    out: Path = DEFAULT_STORE,
    directory: Path = BOUNDARIES_DIR,
) -> dict:
    """Build the sample store, its build report (CSV) and SOURCES.md beside it.

    Every record goes through the same checks, geocoding and join as an import. Returns
    counts by source and type. Deterministic: building twice gives identical files.
    """
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise ValueError(f"raw data folder not found: {raw}")
    sources = {
        "Give Food food banks": (givefood_records(raw), RAW_FILES["givefood"]),
        "Warm spaces": (warm_space_records(raw), RAW_FILES["warm_spaces"]),
        "Warm spaces outside the region": (
            warm_space_records(raw, "warm_spaces_ring"),
            RAW_FILES["warm_spaces_ring"],
        ),
        "Seed projects": (seed_records(raw), "seeds/network-of-kindness.txt"),
        "Co-operatives UK": (coops_records(raw), RAW_FILES["coops"]),
        "Synthetic examples": (synthetic_records(directory), "kindred_map/samples.py"),
    }
    frames, log, reports = [], [], []
    for label, (records, file) in sources.items():
        projects, report = _process(records, file, directory)
        if label == "Co-operatives UK":
            projects, report = _coops_checked(projects, report, records)
        frames.append(projects.assign(_label=label))
        reports.append(report.issues.assign(file=file))
        log.append(
            {
                "import_id": len(log) + 1,
                "who": "build-sample-data",
                "imported_at": BUILD_TIMESTAMP,
                "file": file,
                "file_sha256": "",
                "rows_read": report.rows_read,
                "imported": report.imported,
                "rejected": report.rejected,
                "warned": report.warned,
                "projects": report.records,
                "new": report.records,
                "updated": 0,
                "unchanged": 0,
                "note": f"build-sample-data: {label}",
            }
        )
    projects = pd.concat(frames, ignore_index=True)
    duplicated = projects["id"].duplicated()
    if duplicated.any():
        raise ValueError(f"duplicate sample ids: {projects.loc[duplicated, 'id'].tolist()}")
    summary = (
        projects.groupby(["_label", "type"])
        .size()
        .rename("projects")
        .reset_index()
        .rename(columns={"_label": "origin"})
    )
    projects = gpd.GeoDataFrame(projects.drop(columns="_label"), crs="EPSG:4326")
    imports = pd.DataFrame(log).astype(store.IMPORT_LOG_FIELDS)
    store.write_store(projects, imports, out, BUILD_TIMESTAMP)
    build_issues = pd.concat(reports, ignore_index=True)
    build_issues.to_csv(out.parent / "sample_build_report.csv", index=False, lineterminator="\n")
    (out.parent / "SOURCES.md").write_text(_sources_text(summary, log, projects), "utf-8")
    return {"summary": summary, "log": log, "projects": len(projects)}


def _process(records: pd.DataFrame, file: str, directory: Path):
    """The import pipeline on ready-made records: check, place, id, join.

    Rows with ``same_as`` repeat an earlier row's project: they are merged into it and named
    in the report.
    """
    same_as = records.get("same_as", pd.Series(pd.NA, index=records.index, dtype="Int64"))
    repeats = same_as.notna()
    merged = issues_for(
        records[repeats],
        "name",
        "warning",
        "same venue as row "
        + same_as[repeats].astype("Int64").astype("str")
        + " (listed by another directory): merged into it",
    )
    clean, normalise_issues = ingest.normalise(
        records[~repeats].drop(columns="same_as", errors="ignore")
    )
    clean, hours_issues = hours.fill_schedules(clean)
    located, geocode_issues = geocode.locate(clean, directory)
    located, duplicate_issues = ingest.assign_ids(located, clean)
    joined = join.join_projects(located, directory)
    report = build_report(
        file,
        records["row"],
        [merged, normalise_issues, hours_issues, geocode_issues, duplicate_issues],
        records=len(joined),
    )
    return joined, report


def _coops_checked(projects: pd.DataFrame, report, records: pd.DataFrame):
    """Keep the Co-operatives UK candidates inside the 9 boroughs (the join's ``in_region``);
    each one left out is named in the build report, and so is each kept one whose postcode
    another shares (a registered office, not where it trades)."""
    outside = projects[~projects["in_region"].astype(bool)]
    left_out = issues_for(
        outside,
        "postcode",
        "rejected",
        "outside the region's 9 boroughs (candidate by postcode prefix or bounding box only): "
        "left out of the sample store",
    )
    kept = projects[projects["in_region"].astype(bool)]
    key = kept["postcode"].astype(str).str.replace(" ", "").str.upper()
    sharing = key.map(key[key.ne("")].value_counts()).fillna(0).astype(int)
    shared = issues_for(
        kept[sharing > 1],
        "postcode",
        "warning",
        "postcode shared with "
        + (sharing[sharing > 1] - 1).astype(str)
        + " other co-operative(s): likely a registered office (a secondary co-operative or "
        "agent), not where it trades",
    )
    issues = pd.concat([report.issues, left_out, shared], ignore_index=True)
    rebuilt = build_report(report.file, records["row"], [issues], records=len(kept))
    return kept, rebuilt


def summary_text(summary: dict) -> str:
    """Counts by source and type, for the CLI."""
    lines = [
        f"{row.origin:30} {row.type:18} {row.projects:>4}"
        for row in summary["summary"].itertuples()
    ]
    lines.append(f"{'total':49} {summary['projects']:>4}")
    return "\n".join(lines)


def _sources_text(summary: pd.DataFrame, log: list[dict], projects: pd.DataFrame) -> str:
    by_source = "\n".join(
        f"| {row.origin} | {row.type} | {row.projects} |" for row in summary.itertuples()
    )
    read = "\n".join(
        f"| {entry['file']} | {entry['rows_read']} | {entry['imported']} | {entry['rejected']} "
        f"| {entry['warned']} | {entry['projects']} |"
        for entry in log
    )
    outside = int((~projects["in_region"]).sum())
    coops = projects[projects["id"].str.startswith("coopsuk-")]
    warm = projects[projects["id"].str.startswith("warmspace-")]
    ring = warm[warm["source"].str.endswith(RING_NOTE)]
    ring_inside = ring[ring["in_region"]]
    by_nearest = "\n".join(
        f"| {borough} | {count} |"
        for borough, count in ring.loc[~ring["in_region"], "nearest_borough"]
        .value_counts()
        .sort_index()
        .items()
    )
    by_borough = "\n".join(
        f"| {borough} | {count} |"
        for borough, count in coops["LAD25NM"].value_counts().sort_index().items()
    )
    return SOURCES_TEMPLATE.format(
        by_source=by_source,
        read=read,
        total=len(projects),
        outside=outside,
        coops=len(coops),
        coops_by_borough=by_borough,
        coops_shared=shared_postcodes(coops),
        coops_attribution=COOPS_ATTRIBUTION,
        warm_structured=int(warm["schedules"].ne("").sum()),
        warm_total=len(warm),
        ring=len(ring),
        ring_outside=int((~ring["in_region"]).sum()),
        ring_inside=", ".join(
            f"{name} ({postcode})"
            for name, postcode in zip(ring_inside["name"], ring_inside["postcode"], strict=True)
        )
        or "none",
        ring_by_nearest=by_nearest,
    )


SOURCES_TEMPLATE = """# Sample project store: sources, licences, caveats

`data/projects.gpkg` is built by `kindred-map build-sample-data` from the raw open data in
`../shared/data/raw` and the seed texts in `../shared/seeds`. Every record went through the same
checks, offline geocoding and area join as an import (`kindred-map import`); what each check
said is in `data/sample_build_report.csv` (row numbers are the source files' own rows). Building
twice gives byte-identical files. The store holds {total} projects ({outside} outside the region).

| Source | Type | Projects |
|---|---|---|
{by_source}

| File | Rows read | Imported | Rejected | Rows with warnings | Projects |
|---|---|---|---|---|---|
{read}

## Give Food food banks (real)
- `givefood_foodbanks/foodbanks_region_givefood.csv`: Give Food's list of food bank
  organisations (givefood/data `foodbanks.csv`), c. 2023 to early 2024. Each is the
  organisation's main address, not each of its distribution points.
- Licence: public domain (The Unlicense). Attribution (requested, not required): "Food bank
  data from Give Food (givefood.org.uk), public domain."
- Placed by Give Food's coordinates (checked against the postcode: all within 500 m).

## Warm spaces (real; licence not stated)
- `openinnovations_warm_spaces/warm_spaces_region.csv`: the Open Innovations aggregation of the
  Warm Welcome Campaign, Sefton Council, Sefton CVS, St Helens Council and Lancashire County
  Council directories (sources checked October 2025).
- **Licence: not stated.** The aggregation has no licence file; the venues' entries belong to the
  directories they came from. Fine for internal analysis and prototyping; ask Warm Welcome and
  the councils before publishing. Attribute the directory (named in each record's `source`).
- Opening hours: `schedules` holds structured hours where the listing's text and the
  aggregator's OpenStreetMap reading of it (`hours_osm`) both parse and agree
  (`kindred_map.hours.parse_listing`); the rest keep their text ("hours unknown"): monthly or
  fortnightly sessions, 12-hour times in 24-hour fields ("11:00 - 03:00"), notes the parser
  does not read. {warm_structured} of {warm_total} warm-space records have structured hours.
- Typed `warm_space`, or `place_of_welcome` only where the listing itself says "Place of
  Welcome". Church and faith venues are not typed `church_project`: being held in a church does
  not make a warm space a church-run project, and the source's keyword `category_guess` is not
  authoritative. The guess is kept in `source`.
- The same venue listed by several directories (same name, within 200 m) is one record; its
  `source` names each directory. Listings geocoded by the directory to a postcode centroid
  have `location_precision` street. Where a listing's coordinates lie more than 500 m from the
  postcode in its address, the postcode's position is used (see the build report).

## Warm spaces just outside the region (real; licence not stated)
- `openinnovations_warm_spaces/warm_spaces_ring5km.csv`: the same Open Innovations aggregation
  and commit, the venues outside the 9 boroughs and within 5 km of them (straight line), so
  that residents near the boundary are counted as within reach of a warm space across it.
  Same licence caveat as above: **not stated**; attribute the directory named in `source`
  (Warm Welcome, Fylde Council, Lancashire County Council).
- {ring} records (repeat listings merged as above; `source` ends "listed as within 5 km outside
  the region"). {ring_outside} are placed outside the region: `in_region` false, no ward,
  borough, deanery or LSOA, and `nearest_borough` the region borough nearest them. They count
  for the reach of the region's residents, never in an area's project figures. Placed inside
  the region by the postcode in their address, which lies more than 500 m from the listed
  point (the import's rule: the postcode wins; see the build report): {ring_inside}.
- The ring file has no keyword category guess; its hours come as the source's JSON (the
  listing's text and the aggregator's OpenStreetMap reading), read like the region file's.

| Nearest region borough | Warm spaces outside |
|---|---|
{ring_by_nearest}

## Co-operatives UK: socially trading organisations (real)
- `coops_uk_2023q2/coopsuk_lcr_candidates.csv`: Co-operatives UK's open data ("last updated
  for Q2 2023", via DigitalCommons/coopsuk), the region's candidates by postcode prefix or
  bounding box. Joined to the borough layer: {coops} lie in the 9 boroughs and are in the store
  (typed `sto`); the other candidates are named in the build report and left out.
- **Licence: Open Data Commons Attribution Licence (ODC-By 1.0).** Attribution required:
  "{coops_attribution}."
- The co-operative slice of socially trading organisations: not a list of CICs, charities or
  social enterprises. Co-operatives UK's sector is kept in `sector`; legal form and
  identifier in `source`.
- Each is placed at its registered address's postcode centroid (`location_precision`
  street): where it is registered, not necessarily where it trades. {coops_shared} sit at a
  postcode another co-operative shares (a registered office such as a secondary housing
  co-operative or an agent); each is named in the build report.

| Borough | STOs |
|---|---|
{coops_by_borough}

## Seed projects (real projects, approximate positions)
- Named in the Network of Kindness news item (Together Liverpool, autumn 2024), copied in
  `shared/seeds/network-of-kindness.txt`. Its text has no addresses or postcodes, so each is
  placed at the OS Open Names centroid of its place (`location_precision` street), not at the
  church, and says so in `source`. St Gabriel's is in Huyton Quarry, which the gazetteer lacks:
  it is at the Huyton centroid. The Welcoming Prison Leavers course at St Giles Aintree is an
  event the church hosted, not an ongoing project.
- OS Open Names: Open Government Licence v3.0. "Contains OS data © Crown copyright and database
  right 2021. Contains Royal Mail data © Royal Mail copyright and database right 2021. Contains
  National Statistics data © Crown copyright and database right 2021."

## Synthetic examples (NOT real)
- No open data lists food pantries, so the store has a few clearly invented examples so that
  the dashboard can show that type. Each has `synthetic` = True, a name starting "Example ...
  (synthetic)", and a `source` saying how it was placed: at a real postcode centroid chosen by
  rule (nearest each borough's population-weighted centre). One is a home-run example
  (`location_precision` ward_only). STOs are real (Co-operatives UK, above).
- Leave them out of any figure about real provision (`synthetic` is False for real records).

## Areas
Ward, borough, LSOA (with IMD 2025 decile) and deanery come from `kindred_map.join` and the
layers in `boundaries/` (see `boundaries/ATTRIBUTION.md`). Deaneries are approximate (derived).
"""
