"""The HTTP service (`kindred-map api`), started as a process on each backend: Open Referral UK
answers validate against the UK profile and page through the store's projects; GDAL reads the
OGC API - Features collections; a home's position, postcode and address are in no answer; bad
requests get JSON errors; an edit shows in the next request."""

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import Request, urlopen

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from jsonschema import Draft202012Validator, FormatChecker
from pygeoapi.openapi import validate_openapi_document
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kindred_map import cli, export, feed, importing, orukapi, search, store, upload
from kindred_map import stewardship as st
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT
from kindred_map.storage import postgis

SCHEMAS = PROJECT_ROOT.parent / "shared" / "standards" / "open_referral_uk" / "schema"
OGRINFO = shutil.which("ogrinfo")
OGR2OGR = shutil.which("ogr2ogr")
HOME = (
    "id,name,type,address,postcode,location_precision,opening_hours,source\n"
    "home-001,Kitchen Table Club at 14 Acacia Avenue,pantry,14 Acacia Avenue,PR8 2FF,ward_only,"
    '"Tuesdays 10:00-12:00, at 14 Acacia Avenue PR8 2FF",Phoned in: 14 Acacia Avenue PR8 2FF\n'
)
"""A home-run project whose name, hours and source repeat its address and postcode."""
LEVEL_COUNTS = {"ward_summary": 221, "deanery_summary": 14, "borough_summary": 9}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(location, folder: Path, *options: str):
    """`kindred-map api` on a free port of 127.0.0.1 until the block ends; its base URL."""
    port = _free_port()
    log = folder / f"api-{port}.log"
    command = [sys.executable, "-m", "kindred_map.cli", "api", "--store", str(location)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options], stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"kindred-map api stopped:\n{log.read_text()}")
            try:
                urlopen(f"{base}/", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"kindred-map api did not answer:\n{log.read_text()}")
                time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert "Traceback" not in log.read_text(), log.read_text()


