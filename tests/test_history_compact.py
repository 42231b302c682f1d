"""The compact history (records kept once per import batch, `kindred_map.storage.history`)
gives exactly what the one-JSON-per-event format gives: texts, undo, as-of, change, copies."""

import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from kindred_map import change, importing, store
from kindred_map import stewardship as st
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import asof, history, records

SECRET = b"k" * 32


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


FIRST = "id,name,postcode,type,website\n" + "\n".join(
    f"p{i},Project {i} “ü” %s {{x}},{pc},food_bank,"
    for i, pc in enumerate(["L1 8JQ", "L20 4RW", "L7 3HJ", "L8 7SQ", "L19 8JZ"])
)
SECOND = (
    "id,name,postcode,type,website\n"
    "p0,Project 0 renamed,L1 8JQ,warm_space,\n"
    "p1,Project 1 “ü” %s {x},L20 4RW,food_bank,\n"
    "p2,Project 2,L8 7SQ,food_bank,https://p2.example\n"
    "p9,Project 9,L20 4RW,sto,\n"
)


def _history_of(tmp_path: Path, name: str, compact_from: int, monkeypatch, target=None):
    """A store (``target``: a PostGIS DSN, else a new GeoPackage) given two imports, an edit
    and an undo at fixed times, its events written in the compact format from
    ``compact_from`` events on."""
    monkeypatch.setattr(history, "COMPACT_FROM", compact_from)
    times = iter(f"2026-0{month}-15T10:00:00+00:00" for month in range(1, 10))
    monkeypatch.setattr(store, "now", lambda: next(times))
    monkeypatch.setattr(st, "_now", lambda: next(times))
    target = target or tmp_path / name / "store.gpkg"
    for number, text in enumerate((FIRST, SECOND)):
        path = _csv(tmp_path / name / f"{number}" / "partner.csv", text)
        importing.store_prepared(importing.prepare(path, SECRET), target, who="ann")
    st.edit_project(target, "partner:p3", {"website": "https://p3.example"}, 1, "cat")
    st.undo_import(target, 2, "dan")
    return target


def _payload_texts(path: Path) -> tuple[int, int]:
    """(events whose after names a payload row, events whose after is JSON text)."""
    with sqlite3.connect(path) as conn:
        afters = [row[0] for row in conn.execute("SELECT after FROM history")]
    marked = sum(bool(history.MARK.fullmatch(a)) for a in afters)
    return marked, len(afters) - marked


def test_compact_and_old_formats_give_the_same_history_undo_and_as_of(tmp_path, monkeypatch):
    compact = _history_of(tmp_path, "compact", 1, monkeypatch)
    old = _history_of(tmp_path, "old", 10**9, monkeypatch)
    assert _payload_texts(compact)[0] == 8  # 5 new; then 1 new, 2 updated (p1 unchanged)
    assert _payload_texts(old)[0] == 0
    events = store.read_history(compact)
    assert events.equals(store.read_history(old))
    assert (events["action"] == "undo").sum() == 3
    updated = events[events["action"].eq("import") & events["before"].notna()]
    assert len(updated) == 2 and updated["before"].str.startswith("{").all()
    for project in ("partner:p0", "partner:p9"):
        assert store.read_history(compact, project).equals(store.read_history(old, project))
    assert store.same_projects(
        store.read_projects(compact, include_retired=True),
        store.read_projects(old, include_retired=True),
    )
    for day in ("2026-01-15", "2026-02-15", "2026-03-15", "today"):
        then = store.read_projects(compact, as_of=day, include_retired=True)
        assert store.same_projects(then, store.read_projects(old, as_of=day, include_retired=True))
    second = store.read_projects(compact, as_of="2026-02-15")
    assert second.set_index("id").loc["partner:p0", "name"] == "Project 0 renamed"
    assert "partner:p9" not in set(store.read_projects(compact)["id"])  # undone: removed
    both = [
        change.change_between(path, "2026-01-15", "2026-02-15", "borough").drop(columns="geometry")
        for path in (compact, old)
    ]
    assert both[0].equals(both[1])


def test_an_old_format_store_reads_and_takes_compact_imports(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "COMPACT_FROM", 1)
    target = tmp_path / "projects.gpkg"
    shutil.copy2(DEFAULT_STORE, target)  # shipped: written before history existed
    baseline = store.read_history(target)
    path = _csv(tmp_path / "partner.csv", FIRST)
    importing.import_file(path, target, who="ann")
    events = store.read_history(target)
    assert events.head(len(baseline)).drop(columns="at").equals(baseline.drop(columns="at"))
    marked, plain = _payload_texts(target)
    assert (marked, plain) == (5, len(baseline))
    imported = events.tail(5)
    assert [json.loads(text)["id"] for text in imported["after"]] == imported["project_id"].tolist()
    undone = st.undo_import(target, int(events["import_id"].max()), "dan")
    assert len(undone.removed) == 5
    assert store.same_projects(
        store.read_projects(target, include_retired=True),
        store.read_projects(DEFAULT_STORE, include_retired=True).assign(
            created_at=baseline["at"].iloc[0]
        ),
    )


