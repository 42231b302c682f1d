"""A GeoPackage's spatial index built whole: SQLite R*Tree nodes packed and written at once.

SQLite's R*Tree takes entries one at a time (choosing a subtree, splitting, re-inserting: 0.9 s
for 100,000 points); GDAL builds a new layer's tree in bulk and writes the R*Tree's own tables
(``<name>_node``, ``_rowid``, ``_parent``) directly. `rebuild` does the same with numpy: the
entries are packed Sort-Tile-Recursive into full nodes, in SQLite's node format (a 2-byte depth
in the root, a 2-byte cell count, then per cell a big-endian 64-bit id and four big-endian
32-bit floats, min rounded down and max up exactly as SQLite rounds them). The tree holds the
same entries as one built by inserts; SQLite's ``rtreecheck`` passes, and later inserts and
deletes work on it as on any other."""

import sqlite3

import numpy as np

CELL = np.dtype([("id", ">i8"), ("minx", ">f4"), ("maxx", ">f4"), ("miny", ">f4"), ("maxy", ">f4")])
"""One cell of an R*Tree node with two dimensions: 24 bytes."""

HEADER = 4
"""Bytes before a node's first cell: the tree's depth (root only) and the cell count."""

RNDTOWARDS = 1.0 - 1.0 / 8388608.0
RNDAWAY = 1.0 + 1.0 / 8388608.0
"""SQLite's factors for rounding a double to a float outwards (``rtreeValueDown``/``Up``)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rounded_down(values) -> np.ndarray:
    """float32 of each double, not above it, as SQLite's ``rtreeValueDown`` makes it."""
    values = np.asarray(values, dtype=np.float64)
    out = values.astype(np.float32)
    over = out > values
    factor = np.where(values[over] < 0, RNDAWAY, RNDTOWARDS)
    out[over] = (values[over] * factor).astype(np.float32)
    return out


def rounded_up(values) -> np.ndarray:
    """float32 of each double, not below it, as SQLite's ``rtreeValueUp`` makes it."""
    values = np.asarray(values, dtype=np.float64)
    out = values.astype(np.float32)
    under = out < values
    factor = np.where(values[under] < 0, RNDTOWARDS, RNDAWAY)
    out[under] = (values[under] * factor).astype(np.float32)
    return out


def cells(ids, minx, maxx, miny, maxy) -> np.ndarray:
    """Leaf cells of entries given as doubles (rounded outwards to SQLite's floats)."""
    out = np.empty(len(ids), dtype=CELL)
    out["id"] = ids
    out["minx"], out["miny"] = rounded_down(minx), rounded_down(miny)
    out["maxx"], out["maxy"] = rounded_up(maxx), rounded_up(maxy)
    return out


def _packed(level: np.ndarray, capacity: int) -> np.ndarray:
    """The cells in Sort-Tile-Recursive order: vertical slices of whole nodes by x centre,
    each sorted by y centre (ties by id), so consecutive runs of ``capacity`` are nodes."""
    nodes = -(-len(level) // capacity)
    per_slice = int(np.ceil(np.sqrt(nodes))) * capacity
    centre_x = level["minx"].astype(np.float64) + level["maxx"]
    centre_y = level["miny"].astype(np.float64) + level["maxy"]
    by_x = np.lexsort((level["id"], centre_x))
    slices = np.empty(len(level), dtype=np.int64)
    slices[by_x] = np.arange(len(level)) // per_slice
    return level[np.lexsort((level["id"], centre_y, slices))]


def _bounds_of_nodes(level: np.ndarray, capacity: int, numbers: np.ndarray) -> np.ndarray:
    """One cell per node of ``level`` (already packed): the node's number and its bounds."""
    starts = np.arange(0, len(level), capacity)
    out = np.empty(len(starts), dtype=CELL)
    out["id"] = numbers
    for name in ("minx", "miny"):
        out[name] = np.minimum.reduceat(level[name], starts)
    for name in ("maxx", "maxy"):
        out[name] = np.maximum.reduceat(level[name], starts)
    return out


def _node_blobs(level: np.ndarray, capacity: int, size: int, depth: int = 0) -> list[bytes]:
    """The node blobs of a packed level: consecutive runs of ``capacity`` cells, zero-padded."""
    count = -(-len(level) // capacity)
    data = np.zeros((count, size), dtype=np.uint8)
    filled = np.bincount(np.arange(len(level)) // capacity, minlength=count)
    data[:, 0], data[:, 1] = depth >> 8, depth & 0xFF
    data[:, 2], data[:, 3] = filled >> 8, filled & 0xFF
    raw = np.zeros((count * capacity, CELL.itemsize), dtype=np.uint8)
    raw[: len(level)] = level.astype(CELL).view(np.uint8).reshape(-1, CELL.itemsize)
    data[:, HEADER : HEADER + capacity * CELL.itemsize] = raw.reshape(count, -1)
    return [row.tobytes() for row in data]


def rebuild(conn: sqlite3.Connection, name: str, added: np.ndarray) -> None:
    """Make the R*Tree ``name`` anew, packed, holding its entries and the ``added`` cells
    (`cells`; an added id replaces a stored one), inside the caller's transaction."""
    quoted = _quote(name)
    stored = np.array(
        [tuple(row) for row in conn.execute(f"SELECT id, minx, maxx, miny, maxy FROM {quoted}")],
        dtype=[(field, "<f8" if field != "id" else "<i8") for field in CELL.names],
    )
    kept = stored[~np.isin(stored["id"], added["id"])]
    leaves = np.concatenate([cells(*(kept[field] for field in CELL.names)), added]).astype(CELL)
    create = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()[0]
    conn.execute(f"DROP TABLE {quoted}")
    conn.execute(create)
    size = conn.execute(f"SELECT length(data) FROM {_quote(name + '_node')} WHERE nodeno = 1")
    size = size.fetchone()[0]
    capacity = (size - HEADER) // CELL.itemsize
    nodes, parents, rowids = [], [], []
    level, number, depth = leaves, 2, 0
    while len(level) > capacity:
        level = _packed(level, capacity)
        count = -(-len(level) // capacity)
        numbers = np.arange(number, number + count)
        member_of = numbers[np.arange(len(level)) // capacity]
        if depth == 0:
            rowids = list(zip(level["id"].tolist(), member_of.tolist(), strict=True))
        else:
            parents += zip(level["id"].tolist(), member_of.tolist(), strict=True)
        nodes += zip(numbers.tolist(), _node_blobs(level, capacity, size), strict=True)
        level = _bounds_of_nodes(level, capacity, numbers)
        number, depth = number + count, depth + 1
    if depth == 0:
        rowids = [(rowid, 1) for rowid in level["id"].tolist()]
    else:
        parents += [(child, 1) for child in level["id"].tolist()]
    root = _node_blobs(level, capacity, size, depth) if len(level) else [bytes(size)]
    nodes.append((1, root[0]))
    conn.execute(f"DELETE FROM {_quote(name + '_node')}")
    conn.executemany(f"INSERT INTO {_quote(name + '_node')} VALUES (?, ?)", nodes)
    conn.executemany(f"INSERT INTO {_quote(name + '_rowid')} VALUES (?, ?)", rowids)
    conn.executemany(f"INSERT INTO {_quote(name + '_parent')} VALUES (?, ?)", parents)
