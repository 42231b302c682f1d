"""Exports: RFC 7946 GeoJSON, GeoPackage and CSV that GDAL opens, a council pack, filters, and no
home-run (ward_only) project's position in any of them."""

import html
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import Point, Polygon, shape

from kindred_map import assets, boundaries, cli, columns, export, filters, importing, privacy, store
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS, project_types

GENERATED = datetime(2025, 11, 3, 9, 30, tzinfo=UTC)
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_ORGANISATION = "</script><script>alert(2)</script>"
HOME_ADDRESS = "12 Hidden Lane, Nowhere Street"
OUTSIDE = {
    "out1": ("exact", "1 Market Street", "M1 1AE", (-2.24265, 53.48076)),
    "home2": ("ward_only", HOME_ADDRESS, "M13 9PL", (-2.23013, 53.46712)),
}
"""Manchester, outside the region: no ward, no borough, no deanery."""
SECRET_MIN_M = 1_000
"""A home-run project's true position is at least this far from its ward's centre."""

# --- a store-shaped sample built from the shipped layers ------------------------------------


def _layer_names():
    wards = boundaries.load("ward").set_index("WD24CD")["WD24NM"]
    boroughs = boundaries.load("borough").set_index("LAD25CD")["LAD25NM"]
    lsoa = boundaries.load("lsoa").set_index("LSOA21CD")["imd_decile"]
    return wards, boroughs, lsoa


def _deanery_of(points: gpd.GeoSeries) -> pd.DataFrame:
    deaneries = boundaries.load("deanery")[["deanery_id", "deanery_name", "geometry"]]
    found = gpd.sjoin(gpd.GeoDataFrame(geometry=points), deaneries, how="left")
    return found[~found.index.duplicated()][["deanery_id", "deanery_name"]]


def _postcode(postcodes: pd.DataFrame, borough: str) -> pd.Series:
    return postcodes[postcodes["LAD25CD"] == borough].sort_values("pcd_key").iloc[0]


def _far_postcode(postcodes: pd.DataFrame, borough: str) -> pd.Series:
    """The postcode of ``borough`` farthest from its own ward's centre (a telling position)."""
    wards = boundaries.load("ward").to_crs(boundaries.BNG).set_index("WD24CD")
    centre = wards.representative_point()
    candidates = postcodes[postcodes["LAD25CD"] == borough].copy()
    centres_xy = centre.reindex(candidates["WD24CD"]).to_numpy()
    points = shapely.points(candidates["easting"], candidates["northing"])
    candidates["apart"] = shapely.distance(points, centres_xy)
    chosen = candidates.sort_values(["apart", "pcd_key"], ascending=[False, True]).iloc[0]
    assert chosen["apart"] > SECRET_MIN_M
    return chosen


def _telling(source: str, pc: pd.Series) -> str:
    """A source note that names the position, as an importer's note might."""
    return (
        f"{source}: placed at {pc['postcode']} ({pc['lat']:.5f}, {pc['lon']:.5f}; "
        f"E {pc['easting']:.0f} N {pc['northing']:.0f})"
    )


def build_projects() -> gpd.GeoDataFrame:
    """Eight projects shaped like `store.read_projects()`: real postcodes, real area codes."""
    postcodes = boundaries.load("postcode")
    postcodes = postcodes[(postcodes["status"] == "live") & (postcodes["residents"] > 0)]
    wards, boroughs, lsoa = _layer_names()
    rows = [
        (
            "fb1",
            "North Food Bank",
            "food_bank",
            _postcode(postcodes, "E08000012"),
            "exact",
            "Give Food (givefood.org.uk)",
            False,
        ),
        (
            "ws1",
            "Library Warm Space",
            "warm_space",
            _postcode(postcodes, "E08000010"),
            "street",
            "Open Innovations warm spaces",
            False,
        ),
        (
            "pa1",
            "Example Pantry",
            "pantry",
            _postcode(postcodes, "E08000014"),
            "exact",
            "illustrative example",
            True,
        ),
        (
            "home1",
            "Kitchen Table Lunches",
            "church_project",
            _far_postcode(postcodes, "E08000013"),
            "ward_only",
            "diocese survey 2025",
            False,
        ),
        (
            "xss1",
            XSS_NAME,
            "other",
            _postcode(postcodes, "E06000006"),
            "exact",
            "diocese survey 2025",
            False,
        ),
        (
            "caf1",
            "Café St Mary’s",
            "place_of_welcome",
            _postcode(postcodes, "E08000011"),
            "exact",
            "diocese survey 2025",
            False,
        ),
    ]
    records = []
    for pid, name, kind, pc, precision, source, synthetic in rows:
        records.append(
            {
                "id": pid,
                "name": name,
                "type": kind,
                "organisation": XSS_ORGANISATION if pid == "xss1" else "St Example PCC",
                "address": HOME_ADDRESS if precision == "ward_only" else "1 Church Road",
                "postcode": pc["postcode"],
                "lat": pc["lat"],
                "lon": pc["lon"],
                "easting": pc["easting"],
                "northing": pc["northing"],
                "opening_hours": "Tu 10:00-12:00",
                "schedules": '[{"byday":"TU","opens_at":"10:00","closes_at":"12:00"}]',
                "sector": "Community",
                "website": "example.org",
                "parish": "St Example",
                "last_checked": "2025-10-01",
                "location_precision": precision,
                "synthetic": synthetic,
                "source": _telling(source, pc) if precision == "ward_only" else source,
                "WD24CD": pc["WD24CD"],
                "WD24NM": wards[pc["WD24CD"]],
                "ward_source": "postcode",
                "ward_note": "polygon ward differs" if precision == "ward_only" else "",
                "LAD25CD": pc["LAD25CD"],
                "LAD25NM": boroughs[pc["LAD25CD"]],
                "LSOA21CD": pc["LSOA21CD"],
                "imd_decile": lsoa[pc["LSOA21CD"]],
                "in_region": True,
                "nearest_borough": "",
                "geometry": Point(pc["lon"], pc["lat"]),
            }
        )
    for pid, (precision, address, postcode, (lon, lat)) in OUTSIDE.items():
        records.append(
            {
                "id": pid,
                "name": f"Outside {pid}",
                "type": "other",
                "organisation": "",
                "address": address,
                "postcode": postcode,
                "lat": lat,
                "lon": lon,
                "easting": np.nan,
                "northing": np.nan,
                "opening_hours": "",
                "schedules": "",
                "sector": "",
                "website": "",
                "parish": "",
                "last_checked": "",
                "location_precision": precision,
                "synthetic": False,
                "source": "survey",
                "WD24CD": "",
                "WD24NM": "",
                "ward_source": "",
                "ward_note": "outside the region",
                "LAD25CD": "",
                "LAD25NM": "",
                "LSOA21CD": "",
                "imd_decile": None,
                "in_region": False,
                "nearest_borough": "Sefton",
                "geometry": Point(lon, lat),
            }
        )
    frame = gpd.GeoDataFrame(records, crs=boundaries.WGS84)
    deanery = _deanery_of(frame.geometry)
    frame["deanery_id"] = deanery["deanery_id"]
    frame["deanery_name"] = deanery["deanery_name"]
    frame["deanery_note"] = np.where(deanery["deanery_id"].isna(), "outside the diocese", "")
    return store.conform(frame[[*RECORD_FIELDS, *JOINED_FIELDS, "geometry"]])


