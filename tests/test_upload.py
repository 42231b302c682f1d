"""Uploads: a preview stores nothing, a save upserts; the store path from the environment."""

import tomllib
from pathlib import Path

from kindred_map import (
    ingest,
    store,
    upload,
)
from kindred_map.paths import PROJECT_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"


def test_preview_does_not_store_and_save_upserts(tmp_path):
    target = tmp_path / "store.gpkg"
    data = FIXTURE.read_bytes()
    preview, report = upload.prepare_upload("projects.csv", data, target)
    assert not target.exists()
    assert report.rows_read == 13 and report.rejected == 1 and len(preview) == 12
    assert "ZZ1 1ZZ" in " ".join(report.issues["reason"])
    planned = upload.outcome(upload.plan_upload(preview, report, target))
    assert not target.exists()
    saved = upload.save_upload("projects.csv", data, target)
    assert upload.outcome(saved) == planned
    assert saved.new == 12 and len(store.read_projects(target)) == 12
    preview, report = upload.prepare_upload("projects.csv", data, target)
    planned = upload.outcome(upload.plan_upload(preview, report, target))
    again = upload.save_upload("projects.csv", data, target)
    assert again.new == 0 and again.unchanged == 12 and upload.outcome(again) == planned
    assert store.read_imports(target)["file"].tolist() == ["projects.csv", "projects.csv"]


def test_store_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(upload.STORE_ENV, str(tmp_path / "x.gpkg"))
    assert upload.store_path() == tmp_path / "x.gpkg"
    monkeypatch.delenv(upload.STORE_ENV)
    assert upload.store_path() == Path(store.DEFAULT_STORE)


def test_an_uploaded_name_never_becomes_a_path_as_given(tmp_path):
    data = FIXTURE.read_bytes()
    long_name = "ä" * 300 + ".csv"
    preview, report = upload.prepare_upload(long_name, data, tmp_path / "none.gpkg")
    assert report.rows_read == 13 and len(preview) == 12
    assert upload.safe_file_name(long_name) == "a" * upload.NAME_MAX_CHARS + ".csv"
    for hostile in ("../../etc/passwd.csv", "..\\\\x\\\\y.CSV", "\x00.csv", "..", ""):
        safe = upload.safe_file_name(hostile)
        assert "/" not in safe and "\\" not in safe and "\x00" not in safe
        assert safe not in ("", ".", "..") and len(safe.encode()) <= 255
    assert upload.safe_file_name("../../etc/passwd.csv") == "passwd.csv"
    assert upload.safe_file_name("Café list (May).XLSX") == "Cafe list (May).xlsx"
    target = tmp_path / "store.gpkg"
    upload.save_upload("x" * 300 + ".csv", data, target)
    assert store.read_imports(target)["file"].tolist() == ["x" * upload.NAME_MAX_CHARS + ".csv"]


def test_the_upload_box_states_the_imports_own_size_limit():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    # Streamlit shows "Limit <maxUploadSize>MB per file" (issue 20: it said 200MB).
    assert config["server"]["maxUploadSize"] * 1_000_000 == ingest.MAX_FILE_BYTES
