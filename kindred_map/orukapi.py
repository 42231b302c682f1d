"""Open Referral UK API answers: the UK profile's endpoints as pages, filters and look-ups over
the services `oruk.export_json` exports (so the API serves exactly the export's records).

Endpoints and parameters are those of the profile's ``openapi.json`` (UK profile of HSDS 3.0,
OpenReferralUK/uk-profile ecdfabf). Lists hold the one-to-one fields (the profile's compiled
``service_list`` and ``service_at_location_list`` schemas); ``/services/{id}`` and
``/service_at_locations/{id}`` the full records. Decisions, where the profile leaves a choice:

- Filters combine with AND. ``search``: every word (accents, case and punctuation ignored) is
  in the service's name, description, organisation, location name or taxonomy terms.
- ``day``, ``start_time``, ``end_time``: at least one structured weekly session in season
  today (``valid_from``/``valid_to``) is on that day (MO or Monday; ``weekend``: Saturday or
  Sunday), opens at or after ``start_time`` and closes at or before ``end_time`` (HH:MM), as
  the profile words them. Services whose hours are known only as text match none of them.
- ``minimum_age``/``maximum_age`` are checked (numbers 0-150) but narrow nothing: no project
  records an age range, so every service is open to all ages as far as the record says.
- ``postcode`` (a live or terminated postcode of the region): results nearest first, straight
  line in EPSG:27700 to each location as published (home-run projects at their ward's
  centre); with ``proximity`` (metres, up to 100 km) only those within it. No project records
  a service area, so a postcode alone narrows nothing.
- A parameter the profile defines for another endpoint, or a bad value, is a `BadRequest`;
  names the profile does not define are ignored.
- Pages: ``page`` from 1, ``per_page`` 1-1,000 (default 50); a page past the last is empty.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from kindred_map import export, geocode, hours, oruk, search

VERSION = "3.0"
PROFILE_URL = "https://github.com/OpenReferralUK/uk-profile"
SCHEMA_BASE = "https://raw.githubusercontent.com/openreferral/uk-profile/main/schema"
"""Where the profile's own openapi.json points its response schemas."""
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000
MAX_PROXIMITY_M = 100_000.0
MAX_SEARCH_CHARS = 200

SERVICE_LIST_FIELDS = (
    "id",
    "organization_id",
    "name",
    "description",
    "url",
    "email",
    "status",
    "fees",
    "accreditations",
    "minimum_age",
    "maximum_age",
    "assured_date",
    "assurer_email",
    "alert",
    "last_modified",
    "organization",
)
ORGANIZATION_LIST_FIELDS = (
    "id",
    "name",
    "description",
    "email",
    "website",
    "logo",
    "uri",
    "parent_organization_id",
)
LOCATION_LIST_FIELDS = oruk.COLUMNS["locations"]
"""The one-to-one fields of list answers (the profile's compiled *_list schemas; a location's
are the columns of the CSV package's locations table)."""

PARAMETERS = {
    "search": (
        "string",
        "Full text search: every word in the name, description, organisation, "
        "location name or taxonomy terms.",
    ),
    "page": ("integer", "Page number of paginated result, from 1."),
    "per_page": (
        "integer",
        f"Number of results in a page, 1-{MAX_PER_PAGE:,} (default {DEFAULT_PER_PAGE}).",
    ),
    "taxonomy_term_id": ("string", "Services with this taxonomy term."),
    "taxonomy_id": ("string", "Services with any term of this taxonomy."),
    "minimum_age": ("number", "Checked, narrows nothing: no service records an age range."),
    "maximum_age": ("number", "Checked, narrows nothing: no service records an age range."),
    "start_time": ("string", "HH:MM: a session on `day` (if given) opening at or after it."),
    "end_time": ("string", "HH:MM: a session on `day` (if given) closing at or before it."),
    "day": ("string", "MO..SU or Monday..Sunday (or weekend): a weekly session that day."),
    "postcode": ("string", "A postcode of the region: results nearest it first."),
    "proximity": ("string", "Metres (up to 100,000) from `postcode`: only results within it."),
}
"""Query parameters of the profile's openapi.json: type and what they do here."""
FILTERS = (
    "search",
    "page",
    "per_page",
    "taxonomy_term_id",
    "taxonomy_id",
    "minimum_age",
    "maximum_age",
    "start_time",
    "end_time",
    "day",
)
ENDPOINT_PARAMETERS = {
    "services": FILTERS,
    "service_at_locations": (*FILTERS, "postcode", "proximity"),
    "taxonomies": ("page", "per_page"),
    "taxonomy_terms": ("page", "per_page"),
}
PROFILE_ONLY = ("minimal", "full", "modified_after", "organization_id", "full_service", "format")
"""Parameters the profile's components define but none of its paths uses: refused here."""


