"""Name each project's ward, borough, deanery and LSOA (with its IMD decile), in EPSG:27700."""

from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
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
NEAREST_COLUMNS = ("postcode", "WD24CD", "LSOA21CD")


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
    return {
        "live": live,
        "live_by_key": live.set_index("pcd_key")[
            ["postcode", "WD24CD", "LAD25CD", "LSOA21CD", "easting", "northing"]
        ],
        "outside_by_key": outside.set_index("pcd_key")[["easting", "northing"]],
        "tree": cKDTree(live[["easting", "northing"]].to_numpy()),
        "live_columns": {name: live[name].to_numpy(dtype="object") for name in NEAREST_COLUMNS},
        "live_postcode": pa.array(live["postcode"].array),
        "wards": wards[["WD24CD", "geometry"]],
        "boroughs": boroughs[["LAD25CD", "geometry"]],
        "lsoas": lsoas[["LSOA21CD", "geometry"]],
        "deaneries": deaneries[["deanery_id", "geometry"]],
        "lsoa_borough": lsoas.set_index("LSOA21CD")["LAD24CD"],
        "lsoa_deanery": _lsoa_deaneries(lsoas, deaneries),
        "ward_name": wards.set_index("WD24CD")["WD24NM"],
        "ward_borough": wards.set_index("WD24CD")["LAD24CD"],
        "borough_name": boroughs.set_index("LAD25CD")["LAD25NM"],
        "deanery_name": deaneries.set_index("deanery_id")["deanery_name"],
        "imd_decile": lsoas.set_index("LSOA21CD")["imd_decile"],
        "other_diocese": _other_dioceses(boroughs),
    }


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
    points: gpd.GeoSeries,
    polygons: gpd.GeoDataFrame,
    key: str,
    tolerance: float = 0,
    tree: shapely.STRtree | None = None,
) -> pd.Series:
    """The ``key`` of the polygon holding each point (EPSG:27700), one per point.

    A point on a shared boundary touches several polygons and gets the lowest key, so the
    answer never depends on row order. Points outside every polygon take the nearest one within
    ``tolerance`` metres (ties again to the lowest key), else NA.

    One tree of the points is queried with the prepared polygons: each polygon tests only the
    points in its bounding box, and a prepared polygon answers those tests without re-reading
    its edges (`benchmarks/bench_join.py`). ``tree``: that tree of ``points``, when the caller
    queries several layers with the same points.
    """
    geometries = np.asarray(points.values)
    shapes = np.asarray(polygons.geometry.values)
    codes, keys = pd.factorize(polygons[key], sort=True)
    shapely.prepare(shapes)
    tree = shapely.STRtree(geometries) if tree is None else tree
    shape_i, point_i = tree.query(shapes, predicate="intersects")
    first = _first_per_point(point_i, np.zeros(len(point_i)), codes[shape_i])
    best = np.full(len(geometries), -1)
    best[point_i[first]] = codes[shape_i[first]]
    missing = (best < 0) & ingest.has_geometry(points)
    if tolerance and missing.any():
        rows = np.flatnonzero(missing)
        shape_j, near_i = shapely.STRtree(geometries[rows]).query(
            shapes, predicate="dwithin", distance=tolerance
        )
        metres = shapely.distance(shapes[shape_j], geometries[rows][near_i])
        first = _first_per_point(near_i, metres, codes[shape_j])
        best[rows[near_i[first]]] = codes[shape_j[first]]
    found = np.asarray(keys, dtype="object")[np.maximum(best, 0)] if len(keys) else best
    return pd.Series(found, index=points.index, dtype="object").where(best >= 0)


