"""Uploads and the store: preview or save an uploaded file, where the store is."""

import contextlib
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


def preview_upload(name: str, data: bytes, mapping: Mapping | None = None):
    """Read, check, place and join an uploaded file without storing it: (projects, report)."""
    from kindred_map import join

    with _as_file(name, data) as path:
        return join.join_file(path, dict(mapping or {}))


def save_upload(name: str, data: bytes, store: Setting, mapping: Mapping | None = None, **options):
    """Import an uploaded file into the store (upsert by id, logged); returns the report.

    ``options`` go to `kindred_map.store.import_file` (``who``, ``choices``)."""
    from kindred_map import store as stores

    with _as_file(name, data) as path:
        return stores.import_file(path, resolve(store), dict(mapping or {}), **options)


def upload_columns(name: str, data: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """An uploaded file's columns and which record field each feeds as recognised."""
    from kindred_map import ingest

    with _as_file(name, data) as path:
        columns = list(ingest.read_table(path).frame.columns)
    return [c for c in columns if c != "row"], ingest.recognise_columns(columns)


def upload_duplicates(name: str, data: bytes, store: Setting, mapping: Mapping | None = None):
    """Likely duplicates of an uploaded file's rows among stored projects
    (`kindred_map.duplicates.find_in_file`)."""
    from kindred_map import duplicates

    with _as_file(name, data) as path:
        return duplicates.find_in_file(path, resolve(store), dict(mapping or {}))


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
