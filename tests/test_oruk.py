"""Open Referral UK: the export validates against the UK profile, re-imports as the same projects
and schedules, keeps home-run positions private; the profile's own examples import."""

import csv
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from kindred_map import export, hours, importing, ingest, join, store
from kindred_map.cli import main
from kindred_map.paths import PROJECT_ROOT

ORUK_DIR = PROJECT_ROOT.parent / "shared" / "standards" / "open_referral_uk"
SCHEMAS = ORUK_DIR / "schema" / "compiled"
EXAMPLES = ORUK_DIR / "examples"
COMPARED = (
    "name",
    "type",
    "organisation",
    "sector",
    "opening_hours",
    "schedules",
    "last_checked",
    "location_precision",
    "synthetic",
    "lat",
    "lon",
    "WD24CD",
    "LAD25CD",
)


@pytest.fixture(scope="module")
def schemas() -> Path:
    if not SCHEMAS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"Open Referral UK schemas missing at {SCHEMAS} (../shared beside the repo)"
            )
        pytest.skip(f"Open Referral UK schemas not found at {SCHEMAS}")
    return SCHEMAS


def _validator(schemas: Path, name: str) -> Draft202012Validator:
    schema = json.loads((schemas / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.fixture(scope="module")
def projects():
    return store.read_projects()


@pytest.fixture(scope="module")
def page(projects) -> dict:
    # With the illustrative records, so that the sample's home-run example is exported too.
    return json.loads(export.export_bytes(projects, "oruk", include_synthetic=True))


def _errors(validator: Draft202012Validator, instance) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(instance)][:5]


def test_export_of_the_sample_store_validates_against_the_uk_profile(schemas, page, projects):
    contents = page["contents"]
    assert page["total_items"] == len(contents) == len(projects)
    service = _validator(schemas, "service")
    organization = _validator(schemas, "organization")
    for item in contents:
        assert _errors(service, item) == [], item["name"]
        assert _errors(organization, item["organization"]) == [], item["name"]
    assert _errors(_validator(schemas, "service_package"), contents) == []
    assert len({item["id"] for item in contents}) == len(contents)
    attribution = page["about"]["attribution"]
    assert "Contains data from Co-operatives UK" in attribution
    assert any("Give Food" in line for line in attribution)
    structured = [item for item in contents if any("byday" in s for s in item["schedules"])]
    assert len(structured) == int(projects["schedules"].ne("").sum())


def test_csv_package_tables_hold_only_profile_fields(schemas, projects):
    package = zipfile.ZipFile(io.BytesIO(export.export_bytes(projects, "oruk-csv")))
    paths: dict[str, set[str]] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            if "path" in node and isinstance(node.get("properties"), dict):
                fields = set(node["properties"]) | set(node.get("tabular_required", []))
                paths.setdefault(node["path"], set()).update(fields)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((schemas / "service.json").read_text(encoding="utf-8")))
    paths["taxonomy.csv"] = {"id", "name", "description", "uri", "version"}
    for name in package.namelist():
        if name == "about.txt":
            assert "Contains data from Co-operatives UK" in package.read(name).decode()
            continue
        header = package.read(name).decode().splitlines()[0].split(",")
        assert set(header) <= paths[name], name


def _masked(projects):
    table = export.project_table(projects).set_index("id")
    table["schedules"] = table["schedules"].fillna("")
    return table


def _plain(values):
    return values.astype(object).where(values.notna(), "").astype(str)


def _compare(original, imported) -> None:
    before, after = _masked(original), _masked(imported)
    assert sorted(after.index) == sorted(before.index)
    after = after.loc[before.index]
    for column in COMPARED:
        left, right = _plain(before[column]), _plain(after[column])
        assert (left == right).all(), (column, left[left != right].head(3).to_dict())
    public = before["location_precision"] != "ward_only"
    for column in ("address", "postcode"):
        assert (before.loc[public, column] == after.loc[public, column]).all(), column
    with_scheme = before["website"].fillna("").str.match("https?://")
    assert (before.loc[with_scheme, "website"] == after.loc[with_scheme, "website"]).all()
    websites = _plain(after["website"])
    assert (websites.eq("") | websites.str.match("https?://")).all()


