"""Check that the change, the as-of replay and `need --reach-from` give the same output as
another version of the code.

Stores: the shipped one (no history table: its baseline events); the bench_change store
(13,000 projects, 50,000 events); the same with every 7th event's record made synthetic,
every 5th home-run (``ward_only``) and every 11th retired with a blank ``retired_at`` of
spaces (all still in the Arrow parse); the same again with a few records Arrow must not parse
(a number in a text field, ``3.0`` as a deanery, a repeated key, a removed project) so that
the whole replay takes the ``json.loads`` way; a compact-history store (two imports, an edit
and an undo, every event's record in a payload) at fixed times.

Compared: `change.change_between` at every level, all types and pantries, with and without
synthetic records, at several date pairs (one before the history starts); `change.timeline`
of a ward; `store.read_projects(as_of=...)` (all fields, with and without retired ones);
`asof.records_as_of`; the history start's text; `kindred-map need --reach-from` (printed text
and its CSV). Every table with `pandas.testing.assert_frame_equal(check_exact=True)` and its
``attrs``.

Run: PYTHONPATH=. python benchmarks/change_identical.py save /tmp/main.pkl   (main's code)
     PYTHONPATH=. python benchmarks/change_identical.py compare /tmp/main.pkl
"""

import contextlib
import io
import pickle
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import pandas as pd
from pandas.testing import assert_frame_equal

sys.path.insert(0, str(Path(__file__).parent))  # bench_change, run as a script

import bench_change  # noqa: E402

from kindred_map import change, cli, importing, store  # noqa: E402
from kindred_map import stewardship as st  # noqa: E402
from kindred_map.paths import DEFAULT_STORE  # noqa: E402
from kindred_map.storage import asof, history  # noqa: E402

SECRET = b"k" * 32
POSTCODES = ["L1 8JQ", "L20 4RW", "L7 3HJ", "L8 7SQ", "L19 8JZ", "L3 5TQ", "L4 0TH", "L17 8XY"]


def _edited(path: Path, name: str, statements: list[str]) -> Path:
    out = path.parent / name
    shutil.copy(path, out)
    with sqlite3.connect(out) as conn:
        for statement in statements:
            conn.execute(statement)
    return out


def _compact(folder: Path) -> Path:
    """Two imports of 30 rows, an edit and an undo at fixed times, every record in a payload."""
    history.COMPACT_FROM = 1
    times = iter(f"2026-0{month}-15T10:00:00+00:00" for month in range(1, 10))
    store.now = st._now = lambda: next(times)
    target = folder / "compact" / "store.gpkg"
    for number in range(2):
        lines = ["id,name,postcode,type,website"]
        for i in range(30 + 5 * number):
            kind = ("food_bank", "pantry", "warm_space")[(i + number) % 3]
            lines.append(f"p{i},Project {i} “ü” {{x}},{POSTCODES[(i + number) % 8]},{kind},")
        path = folder / "compact" / f"{number}" / "partner.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        importing.store_prepared(importing.prepare(path, SECRET), target, who="ann")
    st.edit_project(target, "partner:p3", {"website": "https://p3.example"}, 2, "cat")
    st.undo_import(target, 2, "dan")
    return target


def stores(folder: Path) -> dict[str, tuple[Path, list[tuple[str, str]]]]:
    """Each store and the date pairs its change is compared at."""
    big = bench_change.big_store(folder)
    mixed = _edited(
        big,
        "mixed.gpkg",
        [
            "UPDATE history SET after = replace(after, '\"synthetic\": false', "
            "'\"synthetic\": true') WHERE event_id % 7 = 0",
            'UPDATE history SET after = replace(after, \'"location_precision": "exact"\', '
            '\'"location_precision": "ward_only"\') WHERE event_id % 5 = 0',
            'UPDATE history SET after = replace(after, \'"retired_at": ""\', '
            '\'"retired_at": "   "\') WHERE event_id % 11 = 0',
        ],
    )
    hostile = _edited(
        mixed,
        "hostile.gpkg",
        [
            'UPDATE history SET after = replace(after, \'"LSOA21CD": "\', \'"LSOA21CD": 12, '
            '"x": "\') WHERE event_id % 997 = 0',
            "UPDATE history SET after = replace(after, '\"deanery_id\": ', "
            '\'"deanery_id": 3.0, "deanery_id": \') WHERE event_id % 1009 = 0',
            "UPDATE history SET after = replace(after, '{', '{\"removed\": true, ') "
            "WHERE event_id % 1013 = 0",
        ],
    )
    pairs = [("2024-06-30", "2025-06-30"), ("2023-03-01", "2025-12-31"), ("2020-01-01", "today")]
    return {
        "shipped": (DEFAULT_STORE, [("2025-01-01", "today")]),
        "big": (big, pairs),
        "mixed": (mixed, pairs[:2]),
        "hostile": (hostile, pairs[:1]),
        "compact": (_compact(folder), [("2026-01-15", "2026-03-15"), ("2026-02-15", "today")]),
    }


def _cli(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        cli.main(argv)
    return out.getvalue()


def outputs() -> dict:
    """Every compared output of this code, by a name."""
    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (path, pairs) in stores(Path(folder)).items():
            found[f"{name} start"] = change.history_start(path).text()
            for start, end in pairs:
                for level in change.LEVELS:
                    for types in (None, "pantry"):
                        for synthetic in (False, True):
                            key = f"{name} {start}..{end} {level} {types} {synthetic}"
                            found[key] = change.change_between(
                                path, start, end, level, types, 800, synthetic
                            )
                for retired in (False, True):
                    found[f"{name} as of {end} {retired}"] = store.read_projects(
                        path, retired, as_of=end
                    )
                    found[f"{name} records {start} {retired}"] = pd.DataFrame(
                        asof.records_as_of(store.read_history(path), start, retired)
                    )
            start, end = pairs[0]
            ward = found[f"{name} {start}..{end} ward None False"]["WD24CD"].iloc[0]
            found[f"{name} timeline"] = change.timeline(path, "ward", ward, start, end, steps=5)
            csv = Path(folder) / f"{name}-need.csv"
            text = _cli(["need", "--store", str(path), "--reach-from", start, "--out", str(csv)])
            found[f"{name} need text"] = text.replace(folder, "FOLDER")
            found[f"{name} need table"] = pd.read_csv(csv)
    return found


def compare(mine: dict, theirs: dict) -> int:
    """Assert every output equal; the count compared."""
    assert mine.keys() == theirs.keys(), set(mine) ^ set(theirs)
    for key, value in mine.items():
        other = theirs[key]
        if isinstance(value, pd.DataFrame):
            try:
                assert_frame_equal(value, other, check_exact=True)
                assert value.attrs == other.attrs, "attrs differ"
            except AssertionError as error:
                raise AssertionError(f"{key}: {error}") from error
        else:
            assert value == other, f"{key}: {value!r} != {other!r}"
    return len(mine)


if __name__ == "__main__":
    action, target = sys.argv[1], Path(sys.argv[2])
    if action == "save":
        target.write_bytes(pickle.dumps(outputs()))
        print(f"saved to {target}")
    else:
        print(f"{compare(outputs(), pickle.loads(target.read_bytes()))} outputs identical")
