"""Build the shipped boundary and reference layers in ``boundaries/`` from the raw open data."""

import html
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import make_valid

from kindred_map import boundaries, need
from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR, REFERENCE_DIR
from kindred_map.postcodes import pcd_display, pcd_key

BNG = "EPSG:27700"
WGS84 = "EPSG:4326"

RAW_FILES = {
    "lad": "ons_lad_may2025_bgc/lad_may2025_bgc_region.geojson",
    "ward": "ons_wards_may2024_bsc/wards_may2024_bsc_region.geojson",
    "lsoa": "ons_lsoa21_bsc/lsoa21_bsc_region.geojson",
    "iod": "iod2025_lsoa21/iod2025_lsoa21_region.csv",
    "census": "census2021_lsoa21/census2021_population_religion_hhdeprivation_lsoa21_region.csv",
    "codepoint": "os_codepoint_open_2025/codepoint_open_L_CH_WA_WN_PR_plus_M_region.csv",
    "pcd2022": "ons_postcode_lookup_may2022/"
    "ons_pcd_oa11_lsoa11_msoa11_lad22_may22_L_CH_WA_WN_PR_plus_M_region.csv",
    "lsoa11_21": "ons_lookups/lsoa11_to_lsoa21_lad22_region.csv",
    "parishes": "cofe_parish_deanery_lookup/cofe_parishes_diocese_of_liverpool.csv",
    "places": "os_open_names_places/os_open_names_populated_places_region.csv",
    "warm_spaces": "openinnovations_warm_spaces/warm_spaces_region.csv",
}
NOT_A_DEANERY = "Closed or Unattached churches"
DOMAINS = {
    "Income": "income",
    "Employment": "employment",
    "Education": "education",
    "Health": "health",
    "Crime": "crime",
    "Housing_and_Services": "housing",
    "Environment": "environment",
}


def _read_raw(raw: Path, key: str) -> Path:
    path = raw / RAW_FILES[key]
    if not path.exists():
        raise ValueError(f"raw file missing: {path} (is --raw pointing at shared/data/raw?)")
    return path


def build_boroughs(raw: Path) -> gpd.GeoDataFrame:
    """The 9 local authorities (ONS LAD May 2025 BGC) with the Combined Authority flag."""
    lad = gpd.read_file(_read_raw(raw, "lad"))
    lad = lad[["LAD25CD", "LAD25NM", "in_lcr_ca", "geometry"]].copy()
    lad["in_lcr_ca"] = lad["in_lcr_ca"].astype(bool)
    return lad.sort_values("LAD25CD").reset_index(drop=True)


def build_wards(raw: Path, lads: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict]:
    """The 221 wards (ONS Wards May 2024 BSC), clipped to their borough so that they nest.

    BSC wards are generalised to 200 m and overhang the finer BGC borough edge by up to 7% of
    their area; clipping each to its own borough restores the nesting ONS guarantees. Returns
    the wards and the measured share of ward area removed.
    """
    wards = gpd.read_file(_read_raw(raw, "ward"))
    wards = wards[["WD24CD", "WD24NM", "LAD24CD", "LAD24NM", "geometry"]].copy().to_crs(BNG)
    borough = lads.to_crs(BNG).set_index("LAD25CD").geometry
    before = wards.geometry.area
    clipped = [
        make_valid(geometry.intersection(borough[code]))
        for geometry, code in zip(wards.geometry, wards["LAD24CD"], strict=True)
    ]
    wards["geometry"] = gpd.GeoSeries(clipped, index=wards.index, crs=BNG).buffer(0)
    removed = 1 - wards.geometry.area / before
    figures = {
        "ward_area_removed_by_clipping_pct_total": round(
            100 * (1 - wards.area.sum() / before.sum()), 2
        ),
        "ward_area_removed_by_clipping_pct_max": round(100 * float(removed.max()), 2),
    }
    wards = wards.to_crs(WGS84).sort_values("WD24CD").reset_index(drop=True)
    return wards, figures