@pytest.mark.parametrize("fmt", ["oruk", "oruk-csv"])
def test_export_then_import_gives_the_same_projects_and_schedules(tmp_path, projects, fmt):
    projects = export.real_projects(projects)  # synthetic records leave only when asked for
    path = tmp_path / ("directory.json" if fmt == "oruk" else "directory.zip")
    path.write_bytes(export.export_bytes(projects, fmt))
    imported, report = join.join_file(path)
    assert report.rows_read == len(projects) and report.rejected == 0
    _compare(projects, imported)
    assert imported["schedules"].map(hours.loads).tolist() == [
        hours.loads(text) for text in projects.set_index("id").loc[imported["id"], "schedules"]
    ]


def test_reimporting_an_export_into_its_store_changes_nothing(tmp_path, projects):
    saved = tmp_path / "projects.gpkg"
    real = export.real_projects(projects)
    subset = real[real["type"].isin(["sto", "pantry"])]
    first = tmp_path / "first.json"
    first.write_bytes(export.export_bytes(subset, "oruk"))
    report = importing.import_file(first, saved)
    assert report.new == len(subset)
    again = tmp_path / "again.json"
    again.write_bytes(export.export_bytes(store.read_projects(saved), "oruk"))
    report = importing.import_file(again, saved)
    assert (report.new, report.updated, report.unchanged) == (0, 0, len(subset))


def test_home_run_projects_leave_only_at_their_ward_centre(projects, page):
    hidden = projects[projects["location_precision"] == "ward_only"]
    assert len(hidden) >= 1
    text = json.dumps(page)
    for _, row in hidden.iterrows():
        assert f"{row['lat']:.4f}" not in text and f"{row['lon']:.4f}" not in text
        assert row["postcode"] and row["postcode"] not in text
        assert not row["address"] or row["address"] not in text
        item = next(
            s
            for s in page["contents"]
            if s["service_at_locations"][0]["location"]["external_identifier"] == row["id"]
        )
        location = item["service_at_locations"][0]["location"]
        assert "addresses" not in location
        assert location["attributes"][0]["taxonomy_term"]["term"] == "ward_only"


EXAMPLE_FILES = [
    "service_full.json",
    "service_list.json",
    "organization_full.json",
    "service_at_location_full.json",
    "service_at_location_list.json",
    "csv/services.csv",
]


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_profile_examples_import_with_every_service_accounted_for(schemas, name):
    path = EXAMPLES / name
    projects, report = join.join_file(path)
    assert report.rows_read == 1  # each example holds one service at one location (or none)
    assert report.imported + report.rejected == report.rows_read
    rejected = report.issues[report.issues["level"] == "rejected"]
    assert rejected["reason"].str.len().gt(0).all()
    assert report.rejected == 1  # the examples' placeholder position (100, 101; "ABC 1234")


def test_profile_example_placed_in_the_region_imports_its_fields(schemas, tmp_path):
    example = json.loads((EXAMPLES / "service_full.json").read_text(encoding="utf-8"))
    location = example["service_at_locations"][0]["location"]
    location["latitude"], location["longitude"] = 53.4084, -2.9916
    location["addresses"][0]["postal_code"] = "L1 8JQ"
    path = tmp_path / "service.json"
    path.write_text(json.dumps(example), encoding="utf-8")
    projects, report = join.join_file(path)
    assert report.imported == 1
    row = projects.iloc[0]
    assert row["id"] == f"oruk-{example['id']}"
    assert row["name"] == "Community Counselling"
    assert row["organisation"] == "Example Organization Inc."
    assert row["opening_hours"] == example["schedules"][0]["description"]
    assert row["schedules"] == ""  # monthly days (bymonthday) are not a weekly session
    assert row["postcode"] == "L1 8JQ" and row["LAD25NM"] == "Liverpool"
    assert row["website"] == "http://example.com/counselling"


