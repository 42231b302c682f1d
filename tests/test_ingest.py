"""Reading project files as they come: encodings, headers, column names, mappings, types, ids."""

import hmac
import io
import re
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest

from kindred_map import cli, ingest

FIXTURES = Path(__file__).parent / "fixtures"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    return _write_bytes(path, text.encode(encoding))


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_windows_1252_names_are_decoded():
    table = ingest.read_table(FIXTURES / "messy_projects_cp1252.csv")
    assert table.encoding == "Windows-1252"
    names = set(table.frame["Project Name"])
    assert "St Anne’s Café Pantry" in names
    assert "Crèche & Warm Hub" in names


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    table = ingest.read_table(FIXTURES / "projects_utf8_bom.csv")
    assert table.encoding == "UTF-8 with BOM"
    assert list(table.frame.columns)[0] == "id"
    records, info = ingest.to_records(table)
    assert info["columns"]["id"] == ["id"]
    assert records["name"].tolist()[2] == "Zoë’s Warm Space"


def test_row_numbers_are_the_spreadsheet_rows_and_blank_rows_are_listed():
    table = ingest.read_table(FIXTURES / "messy_projects_cp1252.csv")
    assert table.header_row == 1
    assert table.blank_rows == [4]
    rows = table.frame.set_index("Project Name")["row"]
    assert rows["St Anne’s Café Pantry"] == 2
    assert rows["Swapped Coordinates Café"] == 7


def test_xlsx_header_is_found_under_a_title_row():
    table = ingest.read_table(FIXTURES / "messy_projects_title_row.xlsx")
    assert table.header_row == 3
    assert table.blank_rows == [7]
    records, info = ingest.to_records(table)
    assert info["columns"]["postcode"] == ["PCD"]
    assert info["columns"]["easting"] == ["Easting"]
    assert records["row"].tolist() == [4, 5, 6, 8]
    assert records["last_checked"].iloc[0] == "2025-09-30"


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Post Code", "postcode"),
        ("postcode", "postcode"),
        ("PCD", "postcode"),
        ("post_code", "postcode"),
        ("Latitude", "lat"),
        ("Y", "lat"),
        ("lng", "lon"),
        ("X", "lon"),
        ("Eastings", "easting"),
        ("Project name", "name"),
        ("Organization", "organisation"),
        ("Opening times", "opening_hours"),
        ("URL", "website"),
    ],
)
def test_common_column_names_are_recognised(header, field):
    assert ingest.recognise_columns(["Something else", header])[field] == [header]


def test_address_parts_are_joined():
    table = ingest.Table(
        frame=pd.DataFrame(
            {
                "Name": ["A"],
                "Address line 1": ["1 Church St"],
                "Address line 2": [""],
                "Town": ["Bootle"],
                "Postcode": ["L20 4RW"],
                "row": [2],
            }
        ),
        kind="csv",
    )
    records, _ = ingest.to_records(table)
    assert records["address"].iloc[0] == "1 Church St, Bootle"


def test_explicit_mapping_wins_and_unused_columns_are_reported(tmp_path):
    path = _write(tmp_path / "p.csv", "Title,Where,Notes,Postcode\nHub,L20 4RW,x,L1 8JQ\n")
    records, info = ingest.to_records(ingest.read_table(path), {"postcode": "Where"})
    assert records["postcode"].iloc[0] == "L20 4RW"
    assert info["columns"]["name"] == ["Title"]
    assert set(info["ignored_columns"]) == {"Notes", "Postcode"}


def test_bad_mappings_and_unreadable_files_say_what_is_wrong(tmp_path):
    path = _write(tmp_path / "p.csv", "Title,Postcode\nHub,L1 8JQ\n")
    table = ingest.read_table(path)
    with pytest.raises(ValueError, match="not in the file"):
        ingest.to_records(table, {"name": "Project"})
    with pytest.raises(ValueError, match="unknown fields"):
        ingest.to_records(table, {"colour": "Title"})
    nameless = ingest.read_table(_write(tmp_path / "n.csv", "Where,Postcode\nHub,L1 8JQ\n"))
    with pytest.raises(ValueError, match="no project name column"):
        ingest.to_records(nameless)
    placeless = ingest.read_table(_write(tmp_path / "q.csv", "Name,Notes\nHub,x\n"))
    with pytest.raises(ValueError, match="no postcode or coordinate columns"):
        ingest.to_records(placeless)
    with pytest.raises(ValueError, match="file not found"):
        ingest.read_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="save it as .xlsx"):
        ingest.read_table(_write(tmp_path / "old.xls", "x"))
    with pytest.raises(ValueError, match="cannot read as an Excel workbook"):
        ingest.read_table(_write(tmp_path / "broken.xlsx", "not a zip"))
    with pytest.raises(ValueError, match="has no rows"):
        ingest.read_table(_write(tmp_path / "empty.csv", "\n\n"))


