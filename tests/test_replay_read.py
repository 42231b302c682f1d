"""The replay's cheap ways (issue 26) give what the plain ways give: the history's replay
columns only (`asof.COLUMNS`), and record texts parsed by Arrow (`records.json_table`) instead
of ``json.loads`` of each."""

import json
import sqlite3

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from test_history_compact import _history_of

from kindred_map import change, store
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import asof, history, records

FIELDS = ("id", "name", "lon", "lat", "deanery_id", "synthetic", "in_region", "retired_at")
KINDS = {name: records.field_kind(name) for name in records.checked_fields(FIELDS)}
STATUS = {"retired_at": "text", "removed": "bool"}


def _parsed_both_ways(texts: list[str]):
    """(the frame of Arrow's parse or None when it declines, the frame of ``json.loads``)."""
    table = records.json_table(texts, KINDS | STATUS)
    plain = records.from_records([json.loads(text) for text in texts], FIELDS)
    return (None if table is None else records.from_table(table, FIELDS)), plain


def test_the_stores_own_texts_are_parsed_by_arrow_as_json_loads_parses_them():
    projects = store.read_projects(include_retired=True)
    texts = records.record_texts(projects).tolist()
    arrow, plain = _parsed_both_ways(texts)
    assert arrow is not None  # the fast way is taken for what the store writes
    pd.testing.assert_frame_equal(arrow, plain, check_exact=True)
    assert store.same_projects(arrow, plain)


ODD = [
    '{"id": "a", "name": 1.50}',  # a number where text belongs: json.loads keeps "1.5"
    '{"id": "a", "name": true}',
    '{"id": "a", "deanery_id": 3.0}',
    '{"id": "a", "deanery_id": true}',
    '{"id": "a", "deanery_id": 9007199254740993}',  # beyond float's exact integers
    '{"id": "a", "lon": 1e400}',  # json.loads: inf; Arrow: refused
    '{"id": "a", "lon": "1.5"}',
    '{"id": "a", "synthetic": 1}',
    '{"id": "a", "id": "b"}',  # a key given twice: json.loads keeps the last
    '{"id": "a", "removed": 1}',
    '{"id": "a",\n"lon": 1}',  # two lines
    '{"id": "a",\r"lon": 1}',
    "",
    "   ",
    '{"id": "\\ud800"}',  # a lone surrogate
    '["a"]',
]


@pytest.mark.parametrize("odd", ODD)
def test_arrow_declines_what_it_would_read_otherwise_than_json_loads(odd):
    texts = ['{"id": "x", "lon": -2.9, "lat": 53.4}', odd, '{"id": "y"}']
    assert records.json_table(texts, KINDS | STATUS) is None


VALUES = {
    "float": hs.one_of(
        hs.none(), hs.floats(allow_nan=False, allow_infinity=False), hs.integers(-(10**6), 10**6)
    ),
    "int": hs.one_of(hs.none(), hs.integers(-(2**60), 2**60)),
    "bool": hs.one_of(hs.none(), hs.booleans()),
    "text": hs.one_of(hs.none(), hs.text(max_size=8)),
}
RECORD = hs.fixed_dictionaries(
    {},
    optional={name: VALUES[kind] for name, kind in (KINDS | STATUS).items()}
    | {"other": hs.one_of(hs.integers(), hs.text(max_size=3))},
)


@settings(max_examples=150, deadline=None)
@given(hs.lists(RECORD, min_size=1, max_size=6), hs.booleans())
def test_arrow_or_json_loads_the_frame_is_the_same(rows, spaced):
    """Whatever the records hold, Arrow's frame is json.loads' frame, or Arrow declines."""
    options = {} if spaced else {"separators": (",", ":")}
    texts = [json.dumps(row, ensure_ascii=False, **options) for row in rows]
    arrow, plain = _parsed_both_ways(texts)
    if arrow is not None:
        pd.testing.assert_frame_equal(arrow, plain, check_exact=True)