class BadRequest(ValueError):
    """A query the API cannot answer: HTTP 400 with this message."""


class NotFound(LookupError):
    """No record with that id: HTTP 404 with this message."""


@dataclass(frozen=True)
class Catalogue:
    """One export's services, indexed for the API (built once per store version)."""

    services: tuple[dict, ...]
    about: dict
    service_index: dict[str, int]
    link_index: dict[str, int]
    taxonomies: tuple[dict, ...]
    terms: tuple[dict, ...]
    texts: tuple[str, ...]
    term_ids: tuple[frozenset, ...]
    taxonomy_ids: tuple[frozenset, ...]
    easting: np.ndarray
    northing: np.ndarray


def _filled(record: Mapping) -> dict:
    """A table row without its empty cells (the CSV tables write missing values as "")."""
    return {key: value for key, value in record.items() if value not in ("", None)}


def _attributes(service: dict) -> list[dict]:
    found = list(service.get("attributes", []))
    for link in service.get("service_at_locations", []):
        found += link.get("location", {}).get("attributes", [])
    return found


def catalogue(page: Mapping) -> Catalogue:
    """Index an ORUK export page (`oruk.export_json`, read back): services by id, their
    service-at-locations, taxonomies and terms, search text and published positions."""
    services = tuple(page["contents"])
    tables = oruk.tables(list(services))
    taxonomies = sorted(
        (_filled(row) for row in tables["taxonomies"].to_dict("records")),
        key=lambda row: row["name"],
    )
    terms = sorted(
        (_filled(row) for row in tables["taxonomy_terms"].to_dict("records")),
        key=lambda row: (row.get("taxonomy", ""), row["name"]),
    )
    texts, term_ids, taxonomy_ids, lon, lat = [], [], [], [], []
    for service in services:
        attributes = _attributes(service)
        location = service["service_at_locations"][0]["location"]
        words = [
            service.get("name"),
            service.get("description"),
            service.get("organization", {}).get("name"),
            location.get("name"),
            *(a["taxonomy_term"].get("name") for a in attributes),
        ]
        texts.append(search.folded(" ".join(str(w) for w in words if w)))
        term_ids.append(frozenset(a["taxonomy_term_id"] for a in attributes))
        taxonomy_ids.append(frozenset(a["taxonomy_term"].get("taxonomy_id") for a in attributes))
        lon.append(location.get("longitude", np.nan))
        lat.append(location.get("latitude", np.nan))
    easting, northing = geocode.to_bng(np.asarray(lon, float), np.asarray(lat, float))
    return Catalogue(
        services=services,
        about=dict(page.get("about", {})),
        service_index={service["id"]: n for n, service in enumerate(services)},
        link_index={
            link["id"]: n
            for n, service in enumerate(services)
            for link in service["service_at_locations"]
        },
        taxonomies=tuple(taxonomies),
        terms=tuple(terms),
        texts=tuple(texts),
        term_ids=tuple(term_ids),
        taxonomy_ids=tuple(taxonomy_ids),
        easting=easting,
        northing=northing,
    )


def exported_catalogue(projects, options: Mapping) -> Catalogue:
    """The catalogue of what `kindred-map export --format oruk` writes for these projects
    (``options``: `feed.Feed.export_options`)."""
    return catalogue(json.loads(export.export_bytes(projects, "oruk", **options)))


# --- parameters -------------------------------------------------------------------------


