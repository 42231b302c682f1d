"""Place project rows offline: postcodes from the shipped postcode layer, coordinates checked."""

from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import Transformer

from kindred_map import boundaries
from kindred_map.paths import BOUNDARIES_DIR
from kindred_map.postcodes import pcd_display, pcd_key
from kindred_map.report import empty_issues, issues_for

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"
DISAGREEMENT_M = 500
"""A postcode and coordinates further apart than this disagree: the postcode is used."""
POSTCODE_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
GB_LAT = (49.8, 60.95)
GB_LON = (-8.7, 1.8)
GB_EASTING = (0.0, 700_000.0)
GB_NORTHING = (0.0, 1_300_000.0)
REGION_MARGIN_M = 20_000
"""Easting/northing pairs are tried both ways round against the region's box widened by this."""


def _mtimes(directory: Path) -> tuple:
    return tuple(
        boundaries.layer_path(name, directory).stat().st_mtime_ns
        for name in ("postcode", "borough")
    )


@cache
def _postcode_index(directory: Path, _mtimes: tuple) -> pd.DataFrame:
    table = boundaries.postcode_table(directory)
    if "in_region" not in table.columns:  # a layer built before it held outside postcodes
        table["in_region"] = True
    columns = ["postcode", "status", "terminated", "easting", "northing", "lat", "lon"]
    return table.set_index("pcd_key")[[*columns, "in_region"]]


KNOWN_POSTCODES = (
    "live April 2025 in the L, CH, WA, WN and PR postcode areas; the region's terminated by "
    "May 2022"
)
"""What the postcode layer holds, for messages about a postcode it lacks."""


