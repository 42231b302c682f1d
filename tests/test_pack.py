"""What councils get is true and complete: no synthetic record in any figure unless asked for,
every column defined once with its unit, tidy typed geometries, umask file modes, settings."""

import html
import io
import json
import os
import re
import sqlite3
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon
from test_export import GENERATED, _ogrinfo, build_projects, check_rfc7946
from test_export import _layer_reports as _layers

from kindred_map import (
    boundaries,
    classing,
    cli,
    columns,
    coverage,
    export,
    figures,
    files,
    privacy,
    profile,
    store,
)
from kindred_map.view import View, shown_projects

TYPES = "pantry,food_bank"
DISTANCE = 800
FORMATS = ("geojson", "csv", "gpkg")
WHATS = ("projects", "ward", "deanery", "borough")
OGR_TYPES = {
    "text": ("String",),
    "code": ("String",),
    "int": ("Integer", "Integer64"),
    "float": ("Real",),
    "bool": ("Integer(Boolean)",),
    "date": ("Date",),
}
"""The GDAL field types a column of each `columns.KINDS` kind may be written as."""
PCT_PARTS = {"pct_covered": "reached", "pct_deciles_1_2": "residents_deciles_1_2"}
"""Each percentage column and the count it is the share (0-100) of the population of."""


@pytest.fixture(scope="module")
def real_projects() -> gpd.GeoDataFrame:
    projects = build_projects()
    return projects[~projects["synthetic"].astype(bool)].reset_index(drop=True)


def _uncovered_ward(projects) -> tuple[str, pd.Series]:
    """A populous ward no real project of TYPES reaches, and a postcode in it."""
    result = coverage.assess(projects, TYPES, DISTANCE).by_area("ward")
    empty = result[(result["reached"] == 0) & (result["population"] > 5000)]
    code = empty.sort_values("WD24CD")["WD24CD"].iloc[0]
    postcodes = boundaries.load("postcode")
    inside = postcodes[(postcodes["WD24CD"] == code) & (postcodes["status"] == "live")]
    return code, inside.sort_values("residents", ascending=False).iloc[0]


@pytest.fixture(scope="module")
def with_fake(real_projects) -> tuple[gpd.GeoDataFrame, str]:
    """The real projects plus a made-up pantry in the middle of an uncovered ward."""
    code, pc = _uncovered_ward(real_projects)
    fake = real_projects[real_projects["id"] == "fb1"].copy()
    fake["id"] = "fake-pantry"
    fake["name"] = "Example Pantry (made up)"
    fake["type"] = "pantry"
    fake["synthetic"] = True
    fake["source"] = "synthetic example"
    fake["postcode"] = pc["postcode"]
    fake["WD24CD"] = code
    fake["LAD25CD"] = pc["LAD25CD"]
    fake["LSOA21CD"] = pc["LSOA21CD"]
    fake = fake.set_geometry([Point(pc["lon"], pc["lat"])], crs=boundaries.WGS84)
    both = pd.concat([real_projects, fake], ignore_index=True)
    return store.conform(gpd.GeoDataFrame(both, crs=boundaries.WGS84)), code


def _outputs(projects, tmp_path: Path, name: str, profiled, **options) -> dict[str, object]:
    """Every export of ``projects`` with coverage figures: file name -> comparable content
    (bytes for text files; a GeoPackage as its layers' tables, since GDAL stamps the time)."""
    figures = export.coverage_figures(projects, TYPES, DISTANCE, **options)
    common = {"coverage": figures, "generated": GENERATED, **options}
    folder = tmp_path / name
    outputs = {}
    for fmt in FORMATS:
        for what in WHATS:
            for path in export.write_export(
                folder / f"{what}.{fmt}", projects, fmt, what, **common
            ):
                outputs[path.name] = _content(path)
    pack = export.export_bytes(projects, "pack", **common)
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        archive.extractall(folder / "pack")
        for member in archive.namelist():
            outputs[f"pack/{member}"] = _content(folder / "pack" / member)
    assessed = coverage.assess(projects, TYPES, DISTANCE, **options)
    for level in coverage.AREA_LEVELS:
        outputs[f"coverage {level}"] = assessed.gaps(level)
    for level, code in profiled.items():
        outputs[f"profile {level}"] = profile.profile_html(
            level, code, DISTANCE, TYPES, projects, generated=GENERATED, **options
        ).encode("utf-8")
    return outputs


