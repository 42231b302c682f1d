"""The project store: imports account for every row, upsert by id, idempotence, atomic writes."""

import hashlib
import html
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kindred_map import boundaries, cli, report, store
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS

FIXTURES = Path(__file__).parent / "fixtures"
MESSY_FILES = [
    "messy_projects_cp1252.csv",
    "projects_utf8_bom.csv",
    "messy_projects_title_row.xlsx",
]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _accounted(result: report.ImportReport, projects: pd.DataFrame) -> None:
    """Every row read is either rejected or in a stored project (possibly merged into another)."""
    rejected = set(result.rejected_rows)
    merged = set(result.issues.loc[result.issues["field"] == "id", "row"])
    assert result.rows_read == result.imported + result.rejected
    assert not rejected & merged
    assert rejected | merged <= set(result.rows)
    assert result.records == len(projects) == result.rows_read - len(rejected) - len(merged)
    assert result.issues["reason"].str.len().gt(0).all()


@pytest.mark.parametrize("name", MESSY_FILES)
def test_messy_files_import_with_every_row_accounted_for(name, tmp_path):
    target = tmp_path / "projects.gpkg"
    result = store.import_file(FIXTURES / name, target)
    projects = store.read_projects(target)
    _accounted(result, projects)
    assert result.new == len(projects)
    assert set(projects.columns) == {*RECORD_FIELDS, *JOINED_FIELDS, "geometry"}


def test_the_messy_csv_names_each_problem(tmp_path):
    target = tmp_path / "projects.gpkg"
    result = store.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    issues = result.issues.groupby("row")["reason"].agg(" | ".join)
    assert result.rows_read == 14 and result.blank_rows == [4]
    assert result.rejected_rows == [10, 11, 15]
    assert "same project as row 6" in issues[5]
    assert "swapped" in issues[7]
    assert "outside the region" in issues[8]
    assert "terminated" in issues[9]
    assert "not in the region's postcode list" in issues[10]
    assert "no postcode or usable coordinates" in issues[11]
    assert "not a configured type" in issues[12]
    assert "the postcode's position was used" in issues[14]
    assert "no project name" in issues[15]
    projects = store.read_projects(target).set_index("name")
    assert projects.loc["St Anne’s Café Pantry", "postcode"] == "L7 3HJ"
    assert projects.loc["St Anne’s Café Pantry", "type"] == "pantry"
    assert projects.loc["Crèche & Warm Hub", "postcode"] == "WA10 2DT"
    assert not projects.loc["Manchester Drop-in", "in_region"]
    assert projects.loc["Swapped Coordinates Café", "lat"] == pytest.approx(53.40455)
    assert projects.loc["Tuesday Lunch Club", "postcode"] == "L32 8UE"


