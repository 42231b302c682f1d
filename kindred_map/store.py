"""The project store: one GeoPackage, written atomically, upserted by id, with an import log."""

import datetime as dt
import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_STORE
from kindred_map.report import ImportReport
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS

WGS84 = "EPSG:4326"
PROJECTS_LAYER = "projects"
IMPORTS_LAYER = "imports"
STORE_FIELDS = (*RECORD_FIELDS, *JOINED_FIELDS)
FLOAT_FIELDS = {"lat": 6, "lon": 6, "easting": 1, "northing": 1}
"""Float fields and the decimals they are stored with (0.1 m; 6 decimals of a degree ~0.1 m)."""
BOOL_FIELDS = ("synthetic", "in_region")
INT_FIELDS = ("deanery_id", "imd_decile")
IMPORT_LOG_FIELDS = {
    "imported_at": "str",
    "file": "str",
    "file_sha256": "str",
    "rows_read": "int64",
    "imported": "int64",
    "rejected": "int64",
    "warned": "int64",
    "projects": "int64",
    "new": "int64",
    "updated": "int64",
    "unchanged": "int64",
    "note": "str",
}


def conform(projects: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Projects with exactly the store's columns, in order, with the store's types, in WGS84."""
    frame = projects.to_crs(WGS84) if projects.crs is not None else projects.set_crs(WGS84)
    out = {}
    for name in STORE_FIELDS:
        column = frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)
        if name in FLOAT_FIELDS:
            out[name] = (
                pd.to_numeric(column, errors="coerce").astype("float64").round(FLOAT_FIELDS[name])
            )
        elif name in BOOL_FIELDS:
            out[name] = column.fillna(False).astype(bool)
        elif name in INT_FIELDS:
            out[name] = pd.to_numeric(column, errors="coerce").round().astype("Int64")
        else:
            out[name] = column.astype("object").where(column.notna(), "").astype("str")
    return gpd.GeoDataFrame(out, geometry=frame.geometry.values, crs=WGS84, index=frame.index)


def empty_projects() -> gpd.GeoDataFrame:
    """A store with no projects (the right columns and types)."""
    return conform(gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84)))


def read_projects(path: Path = DEFAULT_STORE) -> gpd.GeoDataFrame:
    """Every stored project: RECORD_FIELDS + JOINED_FIELDS, points in EPSG:4326, sorted by id.

    A ``ward_only`` project's point is its true position: keep it inside the tool (use
    `kindred_map.join.public_view` before anything leaves). A missing store reads as empty.
    """
    path = Path(path)
    if not path.exists():
        return empty_projects()
    try:
        frame = pyogrio.read_dataframe(path, layer=PROJECTS_LAYER)
    except Exception as error:  # pyogrio raises several DataSourceError kinds
        raise ValueError(f"cannot read the project store {path}: {error}") from error
    return conform(frame).sort_values("id", kind="stable").reset_index(drop=True)


def read_imports(path: Path = DEFAULT_STORE) -> pd.DataFrame:
    """The import log: one row per import (when, file, counts), oldest first."""
    path = Path(path)
    empty = pd.DataFrame({k: pd.Series(dtype=v) for k, v in IMPORT_LOG_FIELDS.items()})
    if not path.exists() or IMPORTS_LAYER not in pyogrio.list_layers(path)[:, 0]:
        return empty
    log = pd.DataFrame(pyogrio.read_dataframe(path, layer=IMPORTS_LAYER, read_geometry=False))
    for name, kind in IMPORT_LOG_FIELDS.items():
        if name not in log:
            log[name] = empty[name]
        log[name] = log[name].fillna(0 if kind == "int64" else "").astype(kind)
    return log[list(IMPORT_LOG_FIELDS)]


def write_store(
    projects: gpd.GeoDataFrame, imports: pd.DataFrame, path: Path, timestamp: str
) -> None:
    """Write the whole store to a temporary file beside ``path``, then rename it into place.

    A failure at any point leaves ``path`` as it was. ``timestamp`` (ISO 8601) is what the
    GeoPackage records as its last change, so the same content always gives the same bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    projects = conform(projects).sort_values("id", kind="stable").reset_index(drop=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gpkg")
    os.close(fd)
    os.unlink(tmp)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": timestamp})
    try:
        _write_layers(projects, imports, Path(tmp))
        os.replace(tmp, path)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
        for leftover in (tmp, f"{tmp}-journal", f"{tmp}-wal", f"{tmp}-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _write_layers(projects: gpd.GeoDataFrame, imports: pd.DataFrame, path: Path) -> None:
    pyogrio.write_dataframe(
        projects, path, layer=PROJECTS_LAYER, driver="GPKG", geometry_type="Point"
    )
    pyogrio.write_dataframe(
        imports[list(IMPORT_LOG_FIELDS)].reset_index(drop=True),
        path,
        layer=IMPORTS_LAYER,
        driver="GPKG",
    )


def _fingerprints(projects: gpd.GeoDataFrame) -> pd.Series:
    """One hash per project (by id) of every stored value, to tell updated from unchanged."""
    frame = pd.DataFrame(conform(projects).drop(columns="geometry"))
    text = frame.astype("object").where(frame.notna(), "").astype("str")
    hashes = pd.util.hash_pandas_object(text, index=False)
    return pd.Series(hashes.to_numpy(), index=frame["id"].to_numpy())


def upsert(
    projects: gpd.GeoDataFrame,
    path: Path = DEFAULT_STORE,
    log_entry: dict | None = None,
    timestamp: str | None = None,
) -> dict[str, int]:
    """Insert new projects and replace those whose id is already stored; one atomic write.

    Returns counts of new, updated and unchanged projects. ``log_entry`` (file, counts) is
    added to the import log with these counts.
    """
    path = Path(path)
    if projects["id"].eq("").any() or projects["id"].duplicated().any():
        raise ValueError("every project needs a unique, non-empty id before it is stored")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        stored = read_projects(path)
        before = _fingerprints(stored) if len(stored) else pd.Series(dtype="uint64")
        after = _fingerprints(projects) if len(projects) else pd.Series(dtype="uint64")
        known = after.index.isin(before.index)
        same = known & (after.to_numpy() == before.reindex(after.index).to_numpy())
        counts = {
            "new": int((~known).sum()),
            "updated": int((known & ~same).sum()),
            "unchanged": int(same.sum()),
        }
        kept = stored[~stored["id"].isin(projects["id"])]
        merged = pd.concat([kept, conform(projects)], ignore_index=True)
        merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84)
        timestamp = timestamp or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        imports = read_imports(path)
        if log_entry is not None:
            entry = {name: "" for name in IMPORT_LOG_FIELDS} | log_entry | counts
            entry["imported_at"] = entry["imported_at"] or timestamp
            imports = pd.concat([imports, pd.DataFrame([entry])], ignore_index=True)
            imports = imports.astype(IMPORT_LOG_FIELDS)
        write_store(merged, imports, path, timestamp)
    return counts


@contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on the store's folder: two imports at once cannot lose updates."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def import_file(
    path: Path,
    store: Path = DEFAULT_STORE,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
) -> ImportReport:
    """Import a project file into the store: read, check, place, join, upsert, log.

    Re-importing the same file changes no project. Nothing is written if any step fails.
    """
    from kindred_map.join import join_file

    path = Path(path)
    projects, report = join_file(path, mapping, sheet, directory)
    entry = {
        "file": path.name,
        "file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows_read": report.rows_read,
        "imported": report.imported,
        "rejected": report.rejected,
        "warned": report.warned,
        "projects": report.records,
    }
    counts = upsert(projects, store, entry)
    report.store = str(store)
    report.new, report.updated, report.unchanged = (
        counts["new"],
        counts["updated"],
        counts["unchanged"],
    )
    return report