def test_semicolon_separated_csv(tmp_path):
    path = _write(tmp_path / "p.csv", "name;postcode;lat\nHub;L1 8JQ;53,40\n")
    records, _ = ingest.to_records(ingest.read_table(path))
    assert records.loc[0, "postcode"] == "L1 8JQ"
    assert records.loc[0, "lat"] == "53,40"


def _normalised(**columns) -> tuple[pd.DataFrame, pd.DataFrame]:
    count = len(next(iter(columns.values())))
    frame = pd.DataFrame({name: [""] * count for name in ingest.RECORD_FIELDS})
    for name, values in columns.items():
        frame[name] = values
    frame["row"] = range(2, count + 2)
    return ingest.normalise(frame)


def test_types_map_synonyms_and_unknown_types_warn():
    records, issues = _normalised(
        name=["a", "b", "c", "d", "e", "f"],
        type=["Food Pantry", "warm hub", "Place of Welcome", "knitting", "", "food bank (main)"],
    )
    assert records["type"].tolist() == [
        "pantry",
        "warm_space",
        "place_of_welcome",
        "other",
        "other",
        "food_bank",
    ]
    reasons = issues.set_index("row")["reason"]
    assert "'knitting' is not a configured type" in reasons[5]
    assert "no type" in reasons[6]
    assert "read as food_bank" in reasons[7]
    assert not {2, 3, 4} & set(issues["row"])


def test_rows_without_a_name_are_rejected_and_text_is_tidied():
    records, issues = _normalised(
        name=["  Two\u00a0 spaces\t", "", "e\u0301 composed"],
        last_checked=["31/12/2024", "", "soon"],
        location_precision=["home", "", "roughly"],
    )
    assert records["name"].tolist() == ["Two spaces", "é composed"]
    assert records["last_checked"].tolist() == ["2024-12-31", ""]
    assert records["location_precision"].tolist() == ["ward_only", ""]
    rejected = issues[issues["level"] == "rejected"]
    assert rejected["row"].tolist() == [3]
    warned = issues[issues["level"] == "warning"].set_index("field")["reason"]
    assert "'soon' is not a date" in warned["last_checked"]
    assert "'roughly' is not one of" in warned["location_precision"]


def test_derived_ids_are_stable_and_duplicates_merge_naming_both_rows():
    records, _ = _normalised(
        name=["Hub", "hub ", "Other"], type=["pantry"] * 3, postcode=["L1 8JQ", "l18jq", "L1 8JQ"]
    )
    again, _ = _normalised(name=["Hub"], type=["pantry"], postcode=["L1 8JQ"])
    assert ingest.derive_ids(records).iloc[0] == ingest.derive_ids(again).iloc[0]
    kept, issues = ingest.assign_ids(records, records)
    assert kept["row"].tolist() == [3, 4]
    assert issues["row"].tolist() == [2]
    assert "same project as row 3" in issues["reason"].iloc[0]


@pytest.mark.parametrize("size", [0, 1, 32, 64, 65, 200])
def test_id_digests_are_hmac_sha256_for_every_key_length(size):
    # Derived ids are stored: the batch HMAC must give what the standard library's does.
    key = bytes(i % 256 for i in range(size))
    texts = ["", "hub|pantry|L18JQ|53.4|-2.9|340000.0|390000.0", "é ü 漢字\n|x", "a" * 300]
    expected = [hmac.digest(key, text.encode(), "sha256").hex()[:16] for text in texts]
    assert ingest.hmac_prefixes(key, texts) == expected
    assert ingest.hmac_prefixes(key, []) == []


def test_geojson_and_geopackage_points_give_coordinates(tmp_path):
    frame = gpd.GeoDataFrame(
        {"name": ["Hub", "No point"], "type": ["pantry", "other"]},
        geometry=gpd.points_from_xy([336684.0, None], [390042.0, None]),
        crs="EPSG:27700",
    )
    for suffix, driver in ((".geojson", "GeoJSON"), (".gpkg", "GPKG")):
        path = tmp_path / f"projects{suffix}"
        frame.to_file(path, driver=driver)
        records, info = ingest.to_records(ingest.read_table(path))
        assert info["columns"]["lat"] == ["geometry lat"]
        assert float(records.loc[0, "lat"]) == pytest.approx(53.4034, abs=1e-3)
        assert float(records.loc[0, "lon"]) == pytest.approx(-2.9538, abs=1e-3)
        assert records.loc[1, "lat"] == ""


