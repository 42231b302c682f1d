"""Read project spreadsheets as they come (CSV, XLSX, GeoJSON, GeoPackage) into project records."""

import codecs
import contextlib
import csv
import datetime as dt
import gc
import hashlib
import io
import itertools
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from kindred_map.postcodes import pcd_key
from kindred_map.report import empty_issues, issues_for
from kindred_map.schema import LOCATION_PRECISIONS, RECORD_FIELDS, project_types
from kindred_map.text import map_distinct

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
GEO_SUFFIXES = {".geojson", ".json", ".gpkg"}
HEADER_SEARCH_ROWS = 30
"""The header row is looked for among this many non-blank rows at the top of a sheet."""
MAX_FILE_BYTES = 100_000_000
"""A project file larger than this (100 MB) is refused before it is read."""
MAX_UNPACKED_BYTES = 100_000_000
"""An XLSX or an Open Referral UK zip whose parts unpack to more than this (100 MB) is refused
before it is parsed: a 1 MB file can hold gigabytes of XML or CSV (a decompression bomb)."""
MAX_ROWS = 250_000
"""Rows (records, features) a file may hold."""
MAX_CELL_CHARS = 32_767
"""Characters a cell may hold: a spreadsheet's own limit (Excel's)."""
FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")

COLUMN_ALIASES = {
    "id": ("id", "projectid", "ref", "reference", "recordid", "uid", "projectref"),
    "name": ("name", "projectname", "project", "title", "venue", "venuename", "sitename"),
    "type": ("type", "projecttype", "category", "kind", "typeofproject", "activitytype"),
    "organisation": (
        "organisation",
        "organization",
        "org",
        "organisationname",
        "organizationname",
        "runby",
        "church",
        "charity",
        "host",
    ),
    "sector": ("sector", "industrysector"),
    "address": (
        "address",
        "fulladdress",
        "streetaddress",
        "address1",
        "addressline1",
        "address2",
        "addressline2",
        "address3",
        "addressline3",
        "street",
        "town",
        "city",
    ),
    "postcode": ("postcode", "postalcode", "pcd", "pcds", "pcode", "zip", "zipcode"),
    "lat": ("lat", "latitude", "y", "ycoord", "wgs84lat", "latwgs84"),
    "lon": ("lon", "long", "lng", "longitude", "x", "xcoord", "wgs84lon", "lonwgs84"),
    "easting": ("easting", "eastings", "east", "oseast1m", "bngeasting", "xbng"),
    "northing": ("northing", "northings", "north", "osnrth1m", "bngnorthing", "ybng"),
    "opening_hours": (
        "openinghours",
        "hours",
        "opening",
        "openingtimes",
        "times",
        "whenopen",
        "sessions",
    ),
    "schedules": ("schedules", "structuredhours", "openreferralschedules"),
    "website": ("website", "url", "web", "site", "link", "webaddress", "webpage"),
    "parish": ("parish", "parishname"),
    "last_checked": (
        "lastchecked",
        "checked",
        "datechecked",
        "lastverified",
        "verified",
        "lastupdated",
        "updated",
    ),
    "location_precision": ("locationprecision", "precision", "positionprecision"),
    "synthetic": ("synthetic", "isexample", "example"),
    "source": ("source", "datasource", "sourceofdata"),
}
"""Header spellings recognised for each record field, compared after `_header_key`."""

MULTI_COLUMN_FIELDS = {"address"}
"""Fields whose matching columns are joined (address line 1, line 2, town ...)."""

TYPE_SYNONYMS = {
    "pantry": ("food pantry", "community pantry", "your local pantry", "social supermarket"),
    "place_of_welcome": ("places of welcome", "pow", "welcome place"),
    "sto": (
        "socially trading organisation",
        "socially trading organization",
        "social enterprise",
        "community business",
    ),
    "church_project": (
        "church social action",
        "church social action project",
        "church",
        "church led",
        "church run",
    ),
    "food_bank": ("foodbank", "food banks", "emergency food", "food parcel", "food parcels"),
    "warm_space": (
        "warm hub",
        "warm welcome",
        "warm bank",
        "warm room",
        "warm place",
        "warm spaces",
        "welcome space",
        "warm and welcome space",
    ),
}
"""Common spellings of the configured types; the keys and labels of `project_types()` match too."""

PRECISION_SYNONYMS = {
    "exact": ("building", "address", "precise", "rooftop"),
    "street": ("approximate", "approx", "postcode", "centroid", "place", "area"),
    "ward_only": ("ward", "home", "private", "hidden", "wardonly"),
}
TRUE_WORDS = {"true", "yes", "y", "1", "t", "synthetic", "example"}
FALSE_WORDS = {"false", "no", "n", "0", "f", ""}


@dataclass
class Table:
    """A file's rows as text, with where they came from."""

    frame: pd.DataFrame
    """One column per file column (all text) plus ``row``: the spreadsheet's own row number."""
    kind: str
    header_row: int | None = None
    encoding: str | None = None
    blank_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    issues: pd.DataFrame = field(default_factory=empty_issues)
    """Warnings about single cells or lines (bad bytes, formulas without a value)."""


def _header_key(text) -> str:
    """Compare headers loosely: "Post Code", "post_code" and "POSTCODE" all give "postcode"."""
    return re.sub(r"[^a-z0-9]", "", str(text or "").casefold())


ALIAS_LOOKUP = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}