def fetch(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """Status, headers (lower-case names) and body of one request."""
    try:
        with urlopen(Request(url, method=method), timeout=120) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def get_json(url: str):
    status, headers, body = fetch(url)
    assert status == 200, (url, body[:500])
    assert headers["access-control-allow-origin"] == "*"
    return json.loads(body)


@dataclass
class Served:
    base: str
    location: object
    home: dict
    """The home-run project as stored: its true lat/lon, postcode, address."""
    answers: list
    """(url, text) of every answer the tests read: searched for the home's secrets at the end."""

    def get(self, path: str, **params):
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        status, headers, body = fetch(url)
        assert status == 200, (url, body[:500])
        assert headers["access-control-allow-origin"] == "*"
        self.answers.append((url, body.decode("utf-8")))
        return json.loads(body)


def _store_with_home(location, folder: Path) -> None:
    """The sample store plus one home-run project, in a GeoPackage or PostGIS store."""
    sample = folder / "sample.gpkg"
    shutil.copy(DEFAULT_STORE, sample)
    homes = folder / "homes.csv"
    homes.write_text(HOME, encoding="utf-8")
    importing.import_file(homes, sample)
    if sample != location:
        store.copy(sample, location)


@pytest.fixture(scope="module")
def pg_database(pg_server):
    """A PostGIS store of this module's own (not the template the `target` stores clone:
    that one is named km_test_api_PID, `pg_template`, which this name once was too, so the
    served API held the template open)."""
    name = f"km_api_served_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = urlsplit(pg_server)._replace(path=f"/{name}").geturl()
    postgis.migrate(dsn)
    yield dsn
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module", params=["gpkg", "postgis"])
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    location = folder / "sample.gpkg"
    if request.param == "postgis":
        location = request.getfixturevalue("pg_database")
    _store_with_home(location, folder)
    stored = store.read_projects(location).set_index("id")
    home = stored.loc["homes:home-001"]
    assert home["location_precision"] == "ward_only"
    with serving(location, folder) as base:
        yield Served(base, location, home.to_dict(), [])


def _real(served: Served):
    return export.real_projects(store.read_projects(served.location))


# --- Open Referral UK ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas() -> Path:
    if not SCHEMAS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Open Referral UK schemas missing at {SCHEMAS} (../shared)")
        pytest.skip(f"Open Referral UK schemas not found at {SCHEMAS}")
    return SCHEMAS


def _validator(schemas: Path, name: str) -> Draft202012Validator:
    """A validator of the profile's schema ``name`` (its references to the other schema files
    resolved from the same folder)."""
    found = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in schemas.glob("*.json")
        if path.name != "openapi.json"
    }
    registry = Registry().with_resources(
        (key, Resource.from_contents(value, default_specification=DRAFT202012))
        for key, value in found.items()
    )
    schema = json.loads((schemas / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def _errors(validator: Draft202012Validator, instance) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(instance)][:5]


PAGE_KEYS = {"total_items", "total_pages", "page_number", "size", "first_page", "last_page"}


def test_oruk_answers_validate_against_the_uk_profile(served, schemas):
    root = served.get("/oruk/")
    assert root["version"] == "3.0" and root["openapi_url"] == f"{served.base}/oruk/openapi.json"
    assert root["about"]["pack_licence"] and root["about"]["attribution"]
    assert "notice" not in root["about"]  # illustrative records are left out
    assert served.get("/oruk") == root  # no redirect (it would lose a proxy's path prefix)
    openapi = served.get("/oruk/openapi.json")
    profile = json.loads((schemas / "openapi.json").read_text(encoding="utf-8"))
    assert set(openapi["paths"]) == set(profile["paths"])
    for path, item in profile["paths"].items():
        named = {p["$ref"].rsplit("/", 1)[1] for p in item["get"].get("parameters", [])}
        assert named == {p["name"] for p in openapi["paths"][path]["get"].get("parameters", [])}

    listed = served.get("/oruk/services", per_page=1000)
    assert set(listed) >= PAGE_KEYS and listed["total_items"] == len(listed["contents"])
    service_list, service = (
        _validator(schemas, "compiled/service_list"),
        _validator(schemas, "compiled/service"),
    )
    for item in listed["contents"]:
        assert _errors(service_list, item) == [], item["name"]
        assert "service_at_locations" not in item  # lists hold one-to-one fields only
    for item in listed["contents"]:
        full = served.get(f"/oruk/services/{item['id']}")
        assert _errors(service, full) == [], item["name"]
        assert full["name"] == item["name"] and full["service_at_locations"]

    near = served.get("/oruk/service_at_locations", postcode="L1 8JQ", proximity="1000")
    assert near["total_items"] > 0
    at_list, at_full = (
        _validator(schemas, "compiled/service_at_location_list"),
        _validator(schemas, "compiled/service_at_location"),
    )
    for item in near["contents"]:
        assert _errors(at_list, item) == []
        full = served.get(f"/oruk/service_at_locations/{item['id']}")
        assert _errors(at_full, full) == [] and full["service"]["id"] == item["service_id"]

    taxonomy, term = _validator(schemas, "taxonomy"), _validator(schemas, "taxonomy_term")
    for item in served.get("/oruk/taxonomies")["contents"]:
        assert _errors(taxonomy, item) == []
        assert _errors(taxonomy, served.get(f"/oruk/taxonomies/{item['id']}")) == []
    terms = served.get("/oruk/taxonomy_terms", per_page=1000)["contents"]
    assert {t["term"] for t in terms} >= {"food_bank", "ward_only"}
    for item in terms:
        assert _errors(term, served.get(f"/oruk/taxonomy_terms/{item['id']}")) == []


def test_oruk_pages_add_up_to_the_store(served):
    projects = _real(served)
    every = served.get("/oruk/services", per_page=1000)
    assert every["total_items"] == len(projects) == len(every["contents"])
    seen = []
    for number in range(1, math.ceil(len(projects) / 100) + 1):
        page = served.get("/oruk/services", page=number, per_page=100)
        assert page["total_items"] == len(projects)
        assert page["total_pages"] == math.ceil(len(projects) / 100)
        assert page["page_number"] == number and page["size"] == len(page["contents"])
        assert page["first_page"] == (number == 1)
        assert page["last_page"] == (number == page["total_pages"])
        seen += [item["id"] for item in page["contents"]]
    assert seen == [item["id"] for item in every["contents"]]  # no repeats, none missing
    past = served.get("/oruk/services", page=99, per_page=100)
    assert past["contents"] == [] and past["empty"] and past["total_items"] == len(projects)

    # Within 1 km of L1 8JQ, nearest first: counted again from the exported positions.
    point = search.find_postcode("L1 8JQ")
    table = export.project_table(projects)
    metres = search.distances_m(table, point)
    near = served.get(
        "/oruk/service_at_locations", postcode="L1 8JQ", proximity="1000", per_page=1000
    )
    assert near["total_items"] == int(np.sum(metres <= 1000)) > 0
    names = [item["service"]["name"] for item in near["contents"]]
    expected = table.assign(m=metres)[metres <= 1000].sort_values("m", kind="stable")
    assert names[:3] == list(expected["name"])[:3]

    # Filters: a taxonomy term, a search, a day.
    food_banks = int((table["type"] == "food_bank").sum())
    terms = served.get("/oruk/taxonomy_terms", per_page=1000)["contents"]
    food = next(t for t in terms if t["term"] == "food_bank")
    assert served.get("/oruk/services", taxonomy_term_id=food["id"])["total_items"] == food_banks
    searched = served.get("/oruk/services", search="FOOD  bank", per_page=1000)["contents"]
    assert len(searched) >= food_banks
    assert served.get("/oruk/services", search="no such words anywhere")["total_items"] == 0
    mondays = served.get("/oruk/services", day="Monday", per_page=1000)["contents"]
    for item in mondays[:20]:
        sessions = served.get(f"/oruk/services/{item['id']}")["schedules"]
        assert any("MO" in s.get("byday", "") for s in sessions), item["name"]
    late = served.get("/oruk/services", day="MO", start_time="12:00", end_time="16:00")
    assert 0 < late["total_items"] < len(mondays)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/oruk/services?page=0", 400, "page must be from 1"),
        ("/oruk/services?per_page=5000", 400, "per_page must be from 1"),
        ("/oruk/services?per_page=ten", 400, "whole number"),
        ("/oruk/services?page=1&page=2", 400, "give page once"),
        ("/oruk/services?day=Funday", 400, "day must be a day"),
        ("/oruk/services?start_time=25:00", 400, "start_time must be a time"),
        ("/oruk/services?minimum_age=old", 400, "minimum_age must be a number"),
        ("/oruk/services?postcode=L1%208JQ", 400, "not a parameter of /services"),
        ("/oruk/service_at_locations?proximity=100", 400, "proximity needs a postcode"),
        ("/oruk/service_at_locations?postcode=ZZ1%201ZZ", 400, "postcode:"),
        ("/oruk/service_at_locations?postcode=L1%208JQ&proximity=-5", 400, "proximity must"),
        ("/oruk/services/no-such-id", 404, "no service"),
        ("/oruk/service_at_locations/no-such-id", 404, "no service_at_location"),
        ("/oruk/taxonomy_terms/no-such-id", 404, "no taxonomy term"),
        ("/oruk/nowhere", 404, "Not Found"),
        ("/ogc/nowhere", 404, "Not Found"),
        ("/ogc/collections/projects/items?f=html", 400, "f must be json"),
        ("/ogc/collections/ward_summary/items?population=many", 400, "is an integer"),
        ("/ogc/collections/projects/items?bbox=1,2,3", 400, "bbox"),
        ("/ogc/collections/ward_summary/items/E99999999", 404, "no item"),
    ],
)
def test_a_bad_request_gets_a_json_message(served, path, status, words):
    code, headers, body = fetch(served.base + path)
    assert code == status, body
    assert headers["content-type"].startswith("application/json")
    assert headers["access-control-allow-origin"] == "*"
    assert words in body.decode() and "Traceback" not in body.decode()
    served.answers.append((path, body.decode()))


