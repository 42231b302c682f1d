"""Name each project's ward, borough, deanery and LSOA (with its IMD decile), in EPSG:27700."""

from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from kindred_map import boundaries, geocode, hours, ingest, oruk, privacy
from kindred_map.paths import BOUNDARIES_DIR, REFERENCE_DIR
from kindred_map.report import ImportReport, build_report, issues_for
from kindred_map.schema import JOINED_FIELDS, RECORD_FIELDS

BNG = "EPSG:27700"
WGS84 = "EPSG:4326"
POSTCODE_AUTHORITY_M = geocode.DISAGREEMENT_M
"""A live postcode names the ward when the point lies within this distance of it."""
NEAREST_POSTCODE_MAX_M = 500
"""Without a usable postcode, the ward of the nearest live postcode within this distance."""
EDGE_TOLERANCE_M = 100
"""A point this close outside the generalised coastline/boundary still takes the nearest area."""
LAYER_NAMES = ("postcode", "ward", "borough", "lsoa", "deanery")
GRID_CELL_M = 50
"""Side of the cells of the area grids (`_area_grid`): 1.1 million cells a layer (2.2 MB),
answering 83-97% of random in-region points without a polygon test."""
GRID_MIN_POINTS = 5_000
"""Joins of at least this many located points use the area grids, built on the first such join
of a process (0.11 s CPU for the four layers) and kept. A join saves 0.01 s of CPU with them at
5,000 points, 0.06 s at 20,000, 0.6 s at 100,000; below 5,000 the saving is too small to wait
for (`benchmarks/results/join.md`)."""
GRID_EPS_M = 0.001
"""Cells within this distance of a boundary count as touched: far above rounding (1e-10 m)."""
NONE, OPEN = -1, -2
"""Codes: no area (within the tolerance); a grid cell a boundary touches (test the point)."""
SOURCES = ("", "postcode", "nearest_postcode", "polygon")
"""``ward_source`` by code."""
LARGE = pa.large_string()


def _mtimes(directory: Path) -> tuple:
    return tuple(boundaries.layer_path(n, directory).stat().st_mtime_ns for n in LAYER_NAMES)


@cache
def _reference(directory: Path, _mtimes: tuple) -> dict:
    postcodes = boundaries.postcode_table(directory)
    postcodes = postcodes[postcodes["status"] == "live"].sort_values("pcd_key")
    live = boundaries.region_postcodes(postcodes).reset_index(drop=True)
    # Outside postcodes with a district code: ONS puts them outside. The few without one
    # (Code-Point gives 15 no codes, two of them inside Liverpool and Widnes) place a point
    # but leave the region to the polygons, as coordinates do.
    outside = postcodes[~postcodes["pcd_key"].isin(live["pcd_key"])]
    outside = outside[outside["LAD25CD"].notna()]
    wards = boundaries.load("ward", directory).to_crs(BNG)
    boroughs = boundaries.load("borough", directory).to_crs(BNG)
    lsoas = boundaries.load("lsoa", directory).to_crs(BNG)
    deaneries = boundaries.load("deanery", directory).to_crs(BNG)
    # Areas are handled as integer codes into one sorted table of keys per kind (the keys of
    # the layer and of the postcodes): text is made once per output column, by a take.
    ward = _kind(wards, "WD24CD", live["WD24CD"], name="WD24NM")
    borough = _kind(
        boroughs, "LAD25CD", live["LAD25CD"], wards["LAD24CD"], lsoas["LAD24CD"], name="LAD25NM"
    )
    lsoa = _kind(lsoas, "LSOA21CD", live["LSOA21CD"])
    deanery = _kind(deaneries, "deanery_id", name="deanery_name")
    ward["borough"] = _codes(borough, wards.set_index("WD24CD")["LAD24CD"].reindex(ward["keys"]))
    lsoa["borough"] = _codes(borough, lsoas.set_index("LSOA21CD")["LAD24CD"].reindex(lsoa["keys"]))
    lsoa["imd_decile"] = lsoas.set_index("LSOA21CD")["imd_decile"].reindex(lsoa["keys"])
    lsoa["deanery"] = _codes(deanery, _lsoa_deaneries(lsoas, deaneries).reindex(lsoa["keys"]))
    borough["other_diocese"] = _other_dioceses(boroughs).reindex(borough["keys"])
    return {
        "live": live,
        "live_index": pd.Index(live["pcd_key"]),
        "live_ward": _codes(ward, live["WD24CD"]),
        "live_borough": _codes(borough, live["LAD25CD"]),
        "live_lsoa": _codes(lsoa, live["LSOA21CD"]),
        "live_xy": live[["easting", "northing"]].to_numpy(),
        "live_postcode": pa.array(live["postcode"].array).cast(LARGE),
        "outside_index": pd.Index(outside["pcd_key"]),
        "outside_xy": outside[["easting", "northing"]].to_numpy(),
        "tree": cKDTree(live[["easting", "northing"]].to_numpy()),
        "wards": wards[["WD24CD", "geometry"]],
        "boroughs": boroughs[["LAD25CD", "geometry"]],
        "lsoas": lsoas[["LSOA21CD", "geometry"]],
        "deaneries": deaneries[["deanery_id", "geometry"]],
        "ward": ward,
        "borough": borough,
        "lsoa": lsoa,
        "deanery": deanery,
    }


