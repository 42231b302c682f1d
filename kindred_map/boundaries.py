"""The region's boundary and reference layers: load them, read their metadata, replace them."""

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
from shapely import make_valid

from kindred_map.paths import BOUNDARIES_DIR

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"

OGL = "Open Government Licence v3.0"
ONS = "Source: Office for National Statistics licensed under the Open Government Licence v.3.0."
OS = "Contains OS data © Crown copyright and database right {year}."
ROYAL_MAIL = "Contains Royal Mail data © Royal Mail copyright and database right {year}."
NATSTATS = "Contains National Statistics data © Crown copyright and database right {year}."
MHCLG = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Ministry of Housing, Communities and Local Government, "
    "English Indices of Deprivation 2025."
)
CENSUS = "Census 2021: " + ONS
COFE = (
    "Parish and deanery hierarchy: Church of England Data Services (c. Nov 2024), "
    "via Church Army coedata; no open licence stated: internal use, ask before republishing."
)
DERIVED_DEANERY_METHOD = (
    "Derived, not official. Each LSOA 2021 takes the deanery of the nearest parish location in "
    "its own borough, measured from the LSOA's population-weighted centre (the resident-weighted "
    "mean of its postcodes); the LSOAs are then dissolved by deanery. Parish locations are the "
    "OS Open Names centroid of the place in the parish name (the finer place where the name "
    "gives one after a comma, e.g. Norris Green), or the church itself where a warm-space "
    "venue names the church's dedication and place. Places that the reviewed list "
    "(kindred_map/reference/neighbour_diocese_places.csv) puts in a neighbouring diocese "
    "(Chester, Manchester, Blackburn) compete as anchors, and LSOAs nearest them are left "
    "out; boroughs it puts wholly outside (Wirral) are left out. Boundaries are LSOA edges, "
    "not parish edges: expect errors of a few hundred metres to a kilometre near deanery "
    "edges. Replace with an official layer when one can be had: kindred-map replace-layer "
    "deanery FILE."
)