def test_only_reading_is_allowed(served):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/oruk/services", "/ogc/collections/projects/items"):
            code, headers, body = fetch(served.base + path, method)
            assert code == 405 and headers["allow"] == "GET, HEAD, OPTIONS", (method, path)
            assert json.loads(body)["message"] == "read-only service: GET only"
    code, headers, _ = fetch(served.base + "/oruk/services", "OPTIONS")
    assert code == 204 and headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"


# --- OGC API - Features -------------------------------------------------------------------


def _gdal(*command: str) -> str:
    if OGRINFO is None or OGR2OGR is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ogrinfo and ogr2ogr (gdal-bin) are required when CI=true")
        pytest.skip("GDAL not installed (apt-get install gdal-bin)")
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _read_collection(served: Served, name: str, folder: Path, *options: str) -> dict:
    """Every feature of a collection, as GDAL's OAPIF driver (QGIS's client) reads them."""
    out = folder / f"{name}.geojson"
    out.unlink(missing_ok=True)
    _gdal(OGR2OGR or "", "-f", "GeoJSON", str(out), f"OAPIF:{served.base}/ogc/", name, *options)
    text = out.read_text(encoding="utf-8")
    served.answers.append((f"ogr2ogr {name} {options}", text))
    return json.loads(text)


def test_gdal_reads_every_collection_with_the_store_counts(served, tmp_path):
    listing = _gdal(OGRINFO or "", "-ro", "-so", f"OAPIF:{served.base}/ogc/")
    served.answers.append(("ogrinfo", listing))
    found = dict(re.findall(r"^\d+: (\w+) \(title: [^)]*\) \(([\w ]+)\)$", listing, re.M))
    assert found == {
        "projects": "Point",
        "ward_summary": "Multi Polygon",
        "deanery_summary": "Multi Polygon",
        "borough_summary": "Multi Polygon",
    }
    projects = _real(served)
    read = _read_collection(served, "projects", tmp_path)
    assert len(read["features"]) == len(projects)
    assert {f["properties"]["id"] for f in read["features"]} == set(
        export.project_table(projects)["id"]
    )
    for name, count in LEVEL_COUNTS.items():
        areas = _read_collection(served, name, tmp_path)["features"]
        assert len(areas) == count
        # The pack's figures: every real placed project counted once per level.
        level = name.removesuffix("_summary")
        summary = export.area_summary(projects, level)
        assert sum(a["properties"]["projects"] for a in areas) == int(summary["projects"].sum())
        assert {a["properties"]["boundary_vintage"] for a in areas} == set(
            summary["boundary_vintage"]
        )

    # bbox through GDAL (-spat), counted again from the exported positions.
    box = (-3.0, 53.38, -2.9, 53.43)
    table = export.project_table(projects)
    inside = table.cx[box[0] : box[2], box[1] : box[3]]
    spat = _read_collection(served, "projects", tmp_path, "-spat", *map(str, box))
    assert len(spat["features"]) == len(inside) > 0