def _kind(layer: gpd.GeoDataFrame, key: str, *more: pd.Series, name: str | None = None) -> dict:
    """One kind of area: its sorted ``keys`` (the layer's and ``more``), the keys as text with
    "" last (a take with code -1 gives ""), the names likewise, and the layer's prepared
    ``shapes`` with each one's ``code``."""
    values = pd.concat([layer[key].astype("object"), *(m.astype("object") for m in more)])
    keys = pd.Index(sorted(set(values.dropna())))
    shapes = np.asarray(layer.geometry.values)
    shapely.prepare(shapes)
    kind = {"keys": keys, "shapes": shapes, "codes": keys.get_indexer(layer[key])}
    kind["text"] = _blank_last(pa.array(keys.astype("str")))
    if name is not None:
        names = layer.set_index(key)[name].reindex(keys)
        kind["name"] = _blank_last(pa.array(names.astype("object"), LARGE).fill_null(""))
        kind["name_or_key"] = pa.array(names.fillna(pd.Series(keys, index=keys)), LARGE)
    return kind


def _blank_last(values: pa.Array) -> pa.Array:
    return pa.concat_arrays([values.cast(LARGE), pa.array([""], LARGE)])


def _codes(kind: dict, values) -> np.ndarray:
    """Codes of ``values`` in ``kind`` (NONE for NA)."""
    return kind["keys"].get_indexer(pd.Series(values, dtype="object"))


def _lsoa_deaneries(lsoas: gpd.GeoDataFrame, deaneries: gpd.GeoDataFrame) -> pd.Series:
    """The deanery each LSOA lies in (none outside the diocese): the derived deaneries are
    LSOAs dissolved, so an LSOA's representative point names its deanery."""
    inside = gpd.GeoSeries(lsoas.representative_point().values, index=lsoas["LSOA21CD"])
    return polygon_key(inside, deaneries, "deanery_id").dropna()


def reference(directory: Path = BOUNDARIES_DIR) -> dict:
    """The layers the join needs, in EPSG:27700, read once per version of the layer files."""
    directory = Path(directory)
    return _reference(directory, _mtimes(directory))


def _other_dioceses(boroughs: gpd.GeoDataFrame) -> pd.Series:
    """Why a borough's points may lie outside the diocese, from the reviewed reference list."""
    listed = pd.read_csv(REFERENCE_DIR / "neighbour_diocese_places.csv")
    codes = boroughs.set_index("LAD25NM")["LAD25CD"]
    reasons = {}
    for name, rows in listed.groupby("LAD25NM"):
        dioceses = " or ".join(sorted(set(rows["diocese"])))
        if (rows["scope"] == "borough").any():
            reasons[name] = f"{name} is in the Diocese of {dioceses}"
        else:
            reasons[name] = f"parts of {name} are in the Diocese of {dioceses}"
    return pd.Series(reasons, dtype="str").rename(index=codes.to_dict())


def polygon_key(
    points: gpd.GeoSeries, polygons: gpd.GeoDataFrame, key: str, tolerance: float = 0
) -> pd.Series:
    """The ``key`` of the polygon holding each point (EPSG:27700), one per point.

    A point on a shared boundary touches several polygons and gets the lowest key, so the
    answer never depends on row order. Points outside every polygon take the nearest one within
    ``tolerance`` metres (ties again to the lowest key), else NA.
    """
    shapes = np.asarray(polygons.geometry.values)
    codes, keys = pd.factorize(polygons[key], sort=True)
    shapely.prepare(shapes)
    best = _exact_codes(np.asarray(points.values), shapes, codes, tolerance)
    found = np.asarray(keys, dtype="object")[np.maximum(best, 0)] if len(keys) else best
    return pd.Series(found, index=points.index, dtype="object").where(best >= 0)