def postcode_index(directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """The postcode layer indexed by ``pcd_key`` (read once per layer file version), with
    ``in_region`` False for the postcodes outside the 9 boroughs."""
    directory = Path(directory)
    return _postcode_index(directory, _mtimes(directory))


POSTCODE_ROW_COLUMNS = (
    "pcd_key",
    "postcode",
    "status",
    "terminated",
    "easting",
    "northing",
    "lat",
    "lon",
    "in_region",
)


@cache
def _postcode_columns(directory: Path, _mtimes: tuple):
    path = boundaries.layer_path("postcode", directory)
    if not path.exists():
        raise ValueError(f"layer file missing: {path}; run `kindred-map build-boundaries`")
    layer = pq.ParquetFile(path)  # not pq.read_table: see `boundaries.read_parquet`
    names = layer.schema_arrow.names
    return layer.read(columns=[name for name in POSTCODE_ROW_COLUMNS if name in names])


def postcode_row(key: str, directory: Path = BOUNDARIES_DIR) -> dict | None:
    """The row of `postcode_index` for one join key (``"L18JQ"``) as a dict, or None when the
    layer lacks it. Read as arrow columns of the layer file, without pandas' 112,000-row index:
    a command line's one postcode search needs one row (`benchmarks/bench_cli.py`)."""
    directory = Path(directory)
    table = _postcode_columns(directory, _mtimes(directory))
    at = pc.index(table["pcd_key"], key).as_py()
    if at < 0:
        return None
    row = table.slice(at, 1).to_pylist()[0]
    row.setdefault("in_region", True)  # a layer built before it held outside postcodes
    return row


@cache
def _region_box(directory: Path, _mtimes: tuple) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = boundaries.load("borough", directory).to_crs(BNG).total_bounds
    margin = REGION_MARGIN_M
    return minx - margin, miny - margin, maxx + margin, maxy + margin


@cache
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def _finite(values) -> np.ndarray:
    values = np.asarray(values, float)
    return np.where(np.isfinite(values), values, np.nan)


def _transform(source: str, target: str, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate arrays from ``source`` to ``target``; a pair with no number stays NaN and is
    not given to PROJ (an import's blank half of its coordinates cost as much as the rest)."""
    a, b = _finite(a), _finite(b)
    some = ~(np.isnan(a) & np.isnan(b))
    if some.all():
        x, y = _transformer(source, target).transform(a, b)
        return _finite(x), _finite(y)
    x, y = np.full(a.shape, np.nan), np.full(b.shape, np.nan)
    if some.any():
        x[some], y[some] = _transformer(source, target).transform(a[some], b[some])
    return _finite(x), _finite(y)


def to_bng(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude arrays to British National Grid easting/northing (NaN stays NaN)."""
    return _transform(WGS84, BNG, lon, lat)


def to_wgs84(easting, northing) -> tuple[np.ndarray, np.ndarray]:
    """British National Grid easting/northing arrays to WGS84 longitude/latitude."""
    return _transform(BNG, WGS84, easting, northing)


def postcode_keys(postcodes: pd.Series) -> pd.Series:
    """Join keys: upper case with spaces and stray punctuation removed ("l1-8jq " -> "L18JQ")."""
    keys = pcd_key(postcodes.fillna("")).str.replace(r"[^A-Z0-9]", "", regex=True)
    return keys.where(keys.ne(""), pd.NA)


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers from text: blank or unreadable -> NaN; a decimal comma is accepted ("53,4")."""
    text = values.fillna("").astype("str").str.strip()
    filled = text.ne("").to_numpy()
    if not filled.all():  # only cells with text are read (half a file is often blank)
        numbers = pd.Series(np.nan, index=values.index, name=values.name)
        if filled.any():
            numbers[filled] = parse_number(text[filled]).to_numpy()
        return numbers
    text = text.str.replace("°", "", regex=False)
    text = text.where(text.str.contains(".", regex=False), text.str.replace(",", ".", regex=False))
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _between(values: pd.Series, bounds: tuple[float, float]) -> pd.Series:
    return values.between(*bounds)


def check_coordinates(
    records: pd.DataFrame, directory: Path = BOUNDARIES_DIR
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Usable coordinates for each record as easting/northing, and the problems found.

    Reads ``lat``/``lon`` (WGS84) and ``easting``/``northing`` (British National Grid).
    Swapped latitude/longitude are put right; degrees in the grid columns or grid values in the
    degree columns are read as what they are; a grid pair is tried both ways round against the
    region. When both kinds are given and disagree by more than 500 m, lat/lon are used.
    """
    directory = Path(directory)
    issues = []
    numbers = {}
    for column in ("lat", "lon", "easting", "northing"):
        given = records[column].fillna("").astype("str").str.strip()
        numbers[column] = parse_number(given)
        bad = given.ne("") & numbers[column].isna()
        reason = f"{column} " + given[bad].map(repr) + " is not a number: ignored"
        issues.append(issues_for(records[bad], column, "warning", reason))
    lat, lon, east, north = (numbers[c] for c in ("lat", "lon", "easting", "northing"))

    for a, b, first, second in ((lat, lon, "lat", "lon"), (east, north, "easting", "northing")):
        half = a.notna() ^ b.notna()
        reason = np.where(a[half].notna(), f"{first} without {second}", f"{second} without {first}")
        issues.append(
            issues_for(
                records[half], first, "warning", pd.Series(reason, index=records[half].index)
            )
        )

    degrees = lat.notna() & lon.notna()
    in_gb = _between(lat, GB_LAT) & _between(lon, GB_LON)
    swapped = degrees & ~in_gb & _between(lon, GB_LAT) & _between(lat, GB_LON)
    grid_in_degrees = (
        degrees & ~in_gb & ~swapped & (lat.abs() > 180) & (lon.abs() > 180) & east.isna()
    )
    valid_degrees = degrees & lat.between(-90, 90) & lon.between(-180, 180)
    valid_degrees &= ~((lat == 0) & (lon == 0))
    issues.append(
        issues_for(
            records[swapped],
            "lat",
            "warning",
            "lat "
            + lat[swapped].astype("str")
            + " and lon "
            + lon[swapped].astype("str")
            + " are swapped: read the other way round",
        )
    )
    lat, lon = lat.where(~swapped, numbers["lon"]), lon.where(~swapped, numbers["lat"])
    issues.append(
        issues_for(
            records[grid_in_degrees],
            "lat",
            "warning",
            "lat/lon hold grid values: read as easting (lon) and northing (lat)",
        )
    )
    east = east.where(~grid_in_degrees, lon)
    north = north.where(~grid_in_degrees, lat)
    valid_degrees &= ~grid_in_degrees
    outside_gb = valid_degrees & ~swapped & ~in_gb
    issues.append(
        issues_for(
            records[outside_gb],
            "lat",
            "warning",
            "the point lies outside Great Britain: check the coordinates",
        )
    )
    nonsense = degrees & ~valid_degrees & ~grid_in_degrees
    issues.append(
        issues_for(
            records[nonsense],
            "lat",
            "warning",
            "lat "
            + lat[nonsense].astype("str")
            + ", lon "
            + lon[nonsense].astype("str")
            + " are not valid coordinates: ignored",
        )
    )

    grid = east.notna() & north.notna()
    degrees_in_grid = grid & _between(north, GB_LAT) & _between(east, GB_LON)
    issues.append(
        issues_for(
            records[degrees_in_grid],
            "easting",
            "warning",
            "easting/northing hold degrees: read as lon (easting) and lat (northing)",
        )
    )
    use_grid_degrees = degrees_in_grid & ~valid_degrees
    lat = lat.where(~use_grid_degrees, north)
    lon = lon.where(~use_grid_degrees, east)
    valid_degrees |= use_grid_degrees
    grid &= ~degrees_in_grid
    east, north, grid_issues = _orient_grid(records, east, north, grid, directory)
    issues.append(grid_issues)
    valid_grid = grid & _between(east, GB_EASTING) & _between(north, GB_NORTHING)
    bad_grid = grid & ~valid_grid
    issues.append(
        issues_for(
            records[bad_grid],
            "easting",
            "warning",
            "easting "
            + east[bad_grid].astype("str")
            + ", northing "
            + north[bad_grid].astype("str")
            + " are outside the British National Grid: ignored",
        )
    )

    x, y = to_bng(lon.where(valid_degrees), lat.where(valid_degrees))
    gx, gy = east.where(valid_grid).to_numpy(), north.where(valid_grid).to_numpy()
    apart = np.hypot(x - gx, y - gy)
    both = valid_degrees.to_numpy() & valid_grid.to_numpy() & (apart > DISAGREEMENT_M)
    issues.append(
        issues_for(
            records[both],
            "easting",
            "warning",
            pd.Series(
                [
                    f"lat/lon and easting/northing are {d:,.0f} m apart: lat/lon used"
                    for d in apart[both]
                ],
                index=records.index[both],
            ),
        )
    )
    use_grid = ~valid_degrees.to_numpy() & valid_grid.to_numpy()
    located = pd.DataFrame(
        {
            "x": np.where(use_grid, gx, x),
            "y": np.where(use_grid, gy, y),
        },
        index=records.index,
    )
    return located, pd.concat(issues, ignore_index=True)


def _orient_grid(records, east, north, grid, directory):
    """Swap easting/northing pairs that only fall in the region the other way round."""
    minx, miny, maxx, maxy = _region_box(directory, _mtimes(directory))
    near = east.between(minx, maxx) & north.between(miny, maxy)
    near_swapped = north.between(minx, maxx) & east.between(miny, maxy)
    swap = grid & ~near & near_swapped
    issues = issues_for(
        records[swap],
        "easting",
        "warning",
        "easting and northing are swapped: read the other way round",
    )
    return east.where(~swap, north), north.where(~swap, east), issues


def locate(
    records: pd.DataFrame, directory: Path = BOUNDARIES_DIR
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Place each record; rows that cannot be placed are left out and reported as rejected.

    A known postcode gives the position unless coordinates within 500 m of it are given (then
    the coordinates, more precise, are used). Coordinates more than 500 m from the postcode are
    reported and the postcode is used: it is checked against the ONS/OS list, coordinates cannot
    be. Terminated postcodes are used with a warning (their position is approximate); unknown
    or malformed postcodes fall back to coordinates, else the row is rejected with the reason.
    A postcode outside the region is known and places the row like any other
    (`kindred_map.join` then flags it ``in_region`` False and the report says so).
    Returns points in EPSG:4326 with ``lat``, ``lon``, ``easting``, ``northing`` filled.
    """
    directory = Path(directory)
    records = records.copy()
    if records.empty:
        return _as_points(records.assign(x=[], y=[])), empty_issues()
    xy, issues = check_coordinates(records, directory)
    issues = [issues]
    given = records["postcode"].fillna("").astype("str")
    keys = postcode_keys(given)
    well_formed = keys.fillna("").str.match(POSTCODE_PATTERN)
    found = postcode_index(directory).reindex(keys.where(well_formed))
    found.index = records.index
    has_postcode = found["easting"].notna()
    has_xy = xy["x"].notna()
    apart = np.hypot(xy["x"] - found["easting"], xy["y"] - found["northing"])
    use_postcode = has_postcode & (~has_xy | (apart > DISAGREEMENT_M))
    use_xy = has_xy & ~use_postcode
    placed = use_postcode | use_xy

    terminated = found["status"].eq("terminated").fillna(False)
    ended_at = found[terminated]  # the texts are made for these rows only, not all 100,000
    when = ended_at["terminated"].fillna("").astype("str")
    month = np.where(when.str.len() == 6, when.str[:4] + "-" + when.str[4:], "before May 2022")
    ended = pd.Series(month, index=ended_at.index)
    reason = (
        "postcode "
        + ended_at["postcode"].fillna("")
        + " was terminated ("
        + ended
        + "): its position is approximate (centre of its 2011 output area)"
    )
    issues.append(issues_for(records[terminated & use_postcode], "postcode", "warning", reason))
    reason = "postcode " + ended_at["postcode"].fillna("") + " was terminated (" + ended + ")"
    issues.append(issues_for(records[terminated & use_xy], "postcode", "warning", reason))

    disagree = has_postcode & has_xy & use_postcode
    reason = pd.Series(
        [
            f"coordinates are {d:,.0f} m from postcode {p}'s position: the postcode's position "
            "was used (check both)"
            for d, p in zip(apart[disagree], found.loc[disagree, "postcode"], strict=True)
        ],
        index=records.index[disagree],
        dtype="str",
    )
    issues.append(issues_for(records[disagree], "postcode", "warning", reason))

    malformed = given.str.strip().ne("") & ~well_formed
    unknown = well_formed & ~has_postcode
    problem = pd.Series("", index=records.index)
    problem[malformed] = given[malformed].map(repr) + " is not a valid UK postcode"
    problem[unknown] = (
        "postcode "
        + pcd_display(keys[unknown].astype("str"))
        + f" is not a known postcode ({KNOWN_POSTCODES})"
    )
    odd = malformed | unknown
    issues.append(
        issues_for(
            records[odd & use_xy],
            "postcode",
            "warning",
            problem[odd & use_xy] + ": coordinates used",
        )
    )
    issues.append(
        issues_for(
            records[odd & ~placed],
            "postcode",
            "rejected",
            problem[odd & ~placed] + ", and there are no usable coordinates",
        )
    )
    nothing = ~placed & ~odd
    issues.append(
        issues_for(
            records[nothing],
            "postcode",
            "rejected",
            "no postcode or usable coordinates: the project cannot be placed",
        )
    )

    records["x"] = np.where(use_postcode, found["easting"], xy["x"])
    records["y"] = np.where(use_postcode, found["northing"], xy["y"])
    records["postcode"] = np.where(well_formed, pcd_display(keys.fillna("").astype("str")), given)
    records["postcode"] = records["postcode"].where(given.str.strip().ne(""), "")
    precision = records["location_precision"].fillna("").astype("str")
    downgraded = use_postcode & precision.eq("exact")
    issues.append(
        issues_for(
            records[downgraded],
            "location_precision",
            "warning",
            "location_precision 'exact' but the position is the postcode's: set to street",
        )
    )
    precision = precision.where(~downgraded, "street")
    precision = precision.where(precision.ne(""), np.where(use_postcode, "street", "exact"))
    records["location_precision"] = precision
    return _as_points(records[placed]), pd.concat(issues, ignore_index=True)


def _as_points(records: pd.DataFrame) -> gpd.GeoDataFrame:
    """Records with ``x``/``y`` (EPSG:27700) as WGS84 points with lat/lon/easting/northing."""
    records = records.copy()
    x, y = records.pop("x").to_numpy(float), records.pop("y").to_numpy(float)
    lon, lat = to_wgs84(x, y)
    records["easting"], records["northing"] = np.round(x, 1), np.round(y, 1)
    records["lon"], records["lat"] = np.round(lon, 6), np.round(lat, 6)
    return gpd.GeoDataFrame(
        records, geometry=gpd.points_from_xy(records["lon"], records["lat"]), crs=WGS84
    )