@pytest.fixture(scope="module")
def projects() -> gpd.GeoDataFrame:
    return build_projects()


def real(projects: pd.DataFrame) -> pd.DataFrame:
    """The records an export counts by default: no illustrative (synthetic) ones."""
    return projects[~projects["synthetic"].astype(bool)]


@pytest.fixture(scope="module")
def secrets(projects) -> pd.DataFrame:
    """True positions and postcodes of the home-run projects (must never leave)."""
    hidden = projects[projects["location_precision"] == "ward_only"]
    assert len(hidden) == 2
    return hidden


def test_sample_follows_store_contract(projects):
    assert list(projects.columns) == [*store.STORE_FIELDS, "geometry"]
    assert projects.crs.to_epsg() == 4326
    assert projects.loc[projects["id"] == "fb1", "WD24CD"].item().startswith("E05")


# --- leak detection ---------------------------------------------------------------------

PAIR_WINDOW = 300
GEOJSON_PAIR = re.compile(r"\[(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\]")
"""A [lon, lat] position as GeoJSON writes it (compact or with a space)."""
FAR_DEGREES = 0.01
"""A position farther than this from a home on either axis (700 m east-west, 1.1 km
north-south) is another place: its coordinates are not the home's, whatever their digits."""


def _tokens(value: float, decimals: int) -> str:
    text = f"{Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals))}"
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text


def _whole(character: str) -> bool:
    """Whether a character next to a number found in a text makes it part of a longer one."""
    return character.isdecimal() or character == "."


def _places(text: str, number: str) -> list[int]:
    """Where ``number`` stands whole in ``text`` (no digit or point just before it, no digit
    just after), as the regular expression (?<![\\d.])number(?!\\d) finds it; by str.find,
    20 times faster on a map page (0.5 ms, not 9.5, for 580,000 characters)."""
    found, start = [], text.find(number)
    while start != -1:
        end = start + len(number)
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if not _whole(before) and not after.isdecimal():
            found.append(start)
        start = text.find(number, start + 1)
    return found


def _near_each_other(text: str, first: str, second: str) -> bool:
    starts = _places(text, first)
    others = _places(text, second) if starts else []
    return any(abs(a - b) <= PAIR_WINDOW for a in starts for b in others)


def leaks(text: str, secret: pd.Series) -> list[str]:
    """Ways ``text`` gives away a home-run project's position, postcode or address."""
    found = []
    lon, lat = secret.geometry.x, secret.geometry.y
    # A boundary vertex far from the home may share one coordinate's digits by chance (an HTML
    # map holds thousands of them): whole positions far away are not scanned for single values.
    text = GEOJSON_PAIR.sub(
        lambda m: (
            "[]"
            if abs(float(m[1]) - lon) > FAR_DEGREES or abs(float(m[2]) - lat) > FAR_DEGREES
            else m[0]
        ),
        text,
    )
    for decimals in (6, 5):
        for value in (lon, lat):
            if _places(text, _tokens(value, decimals)):
                found.append(f"{value} at {decimals} decimals")
    for decimals in (4, 3):
        if _near_each_other(text, _tokens(lon, decimals), _tokens(lat, decimals)):
            found.append(f"lon/lat pair at {decimals} decimals")
    x, y = shapely.get_coordinates(
        gpd.GeoSeries([secret.geometry], crs=boundaries.WGS84).to_crs(boundaries.BNG)
    )[0]
    for decimals in (1, 0):
        if _near_each_other(text, _tokens(x, decimals), _tokens(y, decimals)):
            found.append(f"easting/northing pair at {decimals} decimals")
    compact = re.sub(r"\s+", "", text).upper()
    postcode = secret["postcode"].replace(" ", "").upper()
    if postcode in compact:
        found.append(f"postcode {secret['postcode']}")
    if HOME_ADDRESS.upper() in text.upper():
        found.append("home address")
    return found