LAYERS = {
    "borough": {
        "key": "LAD25CD",
        "name_field": "LAD25NM",
        "title": "Boroughs (local authority districts)",
        "description": "The 9 local authorities of the region: the 6 of the Liverpool City Region "
        "Combined Authority plus Warrington, Wigan and West Lancashire.",
        "source": "ONS LAD (May 2025) Boundaries UK BGC V2, via tom-draper/uk-data-atlas",
        "vintage": "May 2025",
        "generalisation": "BGC (generalised to 20 m, clipped to the coastline), further "
        "simplified in TopoJSON (~10 m quantisation)",
        "accuracy": "Borough agreed with the postcode's borough for 99.98% of region postcodes.",
        "licence": OGL,
        "attribution": [ONS, OS.format(year=2025)],
        "approximate": False,
        "columns": {
            "LAD25CD": "ONS local authority district code (GSS)",
            "LAD25NM": "Local authority name",
            "in_lcr_ca": "True for the 6 members of the Liverpool City Region Combined Authority",
            "population": "Usual residents, Census 2021 (sum of its LSOAs)",
        },
    },
    "ward": {
        "key": "WD24CD",
        "name_field": "WD24NM",
        "title": "Electoral wards",
        "description": "The 221 electoral wards of the 9 boroughs.",
        "source": "ONS Wards (May 2024) Boundaries UK BSC, via pachadotdev/ukmaps",
        "vintage": "May 2024 (valid for 2025 and 2026; Wirral's new wards apply from May 2027)",
        "generalisation": "BSC: super-generalised to 200 m, ~14 vertices a ward; each ward "
        "clipped to its BGC borough so that wards nest in boroughs",
        "accuracy": "Coarse: about 96% of region postcodes fall inside their own ward's polygon "
        "(measured figure below). Projects with a postcode take the postcode's ward, not the "
        "polygon's.",
        "licence": OGL,
        "attribution": [ONS, OS.format(year=2024)],
        "approximate": True,
        "columns": {
            "WD24CD": "ONS ward code (GSS), May 2024",
            "WD24NM": "Ward name",
            "LAD24CD": "Code of the ward's borough",
            "LAD24NM": "Name of the ward's borough",
            "population": "Census 2021 residents: each LSOA's residents spread over its "
            "residential postcodes, summed by the postcode's ward (approximate: LSOAs do not "
            "nest in wards)",
        },
    },
    "lsoa": {
        "key": "LSOA21CD",
        "name_field": "LSOA21NM",
        "title": "Lower layer super output areas (2021) with IMD 2025",
        "description": "The 1,408 LSOAs of the region, with Census 2021 residents and the "
        "English Indices of Deprivation 2025.",
        "source": "ONS LSOA (Dec 2021) Boundaries EW BSC V4 (humaniverse/geographr); MHCLG "
        "IoD 2025 (humaniverse/IMD); ONS Census 2021 TS030 (humaniverse/demographr)",
        "vintage": "LSOA 2021; IoD 2025 (published 30 Oct 2025); Census 21 Mar 2021",
        "generalisation": "BSC: super-generalised to 200 m",
        "accuracy": "Figures are exact per LSOA; shapes are generalised.",
        "licence": OGL,
        "attribution": [ONS, OS.format(year=2021), MHCLG, CENSUS],
        "approximate": False,
        "columns": {
            "LSOA21CD": "LSOA 2021 code (GSS)",
            "LSOA21NM": "LSOA 2021 name",
            "LAD24CD": "Borough code",
            "WD24CD_bestfit": "ONS best-fit ward (an LSOA may straddle wards)",
            "population": "Usual residents, Census 2021",
            "imd_score": "IMD 2025 score (higher = more deprived)",
            "imd_rank": "IMD 2025 rank of 33,755 LSOAs in England (1 = most deprived)",
            "imd_decile": "IMD 2025 decile (1 = most deprived 10% in England)",
            "income_decile": "Income domain decile",
            "employment_decile": "Employment domain decile",
            "education_decile": "Education, skills and training domain decile",
            "health_decile": "Health deprivation and disability domain decile",
            "crime_decile": "Crime domain decile",
            "housing_decile": "Barriers to housing and services domain decile",
            "environment_decile": "Living environment domain decile",
        },
    },
    "deanery": {
        "key": "deanery_id",
        "name_field": "deanery_name",
        "title": "Deaneries of the Diocese of Liverpool (approximate, derived)",
        "description": "The 14 deaneries of the Church of England Diocese of Liverpool, "
        "approximated from the parish list; parts of the region in other dioceses are left out.",
        "source": "Church of England parish to deanery list (CofE Data Services, via "
        "Church-Army/coedata); LSOA 2021 polygons; OS Open Names places; warm spaces list",
        "vintage": "Parish list c. November 2024",
        "generalisation": "Built from BSC LSOA polygons (200 m)",
        "accuracy": "APPROXIMATE: no official deanery polygons are openly available. See method.",
        "licence": "Not stated (CofE hierarchy); geometry derived from OGL data",
        "attribution": [COFE, ONS, OS.format(year=2021)],
        "approximate": True,
        "method": DERIVED_DEANERY_METHOD,
        "columns": {
            "deanery_id": "CofE deanery id",
            "deanery_name": "Deanery name",
            "archdeaconry_name": "Archdeaconry",
            "parishes": "Parishes in the deanery (parish list)",
            "population": "Census 2021 residents of its LSOAs",
        },
    },
    "diocese": {
        "key": "diocese_name",
        "name_field": "diocese_name",
        "title": "Diocese of Liverpool footprint (approximate, derived)",
        "description": "The union of the derived deaneries.",
        "source": "As the deanery layer",
        "vintage": "Parish list c. November 2024",
        "generalisation": "Built from BSC LSOA polygons (200 m)",
        "accuracy": "APPROXIMATE: see the deanery method.",
        "licence": "Not stated (CofE hierarchy); geometry derived from OGL data",
        "attribution": [COFE, ONS, OS.format(year=2021)],
        "approximate": True,
        "method": DERIVED_DEANERY_METHOD,
        "columns": {
            "diocese_name": "Diocese",
            "population": "Census 2021 residents of its LSOAs",
        },
    },
    "place": {
        "key": "name",
        "name_field": "name",
        "title": "Place names (towns, suburbs and villages)",
        "description": "Populated places of the region for map labels: towns and cities "
        "(shown from zoom 10), suburbs and villages (from zoom 12).",
        "source": "OS Open Names populated places, via open-innovations/warm-spaces "
        "(docs/data/geo, commit 67caea3)",
        "vintage": "c. 2021 release",
        "generalisation": "Points: the place's OS Open Names position, 4 decimal places (~10 m)",
        "accuracy": "A label position, not a boundary: where OS puts the place's name.",
        "licence": OGL,
        "attribution": [
            OS.format(year=2021),
            ROYAL_MAIL.format(year=2021),
            NATSTATS.format(year=2021),
        ],
        "approximate": False,
        "columns": {
            "name": "Place name",
            "kind": "town (OS City or Town) or suburb (OS Suburban Area or Village)",
            "LAD25CD": "Borough code of the place",
        },
    },
    "postcode": {
        "key": "pcd_key",
        "name_field": "postcode",
        "title": "Postcodes",
        "description": "Every live postcode in the region with its position, ward, borough and "
        "LSOA, plus postcodes terminated by May 2022 (flagged); and every other live postcode "
        "of the L, CH, WA, WN and PR areas (in_region false), so that projects just outside "
        "the region can be placed.",
        "source": "OS Code-Point Open 2025.2.0 (April 2025); ONS Postcode to OA/LSOA/MSOA/LAD "
        "(May 2022) lookup for terminated postcodes, user type and LSOA",
        "vintage": "Live: April 2025; terminated: as at May 2022",
        "generalisation": "Points: Code-Point positions the postcode's first address "
        "(positional quality 10 = within the building)",
        "accuracy": "Ward and borough codes are ONS assignments at full resolution. Terminated "
        "postcodes are placed at the mean of the live postcodes of their 2011 output area.",
        "licence": OGL,
        "attribution": [
            OS.format(year=2025),
            ROYAL_MAIL.format(year=2025),
            NATSTATS.format(year=2025),
            ONS,
        ],
        "approximate": False,
        "columns": {
            "postcode": "Postcode, single space before the inward code",
            "pcd_key": "Postcode upper-cased without spaces (join key)",
            "status": "live (Code-Point 2025) or terminated (ONS May 2022 lookup)",
            "terminated": "Year and month terminated (YYYYMM), terminated postcodes only",
            "lon": "Longitude, WGS84",
            "lat": "Latitude, WGS84",
            "easting": "Easting, British National Grid (EPSG:27700)",
            "northing": "Northing, British National Grid (EPSG:27700)",
            "WD24CD": "Ward code (Code-Point Admin_ward_code = WD24; outside the region, "
            "the code of its own ward)",
            "LAD25CD": "Borough code (outside the region, the code of its own district)",
            "LSOA21CD": "LSOA 2021: ONS 2022 lookup where one-to-one, else point in polygon "
            "(blank outside the region)",
            "residents": "Census 2021 residents apportioned to the postcode (whole people; "
            "sums to its LSOA's population; 0 for large users, terminated postcodes and "
            "postcodes outside the region)",
            "positional_quality": "Code-Point positional quality (10 best)",
            "position_source": "Where the position comes from",
            "in_region": "True for the postcodes of the 9 boroughs (Code-Point's district "
            "code); False for the rest, including 15 postcodes Code-Point gives no codes "
            "(positional quality 60; L3 5AG and WA8 8GW lie inside the region): a project "
            "at one of those is placed at it and the borough polygons decide whether it is in "
            "the region",
        },
    },
}