def test_ogc_documents_and_queries(served):
    landing = served.get("/ogc/")
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conformance = served.get("/ogc/conformance")["conformsTo"]
    for part in ("core", "geojson", "oas30"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{part}" in conformance
    collections = served.get("/ogc/collections")["collections"]
    assert {c["id"] for c in collections} == {"projects", *LEVEL_COUNTS}
    for collection in collections:
        assert collection["extent"]["spatial"]["bbox"] and collection["links"]
        assert "items" in {link["rel"] for link in collection["links"]}
    wards = next(c for c in collections if c["id"] == "ward_summary")
    assert "May 2024" in wards["description"]  # the boundaries' vintage
    for document in ("/ogc/openapi", "/oruk/openapi.json"):  # both valid OpenAPI 3.0
        assert validate_openapi_document(served.get(document))
    for collection in collections:
        one = served.get(f"/ogc/collections/{collection['id']}")
        assert one["id"] == collection["id"] and one["itemType"] == "feature"
        assert "self" in {link["rel"] for link in one["links"]}

    # Paging, a property filter and sorting, checked against the store.
    table = export.project_table(_real(served))
    food = served.get("/ogc/collections/projects/items", type="food_bank", limit=7, offset=7)
    assert food["numberMatched"] == int((table["type"] == "food_bank").sum())
    assert food["numberReturned"] == len(food["features"]) == min(7, food["numberMatched"] - 7)
    assert {f["properties"]["type"] for f in food["features"]} == {"food_bank"}
    assert "next" in {link["rel"] for link in food["links"]} or food["numberMatched"] <= 14
    top = served.get("/ogc/collections/ward_summary/items", sortby="-projects", limit=3)
    counts = [f["properties"]["projects"] for f in top["features"]]
    assert counts == sorted(counts, reverse=True) and top["numberMatched"] == 221
    liverpool = served.get("/ogc/collections/ward_summary/items", LAD24NM="Liverpool", limit=100)
    assert liverpool["numberMatched"] == 64


def test_a_home_is_in_no_answer_but_at_its_ward_centre(served, tmp_path):
    """Reads every kind of answer (and, after the module's other tests, searches theirs too)."""
    home = served.home
    service_id = None
    listed = served.get("/oruk/service_at_locations", per_page=1000)["contents"]
    for item in listed:
        if item["location"].get("external_identifier") == "homes:home-001":
            service_id, link_id = item["service_id"], item["id"]
    assert service_id, "the home-run project is published (at its ward's centre)"
    served.get(f"/oruk/services/{service_id}")
    served.get(f"/oruk/service_at_locations/{link_id}")
    assert served.get("/oruk/services", search="Acacia")["total_items"] == 0
    postcode = quote(str(home["postcode"]))
    served.get(f"/oruk/service_at_locations?postcode={postcode}&proximity=100")
    for path in ("/", "/oruk/", "/oruk/taxonomy_terms", "/ogc/", "/ogc/collections"):
        served.get(path)
    for name in ("projects", *LEVEL_COUNTS):
        served.get(f"/ogc/collections/{name}")
        served.get(f"/ogc/collections/{name}/items", limit=10000)
        served.get(f"/ogc/collections/{name}/queryables")
    item = served.get(f"/ogc/collections/projects/items/{quote('homes:home-001')}")
    assert item["properties"]["location_precision"] == "ward_only"
    assert item["properties"]["address"] is None
    _read_collection(served, "projects", tmp_path)
    words = ["Acacia", str(home["postcode"]), str(home["postcode"]).replace(" ", "")]
    true = (home["lon"], home["lat"])
    assert len(served.answers) >= 20
    for url, text in served.answers:
        for word in words:
            assert word not in text, (word, url)
        # The position, to about a metre (a polygon may pass near it: not a leak of the point).
        assert not (f"{true[0]:.5f}" in text and f"{true[1]:.5f}" in text), url
        try:
            points = list(_points(json.loads(text)))
        except ValueError:
            continue
        for lon, lat in points:
            assert abs(lon - true[0]) > 2e-4 or abs(lat - true[1]) > 2e-4, (lon, lat, url)


def _points(value):
    """Every point a JSON answer gives: GeoJSON points, latitude/longitude and lat/lon pairs."""
    if isinstance(value, dict):
        if value.get("type") == "Point" and isinstance(value.get("coordinates"), list):
            yield tuple(value["coordinates"][:2])
        for lon, lat in (("longitude", "latitude"), ("lon", "lat")):
            if isinstance(value.get(lon), float) and isinstance(value.get(lat), float):
                yield value[lon], value[lat]
        for item in value.values():
            yield from _points(item)
    elif isinstance(value, list):
        for item in value:
            yield from _points(item)


# --- caching by the store's version -------------------------------------------------------


def test_an_edit_shows_in_the_next_request(target, tmp_path):
    rows = "id,name,type,postcode\nhub-1,Old Name Hub,pantry,L1 8JQ\nhub-2,Other Hub,sto,L8 7SQ\n"
    (tmp_path / "hubs.csv").write_text(rows, encoding="utf-8")
    importing.import_file(tmp_path / "hubs.csv", target)
    with serving(target, tmp_path) as base:
        before = get_json(f"{base}/oruk/services")
        assert {item["name"] for item in before["contents"]} == {"Old Name Hub", "Other Hub"}
        assert get_json(f"{base}/ogc/collections/projects/items/hubs:hub-1")["properties"][
            "name"
        ] == ("Old Name Hub")
        st.edit_project(target, "hubs:hub-1", {"name": "New Name Hub"}, 1, "tester")
        after = get_json(f"{base}/oruk/services")
        assert {item["name"] for item in after["contents"]} == {"New Name Hub", "Other Hub"}
        feature = get_json(f"{base}/ogc/collections/projects/items/hubs:hub-1")
        assert feature["properties"]["name"] == "New Name Hub"
        st.retire_project(target, "hubs:hub-2", "closed", "tester")
        assert get_json(f"{base}/oruk/services")["total_items"] == 1
        assert (
            get_json(f"{base}/ogc/collections/ward_summary/items?limit=500&projects=1")[
                "numberMatched"
            ]
            == 1
        )


def test_a_burst_checks_the_version_once_a_round_and_reads_the_store_once(
    target, tmp_path, monkeypatch
):
    rows = "id,name,type,postcode\nhub-1,Old Name Hub,pantry,L1 8JQ\n"
    (tmp_path / "hubs.csv").write_text(rows, encoding="utf-8")
    importing.import_file(tmp_path / "hubs.csv", target)
    source = feed.Feed(target)
    real = upload.store_signature
    started = threading.Event()
    release = threading.Event()

    def slow(location):
        found = real(location)
        started.set()
        release.wait(timeout=30)
        return found

    monkeypatch.setattr(upload, "store_signature", slow)
    with ThreadPoolExecutor(20) as pool:
        first = pool.submit(source.snapshot)
        assert started.wait(timeout=30)
        # A change committed while that check runs: requests arriving now must see it.
        st.edit_project(target, "hubs:hub-1", {"name": "New Name Hub"}, 1, "tester")
        burst = [pool.submit(source.snapshot) for _ in range(19)]
        time.sleep(1)
        release.set()
        snapshots = [future.result(timeout=60) for future in burst]
        first.result(timeout=60)
    monkeypatch.undo()
    # One check for the first request, one shared by the 19 that came while it ran (a third
    # if a thread of the pool was slow to start), not one each.
    assert source.checks <= 3 and source.reads == 2
    assert len({id(s) for s in snapshots}) == 1
    assert snapshots[0].version == upload.store_signature(target)
    assert list(snapshots[0].projects["name"]) == ["New Name Hub"]
    again = source.snapshot()
    assert again is snapshots[0] and source.reads == 2  # same version: not read again


def test_a_failed_check_is_raised_and_the_next_check_runs(tmp_path, monkeypatch):
    source = feed.Feed(tmp_path / "missing.gpkg")

    def broken(location):
        raise OSError("store unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(upload, "store_signature", broken)
        with pytest.raises(feed.Unavailable, match="cannot be reached") as raised:
            source.snapshot()
    assert isinstance(raised.value.__cause__, OSError)
    assert source.snapshot().projects.empty and source.checks == 2


def test_illustrative_records_only_when_asked(tmp_path):
    sample = tmp_path / "sample.gpkg"
    shutil.copy(DEFAULT_STORE, sample)
    stored = store.read_projects(sample)
    made_up = int(stored["synthetic"].astype(bool).sum())
    assert made_up > 0
    for include, count in ((False, len(stored) - made_up), (True, len(stored))):
        source = feed.Feed(sample, include_synthetic=include)
        options = source.export_options("Open Referral UK")
        found = orukapi.exported_catalogue(source.snapshot().projects, options)
        assert len(found.services) == count
        assert ("notice" in found.about) == include


def test_a_store_that_cannot_be_read_gets_503_and_no_path_and_fails_the_health_check(tmp_path):
    path = tmp_path / "hidden-folder" / "projects.gpkg"
    rows = "id,name,type,postcode\nhub-1,Hub,pantry,L1 8JQ\n"
    (tmp_path / "hubs.csv").write_text(rows, encoding="utf-8")
    path.parent.mkdir()
    importing.import_file(tmp_path / "hubs.csv", path)
    with serving(path, tmp_path, "--access-log") as base:
        assert get_json(f"{base}/oruk/services")["total_items"] == 1
        assert get_json(f"{base}/healthz") == {"status": "ok", "store": "readable"}
        path.write_bytes(b"not a GeoPackage any more")
        for url in (
            f"{base}/oruk/services",
            f"{base}/ogc/collections/projects/items",
            f"{base}/healthz",
        ):
            status, headers, body = fetch(url)
            assert status == 503 and headers["retry-after"] == "30", body
            assert json.loads(body)["message"].startswith("the project store cannot be read")
            assert b"hidden-folder" not in body and b"Traceback" not in body


@pytest.fixture(scope="module")
def sample_catalogue() -> orukapi.Catalogue:
    source = feed.Feed(DEFAULT_STORE)
    options = source.export_options("Open Referral UK")
    return orukapi.exported_catalogue(source.snapshot().projects, options)


NAMES = (*orukapi.PARAMETERS, *orukapi.PROFILE_ONLY, "other")
VALUES = hs.one_of(
    hs.text(max_size=30),
    hs.sampled_from(["1", "0", "-1", "1e9", "nan", "inf", "L1 8JQ", "MO", "10:00", "24:00"]),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hs.dictionaries(hs.sampled_from(NAMES), hs.lists(VALUES, min_size=1, max_size=2)))
def test_any_query_is_answered_or_refused_with_a_message(sample_catalogue, params):
    for endpoint in orukapi.ENDPOINT_PARAMETERS:
        try:
            query = orukapi.parse(params, endpoint)
        except orukapi.BadRequest as error:
            assert str(error)
            continue
        page = orukapi.service_at_locations_page(sample_catalogue, query)
        assert page["size"] == len(page["contents"]) <= query["per_page"]
        assert page["total_items"] <= len(sample_catalogue.services)


def test_a_store_that_cannot_be_reached_stops_the_command_with_one_line(capsys):
    assert cli.main(["api", "--store", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kindred-map api: the project store cannot be reached")
    assert "Traceback" not in error


def test_the_service_follows_the_configured_store(tmp_path, monkeypatch):
    """`kindred-map api` without --store serves $KINDRED_MAP_STORE, as every other command does
    (it served the shipped file whatever the setting said)."""
    configured = tmp_path / "team.gpkg"
    monkeypatch.setenv("KINDRED_MAP_STORE", str(configured))
    args = cli.build_parser().parse_args(["api"])
    assert feed.Feed(args.store).location.path == configured