def read_table(path: Path, sheet: str | None = None, headers=()) -> Table:
    """Read a CSV, XLSX, GeoJSON or GeoPackage file into text columns with row numbers.

    ``sheet`` names the XLSX sheet or the GeoPackage layer (default: the first).
    ``headers`` are column names the caller expects (from a mapping): they help find the
    header row under a title, like the recognised names do. Whatever is wrong with the file,
    the only exception is a ValueError naming the file, the row where known and the reason
    (limits: MAX_FILE_BYTES, MAX_UNPACKED_BYTES, MAX_ROWS, MAX_CELL_CHARS).
    """
    path = Path(path)
    check_size(path)
    suffix = path.suffix.lower()
    with errors_named(path):
        with path.open("rb") as handle:
            magic = handle.read(4)
        if suffix == ".xls":
            raise ValueError(
                f"{path.name}: old .xls workbooks are not read; save it as .xlsx or .csv"
            )
        if suffix in XLSX_SUFFIXES or magic == b"PK\x03\x04":
            return _read_xlsx(path, sheet, headers)
        if suffix in GEO_SUFFIXES:
            return _read_geo(path, sheet)
        if suffix in CSV_SUFFIXES or not suffix:
            return _read_csv(path, headers)
    raise ValueError(
        f"{path.name}: unsupported file type {suffix!r}; use .csv, .xlsx, .geojson or .gpkg"
    )


def check_size(path: Path) -> None:
    """Refuse a missing file, or one over MAX_FILE_BYTES, before anything of it is read."""
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{path.name} is {size / 1e6:,.0f} MB; files over {MAX_FILE_BYTES / 1e6:,.0f} MB "
            "are not read: split it"
        )


@contextlib.contextmanager
def errors_named(path: Path):
    """Whatever a reader raises inside becomes one ValueError line naming the file (its folder
    hidden): zip, CSV, XML, JSON and recursion errors of a hostile file included."""
    try:
        yield
    except ValueError as error:
        message = hide_folder(str(error), path)
        if path.name not in message:
            message = f"{path.name}: {message}"
        if message == str(error):
            raise
        raise ValueError(message) from error
    except Exception as error:  # any reader's own failure becomes one clear message
        detail = hide_folder(" ".join(str(error).split())[:200], path)
        raise ValueError(
            f"{path.name}: cannot be read ({type(error).__name__}: {detail})"
        ) from error


def hide_folder(message: str, path: Path) -> str:
    """A message with the file's folder taken out (readers quote the full path; a page must not
    show where uploads are kept on the server)."""
    return message.replace(str(path), path.name).replace(str(path.parent) + "/", "")