def test_copy_of_a_compact_store_keeps_every_text(tmp_path, monkeypatch):
    compact = _history_of(tmp_path, "compact", 1, monkeypatch)
    copied = tmp_path / "copy" / "store.gpkg"
    copied.parent.mkdir()
    store.copy(compact, copied)
    assert store.read_history(copied).equals(store.read_history(compact))


def test_postgis_keeps_the_compact_history_and_gives_the_same_texts(
    tmp_path, monkeypatch, pg_store
):
    compact = _history_of(tmp_path, "pg", 1, monkeypatch, pg_store)
    old = _history_of(tmp_path, "old", 10**9, monkeypatch)
    with psycopg.connect(pg_store) as conn:
        afters = [row[0] for row in conn.execute("SELECT after FROM history")]
        payloads = conn.execute(f"SELECT count(*) FROM {history.PAYLOADS}").fetchone()[0]
    assert sum(bool(history.MARK.fullmatch(a)) for a in afters) == 8  # as on a GeoPackage
    assert payloads == 3  # first import: after; second: before and after
    events = store.read_history(compact)
    assert events.equals(store.read_history(old))
    assert store.read_history(compact, "partner:p0").equals(store.read_history(old, "partner:p0"))
    assert store.import_log(compact)["undone"].equals(store.import_log(old)["undone"])
    for day in ("2026-01-15", "2026-02-15", "today"):
        then = store.read_projects(compact, as_of=day, include_retired=True)
        assert store.same_projects(then, store.read_projects(old, as_of=day, include_retired=True))
    copied = tmp_path / "copy" / "store.gpkg"
    copied.parent.mkdir()
    store.copy(compact, copied)
    assert store.read_history(copied).equals(events)


texts = hs.text(alphabet=hs.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
floats = hs.one_of(hs.none(), hs.floats(-1e15, 1e15), hs.just(-0.0), hs.just(float("nan")))


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(
        hs.tuples(
            texts,
            texts,
            floats,
            floats,
            hs.booleans(),
            hs.one_of(hs.none(), hs.integers(-(2**40), 2**40)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_columnar_texts_equal_the_per_record_json(rows):
    names, notes, lats, easts, synthetic, deanery = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "id": [f"id{i}" for i in range(len(rows))],
            "name": names,
            "ward_note": notes,
            "lat": lats,
            "easting": easts,
            "synthetic": synthetic,
            "deanery_id": pd.array(deanery, dtype="Int64"),
        }
    )
    projects = records.conform(gpd.GeoDataFrame(frame, geometry=[None] * len(rows)))
    expected = [records.record_json(r) for r in records.records(projects)]
    assert records.record_texts(projects).tolist() == expected
    packed = history._packed(projects)
    assert history._unpacked(packed, list(range(len(rows)))) == expected
    assert history._unpacked(packed, [len(rows) - 1]) == expected[-1:]


def test_a_missing_payload_is_named_not_read_as_empty(tmp_path, monkeypatch):
    compact = _history_of(tmp_path, "compact", 1, monkeypatch)
    with sqlite3.connect(compact) as conn:
        conn.execute(f"DELETE FROM {history.PAYLOADS}")
    with pytest.raises(ValueError, match="payload 1 is missing"):
        store.read_history(compact)


def test_an_infinite_number_is_refused_as_the_json_way_does():
    projects = records.conform(
        gpd.GeoDataFrame({"id": ["a"], "easting": [np.inf]}, geometry=[None])
    )
    with pytest.raises(ValueError):
        records.record_json(records.records(projects)[0])
    with pytest.raises(ValueError, match="infinite"):
        records.record_texts(projects)


def test_several_dates_from_one_reading_equal_each_date_replayed_alone(tmp_path, monkeypatch):
    events = store.read_history(_history_of(tmp_path, "compact", 1, monkeypatch))
    days = ["2026-01-15", "2026-02-15", "2026-03-15", "2026-12-31", "2025-12-31"]
    for retired in (False, True):
        together = asof.projects_at_dates(events, days, retired)
        for day, projects in zip(days, together, strict=True):
            alone = records.from_records(asof.records_as_of(events, day, retired))
            alone = alone.sort_values("id", kind="stable").reset_index(drop=True)
            assert len(projects) == len(alone) and store.same_projects(projects, alone)
    assert [len(p) for p in together] == [5, 6, 6, 5, 0]  # p9 imported, then undone