def _first_per_point(point_i: np.ndarray, metres: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Positions of the pairs (point, polygon at ``metres``) to keep: for each point, the
    nearest polygon, ties to the lowest key code."""
    order = np.lexsort((codes, metres, point_i))
    return order[np.r_[True, point_i[order][1:] != point_i[order][:-1]]] if len(order) else order


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
    """
    ref = reference(directory)
    out = projects.copy()
    index = out.index
    points = out.geometry.to_crs(BNG)
    has_point = ingest.has_geometry(points)
    x = np.where(has_point, points.x.fillna(np.nan), np.nan) if len(out) else np.array([])
    y = np.where(has_point, points.y.fillna(np.nan), np.nan) if len(out) else np.array([])

    given = out["postcode"] if "postcode" in out else pd.Series("", index=index)
    codes, uniques = pd.factorize(given.astype("str"), use_na_sentinel=False)
    keys = geocode.postcode_keys(pd.Series(uniques, dtype="str"))
    postcode = ref["live_by_key"].reindex(keys).iloc[codes]
    postcode.index = index
    postcode_apart = np.hypot(x - postcode["easting"].to_numpy(), y - postcode["northing"])
    known = postcode["WD24CD"].notna().to_numpy() & has_point
    authority = known & (postcode_apart <= POSTCODE_AUTHORITY_M).to_numpy()
    far_postcode = known & ~authority

    beyond = ref["outside_by_key"].reindex(keys).iloc[codes]
    beyond_apart = np.hypot(x - beyond["easting"].to_numpy(), y - beyond["northing"].to_numpy())
    outside_postcode = has_point & (beyond_apart <= POSTCODE_AUTHORITY_M)

    # One tree of the located points serves the borough, ward and deanery layers (a point's
    # polygon does not depend on the other points, so the deanery is found for every located
    # point and kept for those in the region).
    tree = shapely.STRtree(np.asarray(points[has_point].values))
    borough_polygon = _on_points(points, has_point, ref["boroughs"], "LAD25CD", tree)
    ward_polygon = _on_points(points, has_point, ref["wards"], "WD24CD", tree)
    in_region = (authority | borough_polygon.notna().to_numpy()) & ~outside_postcode

    nearest = _nearest_live(ref, x, y, has_point)
    near_found = nearest["WD24CD"].notna().to_numpy()
    use_near = ~authority & in_region & near_found
    use_polygon = ~authority & in_region & ~near_found
    gap = use_polygon & ward_polygon.isna().to_numpy()
    gap_ward, gap_metres = _nearest_of_borough(
        points, gap, borough_polygon, ref["wards"], "WD24CD", ref["ward_borough"]
    )

    ward = np.select(
        [authority, use_near, use_polygon],
        [postcode["WD24CD"], nearest["WD24CD"], ward_polygon.fillna(gap_ward)],
        default=None,
    )
    out["WD24CD"] = pd.Series(ward, index=index, dtype="str").where(pd.notna(ward), "")
    out["WD24NM"] = _lookup(out["WD24CD"], ref["ward_name"]).fillna("")
    source = np.select(
        [authority, use_near, use_polygon], ["postcode", "nearest_postcode", "polygon"], ""
    )
    out["ward_source"] = pd.Series(source, index=index, dtype="str")
    out["nearest_borough"], away = _nearest_borough(points, has_point & ~in_region, ref)
    out["ward_note"] = _ward_notes(
        out,
        ref,
        ward_polygon,
        nearest,
        postcode,
        postcode_apart,
        far_postcode,
        away,
        has_point,
        gap_metres,
    )

    borough = _lookup(out["WD24CD"], ref["ward_borough"])
    borough = borough.where(~pd.Series(authority, index=index), postcode["LAD25CD"])
    borough = borough.fillna(borough_polygon.where(pd.Series(in_region, index=index)))
    out["LAD25CD"] = borough.fillna("").astype("str")
    out["LAD25NM"] = _lookup(out["LAD25CD"], ref["borough_name"]).fillna("")

    lsoa_polygon = _on_points(points, use_polygon, ref["lsoas"], "LSOA21CD")
    lsoa = np.select(
        [authority, use_near, use_polygon],
        [postcode["LSOA21CD"], nearest["LSOA21CD"], lsoa_polygon],
        default=None,
    )
    lsoa = pd.Series(lsoa, index=index, dtype="object")
    lsoa_gap = in_region & lsoa.isna().to_numpy()
    lsoa = lsoa.fillna(
        _nearest_of_borough(
            points, lsoa_gap, out["LAD25CD"], ref["lsoas"], "LSOA21CD", ref["lsoa_borough"]
        )[0]
    )
    out["LSOA21CD"] = lsoa.fillna("").astype("str")
    out["imd_decile"] = _lookup(out["LSOA21CD"], ref["imd_decile"]).astype("Int64")

    deanery = _on_points(points, has_point, ref["deaneries"], "deanery_id", tree)
    deanery[~in_region] = pd.NA
    of_lsoa = _lookup(out["LSOA21CD"], ref["lsoa_deanery"])
    by_lsoa = in_region & deanery.isna().to_numpy() & of_lsoa.notna().to_numpy()
    deanery[by_lsoa] = of_lsoa[by_lsoa]
    out["deanery_id"] = deanery.astype("Int64")
    out["deanery_name"] = _lookup(deanery, ref["deanery_name"]).fillna("").astype("str")
    out["deanery_note"] = _deanery_notes(out, ref, in_region, has_point, by_lsoa)
    out["in_region"] = in_region.astype(bool)
    return out


def _lookup(values: pd.Series, table: pd.Series) -> pd.Series:
    """``table[value]`` for each value (NA where absent), on the values' index: each distinct
    value is looked up once (several times faster than ``Series.map`` on 100,000 strings)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    found = table.reindex(uniques)
    return pd.Series(found.array.take(codes), index=values.index)  # arrow text stays arrow


def _nearest_borough(points, mask, ref) -> tuple[pd.Series, pd.Series]:
    """Name of the region borough nearest each masked point, and its distance in metres
    (EPSG:27700, to the borough polygon); "" and NaN elsewhere."""
    names = pd.Series("", index=points.index, dtype="str")
    metres = pd.Series(np.nan, index=points.index)
    mask = np.asarray(mask, bool)
    if mask.any():
        frame = gpd.GeoDataFrame(geometry=points[mask].reset_index(drop=True))
        near = gpd.sjoin_nearest(frame, ref["boroughs"], how="left", distance_col="metres")
        near = near.reset_index().sort_values(["index", "LAD25CD"]).drop_duplicates("index")
        names[mask] = near["LAD25CD"].map(ref["borough_name"]).to_numpy()
        metres[mask] = near["metres"].to_numpy()
    return names, metres


def _nearest_of_borough(points, mask, borough, polygons, key, borough_of) -> tuple:
    """For each masked point, the ``key`` of the nearest of ``polygons`` in the point's
    ``borough`` (``borough_of`` maps key to borough; ties to the lowest key) and its distance
    in metres; NA and NaN elsewhere. Keeping to the borough keeps areas nested in it."""
    found = pd.Series(pd.NA, index=points.index, dtype="object")
    metres = pd.Series(np.nan, index=points.index)
    masked = np.flatnonzero(np.asarray(mask, bool))
    if not len(masked):
        return found, metres
    # only the masked rows' boroughs as objects: the column may be 100,000 arrow strings
    of_rows = pd.Series(borough).iloc[masked].to_numpy(dtype="object")
    polygon_borough = polygons[key].map(borough_of).to_numpy()
    for code in pd.unique(of_rows[pd.notna(of_rows)]):
        rows = masked[of_rows == code]
        shapes = polygons[polygon_borough == code]
        codes, keys = pd.factorize(shapes[key], sort=True)
        tree = shapely.STRtree(np.asarray(shapes.geometry.values))
        (point_i, shape_i), distance = tree.query_nearest(
            np.asarray(points.values)[rows], return_distance=True, all_matches=True
        )
        first = _first_per_point(point_i, distance, codes[shape_i])
        found.iloc[rows[point_i[first]]] = np.asarray(keys)[codes[shape_i[first]]]
        metres.iloc[rows[point_i[first]]] = distance[first]
    return found, metres


def _on_points(points, mask, polygons, key, tree=None) -> pd.Series:
    """``polygon_key`` for the masked points (``tree``: their STRtree, when shared); NA
    elsewhere."""
    result = pd.Series(pd.NA, index=points.index, dtype="object")
    mask = np.asarray(mask, bool)
    if mask.any():
        found = polygon_key(points[mask], polygons, key, EDGE_TOLERANCE_M, tree)
        result[mask] = found.to_numpy()
    return result


def _nearest_live(ref: dict, x, y, has_point) -> pd.DataFrame:
    """The nearest live postcode within NEAREST_POSTCODE_MAX_M of each point (ties: lowest key)."""
    columns = {name: np.full(len(x), None, dtype="object") for name in NEAREST_COLUMNS}
    columns["distance"] = np.full(len(x), np.nan)
    if has_point.any():
        xy = np.column_stack([x[has_point], y[has_point]])
        distance, position = ref["tree"].query(
            xy, distance_upper_bound=NEAREST_POSTCODE_MAX_M, workers=-1
        )
        found = np.isfinite(distance)
        rows = np.flatnonzero(has_point)[found]
        # cKDTree returns the first of equidistant neighbours in tree order; the live table is
        # sorted by postcode, so the answer is stable for a given layer.
        for name in NEAREST_COLUMNS:
            columns[name][rows] = ref["live_columns"][name][position[found]]
        columns["distance"][rows] = distance[found]
        at = np.full(len(x), -1)
        at[rows] = position[found]
        # the postcode only goes into text (`_ward_notes`): kept in arrow, no object per row
        taken = ref["live_postcode"].take(pa.array(at, mask=at < 0))
        columns["postcode"] = pd.array(taken, dtype="str")
    return pd.DataFrame(columns)


def _ward_notes(out, ref, ward_polygon, nearest, postcode, apart, far, away, has_point, gap):
    """Why each ward was chosen, and where the generalised polygon disagrees; for a point
    outside the region, how far it is from its nearest borough (``away``, metres; NaN
    inside); for a point in a gap between ward polygons, how far the chosen one is (``gap``)."""
    source = out["ward_source"]
    by_postcode = source.eq("postcode").to_numpy()
    is_near = source.eq("nearest_postcode").to_numpy()
    by_polygon = source.eq("polygon").to_numpy()
    polygon = pd.Series(ward_polygon.to_numpy(), dtype="str").fillna("")
    nearby = out["nearest_borough"].to_numpy(dtype="object")
    gap = np.asarray(gap, float)
    placed = np.asarray(has_point, bool)
    in_gap = by_polygon & ~np.isnan(gap)
    outside = placed & ~is_near & ~by_polygon & out["nearest_borough"].ne("").to_numpy()
    why = [
        _texts(
            np.asarray(far, bool),
            "postcode ",
            postcode["postcode"],
            " is ",
            np.asarray(apart, float),
            " m from the point: the ward comes from the point",
        ),
        _texts(
            is_near,
            "ward of the nearest postcode, ",
            nearest["postcode"],
            " (",
            nearest["distance"].to_numpy(dtype="float"),
            " m away)",
        ),
        _texts(
            by_polygon & ~in_gap,
            f"no postcode within {NEAREST_POSTCODE_MAX_M} m: ward from the generalised "
            "(200 m) ward polygon",
        ),
        _texts(
            in_gap,
            f"no postcode within {NEAREST_POSTCODE_MAX_M} m and no generalised (200 m) ward "
            f"polygon within {EDGE_TOLERANCE_M} m: the nearest ward polygon of the borough, ",
            np.asarray(gap, float),
            " m away",
        ),
        _texts(~placed & ~is_near & ~by_polygon, "no position"),
        _texts(
            outside,
            "outside the region's 9 boroughs: ",
            np.asarray(away, float),
            " m from ",
            nearby,
        ),
    ]
    differs = (by_postcode | is_near) & polygon.ne("").to_numpy()
    differs &= polygon.ne(out["WD24CD"].to_numpy()).to_numpy()
    names = _lookup(polygon, ref["ward_name"]).fillna(polygon)
    whose = np.where(by_postcode, "postcode", "nearest postcode")
    why.append(
        _texts(
            differs,
            "the generalised ward polygon here is ",
            names,
            " (",
            polygon,
            "); the ",
            whose,
            "'s ward is used",
        )
    )
    notes = pa.nulls(len(out), pa.large_string())
    for part in why:
        if part is not None:
            notes = pc.coalesce(
                pc.binary_join_element_wise(notes, part, pa.scalar("; ", pa.large_string())),
                notes,
                part,
            )
    return pd.Series(notes.fill_null(""), index=out.index, dtype="str")


def _texts(mask, *pieces) -> pa.Array | None:
    """Text joined from ``pieces`` where ``mask``, null elsewhere (an arrow array as long as
    ``mask``; None when ``mask`` selects nothing). A piece is a string or one value per row;
    float values are metres (`_metres`). Built in arrow end to end: no Python string per row."""
    mask = np.asarray(mask, bool)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    parts = []
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(pa.scalar(piece, pa.large_string()))
        elif isinstance(piece, pd.Series) and isinstance(piece.dtype, pd.StringDtype):
            parts.append(pa.array(piece.array).take(rows).cast(pa.large_string()))
        else:
            values = np.asarray(piece)[rows]
            if values.dtype.kind == "f":
                parts.append(_metres(values))
            else:
                parts.append(pa.array(values.astype("object"), pa.large_string()))
    joined = pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))
    return pc.replace_with_mask(pa.nulls(len(mask), pa.large_string()), pa.array(mask), joined)


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


def _deanery_notes(out, ref, in_region, has_point, by_lsoa) -> pd.Series:
    """Why a point has no deanery, or took its LSOA's: built as one column (``np.select``,
    first match wins), not by masked writes into a string column (each a full copy)."""
    outside = "outside the Diocese of Liverpool (approximate, derived footprint)"
    reason = _lookup(out["LAD25CD"], ref["other_diocese"])
    missing = out["deanery_id"].isna().to_numpy()
    inside_region = missing & in_region
    note = np.select(
        [
            by_lsoa,
            ~has_point,
            missing & ~in_region & has_point,
            inside_region & reason.notna().to_numpy(),
            inside_region,
        ],
        [
            f"the deanery of the point's LSOA: no generalised deanery polygon within "
            f"{EDGE_TOLERANCE_M} m of the point",
            "no position",
            "outside the region",
            (outside + ": " + reason.fillna("")).to_numpy(dtype="object"),
            outside,
        ],
        "",
    )
    return pd.Series(note, index=out.index, dtype="str")


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
