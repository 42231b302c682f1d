"""The import's column-at-once checks give what their row-by-row versions gave (issue 26).

Each test keeps the row-by-row code the product replaced as its reference and compares the
two on random input (hypothesis): the same frame, dtypes and index included, the same error."""

import hmac

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kindred_map import hours, ingest
from kindred_map.report import issues_for
from kindred_map.schema import RECORD_FIELDS

SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FEWER = settings(SETTINGS, max_examples=100)
"""For the three costliest comparisons (8.6 of the module's 11.3 CPU s at 300): 100 random
inputs a run, each a whole small file (up to 10-30 rows of 2-19 cells), new ones every run (no
example database). Each mutant tried of the code they check (a schedules and hours pair
decoded from the wrong code; the last field left out of the given list; the HMAC key padded
with spaces) failed all 4 runs at 100. The others stay at 300: a double or trailing space
taken as tidy got past `test_clean_text_is_clean_one_of_each_value` in 1 of 4 runs at 100
(benchmarks/results/suite.md)."""

SPACES = ["", " ", "  ", "\t", "\u00a0", "\u200b", "\x00", "\x1c", "\x85", "\u2028", "\ufeff"]
TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "Name",
            "Post Code",
            "lat",
            "x",
            "id",
            "row",
            "a",
            "a (2)",
            "ok fine",
            "two  spaces",
            " lead",
            "trail ",
            "tab\there",
            "Caf\u00e9",
            "Cafe\u0301",
        ]
    ),
    st.lists(st.sampled_from(["a", "B", "é", "e\u0301", "?", "1", *SPACES]), max_size=8).map(
        "".join
    ),
)


def reference_from_rows(numbered, kind, label, headers=()):
    """`ingest._from_rows` as it was: a dict per record (main 32e2602)."""
    content = [(n, [c.strip() for c in row]) for n, row in numbered if any(c.strip() for c in row)]
    if not content:
        raise ValueError(f"{label} has no rows")
    candidates = content[: ingest.HEADER_SEARCH_ROWS]
    known = set(ingest.ALIAS_LOOKUP) | {ingest._header_key(header) for header in headers}
    scores = [sum(ingest._header_key(cell) in known for cell in row) for _, row in candidates]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i)) if max(scores) else 0
    header_row, header = candidates[best]
    names = ingest._unique_headers(header)
    records, blank_rows = [], []
    for number, row in numbered:
        if number <= header_row:
            continue
        if not any(cell.strip() for cell in row):
            blank_rows.append(number)
            continue
        cells = [*row, *[""] * (len(names) - len(row))]
        overflow = [cell for cell in cells[len(names) :] if cell.strip()]
        record = dict(zip(names, cells[: len(names)], strict=True))
        if overflow:
            record["(cells beyond the header)"] = " | ".join(overflow)
        record["row"] = number
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=[*names, "row"]) if records else None
    if frame is None:
        frame = pd.DataFrame(columns=[*names, "row"])
    frame = frame.fillna("")
    last = int(frame["row"].max()) if len(frame) else header_row
    blank_rows = [n for n in blank_rows if n < last]
    return frame, header_row, blank_rows


def outcome(function, *arguments):
    """What a call gives: its value, or its exception's type and message."""
    try:
        return function(*arguments)
    except Exception as error:  # compared, not hidden
        return type(error), str(error)


@SETTINGS
@given(
    rows=st.lists(st.lists(TEXT, max_size=6), max_size=12),
    start=st.integers(1, 3),
    headers=st.lists(TEXT, max_size=2),
)
def test_from_rows_is_the_record_by_record_frame(rows, start, headers):
    numbered = [(start + position, row) for position, row in enumerate(rows)]
    expected = outcome(reference_from_rows, numbered, "csv", "f.csv", headers)
    got = outcome(product_from_rows, numbered, "csv", "f.csv", headers)
    if isinstance(expected[0], type):
        assert got == expected
        return
    assert not isinstance(got[0], type), got
    pd.testing.assert_frame_equal(got[0], expected[0], check_exact=True)
    assert got[1:] == expected[1:]


def product_from_rows(numbered, kind, label, headers):
    table = ingest._from_rows(numbered, kind, label, headers)
    return table.frame, table.header_row, table.blank_rows


def test_from_rows_keeps_the_records_view_of_odd_headers():
    """Repeated header names and a header named like the overflow column (the cases where a
    record per row and a column per name once parted ways) come out as the records give them:
    every column keeps its own cells ("Name (2)" is the file's own, so the repeated "Name" is
    "Name (3)"), and the overflow column holds the cells right of the header."""
    numbered = list(
        enumerate(
            [
                ["Name", "Name (2)", "Name", "(cells beyond the header)"],
                ["a", "b", "c", "d", "e", " "],
                ["f", "g"],
            ],
            start=1,
        )
    )
    frame, _, _ = reference_from_rows(numbered, "csv", "f.csv")
    got = ingest._from_rows(numbered, "csv", "f.csv").frame
    pd.testing.assert_frame_equal(got, frame, check_exact=True)
    assert list(got.columns) == ["Name", "Name (2)", "Name (3)", ingest.OVERFLOW, "row"]
    assert got.iloc[0].tolist() == ["a", "b", "c", "e", 2]


