"""Uploads: a preview stores nothing, a save upserts; the store path from the environment."""

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kindred_map import (
    files,
    importing,
    ingest,
    join,
    location,
    store,
    upload,
)
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

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


def _no_reading(*args, **kwargs):
    raise AssertionError("the file was read again")


def test_save_stores_what_the_preview_prepared_without_reading_the_file_again(
    tmp_path, monkeypatch
):
    target = tmp_path / "store.gpkg"
    store.init(target)  # a store with its id key: the preview's derived ids are the saved ones
    data = FIXTURE.read_bytes()
    preview, report = upload.prepare_upload("projects.csv", data, target)
    monkeypatch.setattr(join, "prepare_file", _no_reading)
    saved = upload.save_upload("projects.csv", data, target, who="ann")
    assert saved.new == 12 and sorted(store.read_projects(target)["id"]) == sorted(preview["id"])
    log = store.read_imports(target).iloc[0]
    assert log["file_sha256"] == hashlib.sha256(data).hexdigest() and log["who"] == "ann"
    with pytest.raises(AssertionError, match="read again"):  # another mapping: read again
        upload.save_upload("projects.csv", data, target, {"name": "organisation"})


def test_a_preview_made_before_the_store_had_its_id_key_is_prepared_again(tmp_path):
    target = tmp_path / "store.gpkg"  # new: no id key until its first import stores one
    data = FIXTURE.read_bytes()
    upload.prepare_upload("projects.csv", data, target)
    assert upload.save_upload("projects.csv", data, target).new == 12
    key = store.read_secret(target)
    assert key is not None
    again = importing.import_file(_written(tmp_path / "projects.csv", data), target)
    assert again.unchanged == 12 and again.new == 0  # the derived ids were keyed with the key
    assert store.read_secret(target) == key


def test_an_import_keyed_with_a_key_the_store_no_longer_has_is_prepared_again(
    tmp_path, monkeypatch
):
    target = tmp_path / "store.gpkg"
    path = _written(tmp_path / "projects.csv", FIXTURE.read_bytes())
    first = importing.import_file(path, target)
    key = store.read_secret(target)
    # As if another import stored its key while this one was preparing the file with its own
    stale = importing.prepare(path, b"another key" * 3)
    with pytest.raises(store.IdKeyChanged):
        importing.store_prepared(stale, target)
    assert len(store.read_imports(target)) == 1  # nothing written
    monkeypatch.setattr(store, "import_secret", lambda location: b"another key" * 3)
    again = importing.import_file(path, target)
    assert first.new == 12 and again.unchanged == 12 and store.read_secret(target) == key


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_store_follows_the_environment_read_at_each_call(monkeypatch, tmp_path):
    monkeypatch.setenv(location.STORE_ENV, str(tmp_path / "x.gpkg"))
    assert upload.store_signature() == (location.StoreLocation(path=tmp_path / "x.gpkg"), 0, 0)
    monkeypatch.delenv(location.STORE_ENV)
    assert upload.store_signature()[0].path == DEFAULT_STORE


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


KILLED_MID_UPLOAD = """
import os, signal, sys
from pathlib import Path
from kindred_map import files, upload
files.WORK_ROOT = Path(sys.argv[1])
with upload._as_file("partner.csv", b"name,postcode\\nHome,L13 0AA\\n") as path:
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_servers_uploads_are_removed_at_the_next_start(tmp_path, monkeypatch):
    """A dashboard killed while it reads an upload leaves the file (it may hold home
    addresses); the next start (`files.clean_work_folders`, run by app.py) removes it, and
    keeps the folder of a server still running."""
    monkeypatch.setattr(files, "WORK_ROOT", tmp_path / "work")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_UPLOAD, str(files.WORK_ROOT)],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9
    left = Path(killed.stdout.strip())
    assert left.read_text() == "name,postcode\nHome,L13 0AA\n"
    assert left.is_relative_to(files.WORK_ROOT)
    with files.work_folder("upload-") as running:  # this process: still running
        assert files.clean_work_folders() == [
            files.WORK_ROOT / left.relative_to(files.WORK_ROOT).parts[0]
        ]
        assert not left.exists() and running.is_dir()
    assert (files.WORK_ROOT / str(os.getpid())).is_dir()


def test_the_upload_box_states_the_imports_own_size_limit():
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    # Streamlit shows "Limit <maxUploadSize>MB per file" (issue 20: it said 200MB).
    assert config["server"]["maxUploadSize"] * 1_000_000 == ingest.MAX_FILE_BYTES
