"""The packed R*Tree build (`kindred_map.storage.rtree`) against SQLite's own inserts."""

import sqlite3

import numpy as np
import pytest

from kindred_map.storage import rtree

CREATE = 'CREATE VIRTUAL TABLE "rtree_t_geom" USING rtree(id, minx, maxx, miny, maxy)'


def _bounds(count: int, seed: int) -> np.ndarray:
    """Boxes of points and small areas around the region, and some at odd magnitudes (values
    a float32 cannot hold, negative and positive, to exercise SQLite's outward rounding)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.3, -2.4, count)
    y = rng.uniform(53.2, 53.8, count)
    width = np.where(rng.random(count) < 0.5, 0.0, rng.exponential(0.01, count))
    x[::7] *= 1e5 * rng.random(len(x[::7]))
    y[::11] = -y[::11] / 3
    return np.column_stack([x, x + width, y, y + width])


def _entries(conn) -> list[tuple]:
    return conn.execute(
        "SELECT id, minx, maxx, miny, maxy FROM rtree_t_geom ORDER BY id"
    ).fetchall()


def _window(conn, box) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM rtree_t_geom WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?",
        box,
    )
    return sorted(row[0] for row in rows)


def _check(conn) -> None:
    assert conn.execute("SELECT rtreecheck('rtree_t_geom')").fetchone()[0] == "ok"


@pytest.mark.parametrize("count", [0, 1, 51, 52, 2_601, 2_602, 9_000])
def test_a_packed_tree_holds_what_sqlites_inserts_hold_and_stays_usable(count):
    boxes = _bounds(count, count)
    ids = np.arange(1, count + 1) * 3
    by_inserts, packed = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (by_inserts, packed):
        conn.execute(CREATE)
    by_inserts.executemany(
        "INSERT INTO rtree_t_geom VALUES (?, ?, ?, ?, ?)",
        [(int(i), *map(float, box)) for i, box in zip(ids, boxes, strict=True)],
    )
    packed.execute("BEGIN")
    rtree.rebuild(packed, "rtree_t_geom", rtree.cells(ids, *boxes.T))
    packed.execute("COMMIT")
    _check(packed)
    assert _entries(packed) == _entries(by_inserts)
    depth = int.from_bytes(
        packed.execute(
            "SELECT substr(data, 1, 2) FROM rtree_t_geom_node WHERE nodeno = 1"
        ).fetchone()[0],
        "big",
    )
    assert depth == (0 if count <= 51 else 1 if count <= 51 * 51 else 2)
    windows = [(-3.0, -2.9, 53.3, 53.4), (-1e5, 0.0, -20.0, 54.0), (-2.5, -2.4, 53.7, 53.8)]
    for box in windows:
        assert _window(packed, box) == _window(by_inserts, box)
    # SQLite goes on inserting, moving and deleting in the packed tree as in its own.
    more = _bounds(300, count + 1)
    for conn in (by_inserts, packed):
        conn.executemany(
            "INSERT INTO rtree_t_geom VALUES (?, ?, ?, ?, ?)",
            [(int(i), *map(float, box)) for i, box in enumerate(more, start=count * 3 + 1)],
        )
        conn.execute("DELETE FROM rtree_t_geom WHERE id % 2 = 0")
        conn.execute("UPDATE rtree_t_geom SET minx = minx + 0.01, maxx = maxx + 0.01")
    _check(packed)
    assert _entries(packed) == _entries(by_inserts)
    for box in windows:
        assert _window(packed, box) == _window(by_inserts, box)


def test_a_rebuild_keeps_the_stored_entries_and_replaces_an_added_id():
    conn = sqlite3.connect(":memory:")
    conn.execute(CREATE)
    conn.executemany(
        "INSERT INTO rtree_t_geom VALUES (?, ?, ?, ?, ?)",
        [(i, -3.0 + i / 100, -3.0 + i / 100, 53.4, 53.4) for i in range(1, 101)],
    )
    before = dict((row[0], row[1:]) for row in _entries(conn))
    rtree.rebuild(
        conn, "rtree_t_geom", rtree.cells([5, 500], [1.5, 2.5], [1.5, 2.5], [9, 9], [9, 9])
    )
    _check(conn)
    after = dict((row[0], row[1:]) for row in _entries(conn))
    assert set(after) == set(before) | {500}
    assert after[5] == (1.5, 1.5, 9.0, 9.0) and after[500] == (2.5, 2.5, 9.0, 9.0)
    assert all(after[i] == before[i] for i in before if i != 5)