def _content(path: Path):
    if path.suffix != ".gpkg":
        return path.read_bytes()
    return {
        layer: pyogrio.read_dataframe(path, layer=layer)
        for layer in pyogrio.list_layers(path)[:, 0]
    }


def _same(first, second) -> bool:
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_same(first[k], second[k]) for k in first)
    if isinstance(first, pd.DataFrame):
        return first.equals(second)
    return first == second


def test_a_synthetic_project_changes_no_output_unless_asked_for(real_projects, with_fake, tmp_path):
    fake, ward = with_fake
    borough = boundaries.load("ward").set_index("WD24CD").loc[ward, "LAD24CD"]
    profiled = {"ward": ward, "borough": borough}
    without = _outputs(real_projects, tmp_path, "real", profiled)
    default = _outputs(fake, tmp_path, "fake", profiled)
    assert without.keys() == default.keys()
    changed = [name for name in without if not _same(without[name], default[name])]
    assert changed == [], f"a synthetic record changed {changed}"
    # Control: asked for by name, the made-up pantry covers the ward and every file says so.
    included = _outputs(fake, tmp_path, "included", profiled, include_synthetic=True)
    assert b"ILLUSTRATIVE (synthetic)" in included["profile ward"]
    wards = included["coverage ward"].set_index("WD24CD")
    assert wards.loc[ward, "pct_covered"] > 0
    assert without["coverage ward"].set_index("WD24CD").loc[ward, "pct_covered"] == 0
    readme = included["pack/README.txt"].decode("utf-8")
    assert readme.startswith("WARNING: INCLUDES 1 ILLUSTRATIVE (SYNTHETIC) RECORD(S)")
    for name, content in included.items():
        if name.endswith((".geojson",)):
            assert list(json.loads(content))[1] == "notice", name
        elif name.endswith("_about.txt"):
            assert content.decode("utf-8").startswith("WARNING: INCLUDES"), name
        elif name.endswith(".html"):
            assert content.decode("utf-8").splitlines()[1].startswith("<!-- WARNING"), name
        elif name.endswith(".gpkg"):
            assert content["about"]["item"].iloc[0] == "notice", name


def test_cli_leaves_synthetic_records_out_unless_asked_for(with_fake, tmp_path, capsys):
    fake, ward = with_fake
    path = tmp_path / "store.gpkg"
    store.write_store(fake, store.read_imports(path), path, "2025-11-03T09:30:00Z")
    base = ["gaps", "--types", TYPES, "--store", str(path)]
    assert cli.main([*base, "-o", str(tmp_path / "default.csv")]) == 0
    assert cli.main([*base, "--include-synthetic", "-o", str(tmp_path / "with.csv")]) == 0
    default = pd.read_csv(tmp_path / "default.csv", encoding="utf-8-sig").set_index("WD24CD")
    included = pd.read_csv(tmp_path / "with.csv", encoding="utf-8-sig").set_index("WD24CD")
    assert default.loc[ward, "pct_covered"] == 0 and included.loc[ward, "pct_covered"] > 0
    about = (tmp_path / "with_about.txt").read_text(encoding="utf-8")
    assert about.startswith("WARNING: INCLUDES 1 ILLUSTRATIVE")
    assert "WARNING" not in (tmp_path / "default_about.txt").read_text(encoding="utf-8")
    out = tmp_path / "area.txt"
    assert cli.main(["area", "ward", ward, "--store", str(path)]) == 0
    out.write_text(capsys.readouterr().out)
    assert "Example Pantry" not in out.read_text()
    assert cli.main(["area", "ward", ward, "--store", str(path), "--include-synthetic"]) == 0
    assert "Example Pantry" in capsys.readouterr().out


# --- one definition of every column -----------------------------------------------------


