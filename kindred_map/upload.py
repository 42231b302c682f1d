"""Uploads and the store: preview or save an uploaded file, where the store is."""

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from kindred_map.paths import DEFAULT_STORE

STORE_ENV = "KINDRED_MAP_STORE"


NAME_MAX_CHARS = 80
"""Longest stem kept from an uploaded file's name (file systems allow 255 bytes)."""
SUFFIX_MAX_CHARS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+-]+")


def safe_file_name(name: str) -> str:
    """An uploaded file's name made safe to use as a file name: the last path part, accents
    folded to ASCII, anything but letters, digits, spaces and ``._()+-`` replaced by ``_``,
    no leading dots, the stem cut to NAME_MAX_CHARS characters (the suffix kept, as readers
    go by it); "upload" when nothing is left.

    The browser sends the name: it is data, so it never becomes a path as given (a
    300-character name, ``../``, NUL or a Windows device name cannot reach the file system)."""
    last = re.split(r"[/\\]", str(name or ""))[-1]
    folded = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", folded).strip(" .")
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or len(suffix) > SUFFIX_MAX_CHARS:
        stem, suffix = cleaned, ""
    stem = stem[:NAME_MAX_CHARS].strip(" .") or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


@contextlib.contextmanager
def _as_file(name: str, data: bytes):
    """The uploaded bytes as a file in a temporary folder, named by `safe_file_name`."""
    with tempfile.TemporaryDirectory(prefix="kindred-upload-") as folder:
        path = Path(folder) / safe_file_name(name)
        path.write_bytes(data)
        yield path


def prepare_upload(
    name: str,
    data: bytes,
    store: Path | str,
    mapping: Mapping | None = None,
    constants: Mapping | None = None,
):
    """Read, check, place and join an uploaded file as an import into ``store`` would (the
    store's id key, the file name's id namespace), storing nothing: (projects with
    `kindred_map.join.PRIVATE_COLUMNS`, report). The dashboard does this once per file,
    mapping and constants; the duplicate check and `plan_upload` start from it."""
    from kindred_map import ingest, join
    from kindred_map import store as stores

    location = stores.locate(store)
    with _as_file(name, data) as path:
        return join.prepare_file(
            path,
            dict(mapping or {}),
            secret=stores.read_secret(location),
            namespace=ingest.id_namespace(path.stem),
            constants=dict(constants or {}),
        )


def id_key(store: Path | str) -> str:
    """A fingerprint of the store's id secret ("" while it has none): derived ids depend on
    it, so an upload prepared before the store had one must be prepared again (a cache key;
    the secret itself never leaves the store)."""
    from kindred_map import store as stores

    secret = stores.read_secret(stores.locate(store))
    return hashlib.sha256(secret).hexdigest()[:16] if secret else ""


def upload_duplicates(projects, store: Path | str):
    """Likely duplicates (`kindred_map.duplicates.likely_duplicates`) of prepared rows among
    the store's projects, retired ones included (a closed project sent again is worth a look)."""
    from kindred_map import duplicates
    from kindred_map import store as stores

    stored = stores.read_projects(stores.locate(store), include_retired=True)
    return duplicates.likely_duplicates(projects, stored)


def plan_upload(projects, report, store: Path | str, choices: Mapping | None = None):
    """What saving the prepared rows with these duplicate ``choices`` will do: the report with
    its counts (`kindred_map.store.plan_import`), nothing written."""
    from kindred_map import store as stores

    return stores.plan_import(projects, report, stores.locate(store), dict(choices or {}))


def save_upload(name: str, data: bytes, store: Path, mapping: Mapping | None = None, **options):
    """Import an uploaded file into the store (upsert by id, logged); returns the report.

    ``options`` go to `kindred_map.store.import_file` (``who``, ``choices``, ``constants``)."""
    from kindred_map import store as stores

    with _as_file(name, data) as path:
        return stores.import_file(path, stores.locate(store), dict(mapping or {}), **options)


def outcome(report) -> dict[str, int]:
    """The counts an upload's Save makes (or, from `plan_upload`, will make): new, merged,
    skipped, updated, unchanged projects and rejected rows (merged ones are also among the
    updated or unchanged; skipped rows among the rejected)."""
    return {
        "new": report.new or 0,
        "merged": report.merged or 0,
        "skipped": report.skipped or 0,
        "updated": report.updated or 0,
        "unchanged": report.unchanged or 0,
        "rejected": report.rejected,
    }


def outcome_text(counts: Mapping[str, int], done: bool) -> str:
    """`outcome` in words: before Save ("Save will make: ...", ``done`` False) or after it
    ("Saved: ...") in the same words, so the two can be compared."""
    return (
        f"{'Saved' if done else 'Save will make'}: {counts['new']:,} new, {counts['merged']:,} "
        f"merged into the stored project each duplicates, {counts['skipped']:,} skipped. "
        f"Stored projects updated: {counts['updated']:,}, unchanged: {counts['unchanged']:,} "
        f"(merged ones included); rows rejected: {counts['rejected']:,} (skipped ones included)."
    )


def upload_columns(name: str, data: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """An uploaded file's columns and which record field each feeds as recognised."""
    from kindred_map import ingest

    with _as_file(name, data) as path:
        columns = list(ingest.read_table(path).frame.columns)
    return [c for c in columns if c != "row"], ingest.recognise_columns(columns)


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
