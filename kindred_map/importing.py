"""Importing a partner's file: read, check, place, join, then store (the pipeline above the store).

`prepare` reads the file once and gives the records and report an import would store (the
store's id secret and the file's id namespace applied); `kindred_map.store.import_prepared`
writes them, deciding under its lock what each row changes. `import_file` does both; the
dashboard prepares an upload once, previews it (`likely_duplicates`,
`kindred_map.store.plan_import`) and saves what it prepared (`kindred_map.upload`).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd

from kindred_map import duplicates, ingest, join
from kindred_map import store as stores
from kindred_map.location import Setting, resolve
from kindred_map.paths import BOUNDARIES_DIR
from kindred_map.report import ImportReport


@dataclass(frozen=True)
class Prepared:
    """A file read and joined for an import: ``projects`` (store fields and
    `kindred_map.join.PRIVATE_COLUMNS`), its ``report``, the ``secret`` its derived ids are
    keyed with, the id ``namespace``, and the log's ``file`` name and ``sha256``."""

    projects: gpd.GeoDataFrame
    report: ImportReport
    secret: bytes | None
    namespace: str
    file: str
    sha256: str

    def log_entry(self) -> dict:
        """The import log's file fields (the store adds the counts)."""
        return {
            "file": self.file,
            "file_sha256": self.sha256,
            "note": f"ids namespaced {self.namespace!r}",
        }


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks (a large file is not held in memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(
    path: Path,
    secret: bytes | None,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
    source: str | None = None,
    constants: dict | None = None,
    sha256: str | None = None,
) -> Prepared:
    """Read, check, place and join a project file as an import keyed by ``secret`` would
    (`kindred_map.join.prepare_file`), storing nothing. Ids given in the file are namespaced
    by ``source`` (``--source``) or else the file's name without its extension, tidied by
    `kindred_map.ingest.id_namespace`. ``sha256``: the file's, when the caller has its bytes
    (else it is hashed here)."""
    path = Path(path)
    namespace = ingest.id_namespace(source if source else path.stem)
    with ingest.paused_cycle_collection():  # see `store_prepared`
        projects, report = join.prepare_file(
            path, mapping, sheet, directory, secret, namespace, constants
        )
    digest = sha256 or file_sha256(path)
    return Prepared(projects, report, secret, namespace, path.name, digest)


def store_prepared(
    prepared: Prepared, store: Setting = None, who: str = "", choices: dict | None = None
) -> ImportReport:
    """Write prepared rows into the store (`kindred_map.store.import_prepared`); the report.

    Here and in `prepare` Python's cycle collector is paused
    (`kindred_map.ingest.paused_cycle_collection`): rows become millions of short-lived
    values, tuples and lists, and each collection of the oldest generation walks every object
    the process holds (0.3 s CPU of a 3.7 s import of 100,000 rows, measured). Cycles made
    meanwhile are collected after."""
    with ingest.paused_cycle_collection():
        return stores.import_prepared(
            prepared.projects,
            prepared.report,
            resolve(store),
            prepared.secret,
            prepared.log_entry(),
            who,
            choices,
        )


def import_file(
    path: Path,
    store: Setting = None,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
    source: str | None = None,
    who: str = "",
    choices: dict | None = None,
    constants: dict | None = None,
) -> ImportReport:
    """Import a project file into the store: read, check, place, join (`prepare`), then
    reconcile, upsert and log (`kindred_map.store.import_prepared`).

    Ids given in the file are stored as ``<namespace>:<id>`` (see `prepare`); derived ids use
    the store's secret. Re-importing the same file changes no project. Nothing is written if
    any step fails or no row is imported. ``choices`` are the editor's answers about likely
    duplicates, by file row (`kindred_map.storage.reconcile.apply_choices`); ``who`` is named
    in the history and the log; ``constants`` give fields the file has no column for one value
    for every row (`kindred_map.ingest.check_constants`). `kindred_map.store.plan_import` says
    beforehand what this will do. The file is read with no lock held; a new GeoPackage store
    that got its id key from another import meanwhile has the file prepared once more.
    """
    location = resolve(store)
    options = {"mapping": mapping, "sheet": sheet, "directory": directory, "source": source}
    prepared = prepare(path, stores.import_secret(location), **options, constants=constants)
    try:
        return store_prepared(prepared, location, who, choices)
    except stores.IdKeyChanged:
        again = prepare(path, stores.read_secret(location), **options, constants=constants)
        return store_prepared(again, location, who, choices)


def likely_duplicates(projects, store: Setting = None):
    """Likely duplicates (`kindred_map.duplicates.likely_duplicates`) of prepared rows among
    the store's projects, retired ones included (a closed project sent again is worth a look)."""
    stored = stores.read_projects(resolve(store), include_retired=True)
    return duplicates.likely_duplicates(projects, stored)