def test_markup_in_a_name_round_trips_as_text(tmp_path):
    target = tmp_path / "projects.gpkg"
    store.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    names = store.read_projects(target)["name"].tolist()
    assert "<img src=x onerror=alert(1)>" in names
    assert html.escape("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"


def test_importing_the_same_file_twice_changes_no_project(tmp_path):
    target = tmp_path / "projects.gpkg"
    first = store.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    before = store.read_projects(target)
    second = store.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    after = store.read_projects(target)
    pd.testing.assert_frame_equal(pd.DataFrame(before), pd.DataFrame(after))
    assert (first.new, first.updated, first.unchanged) == (len(before), 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, len(before))
    log = store.read_imports(target)
    assert log["file"].tolist() == ["messy_projects_cp1252.csv"] * 2
    assert log["rows_read"].tolist() == [14, 14]
    assert log["new"].tolist() == [len(before), 0]
    assert log["imported_at"].str.match(r"\d{4}-\d\d-\d\dT").all()


def test_upsert_by_id_updates_and_adds(tmp_path):
    target = tmp_path / "projects.gpkg"
    first = tmp_path / "first.csv"
    first.write_text("id,name,postcode\na,Hub,L1 8JQ\nb,Cafe,L20 4RW\n", encoding="utf-8")
    store.import_file(first, target, source="Partner")
    second = tmp_path / "second.csv"
    second.write_text("id,name,postcode\nb,Cafe renamed,L20 4RW\nc,New,L7 3HJ\n", encoding="utf-8")
    result = store.import_file(second, target, source="Partner")
    assert (result.new, result.updated, result.unchanged) == (1, 1, 0)
    projects = store.read_projects(target).set_index("id")
    assert projects["name"].to_dict() == {
        "partner:a": "Hub",
        "partner:b": "Cafe renamed",
        "partner:c": "New",
    }


def test_a_failed_import_leaves_the_store_byte_identical(tmp_path, monkeypatch):
    target = tmp_path / "projects.gpkg"
    store.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before = _sha(target)

    def fail_midway(conn, timestamp):
        # Every row is already inserted in the transaction when the import fails.
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] > 5
        raise OSError("disk full")

    monkeypatch.setattr(store, "_update_contents", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        store.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    assert _sha(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projects.gpkg"]
    assert len(store.read_imports(target)) == 1


def test_a_bad_file_leaves_the_store_byte_identical(tmp_path):
    target = tmp_path / "projects.gpkg"
    store.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before = _sha(target)
    bad = tmp_path / "bad.csv"
    bad.write_text("colour,size\nred,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no project name column"):
        store.import_file(bad, target)
    assert _sha(target) == before


def test_ten_thousand_rows_from_real_postcodes(tmp_path):
    postcodes = boundaries.load("postcode")
    live = postcodes[postcodes["status"] == "live"]
    chosen = live.sample(10_000, random_state=11).reset_index(drop=True)
    rng = np.random.default_rng(11)
    typed = np.where(
        rng.random(10_000) < 0.5, chosen["pcd_key"].str.lower(), chosen["postcode"].to_numpy()
    )
    source = tmp_path / "big.csv"
    pd.DataFrame(
        {
            "Project": [f"Project {i}" for i in range(10_000)],
            "Type": rng.choice(["Food Pantry", "warm hub", "sto", "Place of Welcome"], 10_000),
            "Postcode": typed,
        }
    ).to_csv(source, index=False)
    target = tmp_path / "projects.gpkg"
    result = store.import_file(source, target)
    assert (result.rows_read, result.imported, result.rejected) == (10_000, 10_000, 0)
    projects = store.read_projects(target)
    assert len(projects) == 10_000
    wards = projects.set_index("postcode")["WD24CD"]
    assert (wards.reindex(chosen["postcode"]).to_numpy() == chosen["WD24CD"].to_numpy()).all()


def test_report_text_and_csv(tmp_path):
    result = store.import_file(FIXTURES / "messy_projects_cp1252.csv", tmp_path / "s.gpkg")
    text = report.to_text(result)
    assert "Rows read: 14 = imported 11 + rejected 3" in text
    assert "Blank rows skipped: 4" in text
    assert "Store " in text and "11" in text
    table = pd.read_csv(pd.io.common.BytesIO(report.to_csv_bytes(result)), encoding="utf-8-sig")
    assert list(table.columns) == ["row", "name", "field", "level", "reason"]
    assert set(table.loc[table["level"] == "rejected", "row"]) == {10, 11, 15}
    assert "Micah’s Kitchen" in set(table["name"])


def test_empty_store_reads_as_no_projects(tmp_path):
    projects = store.read_projects(tmp_path / "none.gpkg")
    assert projects.empty and projects.crs.to_epsg() == 4326
    assert list(projects.columns) == [*RECORD_FIELDS, *JOINED_FIELDS, "geometry"]
    assert store.read_imports(tmp_path / "none.gpkg").empty


def test_cli_import_join_and_help(tmp_path, capsys):
    target = tmp_path / "s.gpkg"
    csv_report = tmp_path / "report.csv"
    messy = str(FIXTURES / "messy_projects_cp1252.csv")
    assert cli.main(["import", messy, "--store", str(target), "--report-csv", str(csv_report)]) == 0
    assert "Rows read: 14" in capsys.readouterr().out
    assert csv_report.read_bytes().startswith(b"\xef\xbb\xbfrow,name")
    assert cli.main(["import", messy, "--store", str(target), "--strict"]) == 1
    out = tmp_path / "joined.geojson"
    assert cli.main(["join", str(FIXTURES / "projects_utf8_bom.csv"), "-o", str(out)]) == 0
    assert "1 ward_only project(s)" in capsys.readouterr().out
    assert out.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("colour\nred\n", encoding="utf-8")
    assert cli.main(["import", str(bad), "--store", str(target)]) == 2
    assert "no project name column" in capsys.readouterr().err
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("name,postcode\nHub,ZZ99 9ZZ\n", encoding="utf-8")
    assert cli.main(["import", str(nothing), "--store", str(target)]) == 1
    for command in ("import", "join", "build-sample-data"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: kindred-map" in capsys.readouterr().out


def test_concurrent_imports_lose_nothing(tmp_path):
    files = []
    for letter in "abcd":
        path = tmp_path / f"{letter}.csv"
        path.write_text(f"id,name,postcode\n{letter}1,{letter} hub,L1 8JQ\n", encoding="utf-8")
        files.append(path)
    target = tmp_path / "projects.gpkg"
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda path: store.import_file(path, target), files))
    assert sorted(store.read_projects(target)["id"]) == ["a:a1", "b:b1", "c:c1", "d:d1"]
    assert len(store.read_imports(target)) == 4
