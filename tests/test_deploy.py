"""deploy/ as shipped: the Caddyfile and systemd units are valid, and the nightly backup
restores to an identical store (the README's restore, run against the test's PostgreSQL)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pg_admin import admin, database

from kindred_map import store
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
CI = os.environ.get("CI", "").strip().lower() == "true"


def _tool(name: str) -> str:
    """The path of command ``name``; skipped without it (failed under CI=true)."""
    found = shutil.which(name)
    if not found:
        if CI:
            pytest.fail(f"{name} not found; CI=true, so deployment checks must run")
        pytest.skip(f"{name} not found")
    return found


def test_the_caddyfile_is_valid_for_a_public_name_and_for_tls_internal(tmp_path):
    caddy = _tool("caddy")
    for address, tls in (("map.charity.org.uk", "it@charity.org.uk"), ("localhost", "internal")):
        env = os.environ | {
            "KINDRED_MAP_ADDRESS": address,
            "KINDRED_MAP_TLS": tls,
            "HOME": str(tmp_path),
            "XDG_DATA_HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path),
        }
        done = subprocess.run(
            [caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]


def test_the_systemd_units_verify(tmp_path):
    """systemd-analyze verify, with /opt/kindred-map standing for this checkout."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:  # not every CI machine boots systemd; the units are plain text then
        pytest.skip("systemd-analyze not found")
    venv_bin = Path(sys.executable).parent
    units = []
    for name in (
        "kindred-map.service",
        "kindred-map-api.service",
        "kindred-map-backup.service",
        "kindred-map-backup.timer",
    ):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        text = text.replace("/opt/kindred-map/.venv/bin", str(venv_bin))
        text = text.replace("/opt/kindred-map", str(PROJECT_ROOT))
        (tmp_path / name).write_text(text, encoding="utf-8")
        units.append(str(tmp_path / name))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr


def test_a_backup_restores_to_an_identical_store(pg_store, tmp_path):
    """deploy/backup (what the timer runs) then the README's restore into a new database:
    every project, import and history event comes back."""
    _tool("pg_dump")
    store.copy(DEFAULT_STORE, pg_store)
    env = os.environ | {
        "KINDRED_MAP_STORE": pg_store,
        "KINDRED_MAP_BACKUPS": str(tmp_path / "backups"),
        "KINDRED_MAP_BACKUP_DAYS": "14",
    }
    done = subprocess.run(
        [str(DEPLOY / "backup")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    (dump,) = (tmp_path / "backups").glob("kindred-map-*.dump")
    assert not list((tmp_path / "backups").glob(".*.part"))
    server = urlsplit(pg_store)._replace(path="/postgres").geturl()
    name = urlsplit(pg_store).path.lstrip("/") + "_restored"
    admin(server, f"CREATE DATABASE {name}")
    restored = database(server, name)
    try:
        admin(restored, "CREATE EXTENSION postgis")  # as the README: a superuser's step
        done = subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", restored, str(dump)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        for read in (store.read_projects, store.read_imports, store.read_history):
            before, after = read(pg_store), read(restored)
            assert len(before) > 0
            assert before.equals(after), read.__name__
    finally:
        admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
