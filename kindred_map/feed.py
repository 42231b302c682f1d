"""A store's public answers for the API, made by the export functions and cached by the store's
version.

The HTTP service (`kindred_map.api`) asks a `Feed` for the current `Snapshot` on every request.
The snapshot is the store read once per version (`upload.store_signature`: a GeoPackage's
modification time and size, a PostGIS store's row count and newest writing transaction), and
every answer is built from it by the same functions the exports use (`oruk.export_json`,
`export.export_bytes`), once per version, on first use. So an edit committed before a request
arrives is in that request's answer, and a burst of requests reads the store once.

Checking the version is one cheap query on PostGIS (a stat of the file for a GeoPackage).
Requests that arrive while a check is running share the next one: with many clients at once
the store sees one version check at a time, not one per request. A request never reuses a
check that started before it arrived, so it cannot miss an edit committed before it came.
"""

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field

import geopandas as gpd

from kindred_map import export, store, upload
from kindred_map.location import resolve


class Unavailable(RuntimeError):
    """The store cannot be read just now (its cause is chained: for the server's log only)."""


@dataclass
class Snapshot:
    """The store at one version, and the answers built from it so far.

    ``projects`` are the open records as `store.read_projects` gives them (true positions of
    home-run projects included), illustrative ones already left out unless the feed includes
    them (as `kindred-map export` does): only the export functions, which mask them, may read
    them."""

    version: tuple
    projects: gpd.GeoDataFrame
    _parts: dict = field(default_factory=dict)
    _locks: dict = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def part(self, key: Hashable, make: Callable[[gpd.GeoDataFrame], object]):
        """``make(projects)``, computed once per snapshot (concurrent callers wait for it)."""
        if key in self._parts:
            return self._parts[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._parts:
                self._parts[key] = make(self.projects)
        return self._parts[key]


class Feed:
    """The public answers of one store (a GeoPackage path or a PostGIS DSN setting), with the
    export options they are made with: illustrative records or not, and the pack settings
    (owner, contact, licence; default `export.pack_settings`)."""

    def __init__(
        self,
        setting,
        include_synthetic: bool = False,
        settings: Mapping[str, str] | None = None,
    ):
        self.location = resolve(setting)
        self.include_synthetic = include_synthetic
        self.settings = export.pack_settings() if settings is None else dict(settings)
        self.checks = 0
        """Version checks made (for tests and the load benchmark)."""
        self.reads = 0
        """Times the store was read (once per version seen)."""
        self._snapshot: Snapshot | None = None
        self._read_lock = threading.Lock()
        self._turn = threading.Condition()
        self._started = 0
        self._finished = 0
        self._running = False
        self._result: tuple | BaseException | None = None

    def export_options(self, served_by: str) -> dict:
        """Keyword arguments for the export functions: parameters (in words), settings and
        whether illustrative records are included."""
        words = "INCLUDED (not real projects)" if self.include_synthetic else "left out"
        return {
            "parameters": {
                "Served by": f"kindred-map api, {served_by}",
                "Illustrative (synthetic) records": words,
            },
            "settings": self.settings,
            "include_synthetic": self.include_synthetic,
        }

    def version(self) -> tuple:
        """The store's version, from a check that started after this call began."""
        with self._turn:
            wanted = self._started + 1
            while self._finished < wanted:
                if self._running:
                    self._turn.wait()
                    continue
                self._running = True
                self._started += 1
                number = self._started
                self._turn.release()
                try:
                    result = upload.store_signature(self.location)
                except Exception as error:  # psycopg and OS errors: every waiter sees it
                    result = error
                finally:
                    self._turn.acquire()
                self.checks += 1
                self._running = False
                self._finished = number
                self._result = result
                self._turn.notify_all()
            result = self._result
        if isinstance(result, BaseException):
            raise Unavailable("the project store cannot be reached just now") from result
        return result

    def snapshot(self) -> Snapshot:
        """The store as it is now: read again only when its version has changed. Raises
        `Unavailable` when the store cannot be reached or read."""
        version = self.version()
        current = self._snapshot
        if current is not None and current.version == version:
            return current
        with self._read_lock:
            current = self._snapshot
            if current is None or current.version != version:
                # The version was taken before the read: a write between the two makes the
                # next request read again; it never leaves a newer version with older data.
                try:
                    stored = store.read_projects(self.location)
                except Exception as error:  # a ValueError for a broken file, psycopg's errors
                    raise Unavailable("the project store cannot be read just now") from error
                projects = export.real_projects(stored, self.include_synthetic)
                self.reads += 1
                current = Snapshot(version, projects)
                self._snapshot = current
        return current