def test_leak_detector_finds_what_it_should(secrets):
    secret = secrets.iloc[0]
    lon, lat = secret.geometry.x, secret.geometry.y
    assert leaks(json.dumps([round(lon, 6), round(lat, 6)]), secret)
    assert leaks(f"{round(lat, 4)},{round(lon, 4)}", secret)
    assert leaks(f"x {secret['postcode'].lower()} y", secret)
    assert not leaks(json.dumps([round(lon + 0.02, 6), round(lat + 0.02, 6)]), secret)
    # A far position sharing the home's longitude is another place; a near one is caught.
    assert not leaks(json.dumps([[round(lon, 6), round(lat + 0.3, 6)]]), secret)
    assert leaks(json.dumps([[round(lon, 6), round(lat + 0.001, 6)]]), secret)


def _gpkg_leaks(payload: bytes, secrets: pd.DataFrame, folder: Path) -> list[str]:
    path = folder / "scan.gpkg"
    path.write_bytes(payload)
    found = []
    for layer in pyogrio.list_layers(path)[:, 0]:
        frame = pyogrio.read_dataframe(path, layer=layer)
        text = pd.DataFrame(frame.drop(columns="geometry", errors="ignore")).to_csv()
        for _, secret in secrets.iterrows():
            found += [f"{layer}: {leak}" for leak in leaks(text, secret)]
            if isinstance(frame, gpd.GeoDataFrame) and frame.geom_type.eq("Point").any():
                truth = gpd.GeoSeries([secret.geometry], crs=boundaries.WGS84).to_crs(frame.crs)
                near = frame.geometry.distance(truth.iloc[0]).min()
                if near < SECRET_MIN_M / 2:
                    found.append(f"{layer}: a point {near:.0f} m from a home-run project")
    raw = payload.decode("latin-1")
    for _, secret in secrets.iterrows():
        found += [f"raw bytes: {leak}" for leak in leaks(raw, secret)]
    return found


def _file_leaks(
    name: str, payload: bytes, secrets: pd.DataFrame, folder: Path, scanned: dict | None = None
) -> list[str]:
    """What of ``secrets`` a file gives away. ``scanned`` (kind of file, bytes) -> leaks found
    spares scanning the same bytes twice (the packs of every ``what`` hold the same members)."""
    kind = Path(name).suffix
    if scanned is not None and (kind, payload) in scanned:
        return scanned[kind, payload]
    if name.endswith(".gpkg"):
        found = _gpkg_leaks(payload, secrets, folder)
    elif name.endswith(".zip"):
        found = []
        with zipfile.ZipFile(io.BytesIO(payload)) as pack:
            for member in pack.namelist():
                found += [
                    f"{member}: {leak}"
                    for leak in _file_leaks(member, pack.read(member), secrets, folder, scanned)
                ]
    else:
        text = payload.decode("utf-8-sig")
        found = [leak for _, secret in secrets.iterrows() for leak in leaks(text, secret)]
    if scanned is not None:
        scanned[kind, payload] = found
    return found


def test_no_home_run_position_in_any_export(projects, secrets, tmp_path):
    produced = {}
    for fmt in export.FORMATS:
        for what in export.WHATS:
            try:
                payload = export.export_bytes(projects, fmt, what, generated=GENERATED)
            except ValueError:
                continue
            suffix = "zip" if fmt == "pack" else f"{fmt}.zip" if fmt == "oruk-csv" else fmt
            produced[f"{what}.{suffix}"] = payload
    produced["about.txt"] = export.csv_about_text(projects).encode()
    assert {"projects.geojson", "projects.gpkg", "projects.csv", "projects.html"} <= set(produced)
    assert {"projects.oruk", "projects.oruk-csv.zip"} <= set(produced)
    assert "all.zip" in produced
    scanned = {}
    found = {
        name: _file_leaks(name, data, secrets, tmp_path, scanned) for name, data in produced.items()
    }
    assert not any(found.values()), {name: hits for name, hits in found.items() if hits}
    # The positive control: the unmasked store itself is caught by the same scan.
    raw = pd.DataFrame(projects.drop(columns="geometry")).to_csv()
    assert all(leaks(raw, secret) for _, secret in secrets.iterrows())