def _exact_codes(geometries, shapes, codes, tolerance: float) -> np.ndarray:
    """`polygon_key` as codes (NONE where no polygon): one tree of the points is queried with
    the prepared polygons, so each polygon tests only the points in its bounding box and
    answers without re-reading its edges (`benchmarks/bench_join.py`)."""
    tree = shapely.STRtree(geometries)
    shape_i, point_i = tree.query(shapes, predicate="intersects")
    first = _first_per_point(point_i, np.zeros(len(point_i)), codes[shape_i])
    best = np.full(len(geometries), NONE)
    best[point_i[first]] = codes[shape_i[first]]
    missing = (best < 0) & ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    if tolerance and missing.any():
        rows = np.flatnonzero(missing)
        shape_j, near_i = shapely.STRtree(geometries[rows]).query(
            shapes, predicate="dwithin", distance=tolerance
        )
        metres = shapely.distance(shapes[shape_j], geometries[rows][near_i])
        first = _first_per_point(near_i, metres, codes[shape_j])
        best[rows[near_i[first]]] = codes[shape_j[first]]
    return best


def _first_per_point(point_i: np.ndarray, metres: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Positions of the pairs (point, polygon at ``metres``) to keep: for each point, the
    nearest polygon, ties to the lowest key code."""
    order = np.lexsort((codes, metres, point_i))
    return order[np.r_[True, point_i[order][1:] != point_i[order][:-1]]] if len(order) else order


def area_grids(directory: Path = BOUNDARIES_DIR) -> dict:
    """The area grid of each kind (`_area_grid`), built once per version of the layer files."""
    directory = Path(directory)
    return _grids(directory, _mtimes(directory))


@cache
def _grids(directory: Path, _mtimes: tuple) -> dict:
    """The area grid of each kind (`_area_grid`), on one frame: the layers' bounds widened by
    the edge tolerance and two cells, on whole multiples of the cell side."""
    ref = _reference(directory, _mtimes)
    kinds = ("ward", "borough", "lsoa", "deanery")
    bounds = np.array([shapely.total_bounds(ref[kind]["shapes"]) for kind in kinds])
    pad = EDGE_TOLERANCE_M + 2 * GRID_CELL_M
    x0, y0 = np.floor((bounds[:, :2].min(axis=0) - pad) / GRID_CELL_M) * GRID_CELL_M
    nx, ny = np.ceil((bounds[:, 2:].max(axis=0) + pad - (x0, y0)) / GRID_CELL_M).astype(int)
    frame = {"x0": x0, "y0": y0, "nx": nx, "ny": ny}
    return {kind: {**frame, "cells": _area_grid(ref[kind], frame)} for kind in kinds}


def _area_grid(kind: dict, frame: dict) -> np.ndarray:
    """The area code of every cell of ``frame`` that no boundary of ``kind`` touches (NONE
    where no area is within EDGE_TOLERANCE_M), OPEN where a point must be tested.

    Exact, not approximate: the boundaries are cut into pieces of at most half a cell and each
    vertex marks every cell within a quarter cell (+ GRID_EPS_M) of it, so every cell within
    GRID_EPS_M of a boundary is marked. Unmarked cells that share an edge are in the same
    face of the boundaries, so the points of a connected set of them lie in the same polygons:
    one polygon test at one cell's centre answers for all (`_exact_codes`, ties to the lowest
    key alike). A face in no polygon answers NONE only where no boundary is within the
    tolerance (whole cells of margin), else its points take the exact test with the tolerance.
    """
    # imported here: only a grid build needs it, and it adds about 0.07 s to every process
    # that imports this module (the CLI, the dashboard) if imported at the top
    from scipy import ndimage

    size, nx, ny = GRID_CELL_M, frame["nx"], frame["ny"]
    boundary = shapely.segmentize(shapely.boundary(kind["shapes"]), size / 2)
    vertices = shapely.get_coordinates(boundary)
    reach = size / 4 + GRID_EPS_M
    touched = np.zeros((ny, nx), bool)
    for dx in (-reach, reach):
        for dy in (-reach, reach):
            col = np.floor((vertices[:, 0] + dx - frame["x0"]) / size).astype(np.intp)
            row = np.floor((vertices[:, 1] + dy - frame["y0"]) / size).astype(np.intp)
            touched[row, col] = True
    faces, count = ndimage.label(~touched)
    first = np.empty(count, np.intp)
    for face, (rows, cols) in enumerate(ndimage.find_objects(faces)):
        # the face's top row of its bounding box holds at least one of its cells
        first[face] = rows.start * nx + cols.start + np.argmax(faces[rows.start, cols] == face + 1)
    row, col = np.divmod(first, nx)
    centres = shapely.points(frame["x0"] + (col + 0.5) * size, frame["y0"] + (row + 0.5) * size)
    answer = _exact_codes(centres, kind["shapes"], kind["codes"], 0)
    dtype = np.int16 if len(kind["keys"]) < np.iinfo(np.int16).max else np.int32
    cells = np.concatenate([[OPEN], answer]).astype(dtype)[faces]
    # cells within k cells of a touched one, k * size > EDGE_TOLERANCE_M
    window = 2 * (int(EDGE_TOLERANCE_M // size) + 1) + 1
    near = ndimage.maximum_filter1d(touched.view(np.uint8), window, axis=0)
    near = ndimage.maximum_filter1d(near, window, axis=1).view(bool)
    cells[(cells == NONE) & near] = OPEN
    return cells


@cache
def _to_bng(crs) -> Transformer:
    return Transformer.from_crs(crs, BNG, always_xy=True)


def _bng_xy(geometry: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rows have a point, and the points' EPSG:27700 x and y (NaN where none): the
    coordinates ``geometry.to_crs(BNG)`` gives (the same PROJ transformation), without making
    the projected points: the few rows a polygon test or a nearest search needs make theirs
    (`_area_codes`, `_nearest_of_borough`, `_nearest_borough`; 0.08 s of 0.13 s at 100,000)."""
    if geometry.crs is None:
        raise ValueError("the projects' points have no CRS: cannot join them to areas")
    values = np.asarray(geometry.values)
    has_point = ~(shapely.is_missing(values) | shapely.is_empty(values))
    x, y = np.full(len(values), np.nan), np.full(len(values), np.nan)
    if has_point.any():
        transformer = _to_bng(geometry.crs)
        placed = values[has_point]
        x[has_point], y[has_point] = transformer.transform(
            shapely.get_x(placed), shapely.get_y(placed)
        )
    return has_point, x, y