def _decode(data: bytes) -> tuple[str, str, list[int]]:
    """Text, the encoding it was read with, and the lines that had to be read otherwise.

    UTF-16 (with its BOM); UTF-8 with or without BOM; a file with no valid UTF-8 beyond ASCII
    is Windows-1252 throughout. A mostly UTF-8 file keeps its good lines as typed and reads
    only the lines that are not UTF-8 as Windows-1252 (ISO-8859-1 for bytes it lacks).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16", []
        except UnicodeDecodeError as error:
            raise ValueError(f"it starts as UTF-16 but is not valid UTF-16 ({error})") from error
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if bom else data
    label = "UTF-8 with BOM" if bom else "UTF-8"
    try:
        return body.decode("utf-8"), label, []
    except UnicodeDecodeError:
        pass
    lines = body.split(b"\n")
    texts, bad, utf8_beyond_ascii = [], [], False
    for number, line in enumerate(lines, start=1):
        try:
            texts.append(line.decode("utf-8"))
            utf8_beyond_ascii |= not line.isascii()
        except UnicodeDecodeError:
            texts.append(_single_byte(line))
            bad.append(number)
    if not utf8_beyond_ascii and not bom:
        try:
            return body.decode("cp1252"), "Windows-1252", []
        except UnicodeDecodeError:
            return body.decode("latin-1"), "ISO-8859-1", []
    return "\n".join(texts), f"{label}, {len(bad):,} line(s) read as Windows-1252", bad


def _single_byte(line: bytes) -> str:
    try:
        return line.decode("cp1252")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _cell_issues(rows, fields, reasons) -> pd.DataFrame:
    """Warnings about cells or lines found while reading (no project name known yet)."""
    if not len(rows):
        return empty_issues()
    return pd.DataFrame(
        {"row": rows, "name": "", "field": fields, "level": "warning", "reason": reasons}
    ).astype({"row": "int64"})


def _together(*issues: pd.DataFrame) -> pd.DataFrame:
    """Reading issues of several kinds as one table (empty ones left out)."""
    filled = [frame for frame in issues if len(frame)]
    return pd.concat(filled, ignore_index=True) if filled else empty_issues()


def _read_csv(path: Path, headers=()) -> Table:
    text, encoding, bad_lines = _decode(path.read_bytes())
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    with paused_cycle_collection():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows, last_lines = [], []
        try:
            if bad_lines:  # where each record ends, to name the rows of the lines read otherwise
                for row in reader:
                    rows.append(row)
                    last_lines.append(reader.line_num)
            else:
                rows.extend(reader)  # the records read before a csv.Error stay in ``rows``
        except csv.Error as error:
            check_rows(path.name, rows)
            raise ValueError(
                f"{path.name} row {len(rows) + 1}: cannot be read as CSV ({error}); a cell may "
                f"hold at most {MAX_CELL_CHARS:,} characters"
            ) from error
        check_rows(path.name, rows)
        # A spreadsheet program shows one CSV record per row: the record number is the row.
        numbered = list(enumerate(rows, start=1))
        table = _from_rows(numbered, "csv", path.name, headers)
    table.encoding = encoding
    if delimiter != ",":
        table.notes.append(f"columns separated by {delimiter!r}")
    if bad_lines:
        rows = np.searchsorted(np.asarray(last_lines), bad_lines) + 1
        data_rows = set(table.frame["row"])
        encoding_issues = _cell_issues(
            [int(r) for r in rows if r in data_rows],
            "encoding",
            [
                f"line {line} is not UTF-8 like the rest of the file: read as Windows-1252; "
                "check its accented letters"
                for line, r in zip(bad_lines, rows, strict=True)
                if r in data_rows
            ],
        )
        table.issues = _together(table.issues, encoding_issues)
        other = [line for line, r in zip(bad_lines, rows, strict=True) if r not in data_rows]
        if other:
            table.notes.append(f"lines {other} (not project rows) read as Windows-1252")
    return table


@contextlib.contextmanager
def paused_cycle_collection():
    """Python's cycle collector paused while a file's cells become Python objects.

    Reading 100,000 rows makes a million strings and lists; each collection then walks every
    object the process holds, which was half the time of reading a CSV. Cells and rows hold
    no cycles, so nothing is left uncollected. Resumed after, unless it was paused already.
    An import pauses it while it prepares and stores its rows (`kindred_map.importing`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_row(label: str, number: int, cells, rows_so_far: int) -> None:
    """Refuse a file with too many rows or an over-long cell, naming the row."""
    if rows_so_far >= MAX_ROWS + HEADER_SEARCH_ROWS:
        raise ValueError(f"{label} has more than {MAX_ROWS:,} rows: split it into smaller files")
    longest = max((len(c) for c in cells if isinstance(c, str)), default=0)
    if longest > MAX_CELL_CHARS:
        raise ValueError(
            f"{label} row {number}: a cell holds {longest:,} characters; a cell may hold at "
            f"most {MAX_CELL_CHARS:,}"
        )


def check_rows(label: str, rows: list[list[str]]) -> None:
    """`check_row` for a file's rows read whole (row numbers from 1): the same error for the
    same first row at fault. Only a row longer than MAX_CELL_CHARS in all can hold a cell
    that long, so only those are looked at cell by cell."""
    limit = MAX_ROWS + HEADER_SEARCH_ROWS
    lengths = np.fromiter(map(len, map("".join, rows)), dtype=np.int64, count=len(rows))
    for position in np.flatnonzero(lengths[:limit] > MAX_CELL_CHARS):
        check_row(label, int(position) + 1, rows[position], int(position))
    if len(rows) > limit:
        check_row(label, limit + 1, rows[limit], limit)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _check_workbook(path: Path) -> bool:
    """Refuse a workbook that unpacks too large, before any XML is parsed; True if its
    worksheets hold formulas (their cached values are then checked)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            unpacked = sum(member.file_size for member in members)
            if unpacked > MAX_UNPACKED_BYTES:
                raise ValueError(
                    f"{path.name} unpacks to {unpacked / 1e6:,.0f} MB of XML (from "
                    f"{path.stat().st_size / 1e6:,.1f} MB); workbooks over "
                    f"{MAX_UNPACKED_BYTES / 1e6:,.0f} MB unpacked are refused: save it as "
                    "CSV or split it"
                )
            sheets = [m for m in members if m.filename.startswith("xl/worksheets/")]
            return any(FORMULA_TAG.search(archive.read(member)) for member in sheets)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise ValueError(f"{path.name}: cannot read as an Excel workbook: {error}") from error


def _read_xlsx(path: Path, sheet: str | None, headers=()) -> Table:
    import openpyxl  # here, not at the top: a third of a second the CLI's other commands skip

    formulas = _check_workbook(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        written = openpyxl.load_workbook(path, read_only=True) if formulas else None
    except Exception as error:  # openpyxl raises zipfile, KeyError and XML errors on bad files
        raise ValueError(f"{path.name}: cannot read as an Excel workbook: {error}") from error
    try:
        if not book.worksheets:
            raise ValueError(f"{path.name} has no worksheets (only chart sheets, or none)")
        if sheet is not None and sheet not in book.sheetnames:
            raise ValueError(f"{path.name} has no sheet {sheet!r}; it has {book.sheetnames}")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        title = worksheet.title
        numbered, unvalued = _sheet_rows(path.name, worksheet, written[title] if written else None)
    finally:
        book.close()
        if written is not None:
            written.close()
    table = _from_rows(numbered, "xlsx", path.name, headers)
    if len(book.sheetnames) > 1:
        table.notes.append(f"read sheet {title!r} of {book.sheetnames}")
    formula_issues = _cell_issues(
        [row for row, _ in unvalued],
        [f"cell {cell}" for _, cell in unvalued],
        [
            f"cell {cell} holds a formula with no saved value: read as empty. Open the file in "
            "Excel, let it calculate, save, and import again"
            for _, cell in unvalued
        ],
    )
    table.issues = _together(table.issues, formula_issues)
    return table


def _sheet_rows(label: str, worksheet, written) -> tuple[list, list[tuple[int, str]]]:
    """The sheet's rows as text, and (row, cell) of formulas without a cached value.

    ``written`` is the same sheet read with formulas (or None when the workbook has none)."""
    from openpyxl.utils import get_column_letter

    numbered, unvalued = [], []
    values = worksheet.iter_rows(min_row=1, values_only=True)
    formulas = written.iter_rows(min_row=1, values_only=True) if written is not None else None
    for number, row in enumerate(values, 1):
        check_row(label, number, row, len(numbered))
        numbered.append((number, [_cell_text(value) for value in row]))
        if formulas is None:
            continue
        cells = zip(row, next(formulas, ()), strict=False)
        for column, (value, formula) in enumerate(cells, start=1):
            if value is None and isinstance(formula, str) and formula.startswith("="):
                unvalued.append((number, f"{get_column_letter(column)}{number}"))
    return numbered, unvalued


OVERFLOW = "(cells beyond the header)"
"""A header cell of this name keeps the cells right of the header's last column."""


def _from_rows(numbered: list[tuple[int, list[str]]], kind: str, label: str, headers=()) -> Table:
    """Find the header row (it may sit under a title), then keep the non-blank rows below it."""
    # A row is blank when all its cells are: when their joined text is blank.
    filled = [bool("".join(row).strip()) for _, row in numbered]
    stripped = (
        (number, [cell.strip() for cell in row])
        for (number, row), full in zip(numbered, filled, strict=True)
        if full
    )
    content = list(itertools.islice(stripped, HEADER_SEARCH_ROWS))
    if not content:
        raise ValueError(f"{label} has no rows")
    candidates = content
    known = set(ALIAS_LOOKUP) | {_header_key(header) for header in headers}
    scores = [sum(_header_key(cell) in known for cell in row) for _, row in candidates]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i)) if max(scores) else 0
    header_row, header = candidates[best]
    names = _unique_headers(header)
    numbers = np.fromiter((number for number, _ in numbered), np.int64, len(numbered))
    below = numbers > header_row
    blank_rows = numbers[below & ~np.asarray(filled, bool)].tolist()
    data = np.flatnonzero(below & np.asarray(filled, bool))
    if len(data):
        rows = [numbered[position][1] for position in data]
        frame = _cells_frame(names, rows, numbers[data])
    else:
        frame = pd.DataFrame(columns=[*names, "row"])
    frame = frame.fillna("")
    # Trailing blank rows at the end of a sheet are formatting, not data.
    last = int(frame["row"].max()) if len(frame) else header_row
    blank_rows = [n for n in blank_rows if n < last]
    table = Table(frame=frame, kind=kind, header_row=header_row, blank_rows=blank_rows)
    if OVERFLOW not in names:
        table.issues = _overflow_issues(
            [numbered[position] for position in data], len(names), label
        )
    return table