def test_cli_export_oruk_json_and_zip(tmp_path, capsys):
    json_path, zip_path = tmp_path / "directory.json", tmp_path / "directory.zip"
    assert main(["export", "--format", "oruk", "--types", "sto", "-o", str(json_path)]) == 0
    assert main(["export", "--format", "oruk", "--types", "sto", "-o", str(zip_path)]) == 0
    assert "oruk-csv" in capsys.readouterr().out
    assert json.loads(json_path.read_bytes())["total_items"] > 100
    assert "services.csv" in zipfile.ZipFile(zip_path).namelist()
    assert main(["export", "--format", "oruk", "--what", "ward", "-o", str(json_path)]) == 2


def test_hostile_oruk_file_imports_what_it_can_and_names_the_rest(tmp_path):
    services = [
        {
            "id": "11111111-1111-4111-8111-111111111111",
            "name": "{{7*7}} <b>Drop-in</b>",
            "status": "active",
            "organization": "not an object",
            "attributes": ["junk", {"taxonomy_term": "junk"}],
            "schedules": [{"byday": "XX", "opens_at": "25:00", "description": "Mondays, ish"}],
            "service_at_locations": [
                {"location": {"latitude": 53.4084, "longitude": -2.9916, "addresses": "junk"}},
                "junk",
            ],
        },
        {"id": "22222222-2222-4222-8222-222222222222", "name": "No place", "status": "active"},
        {
            "name": "Far away",
            "status": "active",
            "service_at_locations": [{"location": {"latitude": "north", "longitude": None}}],
        },
    ]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps({"contents": services + ["junk"]}), encoding="utf-8")
    projects, report = join.join_file(path)
    assert report.rows_read == 3 and report.imported == 1 and report.rejected == 2
    row = projects.iloc[0]
    assert row["name"] == "{{7*7}} <b>Drop-in</b>"
    assert row["opening_hours"] == "Mondays, ish" and row["schedules"] == ""
    rejected = report.issues[report.issues["level"] == "rejected"]
    assert set(rejected["name"]) == {"No place", "Far away"}


def test_the_csv_package_keeps_formulas_as_text(tmp_path):
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        "id,name,type,organisation,sector,postcode,opening_hours,website\n"
        '1,"=HYPERLINK(""http://evil.example"",""x"")",pantry,@SUM(A1:A9),-1+1,L1 8JQ,'
        "+44 151 496 0000,=1+1\n",
        encoding="utf-8",
    )
    path = tmp_path / "store.gpkg"
    importing.import_file(hostile, path)
    package = zipfile.ZipFile(
        io.BytesIO(export.export_bytes(store.read_projects(path), "oruk-csv"))
    )
    cells = []
    for name in package.namelist():
        if name.endswith(".csv"):
            rows = csv.reader(io.StringIO(package.read(name).decode("utf-8")))
            cells += [cell for row in rows for cell in row]
    formulas = [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))]
    formulas += [c for c in cells if c.startswith("-") and not re.fullmatch(r"-\d+(\.\d+)?", c)]
    assert formulas == []
    for typed in ('=HYPERLINK("http://evil.example","x")', "@SUM(A1:A9)", "-1+1"):
        assert "'" + typed in cells, typed


# --- hostile files: every one refused in one line naming it, within the readers' limits ----

SERVICES_HEADER = "id,organization_id,name,description,url,status\n"