def test_home_run_project_is_shown_at_its_ward_centre(projects, secrets):
    table = export.project_table(projects).set_index("id")
    wards = boundaries.load("ward").set_index("WD24CD")
    home = table.loc["home1"]
    secret = secrets.set_index("id").loc["home1"]
    assert home.geometry.equals_exact(
        wards.loc[secret["WD24CD"]].geometry.representative_point(), 1e-9
    )
    assert wards.loc[secret["WD24CD"]].geometry.contains(home.geometry)
    assert (home["lon"], home["lat"]) == (round(home.geometry.x, 6), round(home.geometry.y, 6))
    assert pd.isna(home["address"]) and pd.isna(home["LSOA21CD"]) and pd.isna(home["imd_decile"])
    assert pd.isna(home["ward_note"])
    assert home["postcode"] == secret["postcode"].split()[0]
    assert home["location_note"] == privacy.SHOWN_AT_WARD_CENTRE
    assert home["WD24CD"] == secret["WD24CD"] and home["LAD25CD"] == secret["LAD25CD"]
    # Without a known ward there is nowhere safe to show it: no geometry at all.
    assert table.loc["home2"].geometry is None
    assert table.loc["home2", "location_note"] == privacy.LOCATION_WITHHELD
    # Other records keep their place.
    food = projects.set_index("id").loc["fb1"]
    assert table.loc["fb1"].geometry.distance(food.geometry) < 1e-6
    assert table.loc["fb1", "postcode"] == food["postcode"]


def test_home_run_free_text_names_no_postcode_or_coordinate():
    text = "Survey: placed at wa11 8rp (53.51622, -2.732099; E 351234 N 398765.5), see L8"
    assert privacy.scrub_text(text) == (
        "Survey: placed at WA11 ([withheld], [withheld]; E [withheld] N [withheld]), see L8"
    )
    assert privacy.scrub_text("Open Tu 10:00-12:00, 2 rooms") == "Open Tu 10:00-12:00, 2 rooms"


def test_masking_twice_changes_nothing(projects):
    once = privacy.public_records(projects)
    twice = privacy.public_records(once)
    assert once.geometry.equals(twice.geometry)
    pd.testing.assert_frame_equal(
        pd.DataFrame(once.drop(columns="geometry")), pd.DataFrame(twice.drop(columns="geometry"))
    )


@pytest.mark.parametrize(
    ("postcode", "district"),
    [
        ("L8 7XY", "L8"),
        ("wa101ab", "WA10"),
        (" M1  1AE ", "M1"),
        ("L8", "L8"),
        ("12 Acacia Avenue", None),
        ("", None),
        (None, None),
    ],
)
def test_outward_code_keeps_only_the_district(postcode, district):
    assert privacy.outward_code(postcode) == district


# --- GeoJSON ----------------------------------------------------------------------------


def _max_decimals(coordinates) -> int:
    flat = np.asarray(shapely.get_coordinates(coordinates)).ravel()
    return max((len(repr(float(v)).split(".")[1].rstrip("0")) for v in flat), default=0)


def _rings(geometry):
    polygons = getattr(geometry, "geoms", [geometry])
    for polygon in polygons:
        yield polygon.exterior, True
        for hole in polygon.interiors:
            yield hole, False


def check_rfc7946(payload: bytes) -> dict:
    """Parse a GeoJSON export and assert RFC 7946: no crs, WGS84 ranges, 6 decimals, winding."""
    collection = json.loads(payload)
    assert collection["type"] == "FeatureCollection"
    assert "crs" not in collection
    for feature in collection["features"]:
        assert feature["type"] == "Feature" and "crs" not in feature
        if feature["geometry"] is None:
            continue
        geometry = shape(feature["geometry"])
        assert _max_decimals(geometry) <= 6, feature["id"]
        west, south, east, north = geometry.bounds
        assert -180 <= west <= east <= 180 and -90 <= south <= north <= 90
        for ring, exterior in _rings(geometry) if geometry.geom_type.endswith("Polygon") else ():
            assert ring.is_ccw is exterior, f"{feature['id']}: wrong winding"
    return collection


def test_rfc7946_geometries_fix_winding_and_precision():
    hole = [(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4)]  # counter-clockwise
    shell = [(0.0, 0.0), (0.0, 1.1234567891), (1.0, 1.0), (1.0, 0.0)]  # clockwise
    polygon = Polygon(shell, [hole])
    assert not polygon.exterior.is_ccw and polygon.interiors[0].is_ccw
    (fixed,) = export.rfc7946_geometries([polygon])[0].geoms
    assert fixed.exterior.is_ccw and not fixed.interiors[0].is_ccw
    assert _max_decimals(fixed) == 6
    assert fixed.normalize().equals_exact(polygon.normalize(), 1e-6)


@pytest.mark.parametrize("what", ["projects", "ward", "deanery", "borough"])
def test_geojson_is_rfc7946_with_codes_vintage_and_attribution(projects, what):
    collection = check_rfc7946(export.export_bytes(projects, "geojson", what, generated=GENERATED))
    properties = collection["features"][0]["properties"]
    if what == "projects":
        assert len(collection["features"]) == len(real(projects))
        for code in ("WD24CD", "LAD25CD", "LSOA21CD", "deanery_id"):
            assert code in properties
        assert boundaries.metadata("ward")["vintage"] in properties["boundary_vintage"]
    else:
        assert len(collection["features"]) == len(boundaries.load(what))
        assert boundaries.LAYERS[what]["key"] in properties
        assert properties["boundary_vintage"].endswith(boundaries.metadata(what)["vintage"])
    assert collection["generated"] == "2025-11-03T09:30:00Z"
    for line in boundaries.attribution_lines(export.PROJECT_LAYERS):
        assert line in collection["attribution"]
    assert (
        "Food bank data from Give Food (givefood.org.uk), public domain."
        in collection["attribution"]
    )
    assert any("no licence stated" in v.lower() for v in collection["licences"].values())