def _fields(part: str) -> dict[str, str]:
    """Field name -> GDAL type from an ``ogrinfo -so`` layer report."""
    fields = re.findall(r"^(\w+): (\w+(?:\(\w+\))?) \(", part, flags=re.MULTILINE)
    return dict(fields)


@pytest.fixture(scope="module")
def pack_folder(with_fake, tmp_path_factory) -> Path:
    fake, _ = with_fake
    figures = export.coverage_figures(fake, TYPES, DISTANCE)
    folder = tmp_path_factory.mktemp("pack")
    payload = export.export_bytes(fake, "pack", coverage=figures, generated=GENERATED)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        archive.extractall(folder)
    return folder


def test_every_column_of_every_output_has_its_own_true_definition(pack_folder):
    readme = (pack_folder / "README.txt").read_text(encoding="utf-8")
    gpkg = _layers(_ogrinfo(pack_folder / export.GPKG_NAME))
    with sqlite3.connect(pack_folder / export.GPKG_NAME) as connection:
        registered = set(
            connection.execute("SELECT table_name, column_name FROM gpkg_data_columns")
        )
    about = pyogrio.read_dataframe(pack_folder / export.GPKG_NAME, layer="about")
    for table in WHATS:
        layer = "projects" if table == "projects" else f"{table}_summary"
        gpkg_fields = _fields(gpkg[layer])
        geojson = json.loads((pack_folder / f"{table}.geojson").read_text(encoding="utf-8"))
        properties = set().union(*(feature["properties"] for feature in geojson["features"]))
        csv_name = "projects.csv" if table == "projects" else f"{table}_summary.csv"
        headers = pd.read_csv(pack_folder / csv_name, encoding="utf-8-sig", nrows=0).columns
        assert set(headers) == properties == set(gpkg_fields), table
        for name, ogr_type in gpkg_fields.items():
            column = columns.describe(name, table)
            assert table in column.tables and column.name == name
            assert column.unit.strip() and column.description.strip()
            assert ogr_type in OGR_TYPES[column.kind], (table, name, ogr_type, column.kind)
            assert (layer, name) in registered
            assert f"\n- {name} ({column.kind}; unit: {column.unit}): " in readme
            assert geojson["columns"][name].startswith(f"{column.kind}; unit: {column.unit}")
            assert f"columns of {layer}: {name}" in set(about["item"])
            if name.startswith("pct_"):
                assert column.unit == columns.PERCENT
                table_values = pd.read_csv(pack_folder / csv_name, encoding="utf-8-sig")
                part = PCT_PARTS[name]
                expected = 100 * table_values[part] / table_values["population"]
                assert np.allclose(table_values[name], expected.round(2), equal_nan=True)
        assert "gap_score" in gpkg_fields or table == "projects"
    # Each coverage column has its own description, not one line shared by many.
    coverage_descriptions = [c.description for c in columns.COVERAGE_COLUMNS.values()]
    assert len(set(coverage_descriptions)) == len(coverage_descriptions)
    assert all(name.startswith("pct_") for name in columns.COVERAGE_COLUMNS if "pct" in name)


def test_undefined_column_cannot_be_shipped():
    with pytest.raises(ValueError, match="no definition"):
        columns.describe("share_deciles_1_2", "ward")
    with pytest.raises(ValueError, match="no definition"):
        columns.describe("archdeaconry_name", "ward")
    assert columns.describe("projects_pantry_per_10k", "ward").unit == columns.PER_10K


def test_gaps_output_columns_are_defined(tmp_path):
    shipped = store.read_projects()
    result = coverage.assess(shipped, TYPES, DISTANCE)
    for level in coverage.AREA_LEVELS:
        table = result.gaps(level)
        for name in table.columns:
            assert columns.describe(name, f"gaps_{level}").unit


def test_nothing_shipped_names_an_internal_path(pack_folder):
    for path in pack_folder.iterdir():
        text = path.read_bytes().decode("utf-8", errors="ignore")
        assert "kindred_map/" not in text, path.name
        assert "reference/" not in text, path.name
        assert "shared/" not in text, path.name  # a licence's source name held one