def _integer(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low:,} to {high:,}, got {value:,}")
    return value


def _number(name: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {text!r}") from None
    if not low <= value <= high:  # NaN fails too
        raise BadRequest(f"{name} must be from {low:,g} to {high:,g}, got {text}")
    return value


CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?|24:00(?::00)?")
"""A time of day, HH:MM (or HH:MM:SS), 00:00 to 24:00."""


def _clock(name: str, text: str) -> str:
    if not CLOCK.fullmatch(text.strip()):
        raise BadRequest(f"{name} must be a time HH:MM (24-hour, up to 24:00), got {text!r}")
    return text.strip()[:5]


def _days(text: str) -> tuple[str, ...]:
    try:
        window = hours.window(text)
    except ValueError:
        window = None
    if window is None or (window.start, window.end) != ("00:00", "24:00"):
        raise BadRequest(f"day must be a day (MO..SU, Monday..Sunday) or weekend, got {text!r}")
    return window.days


def parse(params: Mapping[str, list[str]], endpoint: str) -> dict:
    """The query of a list endpoint from its parameters (name -> every value given), checked:
    ``page``, ``per_page`` and the filters given. Raises `BadRequest` saying what is wrong."""
    allowed = ENDPOINT_PARAMETERS[endpoint]
    query = {"page": 1, "per_page": DEFAULT_PER_PAGE}
    for name, values in params.items():
        if name not in allowed:
            if name in PARAMETERS or name in PROFILE_ONLY:
                raise BadRequest(
                    f"{name} is not a parameter of /{endpoint}; it takes {', '.join(allowed)}"
                )
            continue  # not the profile's: ignored, as HTTP APIs do
        if len(values) != 1:
            raise BadRequest(f"give {name} once, not {len(values)} times")
        text = values[0]
        if name == "page":
            query[name] = _integer(name, text, 1, 10**9)
        elif name == "per_page":
            query[name] = _integer(name, text, 1, MAX_PER_PAGE)
        elif name in ("minimum_age", "maximum_age"):
            query[name] = _number(name, text, 0, 150)
        elif name in ("start_time", "end_time"):
            query[name] = _clock(name, text)
        elif name == "day":
            query[name] = _days(text)
        elif name == "proximity":
            query[name] = _number(name, text, 0, MAX_PROXIMITY_M)
        elif name == "postcode":
            try:
                query[name] = search.find_postcode(text)
            except ValueError as error:
                raise BadRequest(f"postcode: {error}") from None
        elif name == "search":
            if len(text) > MAX_SEARCH_CHARS:
                raise BadRequest(f"search takes at most {MAX_SEARCH_CHARS} characters")
            query[name] = search.folded(text).split()
        else:
            query[name] = text
    if "proximity" in query and "postcode" not in query:
        raise BadRequest("proximity needs a postcode: metres from that postcode")
    return query


# --- selecting --------------------------------------------------------------------------


def _in_session(service: dict, query: Mapping, today: date) -> bool:
    """A structured weekly session in season today meets day, start_time and end_time."""
    day = today.isoformat()
    for item in service.get("schedules", []):
        if "byday" not in item or "opens_at" not in item:
            continue
        if item.get("valid_from", day) > day or item.get("valid_to", day) < day:
            continue
        if "day" in query and not set(item["byday"].split(",")) & set(query["day"]):
            continue
        if "start_time" in query and item["opens_at"] < query["start_time"]:
            continue
        if "end_time" in query and item["closes_at"] > query["end_time"]:
            continue
        return True
    return False


def select(found: Catalogue, query: Mapping, today: date | None = None) -> list[int]:
    """Positions of the services that match, in the export's order (nearest first with a
    postcode)."""
    today = today or date.today()
    timed = any(name in query for name in ("day", "start_time", "end_time"))
    kept = []
    for n, service in enumerate(found.services):
        if "search" in query and not all(word in found.texts[n] for word in query["search"]):
            continue
        if "taxonomy_term_id" in query and query["taxonomy_term_id"] not in found.term_ids[n]:
            continue
        if "taxonomy_id" in query and query["taxonomy_id"] not in found.taxonomy_ids[n]:
            continue
        if timed and not _in_session(service, query, today):
            continue
        kept.append(n)
    if "postcode" not in query:
        return kept
    point = query["postcode"]
    chosen = np.asarray(kept, dtype=int)
    metres = np.hypot(
        found.easting[chosen] - point["easting"], found.northing[chosen] - point["northing"]
    )
    located = ~np.isnan(metres)
    if "proximity" in query:
        located &= metres <= query["proximity"]
    order = np.argsort(metres[located], kind="stable")
    return [int(n) for n in chosen[located][order]]


def paged(items: list, page: int, per_page: int, shape=None) -> dict:
    """One page of ``items`` with the profile's paging members; ``shape`` makes each item of
    the page its answer (only the page's are made)."""
    total = len(items)
    pages = math.ceil(total / per_page)
    contents = items[(page - 1) * per_page : page * per_page]
    if shape is not None:
        contents = [shape(item) for item in contents]
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": page,
        "size": len(contents),
        "first_page": page == 1,
        "last_page": page >= pages,
        "empty": not contents,
        "contents": contents,
    }