def test_geojson_polygons_with_holes_keep_rfc7946_winding(projects):
    collection = check_rfc7946(export.export_bytes(projects, "geojson", "borough"))
    holes = sum(
        len(polygon.interiors)
        for feature in collection["features"]
        for polygon in getattr(shape(feature["geometry"]), "geoms", [shape(feature["geometry"])])
    )
    assert holes > 0, "the borough layer has holes: the winding check must see some"


def test_geojson_keeps_text_as_text(projects):
    collection = json.loads(export.export_bytes(projects, "geojson"))
    names = {f["properties"]["name"] for f in collection["features"]}
    assert XSS_NAME in names and "Café St Mary’s" in names


# --- summaries --------------------------------------------------------------------------


@pytest.mark.parametrize("level", export.LEVELS)
def test_summary_counts_each_project_once_in_its_area(projects, level):
    assert export.area_summary(projects, level)["synthetic_projects"].sum() == 0
    summary = export.area_summary(projects, level, include_synthetic=True)
    key = boundaries.LAYERS[level]["key"]
    codes = projects[key].map(export.tables._code_or_none)
    expected = codes[codes.isin(set(summary[key]))].value_counts()
    counted = summary.set_index(key)["projects"]
    assert counted[counted > 0].sort_index().to_dict() == expected.sort_index().to_dict()
    type_columns = [f"projects_{t}" for t in project_types()]
    assert (summary[type_columns].sum(axis=1) == summary["projects"]).all()
    with_projects = summary[summary["projects"] > 0].iloc[0]
    assert with_projects["projects_per_10k"] == round(
        with_projects["projects"] / with_projects["population"] * 10_000, 2
    )
    assert (
        summary["home_run_projects"].sum()
        == ((projects["location_precision"] == "ward_only") & codes.isin(set(summary[key]))).sum()
    )
    assert summary["synthetic_projects"].sum() == 1


def test_summary_takes_coverage_figures_by_area_code(projects):
    wards = boundaries.load("ward")
    figures = pd.DataFrame(
        {"WD24CD": wards["WD24CD"], "WD24NM": wards["WD24NM"], "pct_covered": 50.0}
    ).iloc[:10]
    figures["population"] = 1
    summary = export.area_summary(projects, "ward", figures).set_index("WD24CD")
    first = figures["WD24CD"].iloc[0]
    assert summary.loc[first, "pct_covered"] == 50.0
    assert summary["pct_covered"].isna().sum() == len(wards) - 10
    assert "coverage_WD24NM" not in summary.columns  # same names: not repeated
    assert summary.loc[first, "coverage_population"] == 1  # differs: kept apart
    with pytest.raises(ValueError, match="none of the coverage"):
        export.area_summary(projects, "ward", pd.DataFrame({"WD24CD": ["E99999999"], "x": [1]}))
    with pytest.raises(ValueError, match="need a WD24CD"):
        export.area_summary(projects, "ward", pd.DataFrame({"code": ["x"]}))


def test_summary_follows_area_filters(projects):
    liverpool = export.area_summary(projects, "ward", area_filters={"boroughs": "Liverpool"})
    wards = boundaries.load("ward")
    assert set(liverpool["WD24CD"]) == set(wards.loc[wards["LAD24NM"] == "Liverpool", "WD24CD"])
    boroughs = export.area_summary(projects, "borough", area_filters={"wards": ["E05000932"]})
    assert boroughs["LAD25NM"].tolist() == ["Sefton"]


# --- GeoPackage and CSV -----------------------------------------------------------------


def test_geopackage_has_every_layer_in_british_national_grid(projects, tmp_path):
    path = tmp_path / "all.gpkg"
    path.write_bytes(export.export_bytes(projects, "gpkg", "all", generated=GENERATED))
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == {
        "projects",
        "ward_summary",
        "deanery_summary",
        "borough_summary",
        "about",
    }
    for layer in ("projects", "ward_summary", "deanery_summary", "borough_summary"):
        info = pyogrio.read_info(path, layer=layer)
        assert info["crs"] == "EPSG:27700"
        assert "Give Food" in info["layer_metadata"]["attribution"]
        assert (
            "Ordnance Survey" in info["layer_metadata"]["DESCRIPTION"]
            or "OS data" in info["layer_metadata"]["DESCRIPTION"]
        )
    about = pyogrio.read_dataframe(path, layer="about")
    for line in export.attribution(projects):
        assert line in set(about["value"])
    stored = pyogrio.read_dataframe(path, layer="projects")
    assert len(stored) == len(real(projects))
    assert set(stored["id"]) == set(real(projects)["id"])
    assert stored.geometry.dropna().x.between(300_000, 420_000).all()  # metres, not degrees


