"""Uploads and the store: preview or save an uploaded file, where the store is."""

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kindred_map.paths import DEFAULT_STORE

STORE_ENV = "KINDRED_MAP_STORE"


@contextlib.contextmanager
def _as_file(name: str, data: bytes):
    """The uploaded bytes as a file of the same name in a temporary folder."""
    safe = Path(str(name)).name or "upload"
    with tempfile.TemporaryDirectory(prefix="kindred-upload-") as folder:
        path = Path(folder) / safe
        path.write_bytes(data)
        yield path


def preview_upload(name: str, data: bytes, mapping: Mapping | None = None):
    """Read, check, place and join an uploaded file without storing it: (projects, report)."""
    from kindred_map import join

    with _as_file(name, data) as path:
        return join.join_file(path, dict(mapping or {}))


def save_upload(name: str, data: bytes, store: Path, mapping: Mapping | None = None):
    """Import an uploaded file into the store (upsert by id, logged); returns the report."""
    from kindred_map import store as stores

    with _as_file(name, data) as path:
        return stores.import_file(path, stores.locate(store), dict(mapping or {}))


def store_path() -> Path | str:
    """The project store: env KINDRED_MAP_STORE (read now, not at import), else the default;
    a ``postgresql://`` DSN names a PostGIS store."""
    from kindred_map import store

    configured = os.environ.get(STORE_ENV, "").strip()
    return store.locate(configured or DEFAULT_STORE)


def store_signature(path: Path | str) -> tuple[str, int, int]:
    """(path, modification time, size) of a GeoPackage, (DSN, rows, last writing transaction)
    of a PostGIS store: changes whenever the store is written."""
    from kindred_map import pgstore

    if pgstore.is_dsn(path):
        return (path, *pgstore.signature(path))
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return str(path), 0, 0
    return str(path), stat.st_mtime_ns, stat.st_size