def _overflow_issues(rows: list[tuple[int, list[str]]], width: int, label: str) -> pd.DataFrame:
    """A warning for each row with filled cells right of the header's last column: they have
    no column to go to and are not imported, so the report must say so (never dropped
    silently). A header cell named OVERFLOW keeps them instead."""
    found = [(number, _beyond_header(row, width)) for number, row in rows if len(row) > width]
    found = [(number, [cell.strip() for cell in cells]) for number, cells in found if cells]
    return _cell_issues(
        [number for number, _ in found],
        "(cells beyond the header)",
        [
            f"{len(cells):,} cell(s) right of the last header column not imported "
            f"({_shorten(' | '.join(cells))}); give them a header in {label} and import again"
            for _, cells in found
        ],
    )


def _beyond_header(row: list[str], width: int) -> list[str]:
    """The filled cells of ``row`` right of a header ``width`` cells wide."""
    return [cell for cell in row[width:] if cell.strip()]


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cells_frame(names: list[str], rows: list[list[str]], numbers: np.ndarray) -> pd.DataFrame:
    """Data rows as text columns named by the header and ``row`` (the row numbers), built
    column by column. Short rows are padded with blanks; cells beyond the header are not
    kept here (``_overflow_issues`` reports them) unless the header has a column named
    OVERFLOW: it then holds them, joined with " | ", in the rows that have any.
    As a record per row keyed by ``names`` would give: a repeated name holds the cells of
    its last column."""
    width = len(names)
    columns = list(itertools.zip_longest(*rows, fillvalue=""))[:width]
    columns += [("",) * len(rows)] * (width - len(columns))
    last = {name: position for position, name in enumerate(names)}
    built = []
    for name in names:
        values = list(columns[last[name]])
        if name == OVERFLOW:
            for position, row in enumerate(rows):
                beyond = " | ".join(_beyond_header(row, width))
                values[position] = beyond or values[position]
        built.append(pd.array(values, dtype="str"))
    built.append(pd.array(numbers, dtype="int64"))
    frame = pd.DataFrame(dict(enumerate(built)))
    frame.columns = [*names, "row"]
    return frame


READER_COLUMNS = ("row", "geometry lon", "geometry lat")
"""Columns the readers add to every table: the row number and a shape's point. A file's own
column of one of these names is kept under `file_column_name` (it was a crash or, for a
GeoPackage's "row", silently overwritten)."""


def file_column_name(name: str) -> str:
    """``name``, or "<name> (file column)" when a reader's own column has that name."""
    return f"{name} (file column)" if name in READER_COLUMNS else name