def test_geopackage_types_dates_as_dates(pack_folder):
    gpkg = _layers(_ogrinfo(pack_folder / export.GPKG_NAME))
    assert _fields(gpkg["projects"])["last_checked"] == "Date"
    stored = pyogrio.read_dataframe(pack_folder / export.GPKG_NAME, layer="projects")
    checked = stored["last_checked"].dropna()
    assert len(checked) and (checked.dt.strftime("%Y-%m-%d") == "2025-10-01").all()


def test_pack_readme_gives_method_layers_and_owner(pack_folder):
    readme = (pack_folder / "README.txt").read_text(encoding="utf-8")
    assert "w = 2 for IMD 2025 deciles 1-2, 1.5 for deciles 3-4 and 1 otherwise" in readme
    assert "straight-line" in readme and "largest remainder" in readme
    inside = boundaries.metadata("ward")["measured"]["live_postcodes_inside_own_polygon_pct"]
    assert f"{inside:.1f}% of postcodes lie inside their own ward" in readme
    assert "200 m" in readme and "APPROXIMATE" in readme
    settings = export.pack_settings()
    for key in export.SETTINGS_KEYS:
        assert settings[key] in readme


# --- geometry hygiene -------------------------------------------------------------------


def test_tidy_geometries_make_valid_multipolygons_without_repeated_vertices():
    bowtie = Polygon([(0, 0), (2, 2), (2, 2), (2, 0), (0, 2), (0, 0)])
    square = Polygon([(0, 0), (1, 0), (1, 0), (1, 1), (0, 1)])
    tidy = export.tidy_geometries([bowtie, square, None])
    assert [g.geom_type for g in tidy[:2]] == ["MultiPolygon", "MultiPolygon"]
    assert tidy[2] is None
    for geometry in tidy[:2]:
        assert geometry.is_valid
        for polygon in geometry.geoms:
            ring = np.asarray(polygon.exterior.coords)
            assert (np.abs(np.diff(ring, axis=0)).sum(axis=1) > 0).all()
    assert tidy[0].area == pytest.approx(bowtie.buffer(0).area + 1)  # both triangles kept
    assert export.tidy_geometries([Point(1, 2)])[0].equals(Point(1, 2))


@pytest.mark.parametrize("level", export.LEVELS)
def test_area_geojson_has_no_repeated_vertex_and_one_type(pack_folder, level):
    payload = (pack_folder / f"{level}.geojson").read_bytes()
    check_rfc7946(payload)
    features = json.loads(payload)["features"]
    assert {feature["geometry"]["type"] for feature in features} == {"MultiPolygon"}
    for feature in features:
        for polygon in feature["geometry"]["coordinates"]:
            for ring in polygon:
                steps = np.abs(np.diff(np.asarray(ring), axis=0)).sum(axis=1)
                assert (steps > 0).all(), feature["properties"]
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.is_valid
    (part,) = _layers(_ogrinfo(pack_folder / f"{level}.geojson")).values()
    assert "Geometry: Multi Polygon" in part


# --- file modes -------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_files_are_written_with_the_umask(real_projects, tmp_path, mask):
    previous = os.umask(mask)
    try:
        written = []
        for fmt in ("geojson", "csv", "gpkg", "html", "pack"):
            written += export.write_export(tmp_path / f"out.{fmt}", real_projects, fmt)
        frame = export.area_summary(real_projects, "borough")
        for suffix in export.TABLE_SUFFIXES:
            written.append(export.write_table(frame, tmp_path / f"t{suffix}", "borough"))
        written.append(files.write_bytes(tmp_path / "plain.txt", b"x"))
    finally:
        os.umask(previous)
    written += list(tmp_path.glob("*_about.txt"))
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path.name
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = files.write_bytes(tmp_path / "kept.txt", b"old")

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        files.write_with(target, broken)
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


# --- settings ---------------------------------------------------------------------------


