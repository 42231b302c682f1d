"""A copy of a project store with a made-up dated history (tests and the Change view's check)."""

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from kindred_map import store

HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS history (event_id INTEGER PRIMARY KEY, project_id TEXT NOT "
    "NULL, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, "
    "import_id INTEGER, before TEXT, after TEXT NOT NULL, version INTEGER NOT NULL)"
)


def write_history(path: Path, rows: list[tuple]) -> None:
    """Replace the store's history table (the issue 12 contract) with ``rows``: (project_id,
    at, action, after record dict)."""
    with sqlite3.connect(path) as conn:
        conn.execute(HISTORY_DDL)
        conn.execute("DELETE FROM history")
        conn.executemany(
            "INSERT INTO history (project_id, at, who, action, source, import_id, before, after, "
            "version) VALUES (?, ?, 'test', ?, 'test', NULL, NULL, ?, 1)",
            [
                (pid, at, action, json.dumps(record, default=str))
                for pid, at, action, record in rows
            ],
        )


def dated_copy(source: Path, target: Path, today: dt.date, seed: int = 13) -> Path:
    """Copy ``source`` to ``target`` and give its projects opening dates spread over the two
    years before ``today`` (every eighth one retired 60 days ago)."""
    shutil.copy(source, target)
    projects = store.read_projects(target)
    records = pd.DataFrame(projects.drop(columns="geometry"))
    records = records.astype(object).where(records.notna(), None).to_dict("records")
    rng = np.random.default_rng(seed)
    rows = []
    for number, record in enumerate(records):
        opened = today - dt.timedelta(days=int(rng.integers(1, 730)))
        rows.append((record["id"], f"{opened.isoformat()}T10:00:00+00:00", "add", record))
        if number % 8 == 0:
            closed = today - dt.timedelta(days=60)
            if closed > opened:
                retired = record | {"retired_at": closed.isoformat()}
                rows.append(
                    (record["id"], f"{closed.isoformat()}T10:00:00+00:00", "retire", retired)
                )
    rows.sort(key=lambda row: row[1])
    write_history(target, rows)
    return target