def _unique_headers(header: list[str]) -> list[str]:
    """Column names for a header's cells: a blank cell is "column N", a reader's own column
    name is `file_column_name`, and a repeated name "name (2)", "name (3)" ..., skipping
    names the header already has, so that every name is unique."""
    names = [
        file_column_name(str(cell).strip() or f"column {position}")
        for position, cell in enumerate(header, start=1)
    ]
    taken, first_seen, unique = set(names), set(), []
    for name in names:
        if name not in first_seen:
            first_seen.add(name)
            unique.append(name)
            continue
        count = 2
        while f"{name} ({count})" in taken:
            count += 1
        unique.append(f"{name} ({count})")
        taken.add(unique[-1])
    return unique


def _read_geo(path: Path, layer: str | None) -> Table:
    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
        if not layers:
            raise ValueError("it holds no layers")
        if layer is not None and layer not in layers:
            raise ValueError(f"it has no layer {layer!r}; it has {layers}")
        features = pyogrio.read_info(path, layer=layer or layers[0])["features"]
        if features > MAX_ROWS:
            raise ValueError(f"it has {features:,} features; at most {MAX_ROWS:,} are read")
        frame = gpd.read_file(path, layer=layer or layers[0], engine="pyogrio")
    except Exception as error:  # pyogrio raises several DataSourceError kinds
        raise ValueError(f"{path.name}: cannot read as GeoJSON or GeoPackage: {error}") from error
    _check_crs(path.name, frame)
    notes = []
    if len(layers) > 1:
        notes.append(f"read layer {layer or layers[0]!r} of {layers}")
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table.columns = _unique_headers(list(table.columns))
    table = table.astype(object).where(table.notna(), "").map(_cell_text)
    table["row"] = range(1, len(table) + 1)
    if has_geometry(frame.geometry).any():
        if frame.crs is None:
            raise ValueError(f"{path.name} has no coordinate reference system; set one and retry")
        points = frame.geometry.to_crs("EPSG:4326")
        if not set(points.dropna().geom_type) <= {"Point"}:
            notes.append("non-point geometries are placed at a point inside each shape")
            points = points.where(points.geom_type == "Point", points.representative_point())
        points = points.where(has_geometry(points), None)
        for column, values in (("geometry lon", points.x), ("geometry lat", points.y)):
            table[column] = values.map(lambda v: "" if pd.isna(v) else f"{v:.7f}").to_numpy()
    notes.append("features are numbered from 1 in file order")
    return Table(frame=table, kind="geo", notes=notes)


def _check_crs(label: str, frame: gpd.GeoDataFrame) -> None:
    """Refuse a file whose coordinates cannot be in the CRS it states (degrees labelled as
    metres would otherwise land in the sea off the Isles of Scilly, and the reverse nowhere)."""
    present = has_geometry(frame.geometry)
    if frame.crs is None or not present.any():
        return
    minx, miny, maxx, maxy = frame.geometry[present].total_bounds
    looks_degrees = -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    crs = frame.crs.to_string()
    span = f"x {minx:,.4f} to {maxx:,.4f}, y {miny:,.4f} to {maxy:,.4f}"
    if frame.crs.is_projected and looks_degrees:
        raise ValueError(
            f"{label} says its coordinates are {crs} (metres) but they look like degrees "
            f"({span}): set its CRS to EPSG:4326 and import again"
        )
    if frame.crs.is_geographic and not looks_degrees:
        raise ValueError(
            f"{label} says its coordinates are {crs} (degrees) but they are not degrees "
            f"({span}); British National Grid metres need EPSG:27700"
        )


def has_geometry(geometries: gpd.GeoSeries) -> np.ndarray:
    """True where a geometry is present and not empty."""
    values = geometries.values
    return ~(shapely.is_missing(values) | shapely.is_empty(values))