def test_csv_is_clean_and_complete(projects, tmp_path):
    out = tmp_path / "projects.csv"
    written = export.write_export(out, projects, "csv", generated=GENERATED)
    assert written == [out, tmp_path / "projects_about.txt"]
    payload = out.read_bytes()
    assert payload.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == list(columns.PROJECT_COLUMNS)
    assert table["id"].tolist() == real(projects)["id"].tolist()
    assert XSS_NAME in set(table["name"]) and "Café St Mary’s" in set(table["name"])
    about = written[1].read_text(encoding="utf-8")
    for line in export.attribution(projects):
        assert line in about
    assert "2025-11-03T09:30:00Z" in about


# --- GDAL opens every file --------------------------------------------------------------

OGRINFO = shutil.which("ogrinfo")


def _ogrinfo(path: Path) -> str:
    if OGRINFO is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ogrinfo (gdal-bin) is required when CI=true")
        pytest.skip("ogrinfo not installed (apt-get install gdal-bin)")
    run = subprocess.run(
        [OGRINFO, "-ro", "-so", "-al", str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr  # no warning, no notice
    return run.stdout


def _layer_reports(report: str) -> dict[str, str]:
    parts = re.split(r"^Layer name: ", report, flags=re.MULTILINE)[1:]
    return {part.splitlines()[0].strip(): part for part in parts}


def _feature_count(part: str) -> int:
    return int(re.search(r"^Feature Count: (\d+)", part, flags=re.MULTILINE).group(1))


def _expected_count(projects, what: str) -> int:
    return len(real(projects)) if what == "projects" else len(boundaries.load(what))


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "csv"])
@pytest.mark.parametrize("what", ["projects", "ward", "deanery", "borough"])
def test_ogrinfo_opens_export_with_crs_and_count(projects, tmp_path, fmt, what):
    path = tmp_path / f"{what}.{fmt}"
    export.write_export(path, projects, fmt, what, generated=GENERATED)
    layers = _layer_reports(_ogrinfo(path))
    if fmt == "gpkg":
        assert set(layers) == {"projects" if what == "projects" else f"{what}_summary", "about"}
        layers.pop("about")
    assert len(layers) == 1
    (part,) = layers.values()
    assert _feature_count(part) == _expected_count(projects, what)
    if fmt == "geojson":
        assert 'ID["EPSG",4326]' in part
    elif fmt == "gpkg":
        assert 'ID["EPSG",27700]' in part


def test_ogrinfo_opens_every_file_of_the_council_pack(projects, tmp_path):
    payload = export.export_bytes(projects, "pack", generated=GENERATED)
    with zipfile.ZipFile(io.BytesIO(payload)) as pack:
        pack.extractall(tmp_path)
        names = set(pack.namelist())
    assert names == {
        "README.txt",
        "projects.geojson",
        "projects.csv",
        "ward.geojson",
        "deanery.geojson",
        "borough.geojson",
        "ward_summary.csv",
        "deanery_summary.csv",
        "borough_summary.csv",
        "kindred_map.gpkg",
        "map.html",
    }
    geojson = _layer_reports(_ogrinfo(tmp_path / "projects.geojson"))
    assert _feature_count(next(iter(geojson.values()))) == len(real(projects))
    gpkg = _layer_reports(_ogrinfo(tmp_path / "kindred_map.gpkg"))
    assert set(gpkg) == {"projects", "ward_summary", "deanery_summary", "borough_summary", "about"}
    for what in ("projects", *export.LEVELS):
        part = gpkg["projects" if what == "projects" else f"{what}_summary"]
        assert _feature_count(part) == _expected_count(projects, what)
        assert 'ID["EPSG",27700]' in part
    for level in export.LEVELS:
        (part,) = _layer_reports(_ogrinfo(tmp_path / f"{level}_summary.csv")).values()
        assert _feature_count(part) == len(boundaries.load(level))
        (part,) = _layer_reports(_ogrinfo(tmp_path / f"{level}.geojson")).values()
        assert _feature_count(part) == len(boundaries.load(level))
        assert (
            "Geometry: Multi Polygon" in part
            and "Geometry: Multi Polygon" in gpkg[f"{level}_summary"]
        )
        check_rfc7946((tmp_path / f"{level}.geojson").read_bytes())
    check_rfc7946((tmp_path / "projects.geojson").read_bytes())


# --- the pack's README ------------------------------------------------------------------


def test_pack_readme_says_what_when_how_and_whose(projects):
    parameters = {"Project types": "food_bank, pantry", "Reach distance": "800 m"}
    payload = export.council_pack(projects, parameters=parameters, generated=GENERATED)
    with zipfile.ZipFile(io.BytesIO(payload)) as pack:
        readme = pack.read("README.txt").decode("utf-8")
    assert "Generated 2025-11-03T09:30:00Z" in readme
    assert "- Project types: food_bank, pantry" in readme and "- Reach distance: 800 m" in readme
    for name in ("projects.geojson", "kindred_map.gpkg", "map.html", "ward_summary.csv"):
        assert f"- {name}: " in readme
    for layer in export.PROJECT_LAYERS:
        meta = boundaries.metadata(layer)
        assert meta["vintage"] in readme and meta["licence"] in readme
    section = readme.split("Attribution (reproduce these lines exactly")[1]
    for line in export.attribution(projects):
        assert f"\n{line}\n" in section
    assert "Food bank data from Give Food (givefood.org.uk), public domain." in section
    assert "Royal Mail" in section
    assert "no licence stated" in readme.lower()
    assert "APPROXIMATE" in readme and "home-run" in readme.lower()
    assert "1 exported project(s) fall in no ward" not in readme  # two are outside
    assert "2 exported project(s) fall in no ward" in readme
    for column in columns.PROJECT_COLUMNS:
        assert f"- {column} (" in readme


