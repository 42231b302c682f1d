"""Files holding people's details: JSON written whole and readable by its owner only, and
SQLite tables changed in one write-locked transaction across processes."""

import contextlib
import json
import os
import sqlite3
from pathlib import Path


def write_json(data: dict, path: Path) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 (it holds password hashes or staff
    addresses)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def locked(path: Path, *schema: str):
    """The SQLite database at ``path`` (its ``schema`` statements run first) in one immediate
    transaction: other processes wait (up to 30 s) until it commits or rolls back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        for statement in schema:
            db.execute(statement)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()