# --- answers ----------------------------------------------------------------------------


def _fields(record: Mapping, names) -> dict:
    return {name: record[name] for name in names if name in record}


def service_list_item(service: Mapping) -> dict:
    """A service with its one-to-one fields (and its organisation's)."""
    item = _fields(service, SERVICE_LIST_FIELDS)
    if "organization" in item:
        item["organization"] = _fields(item["organization"], ORGANIZATION_LIST_FIELDS)
    return item


def service_at_location(service: Mapping, link: Mapping, full: bool) -> dict:
    """A service at one location: full (the location with its addresses and attributes, the
    service with its schedules and terms) or its list form (one-to-one fields only)."""
    if full:
        location = dict(link["location"])
        nested = {k: v for k, v in service.items() if k != "service_at_locations"}
    else:
        location = _fields(link["location"], LOCATION_LIST_FIELDS)
        nested = service_list_item(service)
    return {
        "id": link["id"],
        "service_id": link["service_id"],
        "location_id": link["location_id"],
        "location": location,
        "service": nested,
    }


def services_page(found: Catalogue, query: Mapping) -> dict:
    """``/services``: a page of services (list form)."""
    chosen = select(found, query)
    return paged(
        chosen, query["page"], query["per_page"], lambda n: service_list_item(found.services[n])
    )


def service_at_locations_page(found: Catalogue, query: Mapping) -> dict:
    """``/service_at_locations``: a page of services at their locations (list form)."""
    chosen = [
        (found.services[n], link)
        for n in select(found, query)
        for link in found.services[n]["service_at_locations"]
    ]
    return paged(
        chosen, query["page"], query["per_page"], lambda pair: service_at_location(*pair, False)
    )


def full_service(found: Catalogue, service_id: str) -> dict:
    """``/services/{id}``: one service with everything (raises `NotFound`)."""
    if service_id not in found.service_index:
        raise NotFound(f"no service {service_id!r}")
    return found.services[found.service_index[service_id]]


def full_service_at_location(found: Catalogue, link_id: str) -> dict:
    """``/service_at_locations/{id}``: one service at its location, with everything."""
    if link_id not in found.link_index:
        raise NotFound(f"no service_at_location {link_id!r}")
    service = found.services[found.link_index[link_id]]
    link = next(item for item in service["service_at_locations"] if item["id"] == link_id)
    return service_at_location(service, link, full=True)


def taxonomies_page(found: Catalogue, query: Mapping) -> dict:
    """``/taxonomies``: the taxonomies the services use."""
    return paged(list(found.taxonomies), query["page"], query["per_page"])


def taxonomy(found: Catalogue, taxonomy_id: str) -> dict:
    """``/taxonomies/{id}``: a taxonomy with its terms in use."""
    for item in found.taxonomies:
        if item["id"] == taxonomy_id:
            terms = [term for term in found.terms if term.get("taxonomy_id") == taxonomy_id]
            return item | {"taxonomy_terms": terms}
    raise NotFound(f"no taxonomy {taxonomy_id!r}")


