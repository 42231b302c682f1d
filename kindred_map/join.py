"""Name each project's ward, borough, deanery and LSOA (with its IMD decile), in EPSG:27700."""

from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
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


def _mtimes(directory: Path) -> tuple:
    return tuple(boundaries.layer_path(n, directory).stat().st_mtime_ns for n in LAYER_NAMES)


@cache
def _reference(directory: Path, _mtimes: tuple) -> dict:
    postcodes = pd.DataFrame(boundaries.load("postcode", directory).drop(columns="geometry"))
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
        "wards": wards[["WD24CD", "geometry"]],
        "boroughs": boroughs[["LAD25CD", "geometry"]],
        "lsoas": lsoas[["LSOA21CD", "geometry"]],
        "deaneries": deaneries[["deanery_id", "geometry"]],
        "ward_name": wards.set_index("WD24CD")["WD24NM"],
        "ward_borough": wards.set_index("WD24CD")["LAD24CD"],
        "borough_name": boroughs.set_index("LAD25CD")["LAD25NM"],
        "deanery_name": deaneries.set_index("deanery_id")["deanery_name"],
        "imd_decile": lsoas.set_index("LSOA21CD")["imd_decile"],
        "other_diocese": _other_dioceses(boroughs),
    }


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
    frame = gpd.GeoDataFrame(geometry=points.reset_index(drop=True))
    hits = gpd.sjoin(frame, polygons[[key, "geometry"]], how="inner", predicate="intersects")
    found = hits.reset_index().sort_values(["index", key]).drop_duplicates("index")
    result = found.set_index("index")[key].reindex(frame.index)
    missing = result.isna() & ingest.has_geometry(frame.geometry)
    if tolerance and missing.any():
        near = gpd.sjoin_nearest(
            frame[missing], polygons[[key, "geometry"]], how="inner", max_distance=tolerance
        )
        near = near.reset_index().sort_values(["index", key]).drop_duplicates("index")
        result = result.astype("object")
        result[near["index"].to_numpy()] = near[key].to_numpy()
    result.index = points.index
    return result


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
    exactly one area of each kind.
    """
    ref = reference(directory)
    out = projects.copy()
    index = out.index
    points = out.geometry.to_crs(BNG)
    has_point = ingest.has_geometry(points)
    x = np.where(has_point, points.x.fillna(np.nan), np.nan) if len(out) else np.array([])
    y = np.where(has_point, points.y.fillna(np.nan), np.nan) if len(out) else np.array([])

    given = out["postcode"] if "postcode" in out else pd.Series("", index=index)
    postcode = ref["live_by_key"].reindex(geocode.postcode_keys(given.astype("str")))
    postcode.index = index
    postcode_apart = np.hypot(x - postcode["easting"].to_numpy(), y - postcode["northing"])
    known = postcode["WD24CD"].notna().to_numpy() & has_point
    authority = known & (postcode_apart <= POSTCODE_AUTHORITY_M).to_numpy()
    far_postcode = known & ~authority

    beyond = ref["outside_by_key"].reindex(geocode.postcode_keys(given.astype("str")))
    beyond_apart = np.hypot(x - beyond["easting"].to_numpy(), y - beyond["northing"].to_numpy())
    outside_postcode = has_point & (beyond_apart <= POSTCODE_AUTHORITY_M)

    borough_polygon = _on_points(points, has_point, ref["boroughs"], "LAD25CD")
    ward_polygon = _on_points(points, has_point, ref["wards"], "WD24CD")
    in_region = (authority | borough_polygon.notna().to_numpy()) & ~outside_postcode

    nearest = _nearest_live(ref, x, y, has_point)
    near_found = nearest["WD24CD"].notna().to_numpy()
    use_near = ~authority & in_region & near_found
    use_polygon = ~authority & in_region & ~near_found & ward_polygon.notna().to_numpy()

    ward = np.select(
        [authority, use_near, use_polygon],
        [postcode["WD24CD"], nearest["WD24CD"], ward_polygon],
        default=None,
    )
    out["WD24CD"] = pd.Series(ward, index=index, dtype="str").where(pd.notna(ward), "")
    out["WD24NM"] = out["WD24CD"].map(ref["ward_name"]).fillna("")
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
    )

    borough = out["WD24CD"].map(ref["ward_borough"])
    borough = borough.where(~pd.Series(authority, index=index), postcode["LAD25CD"])
    borough = borough.fillna(borough_polygon.where(pd.Series(in_region, index=index)))
    out["LAD25CD"] = borough.fillna("").astype("str")
    out["LAD25NM"] = out["LAD25CD"].map(ref["borough_name"]).fillna("")

    lsoa_polygon = _on_points(points, use_polygon, ref["lsoas"], "LSOA21CD")
    lsoa = np.select(
        [authority, use_near, use_polygon],
        [postcode["LSOA21CD"], nearest["LSOA21CD"], lsoa_polygon],
        default=None,
    )
    out["LSOA21CD"] = pd.Series(lsoa, index=index, dtype="str").where(pd.notna(lsoa), "")
    out["imd_decile"] = out["LSOA21CD"].map(ref["imd_decile"]).astype("Int64")

    deanery = _on_points(points, in_region, ref["deaneries"], "deanery_id")
    out["deanery_id"] = deanery.astype("Int64")
    out["deanery_name"] = deanery.map(ref["deanery_name"]).fillna("").astype("str")
    out["deanery_note"] = _deanery_notes(out, ref, in_region, has_point)
    out["in_region"] = in_region.astype(bool)
    return out


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


def _on_points(points, mask, polygons, key) -> pd.Series:
    """``polygon_key`` for the masked points; NA elsewhere."""
    result = pd.Series(pd.NA, index=points.index, dtype="object")
    mask = np.asarray(mask, bool)
    if mask.any():
        found = polygon_key(points[mask], polygons, key, EDGE_TOLERANCE_M)
        result[mask] = found.to_numpy()
    return result


def _nearest_live(ref: dict, x, y, has_point) -> pd.DataFrame:
    """The nearest live postcode within NEAREST_POSTCODE_MAX_M of each point (ties: lowest key)."""
    live = ref["live"]
    columns = ["postcode", "WD24CD", "LSOA21CD"]
    result = pd.DataFrame(index=range(len(x)), columns=[*columns, "distance"], dtype="object")
    if has_point.any():
        xy = np.column_stack([x[has_point], y[has_point]])
        distance, position = ref["tree"].query(xy, distance_upper_bound=NEAREST_POSTCODE_MAX_M)
        found = np.isfinite(distance)
        rows = np.flatnonzero(has_point)[found]
        # cKDTree returns the first of equidistant neighbours in tree order; the live table is
        # sorted by postcode, so the answer is stable for a given layer.
        result.loc[rows, columns] = live.iloc[position[found]][columns].to_numpy()
        result.loc[rows, "distance"] = distance[found]
    return result


def _ward_notes(out, ref, ward_polygon, nearest, postcode, apart, far, away, has_point):
    """Why each ward was chosen, and where the generalised polygon disagrees; for a point
    outside the region, how far it is from its nearest borough (``away``, metres; NaN
    inside)."""
    names = ref["ward_name"].to_dict()
    columns = zip(
        out["WD24CD"].tolist(),
        out["ward_source"].tolist(),
        ward_polygon.tolist(),
        nearest["postcode"].tolist(),
        nearest["distance"].tolist(),
        postcode["postcode"].tolist(),
        np.asarray(apart, float).tolist(),
        far.tolist(),
        out["nearest_borough"].tolist(),
        np.asarray(away, float).tolist(),
        np.asarray(has_point).tolist(),
        strict=True,
    )
    notes = []
    for (
        chosen,
        source,
        polygon,
        near,
        distance,
        given,
        apart,
        is_far,
        nearby,
        metres,
        placed,
    ) in columns:
        parts = []
        if is_far:
            parts.append(
                f"postcode {given} is {apart:,.0f} m from the point: the ward comes from the point"
            )
        if source == "nearest_postcode":
            parts.append(f"ward of the nearest postcode, {near} ({float(distance):,.0f} m away)")
        elif source == "polygon":
            parts.append(
                f"no postcode within {NEAREST_POSTCODE_MAX_M} m: ward from the generalised "
                "(200 m) ward polygon"
            )
        elif not placed:
            parts.append("no position")
        elif nearby:
            parts.append(f"outside the region's 9 boroughs: {metres:,.0f} m from {nearby}")
        if source in ("postcode", "nearest_postcode") and pd.notna(polygon) and polygon != chosen:
            whose = "postcode" if source == "postcode" else "nearest postcode"
            parts.append(
                f"the generalised ward polygon here is {names.get(polygon, polygon)} ({polygon}); "
                f"the {whose}'s ward is used"
            )
        notes.append("; ".join(parts))
    return pd.Series(notes, index=out.index, dtype="str")


def _deanery_notes(out, ref, in_region, has_point) -> pd.Series:
    outside = "outside the Diocese of Liverpool (approximate, derived footprint)"
    reason = out["LAD25CD"].map(ref["other_diocese"])
    note = pd.Series("", index=out.index, dtype="str")
    missing = out["deanery_id"].isna().to_numpy()
    inside_region = missing & in_region
    note[inside_region] = np.where(
        reason[inside_region].notna(), outside + ": " + reason[inside_region].fillna(""), outside
    )
    note[missing & ~in_region & has_point] = "outside the region"
    note[~has_point] = "no position"
    return note


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