def _area_codes(kind: dict, grid: dict | None, x, y) -> np.ndarray:
    """The code of the ``kind`` area of each point (EPSG:27700 ``x``, ``y``; NONE: none within
    EDGE_TOLERANCE_M), from the area grid where one is given and its cell answers, else by
    testing the point (made here, for those rows only)."""
    if grid is None:
        points = shapely.points(x, y)
        return _exact_codes(points, kind["shapes"], kind["codes"], EDGE_TOLERANCE_M)
    col = np.floor((x - grid["x0"]) / GRID_CELL_M)
    row = np.floor((y - grid["y0"]) / GRID_CELL_M)
    inside = (col >= 0) & (col < grid["nx"]) & (row >= 0) & (row < grid["ny"])
    found = np.full(len(x), NONE)  # outside the frame: over the tolerance from every area
    found[inside] = grid["cells"][row[inside].astype(np.intp), col[inside].astype(np.intp)]
    test = np.flatnonzero(found == OPEN)
    if len(test):
        found[test] = _exact_codes(
            shapely.points(x[test], y[test]), kind["shapes"], kind["codes"], EDGE_TOLERANCE_M
        )
    return found


def join_projects(projects: gpd.GeoDataFrame, directory: Path = BOUNDARIES_DIR) -> gpd.GeoDataFrame:
    """Add JOINED_FIELDS (ward, borough, deanery, LSOA, IMD decile, in_region) to located points.

    Ward: a live postcode within 500 m of the point names it (``ward_source`` postcode; ONS
    assigns postcodes with full-resolution boundaries, the shipped ward polygons are coarse);
    otherwise the ward of the nearest live postcode within 500 m (nearest_postcode); otherwise
    the ward polygon (polygon). A disagreement with the polygon is written in ``ward_note``.
    The borough is the ward's, so wards nest in boroughs. Points outside the 9 boroughs are
    kept with ``in_region`` False, no area of the region and ``nearest_borough`` (the name of
    the region borough nearest the point; its distance is in ``ward_note``). A postcode
    outside the region within 500 m of the point puts it outside whatever the generalised
    polygons say (ONS assigns postcodes at full resolution). Points outside the diocese get
    an empty deanery and the reason in ``deanery_note``. Every point in the region gets
    exactly one area of each kind: where the generalised polygons leave a gap inside a borough
    (the coast, estuaries), a point more than 100 m from any ward polygon and 500 m from any
    postcode takes the nearest ward polygon of its borough (``ward_source`` polygon, the
    distance in ``ward_note``), the nearest LSOA of its borough likewise, and the deanery of
    its LSOA (said in ``deanery_note``).

    Areas are found as integer codes (from the area grids for joins of GRID_MIN_POINTS or
    more, `_area_grid`) and turned into text once per column.
    """
    ref = reference(directory)
    out = projects.copy()
    index = out.index
    has_point, x, y = _bng_xy(out.geometry)
    located = np.flatnonzero(has_point)
    grids = area_grids(directory) if len(located) >= GRID_MIN_POINTS else {}

    def on_points(kind: str, rows: np.ndarray) -> np.ndarray:
        """Area codes of the located points at ``rows`` (positions in ``located``), NONE
        for every other row."""
        codes = np.full(len(out), NONE)
        at = located[rows]
        codes[at] = _area_codes(ref[kind], grids.get(kind), x[at], y[at])
        return codes

    given = out["postcode"] if "postcode" in out else pd.Series("", index=index)
    codes, uniques = pd.factorize(given.astype("str"), use_na_sentinel=False)
    keys = geocode.postcode_keys(pd.Series(uniques, dtype="str"))
    live = ref["live_index"].get_indexer(keys)[codes]
    postcode_apart = _apart(x, y, ref["live_xy"], live)
    known = _take(ref["live_ward"], live) >= 0
    known &= has_point
    authority = known & (postcode_apart <= POSTCODE_AUTHORITY_M)
    far_postcode = known & ~authority
    beyond = ref["outside_index"].get_indexer(keys)[codes]
    outside_postcode = has_point & (_apart(x, y, ref["outside_xy"], beyond) <= POSTCODE_AUTHORITY_M)

    everywhere = np.arange(len(located))
    borough_polygon = on_points("borough", everywhere)
    ward_polygon = on_points("ward", everywhere)
    in_region = (authority | (borough_polygon >= 0)) & ~outside_postcode

    nearest, near_metres = _nearest_live(ref, x, y, has_point)
    near_found = _take(ref["live_ward"], nearest) >= 0
    use_near = ~authority & in_region & near_found
    use_polygon = ~authority & in_region & ~near_found
    gap = use_polygon & (ward_polygon < 0)
    gap_ward, gap_metres = _nearest_of_borough(
        x, y, gap, borough_polygon, ref["ward"], ref["ward"]["borough"]
    )
    ward = np.select(
        [authority, use_near, use_polygon],
        [
            _take(ref["live_ward"], live),
            _take(ref["live_ward"], nearest),
            np.where(ward_polygon >= 0, ward_polygon, gap_ward),
        ],
        NONE,
    )
    out["WD24CD"] = _text(ref["ward"]["text"], ward, index)
    out["WD24NM"] = _text(ref["ward"]["name"], ward, index)
    source = np.select([authority, use_near, use_polygon], [1, 2, 3], 0)
    out["ward_source"] = _text(pa.array(SOURCES, LARGE), source, index)
    nearby, away = _nearest_borough(x, y, has_point & ~in_region, ref)
    out["nearest_borough"] = _text(ref["borough"]["name"], nearby, index)
    out["ward_note"] = _ward_notes(
        ref,
        source,
        ward,
        ward_polygon,
        (live, postcode_apart, far_postcode),
        (nearest, near_metres),
        (nearby, away),
        has_point,
        gap_metres,
        index,
    )

    borough = _take(ref["ward"]["borough"], ward)
    borough = np.where(authority, _take(ref["live_borough"], live), borough)
    borough = np.where((borough < 0) & in_region, borough_polygon, borough)
    out["LAD25CD"] = _text(ref["borough"]["text"], borough, index)
    out["LAD25NM"] = _text(ref["borough"]["name"], borough, index)

    lsoa_polygon = on_points("lsoa", np.flatnonzero(use_polygon[located]))
    lsoa = np.select(
        [authority, use_near, use_polygon],
        [_take(ref["live_lsoa"], live), _take(ref["live_lsoa"], nearest), lsoa_polygon],
        NONE,
    )
    lsoa_gap = in_region & (lsoa < 0)
    lsoa_fill, _ = _nearest_of_borough(x, y, lsoa_gap, borough, ref["lsoa"], ref["lsoa"]["borough"])
    lsoa = np.where(lsoa_gap, lsoa_fill, lsoa)
    out["LSOA21CD"] = _text(ref["lsoa"]["text"], lsoa, index)
    imd = ref["lsoa"]["imd_decile"].to_numpy(dtype="float")
    out["imd_decile"] = pd.Series(_take(imd, lsoa, np.nan), index=index).astype("Int64")

    deanery = on_points("deanery", np.flatnonzero(in_region[located]))
    of_lsoa = _take(ref["lsoa"]["deanery"], lsoa)
    by_lsoa = in_region & (deanery < 0) & (of_lsoa >= 0)
    deanery = np.where(by_lsoa, of_lsoa, deanery)
    deanery_keys = ref["deanery"]["keys"].to_numpy()
    out["deanery_id"] = pd.Series(
        pd.array(_take(deanery_keys, deanery, 0), dtype="Int64"), index=index
    ).where(deanery >= 0)
    out["deanery_name"] = _text(ref["deanery"]["name"], deanery, index)
    out["deanery_note"] = _deanery_notes(
        ref, borough, deanery, in_region, has_point, by_lsoa, index
    )
    out["in_region"] = in_region.astype(bool)
    return out


