"""Open Referral UK (the UK profile of HSDS 3.0): projects out as services, and services back in.

Export (`export_json`, `export_csv_zip`): each project is one service with its organisation,
one service-at-location with its location (latitude/longitude of the position Kindred Map
shows: home-run projects only at their ward's centre, via `privacy.public_records`, with no
address and a ``ward_only`` attribute), its schedules and taxonomy terms for its type, sector,
location precision and synthetic flag. Ids are UUIDs derived from the project id (uuid5), so
exporting twice gives the same ids; the project id travels as the location's
``external_identifier`` (type ``kindred_map_id``), so an export re-imports as the same
projects. The JSON file is one page of the ORUK API's ``/services`` response (full services in
``contents``) plus an ``about`` member with licences and attribution; the CSV package holds the
profile's tables (file names as in its compiled schemas) and an ``about.txt``.

Decisions: ``address_1`` is the whole address as recorded, ``city`` the borough and
``state_province`` its ceremonial county (the region's 9 boroughs lie in 4); ``country`` GB.
A website without a scheme gets ``https://`` (the schema wants a URI). Free-text hours travel
as the schedule ``description``; hours not known in structure are one schedule with only that
description. ``assured_date`` is ``last_checked``.

Import (`read_table`): a JSON file (a ``/services`` page, a list of services, one service, an
organisation with its services, or service-at-location records) or the CSV package (a .zip,
or its ``services.csv`` with the other tables beside it) becomes one row per service at a
location (a service with no location is one row with no position, which the import then
rejects, naming it), through the normal import checks and report. A service's schedules are
structured only when every one is a plain weekly session (``byday`` days, ``opens_at`` and
``closes_at``, interval 1, no month days); otherwise their descriptions (or the rule, in words)
become ``opening_hours`` and the hours are unknown. The reader keeps the limits of the other
readers (`kindred_map.ingest`: file size, unpacked size, rows, cell length), reads only the
package's known tables, and turns any error into one ValueError line naming the file.
"""

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from kindred_map import hours, ingest
from kindred_map.ingest import Table
from kindred_map.schema import project_types
from kindred_map.text import spreadsheet_safe

NAMESPACE = uuid.UUID("6f1c2b7e-3d0a-5e8f-9a41-6b2d0c7e5a13")
"""Kindred Map's uuid5 namespace for ORUK ids."""
ID_TYPE = "kindred_map_id"
"""``external_identifier_type`` of a location carrying the Kindred Map project id."""
TAXONOMIES = {
    "type": ("kindred_map_project_type", "Kindred Map project types"),
    "sector": ("kindred_map_sector", "Sector of the organisation, as the source gives it"),
    "precision": (
        "kindred_map_location_precision",
        "How precisely the location is known: exact (the building), street (a street, postcode "
        "or place centre) or ward_only (home-run project: shown at its ward's centre only)",
    ),
    "flag": ("kindred_map_flag", "Kindred Map record flags"),
}
"""Our taxonomies: key -> (taxonomy name, description)."""
COUNTIES = {
    "Liverpool": "Merseyside",
    "Knowsley": "Merseyside",
    "Sefton": "Merseyside",
    "St. Helens": "Merseyside",
    "Wirral": "Merseyside",
    "Halton": "Cheshire",
    "Warrington": "Cheshire",
    "Wigan": "Greater Manchester",
    "West Lancashire": "Lancashire",
}
"""Ceremonial county of each borough, for ``state_province``."""
SOURCE_PREFIX = "Source: "
UNNAMED = "No organisation recorded: named after its project"
"""Description of the organisation of a project with none recorded (ORUK requires one)."""
CSV_TABLES = {
    "services": ("services.csv",),
    "organizations": ("organizations.csv", "organization.csv"),
    "locations": ("locations.csv", "location.csv"),
    "service_at_locations": ("service_at_location.csv", "service_at_locations.csv"),
    "schedules": ("schedule.csv", "schedules.csv"),
    "addresses": ("address.csv", "addresses.csv"),
    "attributes": ("attribute.csv", "attributes.csv"),
    "taxonomy_terms": ("taxonomy_terms.csv", "taxonomy_term.csv"),
    "taxonomies": ("taxonomy.csv", "taxonomies.csv"),
}
"""Tables of the CSV package: the first name is written (the compiled schemas' ``path``), any
is read."""
COLUMNS = {
    "services": ("id", "organization_id", "name", "description", "url", "status"),
    "organizations": ("id", "name", "description", "website"),
    "locations": (
        "id",
        "location_type",
        "name",
        "description",
        "latitude",
        "longitude",
        "external_identifier",
        "external_identifier_type",
    ),
    "service_at_locations": ("id", "service_id", "location_id"),
    "schedules": (
        "id",
        "service_id",
        "service_at_location_id",
        "valid_from",
        "valid_to",
        "freq",
        "interval",
        "byday",
        "description",
        "opens_at",
        "closes_at",
        "notes",
    ),
    "addresses": (
        "id",
        "location_id",
        "address_1",
        "city",
        "state_province",
        "postal_code",
        "country",
        "address_type",
    ),
    "attributes": ("id", "link_id", "link_entity", "taxonomy_term_id", "link_type"),
    "taxonomy_terms": ("id", "name", "description", "taxonomy", "taxonomy_id", "term"),
    "taxonomies": ("id", "name", "description"),
}
"""Columns written to each CSV table."""