def _events(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": range(1, len(texts) + 1),
            "project_id": [json.loads(text).get("id", "?") for text in texts],
            "at": [f"2025-01-{day:02d}T10:00:00+00:00" for day in range(1, len(texts) + 1)],
            "action": "edit",
            "after": texts,
        }
    )


@pytest.mark.parametrize("odd", [None, '{"id": "c", "name": 7, "lon": -2.9, "lat": 53.4}'])
def test_a_replay_decides_open_and_closed_alike_either_way(odd):
    """Retired (a date, or only spaces: open), removed and open records, with Arrow's parse
    and (an odd record among them) with json.loads': each date's projects are the records
    `records_as_of` gives, typed."""
    texts = [
        '{"id": "a", "lon": -2.9, "lat": 53.4, "retired_at": "   "}',
        '{"id": "b", "lon": -2.9, "lat": 53.4}',
        '{"id": "a", "lon": -2.8, "lat": 53.4, "retired_at": "2025-01-03"}',
        '{"id": "b", "lon": -2.9, "lat": 53.4, "removed": true}',
        '{"id": "d", "lon": -2.7, "lat": 53.5, "synthetic": true, "retired_at": null}',
        *([odd] if odd else []),
    ]
    events = _events(texts)
    days = ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04", "2025-02-01", "2024-12-31"]
    for retired in (False, True):
        together = asof.projects_at_dates(events, days, retired, FIELDS)
        for day, projects in zip(days, together, strict=True):
            alone = records.from_records(asof.records_as_of(events, day, retired), FIELDS)
            alone = alone.sort_values("id", kind="stable").reset_index(drop=True)
            pd.testing.assert_frame_equal(projects, alone, check_exact=True)
    assert [len(p) for p in asof.projects_at_dates(events, days[:5], fields=FIELDS)] == [
        1,
        2,
        1,
        0,
        1 + bool(odd),
    ]


def test_the_replay_columns_are_those_columns_of_the_whole_history(tmp_path, monkeypatch):
    """On a compact history (records in payloads) and on a store not written since history
    existed (its baseline events)."""
    compact = _history_of(tmp_path, "compact", 1, monkeypatch)
    for location in (compact, DEFAULT_STORE):
        whole = store.read_history(location)
        part = store.read_history(location, columns=asof.COLUMNS)
        assert list(part.columns) == list(asof.COLUMNS)
        pd.testing.assert_frame_equal(part, whole[list(asof.COLUMNS)], check_exact=True)
        one = whole["project_id"].iloc[-1]
        pd.testing.assert_frame_equal(
            store.read_history(location, one, ["at", "after"]),
            store.read_history(location, one)[["event_id", "at", "after"]],
        )
    with sqlite3.connect(compact) as conn:
        marks = [row[0] for row in conn.execute("SELECT after FROM history")]
    assert any(history.MARK.fullmatch(mark) for mark in marks)  # read through the payloads
    with pytest.raises(ValueError, match="unknown history column"):
        store.read_history(compact, columns=["after", "later"])


def test_coverage_then_reads_the_change_fields_of_the_projects_open_then(tmp_path, monkeypatch):
    """`need --reach-from`'s projects: the full replay's real projects at that date, the
    change's fields of them; a date before the history moves to its first day, with a note."""
    compact = _history_of(tmp_path, "compact", 1, monkeypatch)
    projects, day, note = change.projects_then(compact, "2026-02-15")
    whole = store.read_projects(compact, as_of="2026-02-15")
    assert len(projects) == len(whole) > 0 and str(day) == "2026-02-15" and note == ""
    pd.testing.assert_frame_equal(projects, whole[list(projects.columns)], check_exact=True)
    earlier, day, note = change.projects_then(compact, "2020-01-01")
    assert str(day) == "2026-01-15" and "2020-01-01 is before" in note
    assert len(earlier) == len(store.read_projects(compact, as_of="2026-01-15"))