def _take(table: np.ndarray, codes: np.ndarray, missing=NONE) -> np.ndarray:
    """``table[code]`` for each code, ``missing`` where the code is NONE."""
    if not len(table):
        return np.full(len(codes), missing)
    return np.where(codes >= 0, np.asarray(table)[np.maximum(codes, 0)], missing)


def _apart(x, y, xy: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Metres from each point to ``xy[at]`` (NaN where ``at`` is NONE or there is no point)."""
    return np.hypot(x - _take(xy[:, 0], at, np.nan), y - _take(xy[:, 1], at, np.nan))


def _text(table: pa.Array, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """A text column: ``table[code]`` for each code, "" (the table's last entry) for NONE."""
    codes = np.where(codes >= 0, codes, len(table) - 1)
    return pd.Series(table.take(pa.array(codes)), index=index, dtype="str")


def _nearest_borough(x, y, mask, ref) -> tuple[np.ndarray, np.ndarray]:
    """Code of the region borough nearest each masked point, and its distance in metres
    (EPSG:27700, to the borough polygon; ties to the lowest code); NONE and NaN elsewhere."""
    codes = np.full(len(x), NONE)
    metres = np.full(len(x), np.nan)
    mask = np.asarray(mask, bool)
    if mask.any():
        frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(x[mask], y[mask]), crs=BNG))
        near = gpd.sjoin_nearest(frame, ref["boroughs"], how="left", distance_col="metres")
        near = near.reset_index().sort_values(["index", "LAD25CD"]).drop_duplicates("index")
        codes[mask] = _codes(ref["borough"], near["LAD25CD"])
        metres[mask] = near["metres"].to_numpy()
    return codes, metres