def recognise_columns(columns: list[str], mapping: dict[str, str] | None = None) -> dict:
    """Which file columns feed which record field: ``{field: [column, ...]}``.

    ``mapping`` (``{field: column}``) wins over recognition. Raises ValueError for a mapping
    that names an unknown field or a column the file lacks.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(
            f"mapping names unknown fields {unknown}; fields are {list(RECORD_FIELDS)}"
        )
    missing = sorted(column for column in mapping.values() if column not in columns)
    if missing:
        raise ValueError(f"mapping names columns not in the file: {missing}; it has {columns}")
    found: dict[str, list[str]] = {name: [column] for name, column in mapping.items()}
    taken = set(mapping.values())
    for column in columns:
        name = ALIAS_LOOKUP.get(_header_key(column))
        if column in taken or name is None or name in mapping:
            continue
        if name not in found:
            found[name] = [column]
        elif name in MULTI_COLUMN_FIELDS:
            found[name].append(column)
        else:
            continue
        taken.add(column)
    for axis, geometry_column in (("lon", "geometry lon"), ("lat", "geometry lat")):
        if geometry_column in columns and axis not in found:
            found[axis] = [geometry_column]
    return found


CONSTANT_FIELDS = (
    "type",
    "organisation",
    "sector",
    "parish",
    "opening_hours",
    "website",
    "last_checked",
    "location_precision",
    "source",
)
"""Fields a file may be given one value for, every row alike, when it has no column for them
("these are all pantries"). Not the name, id, address, postcode or coordinates: they tell
projects apart and place them, so one value for all would make every row one project or put
them all in one place; not ``synthetic`` or ``schedules`` either (what a file says of itself)."""


def check_constants(constants: dict[str, str] | None, found: dict) -> dict[str, str]:
    """``constants`` (``{field: value}``) tidied and checked against the columns ``found``
    (`recognise_columns`): blank values dropped; a type or location precision given as any
    spelling the import knows becomes its configured value.

    Raises ValueError for a field not in CONSTANT_FIELDS, a field the file has a column for,
    or a type or precision the import does not know."""
    checked = {}
    for name, value in (constants or {}).items():
        text = _clean_one(str(value))
        if not text:
            continue
        if name not in CONSTANT_FIELDS:
            raise ValueError(
                f"cannot set {name!r} for every row; a value for every row can be given for "
                f"{', '.join(CONSTANT_FIELDS)}"
            )
        if name in found:
            raise ValueError(
                f"{name} comes from the file's column {found[name][0]!r}: a value for every "
                "row is only for fields the file has no column for"
            )
        if name == "type":
            text = _known(name, text, _type_lookup(), project_types())
        elif name == "location_precision":
            text = _known(name, text, _precision_lookup(), LOCATION_PRECISIONS)
        elif name == "last_checked":
            try:
                text = dt.date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValueError(f"give last_checked as YYYY-MM-DD, got {text!r}") from None
        checked[name] = text
    return checked


def _known(name: str, text: str, lookup: dict[str, str], valid) -> str:
    """The configured value ``text`` spells (`_value_key`), or a ValueError naming ``valid``."""
    value = lookup.get(_value_key(text))
    if value is None:
        raise ValueError(f"{name} {text!r} is not known; choose one of {', '.join(valid)}")
    return value


def to_records(
    table: Table, mapping: dict[str, str] | None = None, constants: dict[str, str] | None = None
) -> tuple[pd.DataFrame, dict]:
    """The table as RECORD_FIELDS text columns (plus ``row``) and which columns fed each field
    (``info["columns"]``); ``constants`` fill fields the file has no column for, every row
    alike (`check_constants`; ``info["constants"]``).

    Raises ValueError when no name column or no location column (postcode, lat/lon,
    easting/northing) can be found, naming the columns the file has.
    """
    columns = [c for c in table.frame.columns if c != "row"]
    found = recognise_columns(columns, mapping)
    constants = check_constants(constants, found)
    file_columns = [c for c in columns if c not in ("geometry lon", "geometry lat")]
    if "name" not in found:
        raise ValueError(
            f"no project name column found; the file's columns are {file_columns}. "
            "Name it 'name' or map it, e.g. --map name='Project title'"
        )
    located = "postcode" in found or {"lat", "lon"} <= set(found)
    if not located and not {"easting", "northing"} <= set(found):
        raise ValueError(
            f"no postcode or coordinate columns found; the file's columns are {file_columns}. "
            "Map them, e.g. --map postcode='Post Code' (or lat=..., lon=...)"
        )
    records = pd.DataFrame({"row": table.frame["row"].astype("int64")})
    for name in RECORD_FIELDS:
        sources = found.get(name, [])
        if not sources:
            records[name] = ""
        elif len(sources) == 1:
            records[name] = table.frame[sources[0]]
        else:
            parts = [clean_text(table.frame[source]) for source in sources]
            joined = parts[0]
            for part in parts[1:]:
                joined = joined.where(part.eq(""), joined + ", " + part).str.strip(", ")
            records[name] = joined
    for name, value in constants.items():
        records[name] = value
    used = {column for sources in found.values() for column in sources}
    ignored = [c for c in file_columns if c not in used]
    return records, {"columns": found, "ignored_columns": ignored, "constants": constants}


INVISIBLE = dict.fromkeys(
    [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x200B, 0x2010), *range(0x2028, 0x202F)]
    + [0x2060, 0xFEFF],
    " ",
)
"""Control and invisible formatting characters: they become spaces."""


def _clean_one(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).translate(INVISIBLE).split())


TIDY = r"^(?:[!-~]+(?: [!-~]+)*)?$"
"""Text `_clean_one` leaves as it is: printable ASCII words with single spaces between them
(NFC and the INVISIBLE table change no printable ASCII; a space is its only white space)."""


def clean_text(values: pd.Series) -> pd.Series:
    """Text as typed, tidied: Unicode NFC, no control characters, single spaces, trimmed.

    Values already tidy (TIDY, matched on the whole column at once) are kept; `_clean_one`
    runs once for each distinct other value."""
    text = values.fillna("").astype("str")
    untidy = ~pc.match_substring_regex(pa.array(text), TIDY).to_numpy(zero_copy_only=False)
    if untidy.any():
        text[untidy] = map_distinct(text[untidy], _clean_one).to_numpy()
    return text


@cache
def _type_lookup() -> dict[str, str]:
    lookup = {}
    for name, info in project_types().items():
        lookup[_value_key(name)] = name
        lookup[_value_key(info["label"])] = name
    for name, words in TYPE_SYNONYMS.items():
        if name in project_types():
            lookup |= {_value_key(word): name for word in words}
    return lookup


def _type_within(value_key: str) -> str | None:
    """The one configured type whose name, label or synonym appears inside a longer value."""
    found = {
        name
        for phrase, name in _type_lookup().items()
        if re.search(rf"\b{re.escape(phrase)}\b", value_key)
    }
    return found.pop() if len(found) == 1 else None


def _value_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(text).casefold()).strip()


def normalise(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy text, map types and precisions to the configured values, reject rows without a name.

    Returns the kept records and the issues found (rows rejected or warned, with reasons).
    ``_precision_stated`` says whether the row itself gave a known precision: the store keeps a
    stored precision for rows that do not (`kindred_map.storage.reconcile`). ``_given`` names the
    fields the row gave, comma-separated (a merge into a stored project keeps the stored values
    of the others: `kindred_map.storage.reconcile.fill_merged`).
    """
    records = records.copy()
    for name in RECORD_FIELDS:
        records[name] = clean_text(records[name])
    records["_given"] = given_fields(records)
    issues = []
    no_name = records["name"].eq("")
    issues.append(issues_for(records[no_name], "name", "rejected", "no project name"))
    issues.extend(_lost_characters(records[~no_name]))

    keys = map_distinct(records["type"], _value_key)
    types = keys.map(_type_lookup())
    blank_type = records["type"].eq("")
    guessed = keys[types.isna() & ~blank_type].map(_type_within)
    read_as = guessed.notna() & ~no_name
    issues.append(
        issues_for(
            records[read_as.reindex(records.index, fill_value=False)],
            "type",
            "warning",
            "type "
            + records.loc[read_as[read_as].index, "type"].map(repr)
            + " read as "
            + guessed[read_as].astype("str"),
        )
    )
    types = types.fillna(guessed)
    unknown = types.isna() & ~blank_type & ~no_name
    issues.append(
        issues_for(
            records[unknown],
            "type",
            "warning",
            "type " + records.loc[unknown, "type"].map(repr) + " is not a configured type: "
            "stored as 'other'",
        )
    )
    issues.append(issues_for(records[blank_type & ~no_name], "type", "warning", NO_TYPE))
    records["type"] = types.fillna("other")

    precision, precision_issues = _precisions(records[~no_name])
    records.loc[precision.index, "location_precision"] = precision
    records["_precision_stated"] = records["location_precision"].ne("")
    issues.append(precision_issues)

    dates, date_issues = _dates(records[~no_name])
    records.loc[dates.index, "last_checked"] = dates
    issues.append(date_issues)

    flags = records["synthetic"].str.casefold()
    odd = ~flags.isin(TRUE_WORDS | FALSE_WORDS) & ~no_name
    issues.append(
        issues_for(
            records[odd],
            "synthetic",
            "warning",
            "synthetic " + records.loc[odd, "synthetic"].map(repr) + " is not yes/no: taken as no",
        )
    )
    records["synthetic"] = flags.isin(TRUE_WORDS)
    return records[~no_name], pd.concat(issues, ignore_index=True)


