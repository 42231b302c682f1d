"""Fuzzing `ingest.read_table`: random bytes and random CSV/XLSX structures raise nothing but
the documented ValueError. Bounded: a few hundred examples, about half a minute in all."""

import csv
import io
import tempfile
import zipfile
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kindred_map import ingest

SUFFIXES = [".csv", ".txt", ".tsv", ".xlsx", ".geojson", ".json", ".gpkg", ""]
FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
CELL = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["Name", "Post Code", "lat", "lon", "id", "=1+1", '"', ",", "\n", "\x00"]),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True).map(str),
)


def _read(name: str, data: bytes) -> None:
    """read_table on these bytes: it returns a Table or raises ValueError, nothing else."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            table = ingest.read_table(path)
        except ValueError as error:
            assert str(error) and folder not in str(error)
            return
        assert "row" in table.frame.columns


@FUZZ
@given(data=st.binary(max_size=2_000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes(data, suffix):
    _read(f"file{suffix}", data)


@FUZZ
@given(
    rows=st.lists(st.lists(CELL, max_size=8), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    garbage=st.binary(max_size=8),
)
def test_random_csv(rows, delimiter, encoding, garbage):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    data = buffer.getvalue().encode(encoding, errors="replace")
    _read("projects.csv", data + garbage)


@settings(FUZZ, max_examples=40)
@given(
    rows=st.lists(st.lists(CELL | st.integers() | st.none(), max_size=6), max_size=8),
    title=st.text(min_size=1, max_size=20).filter(lambda t: not set(t) & set("[]:*?/\\'")),
)
def test_random_xlsx(rows, title):
    book = openpyxl.Workbook()
    try:
        book.active.title = title.strip() or "Sheet"
    except ValueError:
        book.active.title = "Sheet"
    for row in rows:
        try:
            book.active.append([_xlsx_cell(value) for value in row])
        except (ValueError, TypeError):
            continue
    buffer = io.BytesIO()
    book.save(buffer)
    _read("projects.xlsx", buffer.getvalue())


def _xlsx_cell(value):
    if isinstance(value, int) and abs(value) > 10**15:
        return str(value)
    if isinstance(value, str):
        return "".join(ch for ch in value if ch.isprintable())
    return value


@settings(FUZZ, max_examples=60)
@given(
    members=st.lists(
        st.tuples(
            st.sampled_from(
                ["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "x.bin"]
            ),
            st.binary(max_size=200),
        ),
        max_size=4,
        unique_by=lambda member: member[0],
    )
)
def test_random_zip_as_workbook(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    _read("projects.xlsx", buffer.getvalue())


@settings(FUZZ, max_examples=80)
@given(position=st.floats(0, 1), junk=st.binary(min_size=1, max_size=30))
def test_corrupted_sheet_xml(position, junk):
    book = openpyxl.Workbook()
    book.active.append(["Name", "Postcode"])
    book.active.append(["Hub", "L1 8JQ"])
    plain = io.BytesIO()
    book.save(plain)
    buffer = io.BytesIO()
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(buffer, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                cut = int(position * len(data))
                data = data[:cut] + junk + data[cut:]
            out.writestr(item, data)
    _read("projects.xlsx", buffer.getvalue())