def _nearest_of_borough(x, y, mask, borough, kind, borough_of) -> tuple:
    """For each masked point, the code of the nearest of ``kind``'s polygons in the point's
    ``borough`` (a code; ``borough_of`` gives each area's; ties to the lowest key) and its
    distance in metres; NONE and NaN elsewhere. Keeping to the borough keeps areas nested in
    it."""
    found = np.full(len(x), NONE)
    metres = np.full(len(x), np.nan)
    masked = np.flatnonzero(np.asarray(mask, bool))
    of_rows = borough[masked]
    polygon_borough = _take(borough_of, kind["codes"])
    for code in np.unique(of_rows[of_rows >= 0]):
        rows = masked[of_rows == code]
        own = polygon_borough == code
        codes = kind["codes"][own]
        tree = shapely.STRtree(kind["shapes"][own])
        (point_i, shape_i), distance = tree.query_nearest(
            shapely.points(x[rows], y[rows]), return_distance=True, all_matches=True
        )
        first = _first_per_point(point_i, distance, codes[shape_i])
        found[rows[point_i[first]]] = codes[shape_i[first]]
        metres[rows[point_i[first]]] = distance[first]
    return found, metres


def _nearest_live(ref: dict, x, y, has_point) -> tuple[np.ndarray, np.ndarray]:
    """The nearest live postcode within NEAREST_POSTCODE_MAX_M of each point (its position in
    the live table, NONE for none; ties: lowest key) and its distance."""
    position = np.full(len(x), NONE)
    metres = np.full(len(x), np.nan)
    if has_point.any():
        xy = np.column_stack([x[has_point], y[has_point]])
        distance, found_at = ref["tree"].query(
            xy, distance_upper_bound=NEAREST_POSTCODE_MAX_M, workers=-1
        )
        found = np.isfinite(distance)
        rows = np.flatnonzero(has_point)[found]
        # cKDTree returns the first of equidistant neighbours in tree order; the live table is
        # sorted by postcode, so the answer is stable for a given layer.
        position[rows] = found_at[found]
        metres[rows] = distance[found]
    return position, metres


def _ward_notes(ref, source, ward, polygon, given, near, outside, has_point, gap, index):
    """Why each ward was chosen, and where the generalised polygon disagrees; for a point
    outside the region, how far it is from its nearest borough; for a point in a gap between
    ward polygons, how far the chosen one is (``gap``). ``given``: the row's own live
    postcode (position), its distance and whether that is too far to name the ward; ``near``:
    the nearest live postcode and its distance; ``outside``: the nearest borough and its
    distance, for points outside the region."""
    live, apart, far = given
    nearest, near_metres = near
    nearby, away = outside
    by_postcode, is_near, by_polygon = source == 1, source == 2, source == 3
    in_gap = by_polygon & ~np.isnan(gap)
    postcodes = ref["live_postcode"]
    ward_text = ref["ward"]["text"]
    polygon_note = (
        f"no postcode within {NEAREST_POSTCODE_MAX_M} m: ward from the generalised "
        "(200 m) ward polygon"
    )
    gap_note = (
        f"no postcode within {NEAREST_POSTCODE_MAX_M} m and no generalised (200 m) ward polygon "
        f"within {EDGE_TOLERANCE_M} m: the nearest ward polygon of the borough, "
    )
    differs = (by_postcode | is_near) & (polygon >= 0) & (polygon != ward)
    whose = pa.array(["nearest postcode", "postcode"], LARGE)
    parts = [
        _part(
            far,
            "postcode ",
            (postcodes, live),
            " is ",
            apart,
            " m from the point: the ward comes from the point",
        ),
        _part(
            is_near,
            "ward of the nearest postcode, ",
            (postcodes, nearest),
            " (",
            near_metres,
            " m away)",
        ),
        _part(by_polygon & ~in_gap, polygon_note),
        _part(in_gap, gap_note, gap, " m away"),
        _part(~has_point & ~is_near & ~by_polygon, "no position"),
        _part(
            has_point & ~is_near & ~by_polygon & (nearby >= 0),
            "outside the region's 9 boroughs: ",
            away,
            " m from ",
            (ref["borough"]["name"], nearby),
        ),
        _part(
            differs,
            "the generalised ward polygon here is ",
            (ref["ward"]["name_or_key"], polygon),
            " (",
            (ward_text, polygon),
            "); the ",
            (whose, by_postcode.astype(np.int64)),
            "'s ward is used",
        ),
    ]
    return pd.Series(_joined(len(index), parts), index=index, dtype="str")