def given_fields(records: pd.DataFrame) -> pd.Series:
    """The RECORD_FIELDS each record gives (not blank), as ``"name,type,postcode,"``: the
    text is made once for each distinct set of given fields (a file has few)."""
    given = np.column_stack([records[name].ne("").to_numpy(bool) for name in RECORD_FIELDS])
    sets, which = np.unique(given @ (1 << np.arange(len(RECORD_FIELDS))), return_inverse=True)
    texts = [
        "".join(f"{name}," for bit, name in enumerate(RECORD_FIELDS) if code >> bit & 1)
        for code in sets.tolist()
    ]
    return pd.Series(np.asarray(texts, dtype=object)[which], index=records.index, dtype="str")


NO_TYPE = "no type: stored as 'other'"
"""The warning for a row without a type (a merge into a stored project keeps the stored type
instead, and drops this warning: `kindred_map.store.plan_import`)."""
LOST_CHARACTER = re.compile(r"[^\W\d_]\?[^\W\d_]")
"""A ``?`` between two letters ("Kitty?s Launderette"): most often a character the source
could not encode (an apostrophe, accent or dash) replaced on its way out."""
LOST_CHARACTER_FIELDS = ("name", "organisation", "address", "parish", "sector")
"""Fields checked for LOST_CHARACTER (a website may hold ``?`` in its query; hours are free)."""


def _lost_characters(records: pd.DataFrame) -> list[pd.DataFrame]:
    """A warning, with row and field, for each LOST_CHARACTER_FIELDS value holding a ``?``
    between letters: kept as given, for someone to check against the source."""
    found = []
    for name in LOST_CHARACTER_FIELDS:
        hit = records[name].str.contains(LOST_CHARACTER)
        found.append(
            issues_for(
                records[hit],
                name,
                "warning",
                name
                + " "
                + records.loc[hit, name].map(repr)
                + ": '?' between letters, likely a character lost in the source file (an "
                "apostrophe, accent or dash); kept as given, check it",
            )
        )
    return found


@cache
def _precision_lookup() -> dict[str, str]:
    lookup = {_value_key(name): name for name in LOCATION_PRECISIONS}
    for name, words in PRECISION_SYNONYMS.items():
        lookup |= {_value_key(word): name for word in words}
    return lookup