def test_xlsx_sheet_can_be_chosen(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["nothing here"])
    other = book.create_sheet("Projects")
    other.append(["Name", "Postcode"])
    other.append(["Hub", "L1 8JQ"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    table = ingest.read_table(path, sheet="Projects")
    assert table.frame["Name"].tolist() == ["Hub"]
    with pytest.raises(ValueError, match="no sheet 'Nope'"):
        ingest.read_table(path, sheet="Nope")


def test_mapped_headers_are_found_under_a_title(tmp_path):
    path = _write(tmp_path / "p.csv", "Our list of things\n\nThing,Where\nHub,L1 8JQ\n")
    table = ingest.read_table(path, headers=["Thing", "Where"])
    assert table.header_row == 3
    records, _ = ingest.to_records(table, {"name": "Thing", "postcode": "Where"})
    assert records[["row", "name", "postcode"]].values.tolist() == [[4, "Hub", "L1 8JQ"]]


# --- hostile files (issue 9) ------------------------------------------------------------


def test_a_cell_longer_than_the_csv_module_allows_is_a_clear_error(tmp_path):
    for length in (40_000, 200_000):
        path = _write(tmp_path / "long.csv", f"name,postcode\nHub,L1 8JQ\n{'x' * length},L1 8JQ\n")
        with pytest.raises(ValueError, match=r"long.csv row 3: .*at most 32,767"):
            ingest.read_table(path)


def test_too_many_rows_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_ROWS", 5)
    rows = "".join(f"Hub {i},L1 8JQ\n" for i in range(50))
    with pytest.raises(ValueError, match="more than 5 rows"):
        ingest.read_table(_write(tmp_path / "many.csv", "name,postcode\n" + rows))


def test_a_workbook_without_worksheets_is_a_clear_error(tmp_path):
    plain = io.BytesIO()
    openpyxl.Workbook().save(plain)
    path = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/workbook.xml":
                data = re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", data)
            out.writestr(item, data)
    with pytest.raises(ValueError, match="empty.xlsx has no worksheets"):
        ingest.read_table(path)
    book = openpyxl.Workbook()
    book.create_chartsheet("Chart")
    book.remove(book["Sheet"])
    book.save(tmp_path / "charts.xlsx")
    with pytest.raises(ValueError, match="charts.xlsx: cannot read as an Excel workbook"):
        ingest.read_table(tmp_path / "charts.xlsx")


def _bomb(path: Path, unpacked_mb: int) -> Path:
    """A real workbook whose sheet XML is padded with ``unpacked_mb`` MB of empty rows."""
    book = openpyxl.Workbook()
    book.active.append(["Name", "Postcode"])
    plain = io.BytesIO()
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                out.writestr(item, source.read(item))
                continue
            head, tail = source.read(item).split(b"</sheetData>")
            with out.open(item.filename, "w", force_zip64=True) as sheet:
                sheet.write(head)
                block = b"<row/>" * (1 << 17)
                for _ in range(unpacked_mb * (1 << 20) // len(block)):
                    sheet.write(block)
                sheet.write(b"</sheetData>" + tail)
    return path


def test_a_decompression_bomb_is_refused_before_parsing(tmp_path):
    path = _bomb(tmp_path / "bomb.xlsx", 256)
    assert path.stat().st_size < 1_500_000
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"bomb.xlsx unpacks to 268 MB .*refused"):
        ingest.read_table(path)
    assert time.perf_counter() - start < 1.0


def test_one_windows_1252_line_in_a_utf8_file_keeps_the_rest_as_typed(tmp_path):
    data = "name,postcode\nCafé Zoë,L1 8JQ\n".encode() + "Crèche Hub,L1 8JQ\n".encode("cp1252")
    data += "Zoë’s Warm Space,L1 8JQ\n".encode()
    table = ingest.read_table(_write_bytes(tmp_path / "mixed.csv", data))
    assert table.frame["name"].tolist() == ["Café Zoë", "Crèche Hub", "Zoë’s Warm Space"]
    assert "1 line(s) read as Windows-1252" in table.encoding
    assert table.issues["row"].tolist() == [3]
    assert "line 3 is not UTF-8" in table.issues["reason"].item()


def test_a_formula_without_a_saved_value_is_reported(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["Name", "Postcode", "Count"])
    book.active.append(["Hub", "L1 8JQ", "=1+1"])
    book.active.append(["Cafe", "L20 4RW", 3])
    path = tmp_path / "formulas.xlsx"
    book.save(path)  # openpyxl saves formulas without a computed value, as a script would
    table = ingest.read_table(path)
    assert table.issues[["row", "field"]].values.tolist() == [[2, "cell C2"]]
    assert "formula with no saved value" in table.issues["reason"].item()


def test_degrees_labelled_as_british_national_grid_are_rejected(tmp_path):
    frame = gpd.GeoDataFrame(
        {"name": ["Hub"]}, geometry=gpd.points_from_xy([-2.98], [53.40]), crs="EPSG:27700"
    )
    for name, driver in (("wrong.gpkg", "GPKG"), ("wrong.geojson", "GeoJSON")):
        frame.to_file(tmp_path / name, driver=driver)
        with pytest.raises(ValueError, match=r"EPSG:27700 \(metres\) but they look like degrees"):
            ingest.read_table(tmp_path / name)
    metres = frame.set_geometry(gpd.points_from_xy([336684.0], [390042.0]), crs="EPSG:4326")
    metres.to_file(tmp_path / "metres.gpkg", driver="GPKG")
    with pytest.raises(ValueError, match="need EPSG:27700"):
        ingest.read_table(tmp_path / "metres.gpkg")


def test_the_cli_prints_one_line_for_a_hostile_file(tmp_path, capsys):
    path = _write(tmp_path / "long.csv", f"name,postcode\n{'x' * 200_000},L1 8JQ\n")
    assert cli.main(["import", str(path), "--store", str(tmp_path / "s.gpkg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "long.csv row 2" in err and "Traceback" not in err
    assert not (tmp_path / "s.gpkg").exists()


def test_a_question_mark_between_letters_warns_with_row_and_field():
    records, issues = _normalised(
        name=["Kitty?s Launderette", "What? Now", "Café Ñ?a", "Plain", "Q?"],
        organisation=["", "", "", "Smith?s Trust", ""],
        website=["https://x.example/a?b=1", "", "", "", ""],
    )
    assert len(records) == 5  # kept as given: a warning, never a rejection
    lost = issues[issues["reason"].str.contains("likely a character lost")]
    assert lost[["row", "field"]].values.tolist() == [[2, "name"], [4, "name"], [5, "organisation"]]
    assert "'Kitty?s Launderette'" in lost["reason"].iloc[0]
    assert records["name"].iloc[0] == "Kitty?s Launderette"


def test_constants_fill_fields_the_file_lacks_and_are_checked(tmp_path):
    path = _write(tmp_path / "pantries.csv", "name,postcode\nHope,L8 7SQ\nJoy,L1 8JQ\n")
    table = ingest.read_table(path)
    records, info = ingest.to_records(table, constants={"type": "Food pantry", "sector": " "})
    assert info["constants"] == {"type": "pantry"}  # a label read as its type; blanks dropped
    normalised, issues = ingest.normalise(records)
    assert normalised["type"].tolist() == ["pantry", "pantry"]
    assert not issues["field"].eq("type").any()  # no "no type: stored as 'other'" per row
    records, _ = ingest.to_records(table, constants={"location_precision": "home"})
    assert set(records["location_precision"]) == {"ward_only"}
    for bad, message in (
        ({"type": "knitting"}, "type 'knitting' is not known"),
        ({"name": "Same"}, "cannot set 'name' for every row"),
        ({"postcode": "L1 8JQ"}, "cannot set 'postcode'"),
        ({"last_checked": "soon"}, "YYYY-MM-DD"),
    ):
        with pytest.raises(ValueError, match=message):
            ingest.to_records(table, constants=bad)
    typed = _write(tmp_path / "typed.csv", "name,postcode,category\nHope,L8 7SQ,pantry\n")
    with pytest.raises(ValueError, match="comes from the file's column 'category'"):
        ingest.to_records(ingest.read_table(typed), constants={"type": "food_bank"})


def test_the_cli_sets_a_constant_for_every_row(tmp_path, capsys):
    path = _write(tmp_path / "pantries.csv", "name,postcode\nHope,L8 7SQ\nJoy,L1 8JQ\n")
    out = tmp_path / "out.csv"
    assert cli.main(["join", str(path), "--out", str(out), "--set", "type=pantry"]) == 0
    assert "type 'pantry' for every row" in capsys.readouterr().out
    assert set(pd.read_csv(out)["type"]) == {"pantry"}


def test_cells_right_of_the_header_are_reported_never_dropped_silently(tmp_path):
    """A CSV row with more cells than the header has nowhere to put them: the read warns with
    the row, what was left out and how to keep it. (A sheet's rows all have the sheet's width:
    an unheaded column there is read as "column N" and reported as not imported.)"""
    csv_path = _write(tmp_path / "wide.csv", "Name,Postcode\nHub,L1 8JQ,Tue 10-2,\nCafe,L1 8JQ\n")
    issues = ingest.read_table(csv_path).issues
    assert issues[["row", "field", "level"]].values.tolist() == [
        [2, "(cells beyond the header)", "warning"]
    ]
    assert "Tue 10-2" in issues["reason"].iloc[0]
    assert "wide.csv" in issues["reason"].iloc[0]
    book = openpyxl.Workbook()
    for row in (["Name", "Postcode"], ["Hub", "L1 8JQ", "Tue 10-2"], ["Cafe", "L1 8JQ"]):
        book.active.append(row)
    book.save(tmp_path / "wide.xlsx")
    sheet = ingest.read_table(tmp_path / "wide.xlsx")
    assert sheet.frame["column 3"].tolist() == ["Tue 10-2", ""]
    kept = ingest.read_table(
        _write(tmp_path / "kept.csv", f"Name,{ingest.OVERFLOW}\nHub,,Tue 10-2\n")
    )
    assert kept.frame[ingest.OVERFLOW].tolist() == ["Tue 10-2"]
    assert kept.issues.empty


def test_an_import_report_carries_the_cells_right_of_the_header(tmp_path, capsys):
    path = _write(tmp_path / "wide.csv", "Name,Postcode\nHub,L1 8JQ,EXTRA\n")
    assert cli.main(["join", str(path), "-o", str(tmp_path / "out.geojson")]) == 0
    assert re.search(
        r"^2\s+warning\s+\(cells beyond the header\).*EXTRA", capsys.readouterr().out, re.M
    )


def test_a_file_column_named_like_a_readers_own_column_is_kept_under_its_own_name(tmp_path):
    """ "row" (the row number) and "geometry lon"/"geometry lat" (a shape's point) are columns
    every reader adds; a file's own column of that name was a crash (CSV, sheet) or silently
    overwritten (GeoPackage). It is kept as "<name> (file column)" and reported as not
    imported, and the row numbers stay the file's."""
    csv_path = _write(
        tmp_path / "rows.csv", "Name,Postcode,row\nHub,L1 8JQ,seven\n\nCafe,L1 8JQ,\n"
    )
    table = ingest.read_table(csv_path)
    assert table.frame["row"].tolist() == [2, 4]
    assert table.frame["row (file column)"].tolist() == ["seven", ""]
    records, info = ingest.to_records(table)
    assert records["row"].tolist() == [2, 4]
    assert info["ignored_columns"] == ["row (file column)"]
    frame = gpd.GeoDataFrame(
        {"name": ["Hub", "Cafe"], "row": [70, 80], "geometry lon": ["a", "b"]},
        geometry=gpd.points_from_xy([336684.0, 336700.0], [390042.0, 390100.0]),
        crs="EPSG:27700",
    )
    frame.to_file(tmp_path / "rows.gpkg", driver="GPKG")
    geo = ingest.read_table(tmp_path / "rows.gpkg").frame
    assert geo["row"].tolist() == [1, 2]
    assert geo["row (file column)"].tolist() == ["70", "80"]
    assert geo["geometry lon (file column)"].tolist() == ["a", "b"]
    assert float(geo["geometry lon"].iloc[0]) == pytest.approx(-2.9538, abs=1e-3)


def test_repeated_header_names_get_numbers_no_other_column_has(tmp_path):
    path = _write(tmp_path / "dup.csv", "Name,Postcode,Name,Name (2),,\nHub,L1 8JQ,B,C,D,E\n")
    frame = ingest.read_table(path).frame
    assert list(frame.columns) == [
        "Name",
        "Postcode",
        "Name (3)",
        "Name (2)",
        "column 5",
        "column 6",
        "row",
    ]
    assert frame.iloc[0, :6].tolist() == ["Hub", "L1 8JQ", "B", "C", "D", "E"]
