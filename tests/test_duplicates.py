"""Likely duplicates of uploaded rows, the editor's choices, and the upload template."""

from pathlib import Path

import pandas as pd
import pytest

from kindred_map import duplicates, importing, ingest, join, store, upload
from kindred_map.report import to_text as report_text


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


NETWORK = "id,name,postcode\n1,St Mary's Food Pantry,L8 7SQ\n2,Linacre Warm Hub,L20 4RW\n"


@pytest.fixture
def target(tmp_path) -> Path:
    target = tmp_path / "projects.gpkg"
    importing.import_file(_csv(tmp_path / "network.csv", NETWORK), target)
    return target


@pytest.fixture(params=["gpkg", "postgis"])
def any_target(request, tmp_path):
    """The same two projects in a store of each backend."""
    if request.param == "gpkg":
        return request.getfixturevalue("target")
    dsn = request.getfixturevalue("pg_store")
    importing.import_file(_csv(tmp_path / "network.csv", NETWORK), dsn)
    return dsn


def test_same_postcode_or_near_with_a_similar_name_is_a_likely_duplicate(target):
    stored = store.read_projects(target)
    incoming = stored.assign(
        id=["new:1", "new:2"], name=["St Marys food pantry", "Bootle Youth Club"], _row=[2, 3]
    )
    incoming = pd.concat(
        [
            incoming,
            stored.iloc[[1]].assign(id="new:3", name="Linacre warm hub", postcode="", _row=4),
        ]
    )
    incoming.loc[incoming["_row"] == 4, "easting"] += 30
    found = duplicates.likely_duplicates(incoming, stored)
    assert found[["row", "stored_id", "same_postcode", "distance_m", "why"]].values.tolist() == [
        [2, "network:1", True, 0.0, "same name, same postcode, 0 m apart"],
        [4, "network:2", False, 30.0, "same name, other postcode, 30 m apart"],
    ]
    assert duplicates.likely_duplicates(stored, stored).empty  # a record is its own update


def test_merge_updates_the_stored_project_skip_leaves_the_row_out(target, tmp_path):
    text = (
        "id,name,postcode,website\n"
        "a,St Marys food pantry,L8 7SQ,https://stmarys.example\n"
        "b,Linacre warm hub,L20 4RW,\n"
        "c,Brand new club,L1 8JQ,\n"
    )
    partner = _csv(tmp_path / "partner.csv", text)
    choices = {2: ("merge", "network:1"), 3: ("skip", "network:2")}
    report = importing.import_file(partner, target, choices=choices, who="ann")
    assert (report.new, report.updated, report.rejected) == (1, 1, 1)
    skipped = report.issues[report.issues["level"] == "rejected"]
    assert skipped["row"].tolist() == [3] and "network:2" in skipped["reason"].item()
    projects = store.read_projects(target).set_index("id")
    assert sorted(projects.index) == ["network:1", "network:2", "partner:c"]
    assert projects.loc["network:1", "website"] == "https://stmarys.example"
    with pytest.raises(ValueError, match="unknown duplicate choice"):
        importing.import_file(partner, target, choices={2: ("replace", "network:1")})