def test_pack_covers_coverage_figures_when_given(projects):
    wards = boundaries.load("ward")
    figures = {"ward": pd.DataFrame({"WD24CD": wards["WD24CD"], "gap_score": 1.0})}
    payload = export.council_pack(projects, coverage=figures, generated=GENERATED)
    with zipfile.ZipFile(io.BytesIO(payload)) as pack:
        readme = pack.read("README.txt").decode("utf-8")
        ward_csv = pd.read_csv(io.BytesIO(pack.read("ward_summary.csv")), encoding="utf-8-sig")
    assert (ward_csv["gap_score"] == 1.0).all()
    assert "Coverage and gap figures (ward summaries)" in readme
    assert "- gap_score (float; unit: need-weighted people): " in readme


# --- the HTML map, without a browser ----------------------------------------------------


def test_html_map_is_one_file_with_no_external_reference(projects):
    page = export.html_map(projects, generated=GENERATED).decode("utf-8")
    vendor = assets.inline_js(("leaflet",))
    assert vendor in page, "Leaflet is inlined verbatim"
    ours = page.replace(vendor, "")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", ours, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", ours, re.IGNORECASE)
    assert not re.search(r"url\(\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert "@import" not in page
    assert "tileLayer" not in ours


def test_html_map_escapes_every_text(projects):
    page = export.html_map(projects).decode("utf-8")
    script = page.split("var KINDRED = ", 1)[1].split(";\n", 1)[0]
    assert "<" not in script and ">" not in script
    assert XSS_NAME not in page and XSS_ORGANISATION not in page
    data = json.loads(script)
    popups = " ".join(marker["popup"] for marker in data["projects"])
    assert html.escape(XSS_NAME) in popups and html.escape(XSS_ORGANISATION) in popups
    # Drawn: the located ones (home-run with a ward at its centre); not the one without a ward.
    assert len(data["projects"]) == len(real(projects)) - 1
    assert sum(marker["home_run"] for marker in data["projects"]) == 1
    assert sum(marker["synthetic"] for marker in data["projects"]) == 0
    # The Manchester project (out1) is drawn as a hollow ring and its popup says why.
    outside = [marker for marker in data["projects"] if marker["outside"]]
    assert (
        len(outside) == 1 and "Outside the region; nearest borough: Sefton" in outside[0]["popup"]
    )
    assert "2 project(s) outside the region (hollow rings): counted in no area." in data["notes"]


# --- filters ----------------------------------------------------------------------------


def test_filters_select_by_type_area_decile_and_realness(projects):
    def ids(**chosen):
        return set(filters.filter_projects(projects, **chosen)["id"])

    assert ids(include_synthetic=True) == set(projects["id"])
    assert ids(types="food_bank,pantry", include_synthetic=True) == {"fb1", "pa1"}
    assert ids(types="food_bank,pantry") == {"fb1"}
    assert ids(types=["warm_space"]) == {"ws1"}
    assert ids(boroughs="liverpool") == ids(boroughs=["E08000012"]) == {"fb1"}
    ward = projects.set_index("id").loc["caf1", "WD24CD"]
    assert ids(wards=[ward]) == {"caf1"}
    deanery = projects.set_index("id").loc["fb1", "deanery_name"]
    assert "fb1" in ids(deaneries=[deanery.lower()])
    decile = int(projects.set_index("id").loc["fb1", "imd_decile"])
    chosen = ids(imd_deciles=[decile])
    assert "fb1" in chosen and chosen == set(projects.loc[projects["imd_decile"] == decile, "id"])
    assert ids() == ids(include_synthetic=False) == set(projects["id"]) - {"pa1"}
    assert ids(types="food_bank", boroughs="Wigan") == set()


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ({"types": "soup_kitchen"}, "unknown project type"),
        ({"boroughs": "Atlantis"}, "no borough called 'Atlantis'"),
        ({"wards": "Nowhere"}, "no ward called"),
        ({"deaneries": "Nowhere"}, "no deanery called"),
        ({"imd_deciles": "11"}, "IMD decile"),
        ({"imd_deciles": "one"}, "IMD decile"),
    ],
)
def test_bad_filters_are_named(projects, chosen, message):
    with pytest.raises(ValueError, match=message):
        filters.filter_projects(projects, **chosen)


def test_describe_filters_in_words():
    assert filters.describe_filters() == {"Illustrative (synthetic) records": "left out"}
    described = filters.describe_filters(
        types="pantry", boroughs=["Sefton"], imd_deciles="1,2", include_synthetic=True
    )
    assert described == {
        "Project types": "pantry",
        "Boroughs": "Sefton",
        "IMD 2025 deciles": "1, 2",
        "Illustrative (synthetic) records": "INCLUDED (not real projects)",
    }