def build_lsoas(raw: Path) -> gpd.GeoDataFrame:
    """The 1,408 LSOAs 2021 with Census 2021 residents and IMD 2025 score, rank and deciles."""
    lsoa = gpd.read_file(_read_raw(raw, "lsoa"))
    lsoa = lsoa[["LSOA21CD", "LSOA21NM", "LAD24CD", "WD24CD_bestfit", "geometry"]]
    census = pd.read_csv(_read_raw(raw, "census"), usecols=["lsoa21_code", "total_residents"])
    iod = pd.read_csv(_read_raw(raw, "iod"))
    columns = {"IMD_score": "imd_score", "IMD_rank": "imd_rank", "IMD_decile": "imd_decile"}
    columns |= {f"{domain}_decile": f"{short}_decile" for domain, short in DOMAINS.items()}
    iod = iod[["lsoa21_code", *columns]].rename(columns=columns)
    out = lsoa.merge(census, left_on="LSOA21CD", right_on="lsoa21_code", how="left", validate="1:1")
    out = out.merge(iod, on="lsoa21_code", how="left", validate="1:1").drop(columns="lsoa21_code")
    out = out.rename(columns={"total_residents": "population"})
    missing = out[out[["population", "imd_decile"]].isna().any(axis=1)]
    if len(missing):
        raise ValueError(f"LSOAs without Census or IMD figures: {missing['LSOA21CD'].tolist()}")
    out["population"] = out["population"].astype("int64")
    order = ["LSOA21CD", "LSOA21NM", "LAD24CD", "WD24CD_bestfit", "population", *columns.values()]
    return gpd.GeoDataFrame(out[[*order, "geometry"]], crs=lsoa.crs).sort_values("LSOA21CD")


def _nearest_polygon(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, key: str) -> pd.Series:
    """The ``key`` of the polygon containing each point, else of the nearest one (EPSG:27700)."""
    joined = gpd.sjoin_nearest(points[["geometry"]], polygons[[key, "geometry"]], how="left")
    # Equidistant ties (a point on a shared edge) give two rows: keep the lowest code.
    joined = joined.reset_index().sort_values(["index", key]).drop_duplicates("index")
    return joined.set_index("index")[key].reindex(points.index)