def _id(kind: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def _dict(value) -> dict:
    """Hostile input: anything that is not an object reads as an empty one."""
    return value if isinstance(value, dict) else {}


def _dicts(value) -> list[dict]:
    """Hostile input: the objects of a list; anything else reads as none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value) -> str:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    return str(value).strip()


# --- export -------------------------------------------------------------------------------


def _term(kind: str, key: str, label: str, description: str = "") -> dict:
    taxonomy, _ = TAXONOMIES[kind]
    return {
        "id": _id(f"term:{kind}", key),
        "name": label,
        "description": description or label,
        "taxonomy": taxonomy,
        "taxonomy_id": _id("taxonomy", taxonomy),
        "term": key,
    }


def _attribute(link_id: str, link_type: str, term: dict) -> dict:
    return {
        "id": _id("attribute", f"{link_id}:{term['id']}"),
        "link_id": link_id,
        "link_type": link_type,
        "taxonomy_term_id": term["id"],
        "taxonomy_term": term,
    }


def _url(website: str) -> str:
    text = _text(website)
    if not text or " " in text:
        return ""
    return text if text.lower().startswith(("http://", "https://")) else f"https://{text}"


def _schedules(row: Mapping, service_id: str) -> list[dict]:
    listed = _text(row["opening_hours"])
    items = hours.loads(row["schedules"])
    if not items:
        if not listed:
            return []
        return [
            {
                "id": _id("schedule", f"{service_id}:text"),
                "service_id": service_id,
                "description": listed,
                "notes": hours.UNKNOWN,
            }
        ]
    out = []
    for position, item in enumerate(items):
        schedule = {
            "id": _id("schedule", f"{service_id}:{position}"),
            "service_id": service_id,
            "freq": "WEEKLY",
            "interval": 1,
            "byday": item["byday"],
            "opens_at": item["opens_at"],
            "closes_at": item["closes_at"],
        }
        for key in ("valid_from", "valid_to"):
            if item[key]:
                schedule[key] = item[key]
        if listed:
            schedule["description"] = listed
        if item["note"]:
            schedule["notes"] = item["note"]
        out.append(schedule)
    return out


def _location(row: Mapping, service_id: str) -> dict:
    location_id = _id("location", row["id"])
    location = {
        "id": location_id,
        "location_type": "physical",
        "name": _text(row["name"]),
        "external_identifier": _text(row["id"]),
        "external_identifier_type": ID_TYPE,
    }
    if pd.notna(row["lat"]) and pd.notna(row["lon"]):
        location["latitude"] = float(row["lat"])
        location["longitude"] = float(row["lon"])
    note = _text(row["location_note"])
    if note:
        location["description"] = note
    hidden = _text(row["location_precision"]) == "ward_only"
    if not hidden and (_text(row["address"]) or _text(row["postcode"])):
        borough = _text(row["LAD25NM"])
        location["addresses"] = [
            {
                "id": _id("address", row["id"]),
                "location_id": location_id,
                "address_1": _text(row["address"]),
                "city": borough,
                "state_province": COUNTIES.get(borough, ""),
                "postal_code": _text(row["postcode"]),
                "country": "GB",
                "address_type": "physical",
            }
        ]
    precision = _text(row["location_precision"])
    if precision:
        term = _term("precision", precision, precision, TAXONOMIES["precision"][1])
        location["attributes"] = [_attribute(location_id, "location", term)]
    return location


def service(row: Mapping) -> dict:
    """One project row (as `export.project_table` gives it: masked) as a full ORUK service."""
    service_id = _id("service", row["id"])
    labels = project_types()
    kind = _text(row["type"]) or "other"
    label = labels.get(kind, {}).get("label", kind)
    organisation = _text(row["organisation"])
    sector = _text(row["sector"])
    organization = {
        "id": _id("organization", organisation or f"unnamed:{row['id']}"),
        "name": organisation or _text(row["name"]),
        "description": (sector or "Organisation recorded by Kindred Map")
        if organisation
        else UNNAMED,
    }
    description = label
    if _text(row["source"]):
        description += f". {SOURCE_PREFIX}{_text(row['source'])}"
    out = {
        "id": service_id,
        "organization_id": organization["id"],
        "name": _text(row["name"]),
        "description": description,
        "status": "active",
    }
    url = _url(row["website"])
    if url:
        out["url"] = url
    checked = _text(row["last_checked"])
    if checked:
        out["assured_date"] = checked[:10]
    out["schedules"] = _schedules(row, service_id)
    out["service_at_locations"] = [
        {
            "id": _id("service_at_location", row["id"]),
            "service_id": service_id,
            "location_id": _id("location", row["id"]),
            "location": _location(row, service_id),
        }
    ]
    out["organization"] = organization
    terms = [_term("type", kind, label, labels.get(kind, {}).get("description", ""))]
    if sector:
        terms.append(_term("sector", sector.casefold(), sector))
    if _text(row["synthetic"]).lower() == "true":
        terms.append(_term("flag", "synthetic", "Illustrative example, not a real project"))
    out["attributes"] = [_attribute(service_id, "service", term) for term in terms]
    return out


def services(table: pd.DataFrame) -> list[dict]:
    """Every row of the project table (`export.project_table`: masked, synthetic records already
    chosen) as an ORUK service, in id order."""
    return [service(row) for row in table.sort_values("id").to_dict("records")]


def oruk_facts(facts: Mapping) -> dict:
    """An export's facts (`export.about`) with the standard and the privacy note ORUK adds."""
    facts = dict(facts)
    facts["standard"] = (
        "Open Referral UK (UK profile of HSDS 3.0), schemas at OpenReferralUK/uk-profile "
        "ecdfabf (2024-10-10)"
    )
    facts["privacy"] = (
        "Home-run projects (location_precision ward_only) are at their ward's centre, with no "
        "address, flagged by the kindred_map_location_precision term ward_only."
    )
    return facts


def export_json(table: pd.DataFrame, facts: Mapping) -> bytes:
    """The project table (`export.project_table`) as one page of an ORUK ``/services``
    response, with an ``about`` member (``facts``: `export.about`). ORUK is handed its table
    and facts, so it needs nothing from `export` (which calls it for ``--format oruk``)."""
    contents = services(table)
    page = {
        "total_items": len(contents),
        "total_pages": 1,
        "page_number": 1,
        "size": len(contents),
        "first_page": True,
        "last_page": True,
        "empty": not contents,
        "contents": contents,
        "about": oruk_facts(facts),
    }
    return json.dumps(page, ensure_ascii=False, indent=1).encode("utf-8")


def tables(contents: list[dict]) -> dict[str, pd.DataFrame]:
    """Full services as the CSV package's tables (``COLUMNS``; one row per distinct id)."""
    rows: dict[str, dict[str, dict]] = {name: {} for name in COLUMNS}

    def add(name: str, record: dict, **extra) -> None:
        rows[name].setdefault(record["id"], {key: record.get(key, "") for key in COLUMNS[name]})
        rows[name][record["id"]].update(extra)

    def add_attributes(owner: dict, entity: str) -> None:
        for attribute in owner.get("attributes", []):
            term = attribute["taxonomy_term"]
            add("attributes", attribute, link_entity=entity)
            add("taxonomy_terms", term)
            name, description = next(
                (v for v in TAXONOMIES.values() if v[0] == term.get("taxonomy")),
                (term.get("taxonomy", ""), ""),
            )
            add("taxonomies", {"id": term["taxonomy_id"], "name": name, "description": description})

    for item in contents:
        add("services", item)
        add("organizations", item["organization"])
        add_attributes(item, "service")
        for schedule in item.get("schedules", []):
            add("schedules", schedule)
        for link in item.get("service_at_locations", []):
            add("service_at_locations", link)
            location = link["location"]
            add("locations", location)
            add_attributes(location, "location")
            for address in location.get("addresses", []):
                add("addresses", address)
    return {
        name: pd.DataFrame(list(found.values()), columns=list(COLUMNS[name]))
        for name, found in rows.items()
    }


def export_csv_zip(table: pd.DataFrame, facts: Mapping, generated: datetime) -> bytes:
    """The ORUK tabular package (one CSV per table, UTF-8) and ``about.txt``, as a .zip. Text
    a spreadsheet would run as a formula starts with ``'`` (`text.spreadsheet_safe`), as in
    every CSV the tool writes. ``table`` and ``facts`` as for `export_json`; ``generated``: the
    facts' time, also the members' time stamps."""
    facts = oruk_facts(facts)
    members = {}
    for name, frame in tables(services(table)).items():
        safe = spreadsheet_safe(frame)  # a cell like =HYPERLINK(...) opens as text
        members[CSV_TABLES[name][0]] = safe.to_csv(index=False, lineterminator="\n").encode()
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in facts.items()]
    members["about.txt"] = ("\n".join(lines) + "\n").encode("utf-8")
    buffer = io.BytesIO()
    stamp = generated.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name, payload in members.items():
            package.writestr(zipfile.ZipInfo(name, date_time=stamp), payload, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def export_bytes(table: pd.DataFrame, facts: Mapping, fmt: str, generated: datetime) -> bytes:
    """``oruk`` (JSON) or ``oruk-csv`` (zipped CSV package) of the project table (as for
    `export_json`)."""
    if fmt == "oruk":
        return export_json(table, facts)
    if fmt == "oruk-csv":
        return export_csv_zip(table, facts, generated)
    raise ValueError(f"unknown ORUK format {fmt!r}; choose oruk or oruk-csv")


# --- import -------------------------------------------------------------------------------


def is_oruk(path: Path) -> bool:
    """True for an ORUK JSON file, a .zip holding services.csv, or a package's services.csv."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.name.lower() == "services.csv":
        return True
    if suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as package:
                return any(Path(n).name.lower() == "services.csv" for n in package.namelist())
        except (zipfile.BadZipFile, OSError):
            return True  # no other reader takes a .zip: this one says what is wrong with it
    if suffix == ".json":
        try:
            if path.stat().st_size > ingest.MAX_FILE_BYTES:
                return False  # the general reader refuses it, naming the limit
            data = json.loads(path.read_bytes())
            return bool(_json_services(data)) or _looks_like_oruk(data)
        except (ValueError, OSError, RecursionError):
            return False
    return False


def _looks_like_oruk(data) -> bool:
    if isinstance(data, dict):
        return "contents" in data or "services" in data or "service_at_locations" in data
    return False


def _json_services(data) -> list[dict]:
    """The services in any of the JSON shapes ORUK serves (see the module docstring)."""
    if isinstance(data, dict) and isinstance(data.get("contents"), list):
        return [s for item in data["contents"] for s in _json_services(item)]
    if isinstance(data, list):
        return [s for item in data for s in _json_services(item)]
    if not isinstance(data, dict) or data.get("type") == "FeatureCollection":
        return []
    if isinstance(data.get("services"), list):  # an organization with its services
        organization = {k: v for k, v in data.items() if k != "services"}
        return [{"organization": organization} | s for s in data["services"] if isinstance(s, dict)]
    if isinstance(data.get("service"), dict):  # a service_at_location record
        link = {k: v for k, v in data.items() if k != "service"}
        return [data["service"] | {"service_at_locations": [link]}]
    if "name" in data and ("status" in data or "service_at_locations" in data):
        return [data]
    return []


TABLE_FILES = {spelling for spellings in CSV_TABLES.values() for spelling in spellings}


def _package_files(path: Path) -> dict[str, bytes]:
    """The CSV package's tables (only the names in CSV_TABLES): from the zip, or from the folder
    of a loose services.csv; refused past ingest.MAX_UNPACKED_BYTES before any is unpacked."""
    if path.suffix.lower() != ".zip":
        tables = [p for p in path.parent.iterdir() if p.name.lower() in TABLE_FILES]
        _check_unpacked(path, sum(p.stat().st_size for p in tables))
        return {p.name: p.read_bytes() for p in tables}
    with zipfile.ZipFile(path) as package:
        members = [m for m in package.infolist() if Path(m.filename).name.lower() in TABLE_FILES]
        _check_unpacked(path, sum(m.file_size for m in members))
        files, budget = {}, ingest.MAX_UNPACKED_BYTES
        for member in members:
            with package.open(member) as handle:
                files[member.filename] = handle.read(budget + 1)  # sizes in a zip can lie
            budget -= len(files[member.filename])
            _check_unpacked(path, ingest.MAX_UNPACKED_BYTES - budget)
    return files


def _check_unpacked(path: Path, size: int) -> None:
    if size > ingest.MAX_UNPACKED_BYTES:
        raise ValueError(
            f"{path.name} unpacks to {size / 1e6:,.0f} MB of CSV (from "
            f"{path.stat().st_size / 1e6:,.1f} MB); packages over "
            f"{ingest.MAX_UNPACKED_BYTES / 1e6:,.0f} MB unpacked are refused: split it"
        )


def _csv_rows(label: str, payload: bytes) -> list[dict]:
    """One table's rows as dicts by header, every row and cell within the readers' limits."""
    reader = csv.reader(io.StringIO(payload.decode("utf-8-sig"), newline=""))
    rows: list[list[str]] = []
    try:
        for number, cells in enumerate(reader, start=1):
            ingest.check_row(label, number, cells, len(rows))
            if cells:
                rows.append(cells)
    except csv.Error as error:
        raise ValueError(
            f"{label} row {len(rows) + 1}: cannot be read as CSV ({error}); a cell may hold at "
            f"most {ingest.MAX_CELL_CHARS:,} characters"
        ) from error
    header = rows[0] if rows else []
    return [dict(zip(header, cells, strict=False)) for cells in rows[1:]]


def _read_csv_tables(path: Path, files: Mapping[str, bytes]) -> dict[str, list[dict]]:
    found = {}
    lowered = {Path(name).name.lower(): payload for name, payload in files.items()}
    for name, spellings in CSV_TABLES.items():
        spelling = next((s for s in spellings if s in lowered), None)
        found[name] = (
            [] if spelling is None else _csv_rows(f"{path.name}: {spelling}", lowered[spelling])
        )
    return found


def _check_strings(label: str, data) -> None:
    """Refuse JSON holding a text longer than a cell may be (walked without recursion)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and len(item) > ingest.MAX_CELL_CHARS:
            raise ValueError(
                f"{label}: a value holds {len(item):,} characters; a value may hold at most "
                f"{ingest.MAX_CELL_CHARS:,}"
            )


def _services_from_tables(found: dict[str, list[dict]]) -> list[dict]:
    """Rebuild full services (nested like the JSON) from the CSV package's tables."""
    terms = {row.get("id", ""): row for row in found["taxonomy_terms"]}
    attributes: dict[str, list[dict]] = {}
    for row in found["attributes"]:
        term = terms.get(row.get("taxonomy_term_id", ""), {})
        attributes.setdefault(row.get("link_id", ""), []).append(row | {"taxonomy_term": term})
    addresses: dict[str, list[dict]] = {}
    for row in found["addresses"]:
        addresses.setdefault(row.get("location_id", ""), []).append(row)
    locations = {
        row.get("id", ""): row | {"addresses": addresses.get(row.get("id", ""), [])}
        for row in found["locations"]
    }
    for key, location in locations.items():
        location["attributes"] = attributes.get(key, [])
    organizations = {row.get("id", ""): row for row in found["organizations"]}
    links: dict[str, list[dict]] = {}
    for row in found["service_at_locations"]:
        location = locations.get(row.get("location_id", ""))
        links.setdefault(row.get("service_id", ""), []).append(row | {"location": location})
    schedules: dict[str, list[dict]] = {}
    by_link = {
        row.get("id", ""): row.get("service_id", "") for row in found["service_at_locations"]
    }
    for row in found["schedules"]:
        owner = row.get("service_id") or by_link.get(row.get("service_at_location_id", ""), "")
        schedules.setdefault(owner, []).append(row)
    return [
        row
        | {
            "organization": organizations.get(row.get("organization_id", ""), {}),
            "service_at_locations": links.get(row.get("id", ""), []),
            "schedules": schedules.get(row.get("id", ""), []),
            "attributes": attributes.get(row.get("id", ""), []),
        }
        for row in found["services"]
    ]


def _terms(owner: dict | None, kind: str, field: str = "term") -> list[str]:
    """The terms of one of our taxonomies attached to a service or location."""
    taxonomy = TAXONOMIES[kind][0]
    found = []
    for attribute in _dicts(_dict(owner).get("attributes")):
        term = _dict(attribute.get("taxonomy_term"))
        if term.get("taxonomy") == taxonomy:
            found.append(_text(term.get(field) or term.get("name")))
    return found


def _other_terms(owner: dict) -> list[str]:
    ours = {name for name, _ in TAXONOMIES.values()}
    terms = [_dict(a.get("taxonomy_term")) for a in _dicts(owner.get("attributes"))]
    return [_text(term.get("name")) for term in terms if term.get("taxonomy") not in ours]


def _rule_text(schedule: dict) -> str:
    """A schedule we cannot structure, in words from its own fields."""
    parts = [
        f"{key} {_text(schedule.get(key))}"
        for key in ("freq", "interval", "byday", "bymonthday", "opens_at", "closes_at")
        if _text(schedule.get(key))
    ]
    return " ".join(parts)


def _hours(schedules: list[dict]) -> tuple[str, str]:
    """(opening_hours text, schedules JSON) from a service's ORUK schedules."""
    described = [_text(s.get("description")) for s in schedules if _text(s.get("description"))]
    text = "; ".join(dict.fromkeys(described))
    structured = []
    for item in schedules:
        plain = _text(item.get("freq")).upper() in ("", "WEEKLY") and not _text(
            item.get("bymonthday")
        )
        interval = _text(item.get("interval"))
        plain &= interval in ("", "1", "1.0")
        try:
            if not plain:
                raise ValueError("not a plain weekly session")
            structured.append(
                hours.schedule(
                    item.get("byday"),
                    _text(item.get("opens_at"))[:5],
                    _text(item.get("closes_at"))[:5],
                    _text(item.get("valid_from")),
                    _text(item.get("valid_to")),
                    "" if _text(item.get("notes")) == hours.UNKNOWN else _text(item.get("notes")),
                )
            )
        except (ValueError, TypeError):
            rules = [_rule_text(s) for s in schedules if _rule_text(s)]
            return text or "; ".join(rules), ""
    return text, hours.dumps(structured)


def _row(item: dict, link: dict | None, many: bool, file: str) -> dict:
    link = _dict(link)
    location = _dict(link.get("location"))
    organization = _dict(item.get("organization"))
    address = next(iter(_dicts(location.get("addresses"))), {})
    ours = _text(location.get("external_identifier_type")) == ID_TYPE
    service_id = _text(item.get("id"))
    if ours and _text(location.get("external_identifier")):
        project_id = _text(location["external_identifier"])
    else:
        suffix = f"-{_text(location.get('id'))}" if many else ""
        project_id = f"oruk-{service_id}{suffix}" if service_id else ""
    description = _text(item.get("description"))
    if ours and SOURCE_PREFIX in description:
        source = description.split(SOURCE_PREFIX, 1)[1]
    else:
        source = f"Open Referral UK file {file}: service {service_id}"
        if _text(organization.get("name")):
            source += f" of {_text(organization['name'])}"
    if ours:
        street = _text(address.get("address_1"))
    else:
        parts = [address.get(k) for k in ("address_1", "address_2", "city")]
        street = ", ".join(dict.fromkeys(_text(p) for p in parts if _text(p)))
    kinds = _terms(item, "type") or _other_terms(item)
    opening, schedules = _hours(
        [
            s
            for s in _dicts(item.get("schedules"))
            if not _text(s.get("service_at_location_id"))
            or _text(s.get("service_at_location_id")) == _text(link.get("id"))
        ]
    )
    checked = _text(item.get("assured_date")) or _text(item.get("last_modified"))[:10]
    return {
        "id": project_id,
        "name": _text(item.get("name")),
        "type": kinds[0] if len(kinds) == 1 else "; ".join(kinds),
        "organisation": ""
        if ours and _text(organization.get("description")) == UNNAMED
        else _text(organization.get("name")),
        "sector": "; ".join(_terms(item, "sector", "name")),
        "address": street,
        "postcode": _text(address.get("postal_code")),
        "lat": _text(location.get("latitude")),
        "lon": _text(location.get("longitude")),
        "opening_hours": opening,
        "schedules": schedules,
        "website": _text(item.get("url")) or _text(organization.get("website")),
        "last_checked": checked,
        "location_precision": "; ".join(_terms(location, "precision")),
        "synthetic": "yes" if "synthetic" in _terms(item, "flag") else "no",
        "source": source,
    }


def read_table(path: Path) -> Table:
    """An ORUK file or package as an import table: one row per service at a location.

    Whatever is wrong with the file, the only exception is a ValueError naming it (limits as
    `kindred_map.ingest.read_table`: MAX_FILE_BYTES, MAX_UNPACKED_BYTES, MAX_ROWS,
    MAX_CELL_CHARS)."""
    path = Path(path)
    ingest.check_size(path)
    with ingest.errors_named(path):
        return _read(path)


def _read(path: Path) -> Table:
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_bytes())
        _check_strings(path.name, data)
        items = _json_services(data)
        kind = "Open Referral UK JSON"
    else:
        items = _services_from_tables(_read_csv_tables(path, _package_files(path)))
        kind = "Open Referral UK CSV package"
    if not items:
        raise ValueError(f"{path.name}: no Open Referral UK services found")
    rows = []
    for item in items:
        links = _dicts(item.get("service_at_locations"))
        for link in links or [None]:
            if len(rows) >= ingest.MAX_ROWS:
                raise ValueError(
                    f"{path.name} has more than {ingest.MAX_ROWS:,} services at locations: "
                    "split it into smaller files"
                )
            rows.append(_row(item, link, len(links) > 1, path.name))
    frame = pd.DataFrame(rows).fillna("")
    frame["row"] = range(1, len(frame) + 1)
    notes = [
        f"{kind}: {len(items)} service(s) read as {len(frame)} row(s), one per service at a "
        "location (a service with no location is one row, without a position), numbered in "
        "file order"
    ]
    return Table(frame=frame, kind="oruk", notes=notes)
