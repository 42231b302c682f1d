"""Files written whole or not at all, with the process umask's permissions (shared drives);
temporary folders in one place, cleaned of what killed processes left."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

GPKG_VERSION = "1.2"
"""The GeoPackage version of every GeoPackage the project writes (the store, the exports):
older than the bundled GDAL's default (1.4), which older QGIS, ArcGIS and GDAL (Debian 12's
3.6) open with a warning on every read; nothing newer than 1.2 is used. A store made before
keeps the version it was made at."""


def umask() -> int:
    """The process umask (read by setting and restoring it: there is no other portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain new file gets under the umask (0644 under the usual 022).

    ``tempfile.mkstemp`` creates files 0600 whatever the umask, so colleagues on a shared
    drive could not open an export; every file is chmod-ed to this before it is renamed in."""
    return 0o666 & ~umask()


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (best effort: not every file system lets a folder be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def write_with(path: Path, writer: Callable[[Path], None]) -> Path:
    """Have ``writer`` write a temporary file beside ``path``; then fsync it, give it the
    umask's mode and rename it into place. On any error ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.unlink()
        writer(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_folder(path.parent)
    return path


def write_bytes(path: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically, with the umask's permissions."""
    return write_with(path, lambda temporary: temporary.write_bytes(payload))


WORK_ROOT = Path(tempfile.gettempdir()) / "kindred-map"
"""Uploaded files are written under here while they are read, in a folder per process
(``WORK_ROOT/<pid>``); `clean_work_folders` removes those of processes that no longer run."""


@contextlib.contextmanager
def work_folder(prefix: str):
    """A new private folder under this process's folder of WORK_ROOT, removed after use (or,
    if the process is killed first, by `clean_work_folders` at the next start)."""
    own = WORK_ROOT / str(os.getpid())
    own.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=own) as folder:
        yield Path(folder)


def clean_work_folders() -> list[Path]:
    """Remove the folders under WORK_ROOT of processes that are gone (a killed dashboard's
    uploads); those of running processes (another server on this machine) are kept. Returns
    the folders removed."""
    removed = []
    for folder in sorted(WORK_ROOT.iterdir()) if WORK_ROOT.is_dir() else []:
        if folder.name.isdigit() and not _running(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