def _part(mask, *pieces) -> tuple[np.ndarray, pa.Array]:
    """The rows where ``mask`` and their text joined from ``pieces``: a string, a (table,
    one code per row) pair, or one float per row (metres, `_metres`). Arrow kernels over the
    masked rows only: no Python string per row."""
    rows = np.flatnonzero(mask)
    parts = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(pa.scalar(piece, LARGE))
        elif isinstance(piece, tuple):
            parts.append(piece[0].take(pa.array(piece[1][rows])))
        else:
            parts.append(_metres(np.asarray(piece)[rows]))
    if len(parts) == 1:
        return rows, pa.array(pieces, LARGE).take(pa.array(np.zeros(len(rows), np.int64)))
    return rows, pc.binary_join_element_wise(*parts, pa.scalar("", LARGE))


def _joined(count: int, parts: list) -> pa.Array:
    """One note per row: the ``parts`` (rows, texts) that cover it, in order, joined with
    "; " ("" where none do). Rows with one part take it as is; only rows with several are
    joined, and one take over the pooled texts makes the column."""
    covers = np.zeros(count, np.int64)
    for rows, _ in parts:
        covers[rows] += 1
    pick = np.full(count, NONE)
    pool, offset = [], 0
    for rows, texts in parts:
        alone = covers[rows] == 1
        pick[rows[alone]] = offset + np.flatnonzero(alone)
        pool.append(texts)
        offset += len(texts)
    several = np.flatnonzero(covers > 1)
    if len(several):
        notes = pa.nulls(len(several), LARGE)
        for rows, texts in (part for part in parts if len(part[0])):
            at = np.searchsorted(rows, several)
            has = (at < len(rows)) & (rows[np.minimum(at, len(rows) - 1)] == several)
            part = texts.take(pa.array(np.where(has, at, 0), mask=~has))
            notes = pc.coalesce(
                pc.binary_join_element_wise(notes, part, pa.scalar("; ", LARGE)), notes, part
            )
        pick[several] = offset + np.arange(len(several))
        pool.append(notes)
        offset += len(several)
    pick[pick < 0] = offset
    pool.append(pa.array([""], LARGE))
    return pa.concat_arrays(pool).take(pa.array(pick))


def _metres(values: np.ndarray) -> pa.Array:
    """Distances as text rounded to the metre, with thousands separators ("12,345"), as
    ``f"{value:,.0f}"`` writes them but in one pass over the column (arrow kernels)."""
    whole = np.round(values).astype(np.int64)
    text = pc.cast(pa.array(whole), pa.large_string())
    for group in range(1, 6):
        big = whole >= 10 ** (3 * group)
        if not big.any():
            break
        tail = 4 * group - 1
        grouped = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(text, 0, -tail),
            pc.utf8_slice_codeunits(text, -tail),
            pa.scalar(",", pa.large_string()),
        )
        text = pc.if_else(pa.array(big), grouped, text)
    return text


def _deanery_notes(ref, borough, deanery, in_region, has_point, by_lsoa, index) -> pd.Series:
    """Why a point has no deanery, or took its LSOA's: one code per row into the few notes
    there are (``np.select``, first match wins), made text by one take."""
    outside = "outside the Diocese of Liverpool (approximate, derived footprint)"
    reasons = ref["borough"]["other_diocese"]
    notes = [
        "",
        f"the deanery of the point's LSOA: no generalised deanery polygon within "
        f"{EDGE_TOLERANCE_M} m of the point",
        "no position",
        "outside the region",
        outside,
        *(f"{outside}: {reason}" for reason in reasons.fillna("")),
    ]
    has_reason = _take(reasons.notna().to_numpy(), borough, False).astype(bool)
    missing = deanery < 0
    inside_region = missing & in_region
    note = np.select(
        [
            by_lsoa,
            ~has_point,
            missing & ~in_region & has_point,
            inside_region & has_reason,
            inside_region,
        ],
        [1, 2, 3, 5 + borough, 4],
        0,
    )
    return _text(pa.array(notes, LARGE), note, index)