LAYER_LABELS = {
    "deanery": "Deaneries (approximate)",
    "ward": "Wards (May 2024)",
    "borough": "Boroughs",
}
"""How maps and figures name the area layers (the map's layer chooser, the area levels)."""

REFERENCE_TABLES = ("imd_change", "population")
"""Tables without geometry built beside the layers (`kindred_map.need`, `population_table`);
ATTRIBUTION.md lists them too."""

POPULATION_INPUTS = ("postcode", "lsoa", "ward", "borough", "deanery")
"""The layers the population table is derived from."""

REQUIRED_FIELDS = {
    "borough": ["LAD25CD", "LAD25NM"],
    "ward": ["WD24CD", "WD24NM", "LAD24CD"],
    "lsoa": ["LSOA21CD"],
    "deanery": ["deanery_id", "deanery_name"],
    "diocese": ["diocese_name"],
}
"""Fields a replacement layer must bring (after any field mapping); others are kept from the
current layer by joining on the key, and population is recomputed from postcode residents."""


def code_text(value) -> str:
    """An area code as text, "" if missing: deanery ids arrive as 22104, 22104.0 or "22104"."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def code_texts(codes: pd.Series) -> pd.Series:
    """`code_text` of every value: area codes ready to compare as text. A text column holds a
    few hundred distinct codes over many rows: each distinct one is converted once."""
    if isinstance(codes.dtype, pd.StringDtype):
        positions, uniques = pd.factorize(codes, use_na_sentinel=False)
        texts = pd.array([code_text(value) for value in uniques], dtype="str")
        return pd.Series(texts.take(positions), index=codes.index, name=codes.name)
    return codes.map(code_text).astype("str")


def _check_name(name: str) -> None:
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; choose one of {', '.join(LAYERS)}")


def layer_path(name: str, directory: Path = BOUNDARIES_DIR) -> Path:
    """Where the layer's data file lives."""
    _check_name(name)
    suffix = ".parquet" if name == "postcode" else ".geojson"
    return Path(directory) / f"{name}{suffix}"