def _zip(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as package:
        for name, payload in members.items():
            package.writestr(name, payload)
    return path


def _bomb(path: Path) -> Path:
    """A small zip whose services.csv unpacks past ingest.MAX_UNPACKED_BYTES (patched to 2 MB)."""
    row = b"s1,o1,Pantry,,,active\n"
    return _zip(path, {"services.csv": SERVICES_HEADER.encode() + row * 150_000})


def _encrypted(path: Path) -> Path:
    """A package whose member says it is encrypted (flag bit 0 in both of its headers)."""
    data = bytearray(_zip(path, {"services.csv": b"id,name\ns1,Pantry\n"}).read_bytes())
    data[6] |= 1  # the local file header's general purpose flags
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # the central directory's copy
    path.write_bytes(bytes(data))
    return path


def _bad_crc(path: Path) -> Path:
    payload = SERVICES_HEADER.encode() + b"s1,o1,Pantry,,,active\n"
    data = _zip(path, {"services.csv": payload}, zipfile.ZIP_STORED).read_bytes()
    path.write_bytes(data.replace(b"Pantry", b"Pantrx", 1))
    return path


def _truncated(path: Path) -> Path:
    data = _zip(path, {"services.csv": SERVICES_HEADER.encode() * 50}).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _long_field(path: Path, chars: int) -> Path:
    row = f's1,o1,"{"x" * chars}",,,active\n'
    return _zip(path, {"services.csv": (SERVICES_HEADER + row).encode()})


def _not_utf8(path: Path) -> Path:
    return _zip(path, {"services.csv": SERVICES_HEADER.encode() + b"s1,o1,Caf\xe9,,,active\n"})


def _too_many_rows(path: Path) -> Path:
    """Services past ingest.MAX_ROWS (patched to 5)."""
    rows = "".join(f"s{n},o1,Pantry {n},,,active\n" for n in range(20))
    return _zip(path, {"services.csv": (SERVICES_HEADER + rows).encode()})


def _nested_json(path: Path) -> Path:
    path.write_text('{"contents": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    return path


def _deep_services(path: Path) -> Path:
    """Nesting shallow enough for the JSON parser, too deep to walk by recursion."""
    path.write_text('{"contents": ' + "[" * 5_000 + "]" * 5_000 + "}", encoding="utf-8")
    return path


def _long_name_json(path: Path) -> Path:
    service = {"id": "s1", "name": "N" * 40_000, "status": "active"}
    path.write_text(json.dumps({"contents": [service]}), encoding="utf-8")
    return path


HOSTILE = {
    "bomb.zip": (_bomb, "unpacks to"),
    "encrypted.zip": (_encrypted, "encrypted"),
    "bad-crc.zip": (_bad_crc, "CRC"),
    "truncated.zip": (_truncated, "cannot be read"),
    "field-200k.zip": (lambda path: _long_field(path, 200_000), "cannot be read as CSV"),
    "field-40k.zip": (lambda path: _long_field(path, 40_000), "a cell holds 40,000 characters"),
    "latin1.zip": (_not_utf8, "utf-8"),
    "rows.zip": (_too_many_rows, "more than 5"),
    "nested.json": (_nested_json, "cannot read"),
    "deep.json": (_deep_services, "cannot read"),
    "long-name.json": (_long_name_json, "a value holds 40,000 characters"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_oruk_files_are_refused_in_one_line_naming_the_file(name, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 2_000_000)
    monkeypatch.setattr(ingest, "MAX_ROWS", 5)
    build, reason = HOSTILE[name]
    path = build(tmp_path / name)
    with pytest.raises(ValueError) as raised:
        join.prepare_file(path)
    message = str(raised.value)
    assert name in message and "\n" not in message and str(tmp_path) not in message
    assert reason.casefold() in message.casefold()
    assert len(message) < 400


def test_cli_import_of_a_hostile_package_is_one_line_and_saves_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 2_000_000)
    store_path = tmp_path / "projects.gpkg"
    assert main(["import", str(_bomb(tmp_path / "bomb.zip")), "--store", str(store_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kindred-map import: bomb.zip unpacks to") and "\n" not in error
    assert not store_path.exists() or store.read_projects(store_path).empty