def reference_check(label, rows):
    """The row-by-row check the CSV reader ran (main 32e2602)."""
    for number, row in enumerate(rows, start=1):
        ingest.check_row(label, number, row, number - 1)


@SETTINGS
@given(
    rows=st.lists(st.lists(st.text(max_size=9), max_size=4), max_size=14),
    cells=st.integers(1, 8),
    most=st.integers(0, 6),
)
def test_check_rows_names_the_same_first_row(rows, cells, most, monkeypatch_module):
    monkeypatch_module.setattr(ingest, "MAX_CELL_CHARS", cells)
    monkeypatch_module.setattr(ingest, "MAX_ROWS", most)
    monkeypatch_module.setattr(ingest, "HEADER_SEARCH_ROWS", 2)
    assert outcome(ingest.check_rows, "f.csv", rows) == outcome(reference_check, "f.csv", rows)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@SETTINGS
@given(
    values=st.lists(st.one_of(TEXT, st.none()), max_size=20),
    index=st.sampled_from(["range", "shuffled", "repeated"]),
)
def test_clean_text_is_clean_one_of_each_value(values, index):
    labels = {
        "range": list(range(len(values))),
        "shuffled": list(reversed(range(len(values)))),
        "repeated": [0] * len(values),
    }[index]
    series = pd.Series(values, index=labels, dtype=object)
    expected = series.fillna("").astype("str").map(ingest._clean_one).astype("str")
    pd.testing.assert_series_equal(ingest.clean_text(series), expected, check_exact=True)


def reference_derive_ids(records, secret):
    """`ingest.derive_ids` as it was: an `hmac.new` object per row (main 32e2602), of the
    same texts."""
    parts = ingest.id_texts(records)
    return "km-" + parts.map(
        lambda text: hmac.new(secret, text.encode(), "sha256").hexdigest()[:16]
    )


@FEWER
@given(
    rows=st.lists(st.tuples(*[TEXT] * 7), max_size=10),
    secret=st.binary(min_size=1, max_size=40),
)
def test_derive_ids_are_the_row_by_row_hmacs(rows, secret):
    columns = ["name", "type", "postcode", "lat", "lon", "easting", "northing"]
    records = pd.DataFrame(rows, columns=columns, dtype="str", index=range(len(rows))[::-1])
    pd.testing.assert_series_equal(
        ingest.derive_ids(records, secret), reference_derive_ids(records, secret)
    )


def reference_given(records):
    """`ingest.normalise`'s ``_given`` as it was: one pass per field (main 32e2602)."""
    given = pd.Series("", index=records.index)
    for name in RECORD_FIELDS:
        given += np.where(records[name].ne(""), f"{name},", "")
    return given


@FEWER
@given(
    rows=st.lists(st.lists(st.booleans(), min_size=len(RECORD_FIELDS), max_size=19), max_size=30)
)
def test_given_fields_names_each_rows_fields(rows):
    records = pd.DataFrame(
        [["x" if filled else "" for filled in row] for row in rows],
        columns=list(RECORD_FIELDS),
        index=range(len(rows))[::-1],
        dtype="str",
    )
    pd.testing.assert_series_equal(
        ingest.given_fields(records), reference_given(records), check_exact=True
    )


def reference_fill_schedules(records):
    """`hours.fill_schedules` as it was: a pass per row (main 32e2602)."""
    records = records.copy()
    given = records["schedules"].fillna("").astype(str)
    text = records["opening_hours"].fillna("")
    filled, faults, parsed = [], {}, {}
    for index, stored, listed in zip(records.index, given, text.astype(str), strict=True):
        try:
            found = hours.loads(stored)
        except (ValueError, TypeError) as error:
            faults[index] = f"schedules not readable ({error}): hours read from opening_hours"
            found = []
        if not found and listed not in parsed:
            parsed[listed] = hours.dumps(hours.parse(listed))
        filled.append(hours.dumps(found) if found else parsed[listed])
    records["schedules"] = filled
    bad = records.loc[list(faults)]
    return records, issues_for(bad, "schedules", "warning", pd.Series(faults, dtype="str"))


SCHEDULES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            " ",
            "[]",
            "{",
            "[1]",
            '[{"byday": "XX"}]',
            '[{"byday": "MO,TU", "opens_at": "10:00", "closes_at": "12:00"}]',
            '[{"byday": "SA", "opens_at": "9:00", "closes_at": "8:00"}]',
        ]
    ),
    st.text(max_size=6),
)
HOURS = st.one_of(
    st.none(),
    st.sampled_from(["", "Tue 10:00-12:00", "Mon-Fri 9am-5pm", "whenever", "Sat 10-2"]),
    st.text(max_size=6),
)


@FEWER
@given(rows=st.lists(st.tuples(SCHEDULES, HOURS), max_size=25))
def test_fill_schedules_reads_each_pair_as_each_row_did(rows):
    records = pd.DataFrame(
        {
            "row": range(2, len(rows) + 2),
            "name": "Hub",
            "schedules": pd.Series([s for s, _ in rows], dtype="str"),
            "opening_hours": pd.Series([h for _, h in rows], dtype="str"),
        }
    ).set_axis(range(len(rows))[::-1])
    got, expected = hours.fill_schedules(records), reference_fill_schedules(records)
    pd.testing.assert_frame_equal(got[0], expected[0], check_exact=True)
    pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)