def test_export_rejects_what_the_format_cannot_hold(projects):
    with pytest.raises(ValueError, match="HTML map shows projects"):
        export.export_bytes(projects, "html", "ward")
    with pytest.raises(ValueError, match="one table"):
        export.export_bytes(projects, "csv", "all")
    with pytest.raises(ValueError, match="unknown format"):
        export.export_bytes(projects, "shp")
    with pytest.raises(ValueError, match="store columns"):
        export.export_bytes(projects.drop(columns="location_precision"), "geojson")


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def store_path(projects, tmp_path) -> Path:
    path = tmp_path / "store.gpkg"
    store.write_store(projects, store.read_imports(path), path, "2025-11-03T09:30:00Z")
    return path


def test_cli_export_follows_filters(store_path, tmp_path, capsys):
    out = tmp_path / "food.geojson"
    argv = ["export", "--format", "geojson", "--types", "food_bank,warm_space"]
    argv += ["--borough", "Liverpool", "--store", str(store_path), "-o", str(out)]
    assert cli.main(argv) == 0
    collection = check_rfc7946(out.read_bytes())
    assert {f["id"] for f in collection["features"]} == {"fb1"}
    assert collection["parameters"]["Project types"] == "food_bank,warm_space".replace(",", ", ")
    assert collection["parameters"]["Boroughs"] == "Liverpool"
    assert "exported 1 of 8 projects" in capsys.readouterr().out


def test_cli_gpkg_defaults_to_every_layer_and_summaries_follow_area(store_path, tmp_path):
    out = tmp_path / "sefton.gpkg"
    argv = ["export", "--format", "gpkg", "--borough", "Sefton", "--store", str(store_path)]
    assert cli.main([*argv, "-o", str(out)]) == 0
    layers = set(pyogrio.list_layers(out)[:, 0])
    assert layers == {"projects", "ward_summary", "deanery_summary", "borough_summary", "about"}
    wards = pyogrio.read_dataframe(out, layer="ward_summary")
    assert len(wards) == (boundaries.load("ward")["LAD24NM"] == "Sefton").sum()
    assert pyogrio.read_dataframe(out, layer="borough_summary")["LAD25NM"].tolist() == ["Sefton"]


def test_cli_export_bad_input_exits_2(store_path, tmp_path, capsys):
    out = tmp_path / "x.csv"
    argv = ["export", "--format", "csv", "--types", "soup", "--store", str(store_path)]
    assert cli.main([*argv, "-o", str(out)]) == 2
    assert "unknown project type" in capsys.readouterr().err
    assert not out.exists()


# --- export then import -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_export_then_import_returns_the_same_records(projects, tmp_path, fmt):
    out = tmp_path / f"projects.{fmt}"
    export.write_export(out, projects, fmt, generated=GENERATED, include_synthetic=True)
    imported = tmp_path / "imported.gpkg"
    report = importing.import_file(out, imported)
    back = store.read_projects(imported).set_index("id")
    # Ids a file gives are stored under the file's namespace (its name): projects:<id>.
    back.index = back.index.str.removeprefix("projects:")
    original = projects.set_index("id")
    # The home-run project with no known ward leaves with no position at all, so it cannot be
    # placed again: the import rejects it and says why.
    withheld = {"home2"}
    assert report.rows_read == len(projects)
    assert report.rejected == len(withheld)
    assert set(back.index) == set(original.index) - withheld
    columns = ["name", "type", "location_precision", "synthetic", "WD24CD", "LAD25CD"]
    expected = original.loc[back.index, columns]
    pd.testing.assert_frame_equal(
        pd.DataFrame(back[columns]).astype(str), pd.DataFrame(expected).astype(str)
    )


# --- coverage figures for export --------------------------------------------------------


def test_coverage_figures_never_depend_on_a_home_run_projects_true_position(projects):
    coverage = pytest.importorskip("kindred_map.coverage")
    figures = export.coverage_figures(projects, distance_m=800)
    assert set(figures) == set(export.LEVELS)

    def moved(project_id):
        shifted = projects.copy()
        row = shifted["id"] == project_id
        shifted.loc[row, "geometry"] = (
            shifted.loc[row].to_crs(27700).translate(0, 600).to_crs(shifted.crs)
        )
        return shifted

    home = moved("home1")
    pd.testing.assert_frame_equal(
        export.coverage_figures(home, distance_m=800)["ward"], figures["ward"]
    )
    pd.testing.assert_frame_equal(
        coverage.assess(home, None, 800).by_area("ward"),
        coverage.assess(projects, None, 800).by_area("ward"),
    )
    # Control: moving a precisely located project does change the figures.
    public_id = projects.loc[projects["location_precision"] == "exact", "id"].iloc[0]
    changed = export.coverage_figures(moved(public_id), distance_m=800)["ward"]
    assert not changed["reached"].equals(figures["ward"]["reached"])


def test_cli_distance_adds_coverage_columns(store_path, tmp_path):
    pytest.importorskip("kindred_map.coverage")
    out = tmp_path / "wards.csv"
    argv = ["export", "--format", "csv", "--what", "ward", "--distance", "800"]
    assert cli.main([*argv, "--store", str(store_path), "-o", str(out)]) == 0
    wards = pd.read_csv(out, encoding="utf-8-sig")
    assert {"pct_covered", "beyond_reach", "gap_score"} <= set(wards.columns)
    assert len(wards) == len(boundaries.load("ward"))
    about = (tmp_path / "wards_about.txt").read_text(encoding="utf-8")
    assert "- Reach distance: 800 m" in about
    assert "Coverage and gap figures (ward summaries)" in about