def outside_issues(joined: pd.DataFrame, directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """A warning for each joined row outside the region: placed and kept, counted in no area.

    The field is ``postcode`` when the row's own postcode lies outside the region, else
    ``lat`` (its coordinates put it there)."""
    outside = joined[~joined["in_region"].astype(bool)]
    keys = geocode.postcode_keys(outside["postcode"].astype("str"))
    by_postcode = keys.map(geocode.postcode_index(directory)["in_region"]).eq(False)
    by_postcode = by_postcode.fillna(False).astype(bool)
    where = (
        "outside the region's 9 boroughs (nearest: "
        + outside["nearest_borough"].astype("str")
        + "): placed and kept with in_region false; it counts for the reach of residents "
        "near it but in no area's figures"
    )
    return pd.concat(
        [
            issues_for(
                outside[by_postcode],
                "postcode",
                "warning",
                "postcode " + outside.loc[by_postcode, "postcode"] + " is " + where[by_postcode],
            ),
            issues_for(outside[~by_postcode], "lat", "warning", where[~by_postcode]),
        ],
        ignore_index=True,
    )


PRIVATE_COLUMNS = ("_row", "_file_id", "_precision_stated", "_given")
"""Columns `prepare_file` adds for the store and `join_file` drops: the row a record came from,
the id as the file gave it (blank when derived), whether the file stated its precision, and
the fields the row gave (`kindred_map.ingest.normalise`)."""


def prepare_file(
    path: Path,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
    secret: bytes | None = None,
    namespace: str | None = None,
    constants: dict[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """`join_file` for the store: ids namespaced and derived with ``secret``, PRIVATE_COLUMNS kept.

    The report's issues are those of reading, checking and placing; the store adds its own."""
    path = Path(path)
    if oruk.is_oruk(path):
        table = oruk.read_table(path)
    else:
        table = ingest.read_table(path, sheet, (mapping or {}).values())
    raw, info = ingest.to_records(table, mapping, constants)
    records, normalise_issues = ingest.normalise(raw)
    records, hours_issues = hours.fill_schedules(records)
    records["source"] = records["source"].where(records["source"].ne(""), f"file {path.name}")
    located, geocode_issues = geocode.locate(records, directory)
    located, duplicate_issues = ingest.assign_ids(located, records, secret, namespace)
    joined = join_projects(located, directory)
    region_issues = outside_issues(joined, directory)
    joined["_row"] = joined["row"]
    projects = gpd.GeoDataFrame(
        joined[[*RECORD_FIELDS, *JOINED_FIELDS, *PRIVATE_COLUMNS, "geometry"]], crs=WGS84
    ).sort_values("id")
    report = build_report(
        path.name,
        raw["row"],
        [
            table.issues,
            normalise_issues,
            hours_issues,
            geocode_issues,
            duplicate_issues,
            region_issues,
        ],
        records=len(projects),
        columns=info["columns"],
        ignored_columns=info["ignored_columns"],
        blank_rows=table.blank_rows,
        header_row=table.header_row,
        encoding=table.encoding,
        notes=[
            *table.notes,
            *(
                f"{name} {value!r} for every row (the file has no {name} column)"
                for name, value in info["constants"].items()
            ),
            hours.count_note(projects),
        ],
    )
    return projects.reset_index(drop=True), report


def join_file(
    path: Path,
    mapping: dict[str, str] | None = None,
    sheet: str | None = None,
    directory: Path = BOUNDARIES_DIR,
    constants: dict[str, str] | None = None,
) -> tuple[gpd.GeoDataFrame, ImportReport]:
    """Read, check, place and join a project file; nothing is stored. ``constants`` give fields
    the file has no column for one value, every row alike (`kindred_map.ingest.check_constants`).

    Returns one row per project (RECORD_FIELDS + JOINED_FIELDS, points in EPSG:4326) and the
    report naming every rejected or warned row. Ids are as the file gives them; derived ids
    use a random key of this process (`kindred_map.ingest.derive_ids`), not a store's secret,
    so they are not the ids an import would store.
    """
    projects, report = prepare_file(path, mapping, sheet, directory, constants=constants)
    address = privacy.address_issues(projects.rename(columns={"_row": "row"}))
    report.issues = build_report(report.file, [], [report.issues, address]).issues
    return projects.drop(columns=list(PRIVATE_COLUMNS)), report