def test_the_templates_read_back_as_the_import_columns(tmp_path):
    for name, data in (
        ("t.csv", duplicates.template_csv()),
        ("t.xlsx", duplicates.template_xlsx()),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        table = ingest.read_table(path)
        found = ingest.recognise_columns(list(table.frame.columns))
        assert set(duplicates.TEMPLATE_FIELDS) <= {f for f, cols in found.items() if cols}


@pytest.mark.parametrize(
    ("same_name", "same_postcode", "distance_m", "expected"),
    [
        (True, True, 0.0, "strong"),  # same name, same postcode
        (True, True, 900.0, "strong"),  # a big site: the postcode says it is the same place
        (True, False, 50.0, "strong"),  # within 50 m, the postcode mistyped or changed
        (True, False, 50.1, "weak"),
        (True, False, float("nan"), "weak"),  # no position to compare
        (False, True, 0.0, "weak"),  # similar names at one address: maybe two projects
        (False, False, 10.0, "weak"),
    ],
)
def test_the_strength_rule(same_name, same_postcode, distance_m, expected):
    assert duplicates.strength(same_name, same_postcode, distance_m) == expected


def _incoming(stored: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Rows like the first stored project, changed as given, with ids of their own."""
    base = stored.iloc[[0] * len(rows)].reset_index(drop=True)
    for position, changes in enumerate(rows):
        for name, value in changes.items():
            base.loc[position, name] = value
    return base.assign(id=[f"new:{i}" for i in range(len(rows))], _row=range(2, len(rows) + 2))


def test_strong_matches_merge_by_default_weak_ones_ask(target):
    stored = store.read_projects(target)
    first = stored.iloc[0]
    incoming = _incoming(
        stored,
        [
            {"name": "ST MARY'S food-pantry"},  # the same name once normalised
            {"name": "St Mary's Pantry"},  # similar only
            {"name": "St Mary's Food Pantry", "postcode": "", "easting": first["easting"] + 40},
            {"name": "Linacre Warm Hub", "postcode": "", "easting": stored.iloc[1]["easting"] + 70},
        ],
    )
    found = duplicates.likely_duplicates(incoming, stored)
    assert found[["row", "strength", "same_name"]].values.tolist() == [
        [2, "strong", True],
        [3, "weak", False],
        [4, "strong", True],
    ]  # row 5: 70 m away with no postcode: not listed at all
    assert found["stored_postcode"].tolist() == ["L8 7SQ"] * 3
    # Rows 2 and 4 both strongly match network:1: neither may merge by default (two rows
    # cannot merge into one project); the editor is asked.
    assert duplicates.default_choices(found) == {}
    alone = found[found["row"] != 4]
    assert duplicates.default_choices(alone) == {2: ("merge", "network:1")}
    assert duplicates.choices_for_all(alone, "skip all") == {
        2: ("skip", "network:1"),
        3: ("skip", "network:1"),
    }
    kept = duplicates.choices_for_all(alone, "keep all")
    assert duplicates.choices_for_all(alone, "merge strong", kept) == {
        2: ("merge", "network:1"),
        3: ("keep both", "network:1"),
    }
    with pytest.raises(ValueError, match="unknown answer"):
        duplicates.choices_for_all(alone, "merge weak")


def test_a_row_updating_its_own_stored_project_is_no_duplicate(target):
    stored = store.read_projects(target)
    again = stored.assign(_row=[2, 3])
    assert duplicates.likely_duplicates(again, stored).empty


def _state(location) -> tuple:
    """Everything a write would change: the projects, the import log, the history."""
    projects = store.read_projects(location, include_retired=True).drop(columns="geometry")
    return (
        projects.to_json(),
        store.read_imports(location).to_json(),
        len(store.read_history(location)),
    )


def test_the_plan_counts_what_the_import_then_does(any_target, tmp_path):
    target = any_target
    text = (
        "id,name,postcode\n"
        "a,St Marys food pantry,L8 7SQ\n"
        "b,Linacre warm hub,L20 4RW\n"
        "c,Brand new club,L1 8JQ\n"
        "d,,L1 8JQ\n"
    )
    partner = _csv(tmp_path / "partner.csv", text)
    choices = {2: ("merge", "network:1"), 3: ("skip", "network:2")}
    projects, report = join.prepare_file(
        partner, secret=store.read_secret(target), namespace=ingest.id_namespace("partner")
    )
    written = _state(target)
    plan = store.plan_import(projects, report, target, choices)
    assert _state(target) == written  # a plan writes nothing
    assert upload.outcome(plan) == {
        "new": 1,
        "merged": 1,
        "skipped": 1,
        "updated": 1,
        "unchanged": 0,
        "rejected": 2,  # row 5 has no name, row 3 skipped
    }
    done = importing.import_file(partner, target, choices=choices)
    assert upload.outcome(done) == upload.outcome(plan)
    assert "1 merged into likely duplicates, 1 skipped by choice" in report_text(done)


def test_a_merge_fills_the_stored_project_in_and_never_blanks_or_moves_it(tmp_path):
    target = tmp_path / "projects.gpkg"
    head = "id,name,postcode,website,address,type"
    row = "1,Hope Hub,L8 7SQ,https://hope.example,1 Hope St,food_bank"
    importing.import_file(_csv(tmp_path / "network.csv", f"{head}\n{row}\n"), target)
    placed = store.read_projects(target).iloc[0]
    lat, lon = placed["lat"] + 0.0003, placed["lon"] + 0.0003  # ~40 m from the postcode's centre
    at_door = f"{head},lat,lon\n{row},{lat},{lon}\n"
    importing.import_file(_csv(tmp_path / "network.csv", at_door), target)
    before = store.read_projects(target).iloc[0]
    assert before["website"] == "https://hope.example" and before["lat"] == round(lat, 6)
    partner = _csv(tmp_path / "partner.csv", "name,postcode,hours\nHOPE HUB,L8 7SQ,Mon 10-12\n")
    report = importing.import_file(partner, target, choices={2: ("merge", "network:1")})
    assert (report.new, report.updated, report.merged) == (0, 1, 1)
    after = store.read_projects(target).set_index("id").loc["network:1"]
    assert after["name"] == "HOPE HUB" and after["opening_hours"] == "Mon 10-12"  # given: wins
    for name in ("website", "address", "type", "lat", "lon", "WD24CD", "location_precision"):
        assert after[name] == before[name], name  # not given, or a postcode-only position
    elsewhere = _csv(tmp_path / "elsewhere.csv", "name,postcode\nHope Hub,L1 8JQ\n")
    importing.import_file(elsewhere, target, choices={2: ("merge", "network:1")})
    after = store.read_projects(target).set_index("id").loc["network:1"]
    assert after["postcode"] == "L1 8JQ" and after["WD24NM"] == "City Centre North"  # it moved
    assert after["website"] == "https://hope.example"