def _precisions(records: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Known location precisions; blank stays blank (geocode fills it); unknown values warn."""
    given = records["location_precision"]
    mapped = map_distinct(given, _value_key).map(_precision_lookup())
    unknown = mapped.isna() & given.ne("")
    issues = issues_for(
        records[unknown],
        "location_precision",
        "warning",
        "location_precision "
        + given[unknown].map(repr)
        + f" is not one of {', '.join(LOCATION_PRECISIONS)}: set from how the row is placed",
    )
    return mapped.fillna(""), issues


def _dates(records: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """``last_checked`` as an ISO date; day-first like UK spreadsheets; unreadable ones warn."""
    given = records["last_checked"]
    iso = pd.to_datetime(given, format="ISO8601", errors="coerce")
    uk = pd.to_datetime(given, dayfirst=True, format="mixed", errors="coerce")
    iso_like = given.str.match(r"^\d{4}-\d{2}-\d{2}")
    parsed = iso.where(iso_like, uk)
    bad = parsed.isna() & given.ne("")
    issues = issues_for(
        records[bad],
        "last_checked",
        "warning",
        "last_checked " + given[bad].map(repr) + " is not a date: left empty",
    )
    text = parsed.dt.strftime("%Y-%m-%d").astype(object).where(parsed.notna(), "")
    return text.astype("str"), issues


PROCESS_SECRET = secrets.token_bytes(32)
"""The key of ids derived outside a store (``join``, previews): random, never written anywhere."""
NAMESPACE_MAX = 40


def id_namespace(source: str) -> str:
    """The namespace of a file's ids: ``"Partner A 2025"`` -> ``"partner-a-2025"``.

    Lower case letters, digits and single hyphens, at most 40 characters; "file" if nothing
    is left. A colon never appears in it, so ``<namespace>:<id>`` splits unambiguously."""
    slug = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", str(source)).casefold())
    return slug.strip("-")[:NAMESPACE_MAX].strip("-") or "file"


def derive_ids(records: pd.DataFrame, secret: bytes | None = None) -> pd.Series:
    """A stable id from content when the file gives none: re-importing the same row gives it again.

    The id is an HMAC-SHA256, keyed with ``secret`` (the store's random secret, kept inside the
    store and never exported), of the name (case and spacing ignored), the type, the postcode
    and the coordinates as given: editing any of them makes a new record. Without the key the
    id cannot be recomputed, so trying every postcode of a district does not reveal a home's.
    Without ``secret`` a random key of this process is used (ids stable within one run).
    """
    key = PROCESS_SECRET if secret is None else secret
    parts = id_texts(records)
    digests = hmac_prefixes(key, parts.tolist())
    return "km-" + pd.Series(digests, index=parts.index, dtype="str")


SHA256_BLOCK = 64


def hmac_prefixes(key: bytes, texts: list[str]) -> list[str]:
    """The first 16 hex digits of HMAC-SHA256(``key``, text) of each UTF-8 text: what
    ``hmac.digest(key, text.encode(), "sha256").hex()[:16]`` gives, in half its time.

    HMAC as RFC 2104 defines it, with the key's two padded blocks hashed once and the hash
    states copied per text (``hmac.digest`` hashes them again for every text: 100,000 ids
    took 0.18 s of CPU, now 0.09 s); the hex digits made in one pass for all texts."""
    if len(key) > SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(SHA256_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key)).copy
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key)).copy
    digests = []
    for text in texts:
        state = inner()
        state.update(text.encode())
        final = outer()
        final.update(state.digest())
        digests.append(final.digest()[:8])
    return np.frombuffer(b"".join(digests).hex().encode(), dtype="S16").astype(str).tolist()


ID_FIELDS = ("name", "type", "postcode", "lat", "lon", "easting", "northing")
"""The fields `id_texts` reads."""


def id_texts(records: pd.DataFrame) -> pd.Series:
    """The text `derive_ids` keys: name (case-folded), type, postcode key, coordinates."""
    return (
        records["name"].str.casefold()
        + "|"
        + records["type"]
        + "|"
        + pcd_key(records["postcode"]).fillna("").astype("str")
        + "|"
        + records["lat"].astype("str")
        + "|"
        + records["lon"].astype("str")
        + "|"
        + records["easting"].astype("str")
        + "|"
        + records["northing"].astype("str")
    )


def assign_ids(
    records: pd.DataFrame,
    raw: pd.DataFrame,
    secret: bytes | None = None,
    namespace: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Give every record an id and merge rows that share one (the later row wins).

    ``raw`` holds the rows' values as read, for deriving ids (so a derived id does not depend
    on how the row was geocoded; ``secret`` keys them, see `derive_ids`). An id the file gives
    becomes ``<namespace>:<id>`` (unless it already starts so), so two partners' "Ref 1" are two
    projects; ``_file_id`` keeps it as given. Each merged row is named in a warning with the
    row it joins.
    """
    records = records.copy()
    blank = records.index[records["id"].eq("").to_numpy()]  # only these are derived
    derived = derive_ids(raw.loc[blank, list(ID_FIELDS)], secret)
    given = records["id"]
    records["_file_id"] = given
    if namespace:
        prefixed = given.str.startswith(f"{namespace}:")
        given = given.where(prefixed | given.eq(""), f"{namespace}:" + given)
    records["id"] = given.where(given.ne(""), derived)
    duplicated = records["id"].duplicated(keep="last")
    kept_row = records.drop_duplicates("id", keep="last").set_index("id")["row"]
    later = records.loc[duplicated, "id"].map(kept_row)
    reason = (
        "same project as row "
        + later.astype("str")
        + " (id "
        + records.loc[duplicated, "id"]
        + "): merged, row "
        + later.astype("str")
        + "'s values kept"
    )
    issues = issues_for(records[duplicated], "id", "warning", reason)
    return records[~duplicated], issues
