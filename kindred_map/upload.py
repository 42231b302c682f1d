"""Uploads and the store: preview or save an uploaded file, where the store is."""

import contextlib
import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping

from kindred_map import files, importing, ingest
from kindred_map import store as stores
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


PREPARED_KEPT = 4
"""Prepared uploads kept in memory (`prepare_upload`), so that Save stores what the preview
read instead of reading the file again; as many as the dashboard's own cache keeps."""
_prepared: OrderedDict = OrderedDict()
_prepared_lock = threading.Lock()


def _upload_key(name: str, digest: str, location, mapping, constants) -> tuple:
    """What a prepared upload depends on besides the store's id secret (checked on use)."""
    return (
        name,
        digest,
        location,
        tuple(sorted(mapping.items())),
        tuple(sorted(constants.items())),
    )


def _prepare(name: str, data: bytes, location, mapping: dict, constants: dict, secret):
    """The upload read and joined once (`kindred_map.importing.prepare`), and kept."""
    digest = hashlib.sha256(data).hexdigest()
    with _as_file(name, data) as path:
        prepared = importing.prepare(path, secret, mapping, constants=constants, sha256=digest)
    with _prepared_lock:
        _prepared[_upload_key(name, digest, location, mapping, constants)] = prepared
        while len(_prepared) > PREPARED_KEPT:
            _prepared.popitem(last=False)
    return prepared


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
    mapping and constants; the duplicate check, `plan_upload` and `save_upload` start from it."""
    location = resolve(store)
    secret = stores.read_secret(location)
    prepared = _prepare(name, data, location, dict(mapping or {}), dict(constants or {}), secret)
    return prepared.projects, prepared.report


def id_key(store: Setting) -> str:
    """A fingerprint of the store's id secret ("" while it has none): derived ids depend on
    it, so an upload prepared before the store had one must be prepared again (a cache key;
    the secret itself never leaves the store)."""
    secret = stores.read_secret(resolve(store))
    return hashlib.sha256(secret).hexdigest()[:16] if secret else ""


def upload_duplicates(projects, store: Setting):
    """Likely duplicates (`kindred_map.importing.likely_duplicates`) of prepared rows among
    the store's projects, retired ones included (a closed project sent again is worth a look)."""
    return importing.likely_duplicates(projects, resolve(store))


def plan_upload(projects, report, store: Setting, choices: Mapping | None = None):
    """What saving the prepared rows with these duplicate ``choices`` will do: the report with
    its counts (`kindred_map.store.plan_import`), nothing written."""
    return stores.plan_import(projects, report, resolve(store), dict(choices or {}))


def save_upload(
    name: str,
    data: bytes,
    store: Setting,
    mapping: Mapping | None = None,
    who: str = "",
    choices: Mapping | None = None,
    constants: Mapping | None = None,
):
    """Import an uploaded file into the store (upsert by id, logged); returns the report.

    The rows `prepare_upload` prepared for this file, mapping, constants and store are stored
    as they are when the store's id secret is still the one they were keyed with (the file is
    not read again); otherwise the file is prepared again first. ``who`` and ``choices`` go to
    `kindred_map.store.import_prepared`."""
    location = resolve(store)
    mapping, constants = dict(mapping or {}), dict(constants or {})
    digest = hashlib.sha256(data).hexdigest()
    with _prepared_lock:
        prepared = _prepared.get(_upload_key(name, digest, location, mapping, constants))
    secret = stores.read_secret(location)
    if prepared is None or prepared.secret is None or prepared.secret != secret:
        secret = stores.import_secret(location)
        prepared = _prepare(name, data, location, mapping, constants, secret)
    return importing.store_prepared(prepared, location, who, dict(choices or {}))


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
    with _as_file(name, data) as path:
        columns = list(ingest.read_table(path).frame.columns)
    return [c for c in columns if c != "row"], ingest.recognise_columns(columns)


def store_signature(location: Setting = None) -> tuple[StoreLocation, int, int]:
    """(location, modification time, size) of a GeoPackage, (location, rows, last writing
    transaction) of a PostGIS store (`kindred_map.store.signature`): changes whenever the store
    is written. The location (the configured store by default, `kindred_map.location.resolve`)
    is what the pages read."""
    return stores.signature(location)