def build_postcodes(raw: Path, lsoas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Every live postcode of the raw Code-Point Open 2025 file, flagged ``in_region``, plus
    the region's postcodes terminated by May 2022 (ONS lookup).

    Each live region postcode gets its LSOA 2021 from the ONS May 2022 lookup (LSOA 2011,
    mapped to 2021 where that is one-to-one), else from the LSOA polygon holding its point, and
    a share of its LSOA's Census 2021 residents. Terminated postcodes have no published
    position: they are placed at the mean of the live postcodes of the same 2011 output area.
    Live postcodes outside the region (the rest of the L, CH, WA, WN and PR areas) are kept so
    that a project there can be placed: no LSOA, no residents, their own ward and district
    codes.
    """
    everything = pd.read_csv(_read_raw(raw, "codepoint"), dtype={"Admin_county_code": "string"})
    outside = _outside_postcodes(everything[~everything["in_region"]])
    cp = everything[everything["in_region"]].copy()
    cp["pcd_key"] = pcd_key(cp["Postcode"])
    lookup = pd.read_csv(
        _read_raw(raw, "pcd2022"),
        usecols=["pcds", "doterm", "usertype", "oa11cd", "lsoa11cd", "ladcd", "in_region"],
        dtype={"doterm": "string"},
    )
    lookup["pcd_key"] = pcd_key(lookup["pcds"])
    live = cp.merge(lookup[["pcd_key", "usertype", "oa11cd", "lsoa11cd"]], on="pcd_key", how="left")
    live = gpd.GeoDataFrame(
        live,
        geometry=gpd.points_from_xy(live["Eastings"], live["Northings"]),
        crs=BNG,
    )
    live = live.rename(
        columns={
            "Eastings": "easting",
            "Northings": "northing",
            "Admin_ward_code": "WD24CD",
            "Admin_district_code": "LAD25CD",
            "Positional_quality_indicator": "positional_quality",
        }
    )
    lsoa_bng = lsoas.to_crs(BNG)
    live["LSOA21CD"] = _assign_lsoa(raw, live, lsoa_bng)
    live["status"] = "live"
    live["position_source"] = "Code-Point Open 2025"
    live["residents"] = _apportion_residents(live, lsoas)

    terminated = _terminated_postcodes(lookup, live)
    columns = [
        "postcode",
        "pcd_key",
        "status",
        "terminated",
        "lon",
        "lat",
        "easting",
        "northing",
        "WD24CD",
        "LAD25CD",
        "LSOA21CD",
        "residents",
        "positional_quality",
        "position_source",
    ]
    live["postcode"] = pcd_display(live["pcd_key"])
    live["terminated"] = pd.NA
    live["in_region"] = True
    terminated["in_region"] = True
    parts = [live.drop(columns="geometry"), terminated, outside]
    out = pd.concat(parts, ignore_index=True)[[*columns, "in_region"]]
    out["terminated"] = out["terminated"].astype("string")
    out["LSOA21CD"] = out["LSOA21CD"].astype("string")
    out["positional_quality"] = out["positional_quality"].astype("Int64")
    out["in_region"] = out["in_region"].astype(bool)
    return out.sort_values("pcd_key").reset_index(drop=True)


def _outside_postcodes(cp: pd.DataFrame) -> pd.DataFrame:
    """Live postcodes of the raw file outside the 9 boroughs, as postcode layer rows."""
    out = pd.DataFrame(
        {
            "pcd_key": pcd_key(cp["Postcode"]).to_numpy(),
            "status": "live",
            "terminated": pd.NA,
            "lon": cp["lon"].to_numpy(),
            "lat": cp["lat"].to_numpy(),
            "easting": cp["Eastings"].to_numpy(),
            "northing": cp["Northings"].to_numpy(),
            "WD24CD": cp["Admin_ward_code"].to_numpy(),
            "LAD25CD": cp["Admin_district_code"].to_numpy(),
            "LSOA21CD": pd.NA,
            "residents": 0,
            "positional_quality": cp["Positional_quality_indicator"].to_numpy(),
            "position_source": "Code-Point Open 2025",
            "in_region": False,
        }
    )
    out["postcode"] = pcd_display(out["pcd_key"])
    return out


def _assign_lsoa(raw: Path, live: gpd.GeoDataFrame, lsoa_bng: gpd.GeoDataFrame) -> pd.Series:
    """LSOA 2021 of each live postcode, preferring the ONS lookup over the generalised polygons."""
    changes = pd.read_csv(_read_raw(raw, "lsoa11_21"), usecols=["lsoa11_code", "lsoa21_code"])
    lad_of_lsoa = lsoa_bng.set_index("LSOA21CD")["LAD24CD"]
    candidates = changes.groupby("lsoa11_code")["lsoa21_code"].agg(sorted)
    by_lookup = live["lsoa11cd"].map(candidates)
    result = pd.Series(pd.NA, index=live.index, dtype="string")
    one_to_one = by_lookup.map(lambda c: isinstance(c, list) and len(c) == 1)
    result[one_to_one] = by_lookup[one_to_one].str[0]
    # Splits, new postcodes and anything whose lookup LSOA sits in another borough: polygons.
    agrees = result.map(lad_of_lsoa).eq(live["LAD25CD"]).fillna(False)
    todo = live.index[~agrees]
    for lad_code, group in live.loc[todo].groupby("LAD25CD"):
        polygons = lsoa_bng[lsoa_bng["LAD24CD"] == lad_code]
        result[group.index] = _nearest_polygon(group, polygons, "LSOA21CD")
    return result


def _apportion_residents(live: pd.DataFrame, lsoas: pd.DataFrame) -> pd.Series:
    """Spread each LSOA's residents over its residential postcodes, in whole people.

    Residential = not a large-user postcode in the May 2022 lookup (postcodes newer than the
    lookup count as residential). An LSOA with no residential postcode spreads over all its
    postcodes. Largest-remainder rounding keeps every LSOA total exact.
    """
    population = lsoas.set_index("LSOA21CD")["population"]
    missing = sorted(set(population.index) - set(live["LSOA21CD"]))
    if missing:
        raise ValueError(f"LSOAs with no postcode to carry their residents: {missing}")
    residential = live["usertype"].ne(1)
    has_residential = residential.groupby(live["LSOA21CD"]).transform("any")
    carries = residential | ~has_residential
    residents = pd.Series(0, index=live.index, dtype="int64")
    for code, group in live[carries].sort_values("pcd_key").groupby("LSOA21CD"):
        total = int(population[code])
        base, remainder = divmod(total, len(group))
        shares = np.full(len(group), base, dtype="int64")
        shares[:remainder] += 1
        residents[group.index] = shares
    return residents


def _terminated_postcodes(lookup: pd.DataFrame, live: gpd.GeoDataFrame) -> pd.DataFrame:
    """Region postcodes terminated by May 2022 and not live again, placed by their output area."""
    dead = lookup[lookup["in_region"] & lookup["doterm"].notna()]
    dead = dead[~dead["pcd_key"].isin(live["pcd_key"])].copy()
    by_oa = live.dropna(subset=["oa11cd"]).groupby("oa11cd")
    centre = by_oa[["easting", "northing"]].mean().round()
    area_of = by_oa[["WD24CD", "LSOA21CD"]].agg(lambda s: s.mode().sort_values().iloc[0])
    dead = dead.join(centre, on="oa11cd").join(area_of, on="oa11cd")
    dead["postcode"] = pcd_display(dead["pcd_key"])
    dead["status"] = "terminated"
    dead["terminated"] = dead["doterm"]
    dead["LAD25CD"] = dead["ladcd"]
    dead["residents"] = 0
    dead["positional_quality"] = pd.NA
    dead["position_source"] = np.where(
        dead["easting"].notna(),
        "mean of the live postcodes in its 2011 output area",
        "none: no live postcode in its 2011 output area",
    )
    points = gpd.GeoSeries(gpd.points_from_xy(dead["easting"], dead["northing"]), crs=BNG)
    wgs = points.to_crs(WGS84)
    dead["lon"] = np.round(wgs.x.to_numpy(), 6)
    dead["lat"] = np.round(wgs.y.to_numpy(), 6)
    return dead


def _parish_points(raw: Path, lads_bng: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Liverpool diocese parish locations: a church venue where one is known, else the place."""
    parishes = pd.read_csv(_read_raw(raw, "parishes"))
    parishes = parishes[parishes["deanery_name"] != NOT_A_DEANERY].copy()
    parishes["location_source"] = "OS Open Names centroid of " + parishes["approx_place"]
    _use_named_places(raw, parishes)
    venues = _church_venues(raw, parishes)
    known = parishes["parishcode"].isin(venues.index)
    for column in ("approx_lat", "approx_lon", "location_source"):
        parishes.loc[known, column] = parishes.loc[known, "parishcode"].map(venues[column])
    points = gpd.GeoDataFrame(
        parishes,
        geometry=gpd.points_from_xy(parishes["approx_lon"], parishes["approx_lat"]),
        crs=WGS84,
    ).to_crs(BNG)
    points["LAD25CD"] = _nearest_polygon(points, lads_bng, "LAD25CD")
    return points


def _use_named_places(raw: Path, parishes: pd.DataFrame) -> None:
    """Place a parish at a finer place its name gives after a comma, where the gazetteer has
    it in the same borough ("Liverpool: Christ Church, Norris Green" -> Norris Green, not the
    city centre). Changes ``parishes`` in place."""
    places = pd.read_csv(_read_raw(raw, "places"))
    gazetteer = places.drop_duplicates(["name", "LAD25NM"]).set_index(["name", "LAD25NM"])
    for index, row in parishes.iterrows():
        parts = [part.strip() for part in re.split(r"[,:]", row["parish_name"])]
        for part in reversed(parts[1:]):
            key = (part, row["approx_place_lad"])
            if part != row["approx_place"] and key in gazetteer.index:
                parishes.loc[index, ["approx_lat", "approx_lon"]] = gazetteer.loc[
                    key, ["lat", "lon"]
                ].to_numpy(float)
                parishes.loc[index, "location_source"] = (
                    f"OS Open Names centroid of {part} (named in the parish name)"
                )
                break


def _church_venues(raw: Path, parishes: pd.DataFrame) -> pd.DataFrame:
    """Parishes whose church appears as a warm-space venue: dedication and place both named."""
    venues = pd.read_csv(_read_raw(raw, "warm_spaces"))
    text = (venues["title"].fillna("") + " | " + venues["address"].fillna("")).map(html.unescape)
    found = {}
    for row in parishes.itertuples():
        place, _, dedication = row.parish_name.rpartition(":")
        dedication = re.split(r"\s+(?:w|with|&|and)\s+", dedication.strip())[0]
        if not place or not re.match(r"(St|Holy|Christ|All|Emmanuel)\b", dedication):
            continue
        named = venues["title"].str.contains(dedication, case=False, regex=False)
        placed = text.str.contains(place.strip(), case=False, regex=False)
        match = venues[named & placed]
        if len(match):
            venue = match.iloc[0]
            found[row.parishcode] = {
                "approx_lat": venue["lat"],
                "approx_lon": venue["lon"],
                "location_source": f"church venue in warm spaces list: {venue['title']}",
            }
    return pd.DataFrame.from_dict(found, orient="index")


def _neighbour_anchors(raw: Path, lads_bng: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, set]:
    """Places in neighbouring dioceses (reviewed list) as points, and boroughs wholly outside."""
    reference = pd.read_csv(REFERENCE_DIR / "neighbour_diocese_places.csv")
    lad_codes = lads_bng.set_index("LAD25NM")["LAD25CD"]
    unknown = set(reference["LAD25NM"]) - set(lad_codes.index)
    if unknown:
        raise ValueError(f"neighbour_diocese_places.csv names unknown boroughs: {sorted(unknown)}")
    whole = set(reference.loc[reference["scope"] == "borough", "LAD25NM"].map(lad_codes))
    places = pd.read_csv(_read_raw(raw, "places"))
    listed = reference[reference["scope"] == "place"]
    anchors = listed.merge(
        places[["name", "LAD25NM", "lat", "lon"]],
        left_on=["place", "LAD25NM"],
        right_on=["name", "LAD25NM"],
        how="left",
    )
    unplaced = anchors[anchors["lat"].isna()]
    if len(unplaced):
        raise ValueError(f"places not in OS Open Names: {unplaced['place'].tolist()}")
    anchors = gpd.GeoDataFrame(
        anchors, geometry=gpd.points_from_xy(anchors["lon"], anchors["lat"]), crs=WGS84
    ).to_crs(BNG)
    anchors["LAD25CD"] = anchors["LAD25NM"].map(lad_codes)
    return anchors, whole


def build_deaneries(
    raw: Path, lsoas: gpd.GeoDataFrame, lads: gpd.GeoDataFrame, postcodes: pd.DataFrame
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict]:
    """Approximate deanery polygons and the diocese footprint, built from LSOAs.

    Each LSOA takes the deanery of the nearest parish location in its own borough, measured
    from its population-weighted centre (the mean of its residential postcodes). Places the
    reviewed reference list puts in a neighbouring diocese compete as anchors too, and an LSOA
    nearest one of them is left out; boroughs the list puts wholly outside are left out.
    """
    lads_bng = lads.to_crs(BNG)
    parishes = _parish_points(raw, lads_bng)
    neighbours, outside_boroughs = _neighbour_anchors(raw, lads_bng)
    parish_anchors = _deanery_of_each_point(parishes)
    anchors = pd.concat(
        [
            parish_anchors[["deanery_id", "LAD25CD", "geometry"]],
            neighbours.assign(deanery_id=-1)[["deanery_id", "LAD25CD", "geometry"]],
        ],
        ignore_index=True,
    )
    centres = _population_centres(lsoas, postcodes)
    centres = centres[~centres["LAD24CD"].isin(outside_boroughs)]
    assigned = []
    for lad_code, group in centres.groupby("LAD24CD"):
        local = anchors[anchors["LAD25CD"] == lad_code]
        if local.empty:
            continue
        nearest = gpd.sjoin_nearest(group, local[["deanery_id", "geometry"]], how="left")
        nearest = nearest.reset_index().sort_values(["index", "deanery_id"])
        assigned.append(nearest.drop_duplicates("index")[["LSOA21CD", "deanery_id"]])
    membership = pd.concat(assigned)
    membership = membership[membership["deanery_id"] >= 0]

    lsoa_bng = lsoas.to_crs(BNG).merge(membership, on="LSOA21CD")
    names = parishes.groupby("deanery_id")[["deanery_name", "archdeaconry_name"]].first()
    names["deanery_name"] = names["deanery_name"].map(_display_name)
    counts = parishes.groupby("deanery_id").size().rename("parishes")
    deaneries = lsoa_bng[["deanery_id", "geometry"]].dissolve(by="deanery_id")
    deaneries = deaneries.join(names).join(counts).reset_index()
    deaneries["geometry"] = make_valid(deaneries.geometry.buffer(0).values)
    # Population the way every other consumer counts it: postcode residents by position.
    deaneries["population"] = boundaries.residents_by_area(
        deaneries, "deanery_id", boundaries.postcode_points(postcodes).to_crs(BNG)
    )
    deaneries = deaneries[
        ["deanery_id", "deanery_name", "archdeaconry_name", "parishes", "population", "geometry"]
    ]
    diocese = gpd.GeoDataFrame(
        {
            "diocese_name": ["Diocese of Liverpool"],
            "population": [int(deaneries["population"].sum())],
        },
        geometry=[make_valid(deaneries.union_all())],
        crs=BNG,
    )
    accuracy = _deanery_accuracy(parishes, deaneries, membership, lsoas)
    return deaneries.to_crs(WGS84), diocese.to_crs(WGS84), accuracy


def _display_name(name: str) -> str:
    """The parish list writes some deaneries in capitals ("WEST DERBY"): show them in title case."""
    return name.title().replace(" And ", " and ") if name.isupper() else name


def _deanery_of_each_point(parishes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One deanery per distinct parish location (several parishes may share a place centroid).

    A shared point goes to the deanery with most parishes there, then the lowest deanery id,
    so the result does not depend on row order.
    """
    parishes = parishes.assign(x=parishes.geometry.x.round(1), y=parishes.geometry.y.round(1))
    tally = parishes.groupby(["x", "y", "deanery_id"]).size().rename("n").reset_index()
    tally = tally.sort_values(["x", "y", "n", "deanery_id"], ascending=[True, True, False, True])
    winners = tally.drop_duplicates(["x", "y"])
    points = parishes.drop_duplicates(["x", "y"])[["x", "y", "LAD25CD", "geometry"]]
    return points.merge(winners[["x", "y", "deanery_id"]], on=["x", "y"])


def _population_centres(lsoas: gpd.GeoDataFrame, postcodes: pd.DataFrame) -> gpd.GeoDataFrame:
    """Each LSOA's population-weighted centre: the resident-weighted mean of its postcodes."""
    live = postcodes[postcodes["status"] == "live"]
    weight = live["residents"].clip(lower=0) + 1e-9
    sums = (
        pd.DataFrame(
            {
                "LSOA21CD": live["LSOA21CD"],
                "ex": live["easting"] * weight,
                "ny": live["northing"] * weight,
                "w": weight,
            }
        )
        .groupby("LSOA21CD")
        .sum()
    )
    centres = lsoas[["LSOA21CD", "LAD24CD"]].join(
        (sums[["ex", "ny"]].div(sums["w"], axis=0)), on="LSOA21CD"
    )
    return gpd.GeoDataFrame(
        centres, geometry=gpd.points_from_xy(centres["ex"], centres["ny"]), crs=BNG
    ).drop(columns=["ex", "ny"])


def _deanery_accuracy(
    parishes: gpd.GeoDataFrame,
    deaneries: gpd.GeoDataFrame,
    membership: pd.DataFrame,
    lsoas: gpd.GeoDataFrame,
) -> dict:
    """Measured figures for the deanery metadata: how well the derived areas hold their parishes."""
    located = gpd.sjoin(
        parishes[["deanery_id", "geometry"]],
        deaneries[["deanery_id", "geometry"]].rename(columns={"deanery_id": "in_deanery"}),
        how="left",
        predicate="within",
    )
    inside_own = int((located["deanery_id"] == located["in_deanery"]).sum())
    from_venue = int(parishes["location_source"].str.startswith("church venue").sum())
    from_named = int(parishes["location_source"].str.endswith("(named in the parish name)").sum())
    return {
        "parish_locations": int(len(parishes)),
        "parish_locations_from_church_venues": from_venue,
        "parish_locations_from_finer_named_places": from_named,
        "parish_locations_inside_own_deanery": inside_own,
        "parish_locations_inside_own_deanery_pct": round(100 * inside_own / len(parishes), 1),
        "lsoas_in_diocese": int(len(membership)),
        "lsoas_in_region": int(len(lsoas)),
    }


PLACE_KINDS = {"City": "town", "Town": "town", "Suburban Area": "suburb", "Village": "suburb"}
"""OS Open Names place types labelled on the map; hamlets, other settlements and postcode
districts are left out (too small, or not places)."""


def build_places(raw: Path) -> gpd.GeoDataFrame:
    """Map labels: the region's towns, suburbs and villages from OS Open Names, one per name
    and borough (towns first when a name is both)."""
    places = pd.read_csv(_read_raw(raw, "places"))
    places = places[places["place_type"].isin(PLACE_KINDS)].copy()
    places["kind"] = places["place_type"].map(PLACE_KINDS)
    places = places.sort_values(["kind", "name"], kind="stable")
    places = places.drop_duplicates(["name", "LAD25CD"]).reset_index(drop=True)
    return gpd.GeoDataFrame(
        places[["name", "kind", "LAD25CD"]],
        geometry=gpd.points_from_xy(places["lon"], places["lat"]),
        crs=WGS84,
    )


def build_all(raw: Path = DEFAULT_RAW_DIR, out_dir: Path = BOUNDARIES_DIR) -> dict[str, int]:
    """Build every layer from ``raw`` into ``out_dir``; returns feature counts by layer."""
    raw = Path(raw)
    if not raw.is_dir():
        raise ValueError(f"raw data folder not found: {raw}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lads = build_boroughs(raw)
    wards, ward_figures = build_wards(raw, lads)
    lsoas = build_lsoas(raw)
    postcodes = build_postcodes(raw, lsoas)
    region = postcodes[postcodes["in_region"]]
    live = region[region["status"] == "live"]
    wards["population"] = wards["WD24CD"].map(live.groupby("WD24CD")["residents"].sum())
    wards["population"] = wards["population"].fillna(0).astype("int64")
    lads["population"] = lads["LAD25CD"].map(lsoas.groupby("LAD24CD")["population"].sum())
    ward_figures |= _postcodes_in_own_polygon(live, wards, "WD24CD")
    deaneries, diocese, accuracy = build_deaneries(raw, lsoas, lads, region)
    built = {
        "borough": lads,
        "ward": wards,
        "lsoa": lsoas,
        "deanery": deaneries,
        "diocese": diocese,
        "place": build_places(raw),
    }
    extra = {
        "ward": ward_figures,
        "deanery": accuracy,
        "diocese": accuracy,
        "postcode": _postcode_figures(postcodes),
    }
    for name, frame in built.items():
        boundaries.write_layer(name, _with_geometry_last(frame), out_dir, extra.get(name))
    boundaries.write_postcodes(postcodes, out_dir, extra["postcode"])
    imd_change = need.build_imd_change(raw, lsoas, _postcode_lsoa11(raw, live))
    need.write_imd_change(imd_change, out_dir)
    boundaries.clear_cache()  # the population table reads the layers just written
    population = boundaries.population_table(out_dir)
    boundaries.write_population(population, out_dir)
    boundaries.write_attribution(out_dir)
    counts = {name: len(frame) for name, frame in built.items()} | {"postcode": len(postcodes)}
    return counts | {need.TABLE_NAME: len(imd_change), "population": len(population)}


def _postcode_lsoa11(raw: Path, live: pd.DataFrame) -> pd.DataFrame:
    """LSOA 2021, LSOA 2011 (ONS May 2022 lookup) and residents of each live postcode: the
    weights for moving IoD 2019 onto merged LSOAs 2021."""
    lookup = pd.read_csv(_read_raw(raw, "pcd2022"), usecols=["pcds", "lsoa11cd"])
    lsoa11 = dict(zip(pcd_key(lookup["pcds"]), lookup["lsoa11cd"], strict=True))
    return pd.DataFrame(
        {
            "LSOA21CD": live["LSOA21CD"].astype(str).to_numpy(),
            "lsoa11cd": live["pcd_key"].map(lsoa11).to_numpy(),
            "residents": live["residents"].to_numpy(),
        }
    )


def _postcodes_in_own_polygon(live: pd.DataFrame, polygons: gpd.GeoDataFrame, key: str) -> dict:
    """How often a live postcode's point lies in the polygon of its own (ONS-assigned) area."""
    points = gpd.GeoDataFrame(
        live[[key]], geometry=gpd.points_from_xy(live["lon"], live["lat"]), crs=WGS84
    )
    hits = gpd.sjoin(points, polygons[[key, "geometry"]], predicate="within", how="inner")
    own = int((hits[f"{key}_left"] == hits[f"{key}_right"]).sum())
    return {"live_postcodes_inside_own_polygon_pct": round(100 * own / len(live), 2)}


def _with_geometry_last(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns = [c for c in frame.columns if c != "geometry"] + ["geometry"]
    return frame[columns]


def _postcode_figures(postcodes: pd.DataFrame) -> dict:
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    return {
        "live": int(len(live)),
        "live_outside_region": int((~postcodes["in_region"]).sum()),
        "terminated": int((postcodes["status"] == "terminated").sum()),
        "terminated_without_position": int(postcodes["easting"].isna().sum()),
        "residents": int(live["residents"].sum()),
    }


def main_summary(counts: dict[str, int]) -> str:
    """One line per layer for the CLI."""
    return "\n".join(f"{name:8} {count:>7,} features" for name, count in counts.items())
