"""Likely duplicates of uploaded rows, the editor's choices, and the upload template."""

from pathlib import Path

import pandas as pd
import pytest

from kindred_map import duplicates, ingest, store


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def target(tmp_path) -> Path:
    target = tmp_path / "projects.gpkg"
    text = "id,name,postcode\n1,St Mary's Food Pantry,L8 7SQ\n2,Linacre Warm Hub,L20 4RW\n"
    store.import_file(_csv(tmp_path / "network.csv", text), target)
    return target


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
    report = store.import_file(partner, target, choices=choices, who="ann")
    assert (report.new, report.updated, report.rejected) == (1, 1, 1)
    skipped = report.issues[report.issues["level"] == "rejected"]
    assert skipped["row"].tolist() == [3] and "network:2" in skipped["reason"].item()
    projects = store.read_projects(target).set_index("id")
    assert sorted(projects.index) == ["network:1", "network:2", "partner:c"]
    assert projects.loc["network:1", "website"] == "https://stmarys.example"
    with pytest.raises(ValueError, match="unknown duplicate choice"):
        store.import_file(partner, target, choices={2: ("replace", "network:1")})


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
