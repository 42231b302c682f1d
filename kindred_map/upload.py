"""Uploads and the store: preview or save an uploaded file, where the store is."""

import contextlib
import hashlib
import re
import unicodedata
from collections.abc import Mapping

from kindred_map import files
from kindred_map.location import Setting, StoreLocation, resolve

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


UPLOAD_SUFFIXES = (".csv", ".xlsx")
"""What the dashboard's uploader takes (the command line reads more: `kindred-map import`)."""


def name_problem(name: str) -> str:
    """Why an uploaded file's name, as the browser sent it, is not taken ("" if it is): a NUL
    byte (an invisible character no file name may hold), or not a CSV or XLSX file."""
    shown = safe_file_name(name)
    if "\x00" in str(name):
        return (
            f"The file's name holds a NUL byte (an invisible character no file name may hold): "
            f"rename it (for example to {shown}) and upload it again."
        )
    if not str(name).lower().endswith(UPLOAD_SUFFIXES):
        return f"{shown} is not a CSV or XLSX file: save it as .csv or .xlsx and upload it again."
    return ""


@contextlib.contextmanager
def _as_file(name: str, data: bytes):
    """The uploaded bytes as a file in a temporary folder (`files.work_folder`: removed at the
    next start if the server is killed meanwhile), named by `safe_file_name`."""
    with files.work_folder("upload-") as folder:
        path = folder / safe_file_name(name)
        path.write_bytes(data)
        yield path


def prepare_upload(
    name: str,
    data: bytes,
    store: Setting,
    mapping: Mapping | None = None,
    constants: Mapping | None = None,
):
    """Read, check, place and join an uploaded file as an import into ``store`` would (the
    store's id key, the file name's id namespace), storing nothing: (projects with
    `kindred_map.join.PRIVATE_COLUMNS`, report). The dashboard does this once per file,
    mapping and constants; the duplicate check and `plan_upload` start from it."""
    from kindred_map import ingest, join
    from kindred_map import store as stores

    location = resolve(store)
    with _as_file(name, data) as path:
        return join.prepare_file(
            path,
            dict(mapping or {}),
            secret=stores.read_secret(location),
            namespace=ingest.id_namespace(path.stem),
            constants=dict(constants or {}),
        )


def id_key(store: Setting) -> str:
    """A fingerprint of the store's id secret ("" while it has none): derived ids depend on
    it, so an upload prepared before the store had one must be prepared again (a cache key;
    the secret itself never leaves the store)."""
    from kindred_map import store as stores

    secret = stores.read_secret(resolve(store))
    return hashlib.sha256(secret).hexdigest()[:16] if secret else ""


def upload_duplicates(projects, store: Setting):
    """Likely duplicates (`kindred_map.duplicates.likely_duplicates`) of prepared rows among
    the store's projects, retired ones included (a closed project sent again is worth a look)."""
    from kindred_map import duplicates
    from kindred_map import store as stores

    stored = stores.read_projects(resolve(store), include_retired=True)
    return duplicates.likely_duplicates(projects, stored)


def plan_upload(projects, report, store: Setting, choices: Mapping | None = None):
    """What saving the prepared rows with these duplicate ``choices`` will do: the report with
    its counts (`kindred_map.store.plan_import`), nothing written."""
    from kindred_map import store as stores

    return stores.plan_import(projects, report, resolve(store), dict(choices or {}))


def save_upload(name: str, data: bytes, store: Setting, mapping: Mapping | None = None, **options):
    """Import an uploaded file into the store (upsert by id, logged); returns the report.

    ``options`` go to `kindred_map.store.import_file` (``who``, ``choices``, ``constants``)."""
    from kindred_map import store as stores

    with _as_file(name, data) as path:
        return stores.import_file(path, resolve(store), dict(mapping or {}), **options)


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


def store_signature(location: Setting = None) -> tuple[StoreLocation, int, int]:
    """(location, modification time, size) of a GeoPackage, (location, rows, last writing
    transaction) of a PostGIS store: changes whenever the store is written. The location (the
    configured store by default, `kindred_map.location.resolve`) is what the pages read."""
    from kindred_map import pgstore

    location = resolve(location)
    if location.is_postgis:
        return (location, *pgstore.signature(location))
    try:
        stat = location.path.stat()
    except FileNotFoundError:
        return location, 0, 0
    return location, stat.st_mtime_ns, stat.st_size