def test_pack_settings_come_from_file_then_environment_then_defaults(tmp_path, monkeypatch):
    defaults = export.pack_settings()
    assert set(defaults) == set(export.SETTINGS_KEYS)
    assert defaults["owner"] and defaults["pack_licence"]
    assert defaults["contact"] == ""  # shipped without one: a pack never names one by mistake
    mine = tmp_path / "mine.toml"
    mine.write_text('contact = "Jo Bloggs, jo@example.org"\n', encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text('owner = "Knowsley CVS"\n', encoding="utf-8")
    monkeypatch.setenv(export.SETTINGS_ENV, str(other))
    assert export.pack_settings()["owner"] == "Knowsley CVS"
    chosen = export.pack_settings(mine)
    assert chosen["contact"] == "Jo Bloggs, jo@example.org"
    assert chosen["owner"] == defaults["owner"]  # the explicit file wins over the environment
    bad = tmp_path / "bad.toml"
    bad.write_text('colour = "red"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown key"):
        export.pack_settings(bad)
    with pytest.raises(ValueError, match="cannot read"):
        export.pack_settings(tmp_path / "missing.toml")


def test_cli_settings_reach_the_readme(real_projects, tmp_path):
    path = tmp_path / "store.gpkg"
    store.write_store(real_projects, store.read_imports(path), path, "2025-11-03T09:30:00Z")
    settings = tmp_path / "s.toml"
    settings.write_text('contact = "Data team <data@example.org>"\n', encoding="utf-8")
    out = tmp_path / "pack.zip"
    argv = ["export", "--format", "pack", "--store", str(path), "--settings", str(settings)]
    assert cli.main([*argv, "-o", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        readme = archive.read("README.txt").decode("utf-8")
    assert "- Contact: Data team <data@example.org>" in readme


FRAGMENTS = ("a reference list kept with", "not official: Derived", "Not set")
"""Generated fragments a README once held (issue 23)."""


def _repeated_phrase(line: str) -> str | None:
    """A phrase of two or more words said twice within a few words ("not official: Derived,
    not official"): the mark of two generated texts pasted together."""
    words = re.findall(r"[a-z]+", line.lower())  # words, not dates and figures
    for size in (2, 3):
        for start in range(len(words) - size):
            phrase = words[start : start + size]
            following = words[start + size : start + size + 4 + size]
            for offset in range(len(following) - size + 1):
                if following[offset : offset + size] == phrase:
                    return " ".join(phrase)
    return None


def test_pack_readme_reads_as_plain_words_for_a_council_officer(pack_folder):
    readme = (pack_folder / "README.txt").read_text(encoding="utf-8")
    for fragment in FRAGMENTS:
        assert fragment not in readme
    assert not re.search(r"\b(?:kindred_map|boundaries|data|shared)/\w", readme)
    assert "()" not in readme and "; )" not in readme and "  " not in readme.replace("\n  ", "")
    prose = readme.split("Attribution (reproduce")[0]  # the data dictionary is a list of terms
    for line in prose.splitlines():  # a layer's "Measured:" list names figures: left out
        assert _repeated_phrase(line.split(" Measured: ")[0]) is None, line
    start = readme.index("Start here")
    assert start < readme.index("What\n----")
    assert "open map.html in any web browser" in readme
    assert "Places that the reviewed list puts in a neighbouring diocese" in readme


def test_pack_contact_comes_from_the_option_or_settings_and_its_absence_is_said(
    real_projects, tmp_path, capsys
):
    path = tmp_path / "store.gpkg"
    store.write_store(real_projects, store.read_imports(path), path, "2025-11-03T09:30:00Z")

    def pack(*options: str) -> str:
        out = tmp_path / "pack.zip"
        assert cli.main(["pack", "--store", str(path), "-o", str(out), *options]) == 0
        with zipfile.ZipFile(out) as archive:
            return archive.read("README.txt").decode("utf-8")

    readme = pack()
    assert "no contact" in capsys.readouterr().err
    assert f"- Contact: {export.NO_CONTACT}" in readme
    readme = pack("--contact", "Jo Bloggs, jo@example.org")
    assert "no contact" not in capsys.readouterr().err
    assert "- Contact: Jo Bloggs, jo@example.org" in readme
    settings = tmp_path / "s.toml"
    settings.write_text('contact = "Data team"\n', encoding="utf-8")
    assert "- Contact: Data team\n" in pack("--settings", str(settings))
    assert "- Contact: Jo\n" in pack("--settings", str(settings), "--contact", "Jo")


# --- template safety of the HTML map ----------------------------------------------------


@pytest.mark.parametrize("name", ["{{7*7}}", "{#3}", "</script>", "{0}{title}", "${7*7}"])
def test_html_map_carries_template_like_names_as_data(real_projects, name):
    projects = real_projects.copy()
    projects.loc[0, "name"] = name
    page = export.html_map(projects).decode("utf-8")
    script = page.split("var KINDRED = ", 1)[1].split(";\n", 1)[0]
    data = json.loads(script)
    popups = [marker["popup"] for marker in data["projects"]]
    assert any(
        popup.startswith(f"<strong>{name.replace('<', '&lt;').replace('>', '&gt;')}")
        for popup in popups
    )
    assert "</script>" not in script and "49" not in page.split("<script>", 1)[0]


# --- the pack's map.html: shaded areas, names, legend, sources; private homes stay private ------


def _map_data(page: str) -> dict:
    """The data the map's page draws from (the one JSON value in its script)."""
    return json.loads(page.split("var KINDRED = ", 1)[1].split(";\n", 1)[0])


@pytest.fixture(scope="module")
def pack_map(pack_folder) -> tuple[str, dict]:
    page = (pack_folder / "map.html").read_text(encoding="utf-8")
    return page, _map_data(page)


def test_pack_map_shades_every_level_in_the_dashboards_classes(pack_map, pack_folder, with_fake):
    _, data = pack_map
    levels = {layer["key"]: layer for layer in data["levels"]}
    assert list(levels) == list(export.LEVELS)
    for level, layer in levels.items():
        summary = gpd.read_file(pack_folder / f"{level}.geojson")
        key, name = boundaries.LAYERS[level]["key"], export.LEVEL_COLUMNS[level][1]
        assert [f["id"] for f in layer["areas"]["features"]] == summary[key].tolist()
        assert layer["names"] == summary[name].tolist()  # the names the summary gives
        assert sorted(spot[0] for spot in layer["labels"]) == list(range(len(summary)))
        measures = {measure["key"]: measure for measure in layer["measures"]}
        assert list(measures) == ["projects", "per_10k", "gap_score", "gap_per_1000"]
        for measure in measures.values():
            assert measure["help"] == figures.MEASURES[measure["key"]]["help"]
            assert measure["direction"] == classing.DIRECTIONS[measure["key"]]
            assert set(measure["fill"]) <= {entry["colour"] for entry in measure["classes"]}
        gap = measures["gap_score"]
        assert len(gap["classes"]) >= 3 and set(gap["fill"]) <= set(classing.WORSE_COLOURS)
        assert "beyond 800 m (straight line)" in gap["notes"][0]
        assert (figures.DEANERY_NOTE in layer["notes"]) is (level == "deanery")
    # The dashboard's own classes for the same projects (its default view: no illustrative
    # records) are the map's, area by area.
    fake, _ = with_fake
    shown = shown_projects(fake, View(layer="ward"))
    codes = figures.areas_in_view("ward", View(layer="ward"))
    dashboard = figures.area_figures("ward", shown).loc[codes]
    fills, classes = classing.colour_classes(dashboard["per_10k"], "per_10k")
    ours = next(m for m in levels["ward"]["measures"] if m["key"] == "per_10k")
    assert ours["classes"] == classes
    ward_codes = [f["id"] for f in levels["ward"]["areas"]["features"]]
    assert dict(zip(ward_codes, ours["fill"], strict=True)) == fills.to_dict()
    assert data["start"] == {"level": 0, "measure": 2}  # wards by gap score


def test_pack_map_carries_every_attribution_line_and_licence(pack_map, with_fake):
    _, data = pack_map
    fake, _ = with_fake
    facts = export.about(export.real_projects(fake), "projects map")
    assert set(facts["attribution"]) <= set(data["attributionLines"])
    for source, licence in facts["licences"].items():
        assert f"{source}: {licence}" in data["licences"]
    assert export.LEAFLET_CREDIT in data["attributionLines"]


def test_pack_map_geometries_are_rfc7946_wgs84(pack_map):
    _, data = pack_map
    for layer in data["levels"]:
        collection = check_rfc7946(json.dumps(layer["areas"]).encode())
        for feature in collection["features"]:
            west, south, east, north = shapely.geometry.shape(feature["geometry"]).bounds
            assert -3.4 < west < east < -2.2 and 53.2 < south < north < 53.8, feature["id"]
        for _, lat, lon in layer["labels"]:
            assert -3.4 < lon < -2.2 and 53.2 < lat < 53.8


def test_pack_map_never_holds_a_homes_position_address_or_postcode(pack_map, with_fake):
    page, data = pack_map
    fake, _ = with_fake
    home = fake[fake["location_precision"] == "ward_only"].iloc[0]
    assert home["address"] not in page and home["postcode"] not in page
    lon, lat = home.geometry.x, home.geometry.y
    for decimals in (4, 5, 6):
        for text in (f"{lon:.{decimals}f},{lat:.{decimals}f}", f'"lat":{lat:.{decimals}f}'):
            assert text not in page, text
    assert repr(float(lat)) not in page and f"{home['easting']:.0f}" not in page
    drawn = [(m["lon"], m["lat"]) for m in data["projects"] if m["home_run"]]
    assert len(drawn) == 1
    moved = Geod(ellps="WGS84").inv(*drawn[0], lon, lat)[2]
    assert moved > 100, "the home-run project is drawn at its ward's centre, not at the home"


@pytest.mark.parametrize("name", ["{{7*7}}", "<script>alert(1)</script>"])
def test_pack_map_carries_hostile_names_as_escaped_data(real_projects, name):
    projects = real_projects.copy()
    projects.loc[0, "name"] = name
    payload = export.export_bytes(projects, "pack", generated=GENERATED)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        page = archive.read("map.html").decode("utf-8")
    assert "<script>alert" not in page and "49" not in page.split("<script>", 1)[0]
    popups = [marker["popup"] for marker in _map_data(page)["projects"]]
    assert any(p.startswith(f"<strong>{html.escape(name)}</strong>") for p in popups)


def _counted(function, calls: list):
    """``function``, noting its name in ``calls`` at each call."""

    def counting(*args, **kwargs):
        calls.append(function.__name__)
        return function(*args, **kwargs)

    return counting


def test_a_pack_makes_each_table_once_and_holds_what_each_export_writes_alone(
    with_fake, tmp_path, monkeypatch
):
    """The pack makes the public view once and its GeoPackage and map of the tables it writes
    (not each again); what it holds is what the GeoPackage and HTML exports write alone."""
    fake, _ = with_fake
    figures = export.coverage_figures(fake, TYPES, DISTANCE)
    options = {
        "coverage": figures,
        "generated": GENERATED,
        "settings": export.pack_settings(),
        "include_synthetic": True,
    }
    alone = {
        export.GPKG_NAME: export.export_bytes(fake, "gpkg", "all", **options),
        "map.html": export.export_bytes(fake, "html", **options),
    }
    made = []
    for module, name in ((privacy, "public_records"), (export.formats, "area_summary")):
        monkeypatch.setattr(module, name, _counted(getattr(module, name), made))
    payload = export.export_bytes(fake, "pack", **options)
    assert sorted(made) == ["area_summary"] * len(export.LEVELS) + ["public_records"]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert archive.read("map.html") == alone["map.html"]
        (tmp_path / "pack.gpkg").write_bytes(archive.read(export.GPKG_NAME))
    (tmp_path / "alone.gpkg").write_bytes(alone[export.GPKG_NAME])
    layers = pyogrio.list_layers(tmp_path / "alone.gpkg")[:, 0]
    assert list(pyogrio.list_layers(tmp_path / "pack.gpkg")[:, 0]) == list(layers)
    for layer in layers:
        pd.testing.assert_frame_equal(
            pyogrio.read_dataframe(tmp_path / "pack.gpkg", layer=layer),
            pyogrio.read_dataframe(tmp_path / "alone.gpkg", layer=layer),
            check_exact=True,
        )