def _meta_path(name: str, directory: Path) -> Path:
    return Path(directory) / f"{name}.meta.json"


@cache
def _load_cached(name: str, directory: Path) -> gpd.GeoDataFrame:
    path = layer_path(name, directory)
    if not path.exists():
        raise ValueError(f"layer file missing: {path}; run `kindred-map build-boundaries`")
    if name == "postcode":
        return postcode_points(_postcode_table(directory))
    return gpd.read_file(path, engine="pyogrio")


def read_parquet(path: Path, columns=None) -> pd.DataFrame:
    """A Parquet file (or only ``columns``) as the frame ``pd.read_parquet`` gives, read with
    `pyarrow.parquet.ParquetFile`: ``pd.read_parquet`` goes through pyarrow's dataset layer,
    whose import (its file systems, S3, GCS...) costs a command line ~0.01 s of CPU."""
    table = pq.ParquetFile(path).read(columns=columns, use_pandas_metadata=True)
    return table.to_pandas()


@cache
def _postcode_table(directory: Path) -> pd.DataFrame:
    path = layer_path("postcode", directory)
    if not path.exists():
        raise ValueError(f"layer file missing: {path}; run `kindred-map build-boundaries`")
    return read_parquet(path)


def postcode_table(directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """The postcode layer as a plain table, without its 112,000 point geometries: lookups by
    postcode need none, and making them is most of the cost of `load` ("postcode")."""
    return _postcode_table(Path(directory)).copy()


def load(name: str, directory: Path = BOUNDARIES_DIR) -> gpd.GeoDataFrame:
    """Layer ``name`` as a GeoDataFrame in EPSG:4326 (read once, then served from memory)."""
    _check_name(name)
    return _load_cached(name, Path(directory)).copy()


def metadata(name: str, directory: Path = BOUNDARIES_DIR) -> dict:
    """The layer's metadata: source, vintage, generalisation, accuracy, licence, attribution."""
    _check_name(name)
    path = _meta_path(name, Path(directory))
    if not path.exists():
        raise ValueError(f"metadata missing: {path}; run `kindred-map build-boundaries`")
    return json.loads(path.read_text(encoding="utf-8"))


def attribution_lines(names=tuple(LAYERS), directory: Path = BOUNDARIES_DIR) -> list[str]:
    """Distinct attribution lines for the given layers, in a stable order."""
    lines: list[str] = []
    for name in names:
        for line in metadata(name, directory)["attribution"]:
            if line not in lines:
                lines.append(line)
    return lines


def clear_cache() -> None:
    """Forget loaded layers (after a layer is replaced)."""
    _load_cached.cache_clear()
    _postcode_table.cache_clear()


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    os.unlink(tmp)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_metadata(name: str, directory: Path, info: dict, features: int, extra=None) -> None:
    meta = {k: v for k, v in info.items() if k not in ("key", "name_field")}
    meta |= {"name": name, "features": features, "crs": WGS84}
    if extra:
        meta["measured"] = extra
    text = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _atomic_write(_meta_path(name, directory), lambda p: p.write_text(text, encoding="utf-8"))


def write_layer(name: str, frame: gpd.GeoDataFrame, directory: Path, extra=None, info=None) -> None:
    """Write a polygon layer as RFC 7946 GeoJSON (6 decimals) with its metadata."""
    frame = frame.to_crs(WGS84)
    _atomic_write(
        layer_path(name, directory),
        lambda p: pyogrio.write_dataframe(
            frame, p, driver="GeoJSON", layer=name, layer_options={"RFC7946": "YES"}
        ),
    )
    _write_metadata(name, Path(directory), info or LAYERS[name], len(frame), extra)


def write_postcodes(table: pd.DataFrame, directory: Path, extra=None) -> None:
    """Write the postcode table as Parquet (no geometry column: lon/lat make the points)."""
    table = pd.DataFrame(table).drop(columns="geometry", errors="ignore")
    _atomic_write(
        layer_path("postcode", directory),
        lambda p: table.to_parquet(p, index=False, compression="zstd"),
    )
    _write_metadata("postcode", Path(directory), LAYERS["postcode"], len(table), extra)


def write_attribution(directory: Path) -> None:
    """ATTRIBUTION.md beside the layers: every layer's source, licence and attribution."""
    parts = ["# Boundary and reference layers: sources, licences, attribution\n"]
    for name in LAYERS:
        meta = metadata(name, directory)
        parts.append(f"## {name}: {meta['title']}\n")
        for field in ("source", "vintage", "generalisation", "accuracy", "licence"):
            parts.append(f"- {field.capitalize()}: {meta[field]}")
        if "method" in meta:
            parts.append(f"- Method: {meta['method']}")
        for figure, value in meta.get("measured", {}).items():
            parts.append(f"- Measured: {figure.replace('_', ' ')} = {value}")
        parts.append("- Attribution:")
        parts.extend(f"  - {line}" for line in meta["attribution"])
        parts.append("")
    for name in REFERENCE_TABLES:
        path = _meta_path(name, Path(directory))
        if path.exists():
            meta = json.loads(path.read_text(encoding="utf-8"))
            parts.append(f"## {name}: {meta['title']} (table)\n")
            parts += [f"- {field.capitalize()}: {meta[field]}" for field in ("source", "vintage")]
            parts += [f"- Licence: {meta['licence']}", "- Attribution:"]
            parts += [f"  - {line}" for line in meta["attribution"]] + [""]
    text = "\n".join(parts)
    _atomic_write(
        Path(directory) / "ATTRIBUTION.md", lambda p: p.write_text(text, encoding="utf-8")
    )


def read_any(path: Path) -> gpd.GeoDataFrame:
    """Read a GeoJSON, GeoPackage or zipped Shapefile; a clear ValueError if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as error:  # pyogrio raises several DataSourceError kinds
        raise ValueError(
            f"cannot read {path.name} as GeoJSON, GeoPackage or Shapefile: {error}"
        ) from error
    if frame.crs is None:
        raise ValueError(f"{path.name} has no coordinate reference system; set one and retry")
    return frame


def replace_layer(
    name: str,
    path: Path,
    field_map: dict[str, str] | None = None,
    directory: Path = BOUNDARIES_DIR,
    **meta_overrides: str,
) -> dict:
    """Validate a better layer and install it in place of ``name``; returns its metadata.

    ``field_map`` maps this layer's field names to the file's (``{"WD24CD": "WD25CD"}``).
    Fields the file lacks are kept from the current layer by joining on the layer key, and
    ``population`` is recomputed from the postcode residents. Metadata overrides (source,
    vintage, licence, attribution, ...) describe the new layer. Nothing is written unless every
    check passes.
    """
    _check_name(name)
    if name == "postcode":
        raise ValueError(
            "the postcode layer is rebuilt from raw data: kindred-map build-boundaries"
        )
    directory = Path(directory)
    new = read_any(path)
    rename = {source: target for target, source in (field_map or {}).items()}
    missing_sources = sorted(set(rename) - set(new.columns))
    if missing_sources:
        raise ValueError(
            f"field mapping names fields not in {Path(path).name}: {missing_sources}; "
            f"it has {sorted(c for c in new.columns if c != 'geometry')}"
        )
    new = new.rename(columns=rename)
    missing = [field for field in REQUIRED_FIELDS[name] if field not in new.columns]
    if missing:
        raise ValueError(
            f"{Path(path).name} lacks required {name} fields {missing}; map them with "
            f"--field {missing[0]}=THEIR_FIELD"
        )
    new = _validated_geometry(new.to_crs(WGS84), name, Path(path).name)
    key = LAYERS[name]["key"]
    if new[key].isna().any() or new[key].duplicated().any():
        raise ValueError(f"{key} must be present and unique in every feature")
    current = load(name, directory)
    new[key] = new[key].astype(current[key].dtype)
    keep = [c for c in current.columns if c not in new.columns and c != "population"]
    if keep:
        new = new.merge(pd.DataFrame(current[[key, *keep]]), on=key, how="left")
    new["population"] = _population_of(new, key, directory)
    columns = [*[c for c in current.columns if c in new.columns and c != "geometry"]]
    extra_columns = [c for c in new.columns if c not in columns and c != "geometry"]
    new = gpd.GeoDataFrame(new[[*columns, *extra_columns, "geometry"]], crs=WGS84)
    info = dict(LAYERS[name])
    info |= {
        "source": f"User-supplied file {Path(path).name}",
        "approximate": False,
        "accuracy": "As supplied; replaced the shipped layer",
        "method": "Installed with kindred-map replace-layer",
    }
    info |= {k: v for k, v in meta_overrides.items() if v is not None}
    if isinstance(info["attribution"], str):
        info["attribution"] = [info["attribution"]]
    write_layer(name, new, directory, info=info)
    clear_cache()
    if name in POPULATION_INPUTS:
        write_population(population_table(directory), directory)
    write_attribution(directory)
    return metadata(name, directory)


def _validated_geometry(frame: gpd.GeoDataFrame, name: str, label: str) -> gpd.GeoDataFrame:
    if frame.empty:
        raise ValueError(f"{label} has no features")
    if frame.geometry.isna().any() or frame.geometry.is_empty.any():
        bad = frame.index[frame.geometry.isna() | frame.geometry.is_empty].tolist()[:5]
        raise ValueError(f"{label}: features without geometry (rows {bad})")
    kinds = set(frame.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"{label}: a {name} layer needs polygons, found {sorted(kinds)}")
    frame = frame.copy()
    frame["geometry"] = make_valid(frame.geometry.values)
    region = load("borough").union_all()
    if not frame.union_all().intersects(region):
        raise ValueError(f"{label} does not overlap the region; is its CRS right?")
    return frame


def area_of_points(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, key: str) -> pd.Series:
    """The ``key`` of the area each point lies in; the lowest key on a shared edge; NA outside.

    Both frames must share a CRS. Used wherever points meet polygons, so that the deanery
    of a postcode is the same in the layer's population, in coverage and in joins.
    """
    inside = gpd.sjoin(
        points[["geometry"]], areas[[key, "geometry"]], how="inner", predicate="intersects"
    )
    inside = inside.sort_values(key, kind="stable")
    return inside[~inside.index.duplicated()][key].reindex(points.index)


def residents_by_area(areas: gpd.GeoDataFrame, key: str, postcodes: gpd.GeoDataFrame) -> pd.Series:
    """Census 2021 residents per area from the postcode residents: by code when the postcodes
    carry ``key`` (ward, borough, LSOA), else by the area each postcode lies in."""
    live = region_postcodes(postcodes)
    live = live[live["status"] == "live"]
    codes = live[key] if key in live.columns else area_of_points(live, areas, key)
    totals = live["residents"].groupby(codes).sum()
    return areas[key].map(totals).fillna(0).astype("int64")


def region_postcodes(postcodes: pd.DataFrame) -> pd.DataFrame:
    """The postcodes of the 9 boroughs: the postcode layer also holds the rest of the L, CH,
    WA, WN and PR areas (``in_region`` False), which carry no residents and no region area."""
    if "in_region" not in postcodes.columns:
        return postcodes
    return postcodes[postcodes["in_region"].astype(bool).to_numpy()]


def postcode_points(table: pd.DataFrame) -> gpd.GeoDataFrame:
    """The postcode table as WGS84 points (terminated postcodes without a position are empty)."""
    points = gpd.points_from_xy(table["lon"], table["lat"])
    return gpd.GeoDataFrame(table, geometry=points, crs=WGS84)


def _population_of(frame: gpd.GeoDataFrame, key: str, directory: Path) -> pd.Series:
    """Census 2021 residents per feature of a replacement layer."""
    return residents_by_area(frame, key, load("postcode", directory))


# --- the population table: derived from the layers at build time ------------------------------

POPULATION_META = {
    "title": "Population surface: Census 2021 residents per live region postcode",
    "source": "Derived from this folder's postcode, LSOA, ward, borough and deanery layers "
    "(kindred_map.boundaries.population_table)",
    "vintage": "As the layers it is derived from (Code-Point Open 2025, Census 2021, IMD 2025, "
    "wards May 2024, boroughs 2025, derived deaneries)",
    "licence": OGL + " (postcode positions: OS OpenData; deaneries: see the deanery layer)",
    "attribution": [
        OS.format(year=2025),
        ROYAL_MAIL.format(year=2025),
        NATSTATS.format(year=2025),
        ONS,
        MHCLG,
        COFE,
    ],
    "method": "One row per live postcode of the 9 boroughs: its Code-Point position (lon, lat "
    "in WGS84; easting, northing in EPSG:27700), its Census 2021 residents (the postcode "
    "layer's residents: each LSOA's population spread over its residential postcodes in whole "
    "people), its LSOA, ward and borough (ONS assignments, names from the layers), its LSOA's "
    "IMD 2025 decile and the (approximate) deanery polygon it lies in (none outside the "
    "diocese). Precomputed so that coverage figures need no point-in-polygon at run time; "
    "rebuilt by build-boundaries and replace-layer, and ignored (recomputed) when the "
    "sha256 of an input layer differs from the one recorded here.",
}
"""Metadata of the population table (its ``.meta.json`` adds counts and the inputs' sha256)."""


def population_table(directory: Path = BOUNDARIES_DIR) -> pd.DataFrame:
    """The population surface computed from the layers in ``directory`` (see POPULATION_META):
    postcode, lon, lat, easting, northing, residents, the LSOA, ward, borough and deanery codes
    and names, and imd_decile."""
    directory = Path(directory)
    live = region_postcodes(_postcode_table(directory))
    live = live[live["status"] == "live"].reset_index(drop=True)
    live = postcode_points(live)
    lsoas = load("lsoa", directory)
    wards = load("ward", directory)
    borough = load("borough", directory)
    deaneries = load("deanery", directory)
    deanery_of = area_of_points(live, deaneries, "deanery_id")
    table = pd.DataFrame(
        {
            "postcode": live["postcode"].astype(str),
            "lon": live["lon"].astype(float),
            "lat": live["lat"].astype(float),
            "easting": live["easting"].astype(float),
            "northing": live["northing"].astype(float),
            "residents": live["residents"].astype("int64"),
            "LSOA21CD": live["LSOA21CD"].astype(str),
            "WD24CD": live["WD24CD"].astype(str),
            "LAD25CD": live["LAD25CD"].astype(str),
            "deanery_id": deanery_of.astype("Int64"),
        }
    )
    lsoa = lsoas.set_index("LSOA21CD")
    table["LSOA21NM"] = table["LSOA21CD"].map(lsoa["LSOA21NM"])
    table["imd_decile"] = table["LSOA21CD"].map(lsoa["imd_decile"]).astype("Int64")
    table["WD24NM"] = table["WD24CD"].map(wards.set_index("WD24CD")["WD24NM"])
    table["LAD25NM"] = table["LAD25CD"].map(borough.set_index("LAD25CD")["LAD25NM"])
    names = deaneries.set_index("deanery_id")["deanery_name"]
    table["deanery_name"] = table["deanery_id"].map(names)
    return table


def _population_path(directory: Path) -> Path:
    return Path(directory) / "population.parquet"


def _input_digests(directory: Path) -> dict[str, str]:
    """sha256 of each input layer's file (the population table records them)."""
    return {
        name: hashlib.sha256(layer_path(name, directory).read_bytes()).hexdigest()
        for name in POPULATION_INPUTS
    }


def write_population(table: pd.DataFrame, directory: Path) -> None:
    """Write the population table as Parquet with its ``.meta.json`` (POPULATION_META, row
    and resident counts, the input layers' sha256)."""
    directory = Path(directory)
    _atomic_write(
        _population_path(directory),
        lambda p: table.to_parquet(p, index=False, compression="zstd"),
    )
    meta = POPULATION_META | {
        "name": "population",
        "rows": int(len(table)),
        "residents": int(table["residents"].sum()),
        "crs": f"lon/lat {WGS84}; easting/northing {BNG}",
        "inputs_sha256": _input_digests(directory),
    }
    text = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _atomic_write(_meta_path("population", directory), lambda p: p.write_text(text, "utf-8"))


def _population_read(directory: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    path, meta = _population_path(directory), _meta_path("population", directory)
    if not path.exists() or not meta.exists():
        return None
    recorded = json.loads(meta.read_text(encoding="utf-8")).get("inputs_sha256")
    if recorded != _input_digests(directory):
        return None
    return read_parquet(path, columns)


def population(directory: Path = BOUNDARIES_DIR, columns=None) -> pd.DataFrame:
    """The population table (`population_table`): the shipped file when it was built from
    the layers now in ``directory`` (their sha256 match), else computed from them.

    ``columns``: only these, in this order (3 of its 15 columns read in 0.008 s of CPU, the
    whole table in 0.021 s: its text columns are most of the cost)."""
    columns = None if columns is None else list(columns)
    shipped = _population_read(Path(directory), columns)
    if shipped is not None:
        return shipped
    table = population_table(directory)
    return table if columns is None else table[columns]