def taxonomy_terms_page(found: Catalogue, query: Mapping) -> dict:
    """``/taxonomy_terms``: the terms the services use."""
    return paged(list(found.terms), query["page"], query["per_page"])


def taxonomy_term(found: Catalogue, term_id: str) -> dict:
    """``/taxonomy_terms/{id}``: one term."""
    for term in found.terms:
        if term["id"] == term_id:
            return term
    raise NotFound(f"no taxonomy term {term_id!r}")


def root(found: Catalogue, base_url: str) -> dict:
    """``/``: the HSDS version, the profile, this API's OpenAPI document and, in ``about``,
    the export's owner, contact, licences and attribution."""
    return {
        "version": VERSION,
        "profile": PROFILE_URL,
        "openapi_url": f"{base_url}/oruk/openapi.json",
        "about": found.about,
    }


def _parameter(name: str) -> dict:
    kind, text = PARAMETERS[name]
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": text,
        "schema": {"type": kind},
    }


def _listing(summary: str, endpoint: str, schema: str) -> dict:
    page = {
        "allOf": [{"$ref": "#/components/schemas/Page"}],
        "properties": {"contents": {"type": "array", "items": {"$ref": f"{SCHEMA_BASE}/{schema}"}}},
    }
    return {
        "get": {
            "summary": summary,
            "parameters": [_parameter(name) for name in ENDPOINT_PARAMETERS[endpoint]],
            "responses": {
                "200": {"description": summary, "content": {"application/json": {"schema": page}}},
                "400": {"description": 'A bad parameter: {"message": ...}'},
            },
        }
    }


def _one(summary: str, schema: str) -> dict:
    return {
        "parameters": [
            {"in": "path", "name": "id", "required": True, "schema": {"type": "string"}}
        ],
        "get": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": summary,
                    "content": {
                        "application/json": {"schema": {"$ref": f"{SCHEMA_BASE}/{schema}"}}
                    },
                },
                "404": {"description": 'No record with that id: {"message": ...}'},
            },
        },
    }


def openapi(base_url: str, licence: str) -> dict:
    """This API's OpenAPI 3.0 document: the profile's paths and parameters, its schemas."""
    page_fields = {
        "total_items": "integer",
        "total_pages": "integer",
        "page_number": "integer",
        "size": "integer",
        "first_page": "boolean",
        "last_page": "boolean",
        "empty": "boolean",
    }
    return {
        "openapi": "3.0.0",
        "info": {
            "title": "Kindred Map: Open Referral UK",
            "version": VERSION,
            "description": "Community social action projects of the Liverpool City Region as "
            "Open Referral UK services (UK profile of HSDS 3.0). Read-only, no key.",
            "license": {"name": licence},
        },
        "servers": [{"url": f"{base_url}/oruk"}],
        "paths": {
            "/": {
                "get": {
                    "summary": "About this API",
                    "responses": {
                        "200": {"description": "version, profile, openapi_url, about (licences)"}
                    },
                }
            },
            "/services": _listing(
                "Services (one-to-one fields)", "services", "compiled/service_list.json"
            ),
            "/services/{id}": _one("A fully nested service", "compiled/service.json"),
            "/service_at_locations": _listing(
                "Services at locations (one-to-one fields)",
                "service_at_locations",
                "compiled/service_at_location_list.json",
            ),
            "/service_at_locations/{id}": _one(
                "A fully nested service at a location", "compiled/service_at_location.json"
            ),
            "/taxonomies": _listing("Taxonomies in use", "taxonomies", "taxonomy.json"),
            "/taxonomies/{id}": _one("A taxonomy with its terms", "taxonomy.json"),
            "/taxonomy_terms": _listing(
                "Taxonomy terms in use", "taxonomy_terms", "taxonomy_term.json"
            ),
            "/taxonomy_terms/{id}": _one("A taxonomy term", "taxonomy_term.json"),
        },
        "components": {
            "schemas": {
                "Page": {
                    "type": "object",
                    "properties": {name: {"type": kind} for name, kind in page_fields.items()},
                }
            }
        },
    }
