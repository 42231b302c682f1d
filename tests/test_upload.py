"""Uploads: a preview stores nothing, a save upserts; the store path from the environment."""

from pathlib import Path

from kindred_map import (
    location,
    store,
    upload,
)
from kindred_map.paths import DEFAULT_STORE

FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"


def test_preview_does_not_store_and_save_upserts(tmp_path):
    target = tmp_path / "store.gpkg"
    data = FIXTURE.read_bytes()
    preview, report = upload.preview_upload("projects.csv", data)
    assert not target.exists()
    assert report.rows_read == 13 and report.rejected == 1 and len(preview) == 12
    assert "ZZ1 1ZZ" in " ".join(report.issues["reason"])
    saved = upload.save_upload("projects.csv", data, target)
    assert saved.new == 12 and len(store.read_projects(target)) == 12
    again = upload.save_upload("projects.csv", data, target)
    assert again.new == 0 and again.unchanged == 12
    assert store.read_imports(target)["file"].tolist() == ["projects.csv", "projects.csv"]


def test_the_store_follows_the_environment_read_at_each_call(monkeypatch, tmp_path):
    monkeypatch.setenv(location.STORE_ENV, str(tmp_path / "x.gpkg"))
    assert upload.store_signature() == (location.StoreLocation(path=tmp_path / "x.gpkg"), 0, 0)
    monkeypatch.delenv(location.STORE_ENV)
    assert upload.store_signature()[0].path == DEFAULT_STORE


def test_an_uploaded_name_never_becomes_a_path_as_given(tmp_path):
    data = FIXTURE.read_bytes()
    long_name = "ä" * 300 + ".csv"
    preview, report = upload.preview_upload(long_name, data)
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
