"""The project store on both backends: every row accounted for, upsert by id, atomicity."""

import hashlib
import html
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from test_export import _ogrinfo

from kindred_map import boundaries, cli, importing, join, privacy, report, store
from kindred_map.paths import DATA_DIR
from kindred_map.storage import geopackage as gpkg
from kindred_map.storage import records

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
def test_messy_files_import_with_every_row_accounted_for(name, tmp_path, target):
    result = importing.import_file(FIXTURES / name, target)
    projects = store.read_projects(target)
    _accounted(result, projects)
    assert result.new == len(projects)
    assert set(projects.columns) == {*store.STORE_FIELDS, "geometry"}


def test_the_messy_csv_names_each_problem(tmp_path, target):
    result = importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    issues = result.issues.groupby("row")["reason"].agg(" | ".join)
    assert result.rows_read == 14 and result.blank_rows == [4]
    assert result.rejected_rows == [10, 11, 15]
    assert "same project as row 6" in issues[5]
    assert "swapped" in issues[7]
    assert "outside the region" in issues[8]
    assert "terminated" in issues[9]
    assert "ZZ99 9ZZ is not a known postcode" in issues[10]
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


def test_markup_in_a_name_round_trips_as_text(tmp_path, target):
    importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    names = store.read_projects(target)["name"].tolist()
    assert "<img src=x onerror=alert(1)>" in names
    assert html.escape("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"


def test_importing_the_same_file_twice_changes_no_project(tmp_path, target):
    first = importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    before = store.read_projects(target)
    second = importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    after = store.read_projects(target)
    pd.testing.assert_frame_equal(pd.DataFrame(before), pd.DataFrame(after))
    assert (first.new, first.updated, first.unchanged) == (len(before), 0, 0)
    assert (second.new, second.updated, second.unchanged) == (0, 0, len(before))
    log = store.read_imports(target)
    assert log["file"].tolist() == ["messy_projects_cp1252.csv"] * 2
    assert log["rows_read"].tolist() == [14, 14]
    assert log["new"].tolist() == [len(before), 0]
    assert log["imported_at"].str.match(r"\d{4}-\d\d-\d\dT").all()


def test_upsert_by_id_updates_and_adds(tmp_path, target):
    first = tmp_path / "first.csv"
    first.write_text("id,name,postcode\na,Hub,L1 8JQ\nb,Cafe,L20 4RW\n", encoding="utf-8")
    importing.import_file(first, target, source="Partner")
    second = tmp_path / "second.csv"
    second.write_text("id,name,postcode\nb,Cafe renamed,L20 4RW\nc,New,L7 3HJ\n", encoding="utf-8")
    result = importing.import_file(second, target, source="Partner")
    assert (result.new, result.updated, result.unchanged) == (1, 1, 0)
    projects = store.read_projects(target).set_index("id")
    assert projects["name"].to_dict() == {
        "partner:a": "Hub",
        "partner:b": "Cafe renamed",
        "partner:c": "New",
    }


def test_a_failed_import_leaves_the_store_byte_identical(tmp_path, monkeypatch):
    target = tmp_path / "projects.gpkg"
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before = _sha(target)

    def fail_midway(conn, timestamp):
        # Every row is already inserted in the transaction when the import fails.
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] > 5
        raise OSError("disk full")

    monkeypatch.setattr(gpkg, "_update_contents", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    assert _sha(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projects.gpkg"]
    assert len(store.read_imports(target)) == 1


def test_a_bad_file_leaves_the_store_byte_identical(tmp_path):
    target = tmp_path / "projects.gpkg"
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before = _sha(target)
    bad = tmp_path / "bad.csv"
    bad.write_text("colour,size\nred,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no project name column"):
        importing.import_file(bad, target)
    assert _sha(target) == before


def test_a_project_outside_the_region_is_placed_kept_and_counted_in_no_area(target):
    """The held-out messy files' case: Chester (CH1 1AB) is outside the 9 boroughs, L99 9ZZ
    does not exist."""
    from kindred_map import export

    result = importing.import_file(FIXTURES / "edge_projects.csv", target)
    projects = store.read_projects(target)
    _accounted(result, projects)
    assert result.rejected_rows == [3]
    issues = result.issues.set_index("row")
    assert issues.loc[2, "level"] == "warning" and issues.loc[2, "field"] == "postcode"
    assert "CH1 1AB is outside the region" in issues.loc[2, "reason"]
    assert "not a known postcode" in issues.loc[3, "reason"]
    assert "L99 9ZZ" in issues.loc[3, "reason"]
    chester = projects.set_index("name").loc["Chester visitor centre"]
    position = boundaries.load("postcode").set_index("pcd_key").loc["CH11AB"]
    assert (chester["easting"], chester["northing"]) == (position["easting"], position["northing"])
    assert not chester["in_region"] and chester["nearest_borough"] == "Wirral"
    assert chester[["WD24CD", "LAD25CD", "LSOA21CD"]].eq("").all()
    assert "outside the region's 9 boroughs" in chester["ward_note"]
    central = projects.set_index("name").loc["Central Warm Space"]
    assert central["in_region"] and central["nearest_borough"] == ""
    for level in ("ward", "borough", "deanery"):
        summary = export.area_summary(projects, level)
        assert summary["projects"].sum() == 1, level  # the Liverpool one only
    table = export.project_table(projects)
    assert set(table["name"]) == {"Chester visitor centre", "Central Warm Space"}


def test_ten_thousand_rows_from_real_postcodes(tmp_path, target):
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
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
    result = importing.import_file(source, target)
    assert (result.rows_read, result.imported, result.rejected) == (10_000, 10_000, 0)
    projects = store.read_projects(target)
    assert len(projects) == 10_000
    wards = projects.set_index("postcode")["WD24CD"]
    assert (wards.reindex(chosen["postcode"]).to_numpy() == chosen["WD24CD"].to_numpy()).all()


def test_report_text_and_csv(tmp_path, target):
    result = importing.import_file(FIXTURES / "messy_projects_cp1252.csv", target)
    text = report.to_text(result)
    assert "Rows read: 14 = imported 11 + rejected 3" in text
    assert "Blank rows skipped: 4" in text
    assert "Store " in text and "11" in text
    table = pd.read_csv(pd.io.common.BytesIO(report.to_csv_bytes(result)), encoding="utf-8-sig")
    assert list(table.columns) == ["row", "name", "field", "level", "reason"]
    assert set(table.loc[table["level"] == "rejected", "row"]) == {10, 11, 15}
    assert "Micah’s Kitchen" in set(table["name"])


def test_empty_store_reads_as_no_projects(target):
    projects = store.read_projects(target)
    assert projects.empty and projects.crs.to_epsg() == 4326
    assert list(projects.columns) == [*store.STORE_FIELDS, "geometry"]
    assert store.read_imports(target).empty


def test_cli_import_join_and_help(tmp_path, capsys, target):
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


def test_concurrent_imports_lose_nothing(tmp_path, target):
    files = []
    for letter in "abcd":
        path = tmp_path / f"{letter}.csv"
        path.write_text(f"id,name,postcode\n{letter}1,{letter} hub,L1 8JQ\n", encoding="utf-8")
        files.append(path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda path: importing.import_file(path, target), files))
    assert sorted(store.read_projects(target)["id"]) == ["a:a1", "b:b1", "c:c1", "d:d1"]
    assert len(store.read_imports(target)) == 4


# --- privacy that survives updates, ids, namespaces (issue 9) ---------------------------

HOME = "id,name,type,address,postcode,location_precision\n"
HOME_ROW = "home-001,Kitchen Table Club,pantry,14 Acacia Avenue,PR8 2FF,ward_only\n"


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _exported_text(target: Path) -> str:
    from kindred_map import export

    projects = store.read_projects(target)
    return b"".join(export.export_bytes(projects, fmt) for fmt in ("csv", "geojson")).decode(
        "utf-8", errors="replace"
    )


def test_a_corrected_file_without_precision_keeps_a_home_hidden(tmp_path, target):
    importing.import_file(_csv(tmp_path / "v1" / "homes.csv", HOME + HOME_ROW), target)
    corrected = "id,name,type,address,postcode\n"
    corrected += "home-001,Kitchen Table Club (Tuesdays),pantry,14 Acacia Avenue,PR8 2FF\n"
    result = importing.import_file(_csv(tmp_path / "v2" / "homes.csv", corrected), target)
    assert (result.new, result.updated) == (0, 1)
    home = store.read_projects(target).set_index("id").loc["homes:home-001"]
    assert home["location_precision"] == "ward_only"
    assert home["name"] == "Kitchen Table Club (Tuesdays)"
    exported = _exported_text(target)
    assert "Kitchen Table Club (Tuesdays)" in exported
    for secret in ("Acacia", "PR8 2FF", "PR82FF", f"{home['lat']:.4f}"):
        assert secret not in exported


def test_a_home_sent_again_in_a_file_of_another_name_stays_hidden(tmp_path, target):
    importing.import_file(_csv(tmp_path / "homes.csv", HOME + HOME_ROW), target)
    again = "id,name,type,address,postcode\n" + HOME_ROW.removesuffix(",ward_only\n") + "\n"
    again += "x9,Kitchen Table Club,pantry,14 Acacia Avenue,PR8 2FF\n"
    again += "x10,Church Hall Cafe,pantry,1 Hall Road,L1 8JQ\n"
    result = importing.import_file(_csv(tmp_path / "homes_v2.csv", again), target)
    assert result.new == 3
    precision = store.read_projects(target).set_index("id")["location_precision"]
    assert precision["homes-v2:home-001"] == precision["homes-v2:x9"] == "ward_only"
    assert precision["homes-v2:x10"] == "street"
    warned = result.issues[result.issues["reason"].str.contains("stored home-run")]
    assert sorted(warned["row"]) == [2, 3]
    assert "Acacia" not in _exported_text(target)


def test_lowering_ward_only_needs_the_column_and_is_reported(tmp_path, target):
    importing.import_file(_csv(tmp_path / "v1" / "homes.csv", HOME + HOME_ROW), target)
    lowered = HOME + HOME_ROW.replace("ward_only", "street")
    result = importing.import_file(_csv(tmp_path / "v2" / "homes.csv", lowered), target)
    assert store.read_projects(target)["location_precision"].tolist() == ["street"]
    line = result.issues.set_index("field").loc["location_precision", "reason"]
    assert "lowered from ward_only to street" in line
    assert "lowered from ward_only" in report.to_text(result)


def test_derived_ids_cannot_be_recovered_by_trying_every_postcode(tmp_path, target):
    """The issue's attack: the name, type and district are public; try each L26 postcode."""
    from kindred_map import ingest

    source = _csv(tmp_path / "homes.csv", "name,type,postcode\nHome Help,pantry,L26 0TY\n")
    importing.import_file(source, target)
    stored_id = store.read_projects(target)["id"].item()
    postcodes = boundaries.load("postcode")
    district = postcodes.loc[postcodes["postcode"].str.startswith("L26 "), "postcode"]
    assert "L26 0TY" in set(district)
    guesses = pd.DataFrame(
        {"name": "Home Help", "type": "pantry", "postcode": district.to_numpy()}
    ).assign(lat="", lon="", easting="", northing="")
    unsalted = "km-" + (
        guesses["name"].str.casefold() + "|pantry|" + guesses["postcode"].str.replace(" ", "")
    ).map(lambda text: hashlib.sha256(f"{text}||||".encode()).hexdigest()[:12])
    assert stored_id not in set(ingest.derive_ids(guesses)) | set(unsalted)
    # Only the store's secret reproduces it, and re-importing the same row gives it again.
    secret = store.read_secret(target)
    assert (ingest.derive_ids(guesses, secret) == stored_id).sum() == 1
    assert importing.import_file(source, target).unchanged == 1
    assert secret.hex() not in _exported_text(target)
    if isinstance(target, Path):
        assert gpkg.PRIVATE_TABLE not in set(pyogrio.list_layers(target)[:, 0])


def test_a_user_id_holding_a_postcode_is_replaced_in_outputs(tmp_path, target):
    rows = "id,name,postcode,location_precision\nHOME-L34 2AA,Knit and Natter,L34 2AA,ward_only\n"
    rows += "HOME-L34 2AB,Other Home,L34 2AA,ward_only\n"
    importing.import_file(_csv(tmp_path / "p.csv", rows), target, source="p")
    masked = privacy.public_records(store.read_projects(target))
    assert sorted(masked["id"]) == ["p:HOME-L34", "p:HOME-L34#2"]
    exported = _exported_text(target)
    assert "2AA" not in exported and "2AB" not in exported


def test_addresses_in_a_home_run_name_are_withheld_and_reported(tmp_path, target):
    rows = "name,organisation,postcode,location_precision\n"
    rows += '14 Acacia Avenue Lunch Club,"Flat 2, 3 Mill Lane group",PR8 2FF,ward_only\n'
    rows += "Community Hall Lunch,12 Church Road Trust,L1 8JQ,street\n"
    result = importing.import_file(_csv(tmp_path / "p.csv", rows), target)
    warned = result.issues[result.issues["reason"].str.contains("looks like an address")]
    assert sorted(warned["field"]) == ["name", "organisation"] and set(warned["row"]) == {2}
    masked = privacy.public_records(store.read_projects(target)).set_index("name")
    assert "[withheld] Lunch Club" in masked.index
    assert masked.loc["[withheld] Lunch Club", "organisation"] == "[withheld] group"
    # A public project's address is not a secret.
    assert masked.loc["Community Hall Lunch", "organisation"] == "12 Church Road Trust"


def test_two_partners_refs_are_six_projects_and_a_clash_is_refused(tmp_path, target):
    a = "Ref,name,postcode\n1,A pantry,L1 8JQ\n2,A cafe,L20 4RW\n3,A hub,L7 3HJ\n"
    b = "Ref,name,postcode\n1,B club,PR8 2FF\n2,B space,L34 2AA\n3,B lunch,L26 0TY\n"
    first = importing.import_file(_csv(tmp_path / "partner_a.csv", a), target)
    second = importing.import_file(_csv(tmp_path / "partner_b.csv", b), target)
    assert (first.new, second.new, second.updated) == (3, 3, 0)
    assert len(store.read_projects(target)) == 6
    again = importing.import_file(tmp_path / "partner_a.csv", target)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    # Same namespace, same ref, a different project far away: a report line, not an update.
    clash = "Ref,name,postcode\n1,Southport Soup,PR8 2FF\n2,A cafe (moved),L20 4RW\n"
    result = importing.import_file(_csv(tmp_path / "b" / "partner_a.csv", clash), target)
    assert (result.updated, result.rejected) == (1, 1)
    reason = result.issues.set_index("field").loc["id", "reason"]
    assert result.issues.set_index("field").loc["id", "row"] == 2
    assert "already stored for 'A pantry'" in reason and "not updated" in reason
    names = store.read_projects(target).set_index("id")["name"]
    assert names["partner-a:1"] == "A pantry" and names["partner-a:2"] == "A cafe (moved)"


def test_ids_stored_before_namespacing_are_kept(tmp_path, target):
    old = _csv(tmp_path / "first.csv", "id,name,postcode\na,Hub,L1 8JQ\n")
    projects, _ = join.join_file(old)
    store.write_store(projects, store.read_imports(target), target, "2025-01-01T00:00:00Z")
    _csv(old, "id,name,postcode\na,Hub renamed,L1 8JQ\nb,New,L1 8JQ\n")
    result = importing.import_file(old, target)
    assert (result.new, result.updated) == (1, 1)
    assert store.read_projects(target)["id"].tolist() == ["a", "first:b"]


# --- the store file (issue 9) -----------------------------------------------------------


def _ogrinfo_count(path: Path, layer: str, *bbox: float) -> int | None:
    """Features GDAL's ogrinfo counts (inside ``bbox`` through the R-tree, when given)."""
    if not shutil.which("ogrinfo"):
        return None
    spatial = ["-spat", *map(str, bbox)] if bbox else []
    out = subprocess.run(
        ["ogrinfo", "-so", *spatial, str(path), layer], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("Feature Count: ")[1].split()[0])


def test_new_stores_open_in_older_gdal_without_a_warning(tmp_path):
    """A store made by `store init`, by a first import and the shipped one are GeoPackage 1.2:
    Debian 12's ogrinfo (GDAL 3.6) warned on every open of the 1.4 the bundled GDAL makes."""
    made = {"init": tmp_path / "init.gpkg", "import": tmp_path / "import.gpkg"}
    store.init(made["init"])
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", made["import"])
    made["shipped"] = DATA_DIR / "projects.gpkg"
    for how, path in made.items():
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 10200, how
        layers = re.findall(r"^Layer name: (\w+)", _ogrinfo(path), re.MULTILINE)  # no warning
        assert layers == ["projects", "imports"], (how, layers)


def test_a_geopackage_with_other_layers_keeps_them(tmp_path):
    council = tmp_path / "council.gpkg"
    wards = boundaries.load("ward").head(5)
    pyogrio.write_dataframe(wards, council, layer="wards", driver="GPKG")
    result = importing.import_file(FIXTURES / "projects_utf8_bom.csv", council)
    layers = set(pyogrio.list_layers(council)[:, 0])
    assert {"wards", "projects", "imports"} <= layers
    assert len(pyogrio.read_dataframe(council, layer="wards")) == 5
    assert len(store.read_projects(council)) == result.new > 0
    assert _ogrinfo_count(council, "projects") in (None, result.new)
    # The spatial index GDAL keeps was filled by our in-place inserts, and its triggers are back.
    with sqlite3.connect(council) as conn:
        indexed = conn.execute("SELECT count(*) FROM rtree_projects_geom").fetchone()[0]
        triggers = conn.execute("SELECT group_concat(name) FROM sqlite_master").fetchone()[0]
    assert indexed == result.new
    assert "rtree_projects_geom_insert" in triggers and "feature_count_projects" in triggers
    inside = store.read_projects(council).cx[-3.0:-2.9, 53.35:53.45]
    assert 0 < len(inside) < result.new
    assert _ogrinfo_count(council, "projects", -3.0, 53.35, -2.9, 53.45) in (None, len(inside))
    with pytest.raises(ValueError, match="also holds the layers"):
        store.write_store(store.read_projects(council), store.read_imports(council), council, "x")


def _points_file(path: Path, count: int, seed: int, start: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["id,name,lat,lon"] + [
        f"p{i},Project {i},{rng.uniform(53.3, 53.6):.6f},{rng.uniform(-3.1, -2.6):.6f}"
        for i in range(start, start + count)
    ]
    return _csv(path, "\n".join(lines) + "\n")


@pytest.mark.parametrize("made_at", ["1.2", "1.4"])
def test_the_spatial_index_built_whole_or_by_inserts_holds_every_stored_point(tmp_path, made_at):
    """A batch at least as big as the index rebuilds it packed (`storage.rtree`), a smaller
    one inserts into it: either way it holds each stored point as SQLite's own R-tree
    triggers would put it there, passes ``rtreecheck``, and GDAL reads the layer by it. In a
    new store (GeoPackage 1.2) and in a file GDAL made at 1.4 (a store made before, or a
    council's GeoPackage), whose R-tree update triggers are others."""
    target = tmp_path / "projects.gpkg"
    if made_at == "1.4":
        wards = boundaries.load("ward").head(1)
        options = {"VERSION": made_at}
        pyogrio.write_dataframe(wards, target, layer="wards", dataset_options=options)
    versions = {"1.2": "rtree_projects_geom_update1", "1.4": "rtree_projects_geom_update7"}
    own_trigger = versions.pop(made_at)
    (other_trigger,) = versions.values()
    steps = [
        ("first", 3_000, 0, 3_000),  # a new store: packed
        ("first", 400, 2_900, 3_300),  # 300 new, 100 moved: inserted
        ("second", 4_000, 10_000, 7_300),  # more than is stored: packed again
    ]
    for seed, (name, count, start, stored) in enumerate(steps):
        importing.import_file(_points_file(tmp_path / f"{name}.csv", count, seed, start), target)
        with gpkg.connection(target) as conn:
            assert conn.execute("SELECT rtreecheck('rtree_projects_geom')").fetchone() == ("ok",)
            index = conn.execute("SELECT * FROM rtree_projects_geom ORDER BY id").fetchall()
            conn.execute("CREATE VIRTUAL TABLE temp.expected USING rtree(id, a, b, c, d)")
            conn.execute(
                "INSERT INTO temp.expected SELECT fid, ST_MinX(geom), ST_MaxX(geom), "
                "ST_MinY(geom), ST_MaxY(geom) FROM projects"
            )
            assert index == conn.execute("SELECT * FROM temp.expected ORDER BY id").fetchall()
            names = {entry for (entry,) in conn.execute("SELECT name FROM sqlite_master")}
        assert len(index) == stored
        assert own_trigger in names and other_trigger not in names  # its version's own
        inside = store.read_projects(target).cx[-3.0:-2.9, 53.35:53.45]
        assert 0 < len(inside) < stored
        assert _ogrinfo_count(target, "projects", -3.0, 53.35, -2.9, 53.45) in (None, len(inside))


def test_a_symlinked_store_is_written_through_and_modes_are_kept(tmp_path):
    real = tmp_path / "real" / "projects.gpkg"
    real.parent.mkdir()
    link = tmp_path / "projects.gpkg"
    link.symlink_to(real)
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", link)
    assert link.is_symlink() and real.is_file()
    assert real.stat().st_mode & 0o777 == gpkg.NEW_STORE_MODE == 0o600
    real.chmod(0o640)
    inode = real.stat().st_ino
    importing.import_file(FIXTURES / "messy_projects_cp1252.csv", link)
    assert real.stat().st_mode & 0o777 == 0o640
    assert real.stat().st_ino == inode  # grown in place, not replaced
    assert sorted(p.name for p in real.parent.iterdir()) == ["projects.gpkg"]


@pytest.mark.parametrize(
    "text", ["id,name,postcode\n", "name,postcode\nHub,ZZ99 9ZZ\n"], ids=["header", "rejected"]
)
def test_an_import_that_imports_nothing_leaves_the_store_bytes(tmp_path, text, capsys):
    target = tmp_path / "projects.gpkg"
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before, stat = _sha(target), target.stat()
    source = _csv(tmp_path / "nothing.csv", text)
    assert cli.main(["import", str(source), "--store", str(target)]) == 1
    assert _sha(target) == before and target.stat().st_mtime_ns == stat.st_mtime_ns
    assert not (tmp_path / "new.gpkg").exists()
    assert importing.import_file(source, tmp_path / "new.gpkg").imported == 0
    assert not (tmp_path / "new.gpkg").exists()


def test_leftovers_of_a_killed_import_are_cleaned_on_the_next_open(tmp_path):
    target = tmp_path / "projects.gpkg"
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    before, written = store.read_projects(target), _sha(target)
    stale = [tmp_path / ".projects.k1ll3d.gpkg", tmp_path / ".projects.k1ll3d.gpkg-journal"]
    for path in stale:
        path.write_bytes(b"half a store")
    # A child process starts a batch and is killed with SIGKILL before it commits; a one-page
    # cache makes SQLite write changed pages into the store file first (a hot journal).
    script = (
        "import os, signal, sqlite3, sys\n"
        "from kindred_map.storage import geopackage\n"
        "with geopackage.connection(sys.argv[1]) as conn:\n"
        "    conn.execute('PRAGMA cache_size=1')\n"
        "    conn.execute('BEGIN IMMEDIATE')\n"
        "    conn.execute('DELETE FROM projects')\n"
        "    conn.execute(\"UPDATE imports SET file = 'overwritten'\")\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env={**os.environ, "PYTHONPATH": str(Path(store.__file__).parents[1])},
        check=False,
    )
    assert child.returncode == -signal.SIGKILL
    assert Path(f"{target}-journal").exists() and _sha(target) != written
    after = store.read_projects(target)
    pd.testing.assert_frame_equal(pd.DataFrame(before), pd.DataFrame(after))
    assert store.read_imports(target)["file"].tolist() == ["projects_utf8_bom.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["projects.gpkg"]


def test_new_schema_fields_are_added_to_an_old_store(tmp_path, monkeypatch, target):
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    # "funder": a field no schema has yet, added to a store made before it
    monkeypatch.setattr(records, "STORE_FIELDS", (*records.STORE_FIELDS, "funder"))
    projects = store.read_projects(target)
    assert projects["funder"].eq("").all()
    projects.loc[0, "funder"] = "lottery"
    store.upsert(projects.head(1), target)
    assert store.read_projects(target).loc[0, "funder"] == "lottery"
    if isinstance(target, Path):
        assert "funder" in pyogrio.read_info(target, layer="projects")["fields"]


def test_a_store_that_is_not_a_geopackage_is_refused_untouched(tmp_path, capsys):
    target = _csv(tmp_path / "store.gpkg", "not a GeoPackage")
    source = FIXTURES / "projects_utf8_bom.csv"
    assert cli.main(["import", str(source), "--store", str(target)]) == 2
    err = capsys.readouterr().err
    assert "store.gpkg is not a GeoPackage" in err and str(tmp_path) not in err
    assert target.read_text() == "not a GeoPackage"


def test_public_ids_stay_unique_in_the_order_of_the_original_ids():
    ids = pd.Series(["b-L34 2AA", "a-L34 2AA", "kept", "b-L34", "c-L34 9ZZ", "b-L34 2AA x"])
    public = privacy.public_ids(ids)
    assert public.tolist() == ["b-L34#2", "a-L34", "kept", "b-L34", "c-L34", "b-L34 x"]
    many = pd.Series([f"home-L34 {n % 10}AA" for n in range(2_000)])
    assert privacy.public_ids(many).is_unique
    assert not privacy.public_ids(many).str.contains(r"L34 \dAA").any()


def test_the_spatial_index_holds_each_rows_own_point_after_imports_in_place(tmp_path):
    target = tmp_path / "projects.gpkg"
    first = importing.import_file(FIXTURES / "projects_utf8_bom.csv", target)
    second = importing.import_file(FIXTURES / "dashboard_projects.csv", target)
    assert first.new > 0 and second.new > 0
    with sqlite3.connect(target) as conn:
        rows = conn.execute(
            "SELECT p.lon, p.lat, r.minx, r.maxx, r.miny, r.maxy FROM projects p "
            "JOIN rtree_projects_geom r ON r.id = p.fid"
        ).fetchall()
        placed = conn.execute("SELECT count(*) FROM projects WHERE geom IS NOT NULL").fetchone()[0]
    assert len(rows) == placed == len(store.read_projects(target).dropna(subset=["lon"]))
    # Each entry bounds its own row's point (R-tree bounds are float32, rounded outward).
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y, x0, x1, y0, y1 in rows)
    assert len({(x0, y0) for _, _, x0, _, y0, _ in rows}) > 1


@pytest.mark.parametrize("extra", [None, "empty", "line", "3d"])
def test_geometry_blobs_are_the_geopackage_header_and_wkb(extra):
    # Points are packed in one array; anything else goes through shapely's WKB: both must
    # give the GeoPackage blob GDAL reads (header, srs id, little-endian WKB).
    geometries = [shapely.Point(-2.983, 53.4), shapely.Point(-0.0, 0.0), shapely.Point(1e300, -3)]
    geometries += {
        None: [],
        "empty": [shapely.Point(), None],
        "line": [shapely.LineString([(0, 0), (1, 1)])],
        "3d": [shapely.Point(1, 2, 3)],
    }[extra]
    header = b"GP\x00\x01" + (27700).to_bytes(4, "little")
    expected = [
        None if g is None or g.is_empty else header + shapely.to_wkb(g, byte_order=1)
        for g in geometries
    ]
    assert gpkg.gpkg_geometries(np.array(geometries, dtype=object), 27700) == expected
