"""Coverage: who lives within reach of a project, who does not, and where need-weighted gaps are.

Population surface: each LSOA's Census 2021 residents spread over its residential postcodes in
whole people (the postcode layer's ``residents``; sums exactly to each LSOA and to the region),
placed at the postcode's Code-Point position. A postcode is within reach when the straight-line
distance from it to the nearest project of the chosen types is at most the reach distance.

Distances: the nearest project is found with a KD-tree on British National Grid (EPSG:27700)
coordinates; the distance to it is then measured as the WGS84 geodesic (pyproj.Geod), so it is
a true ground distance rather than a grid distance (the grid is 0.03-0.04% short in this region).

Across the boundary: a project outside the region (``in_region`` False, e.g. a warm space
just across the boundary in Cheshire West and Chester) counts, by default, for the region's
residents within reach of it, as they may walk there; ``include_outside=False`` counts only
projects inside the region, for comparison. Residents are always the region's:
no one outside the 9 boroughs is counted, and an outside project never counts in an area's
project figures (it has no area code).

Home-run (``ward_only``) projects count for coverage at their ward's centre, as every export
and the map show them (`kindred_map.privacy.public_records`), so no figure depends on their
private position; LSOA figures and the gap surface leave them out altogether.

Coverage by time (``open_at``: "sat 10:00", "weekend", "evening"; see `kindred_map.hours`):
only projects whose structured schedules say they are open then count. Projects with unknown
hours (no structured schedules) are never counted as open: they are counted apart, and the
headline also says how many residents would be within reach if they were all open then.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod, Transformer

from kindred_map import boundaries, hours, privacy
from kindred_map.paths import BOUNDARIES_DIR
from kindred_map.schema import project_types, resolve_types

DEFAULT_DISTANCE_M = 800.0
"""About a 10-minute walk."""

LEVELS = {
    "ward": ("WD24CD", "WD24NM"),
    "deanery": ("deanery_id", "deanery_name"),
    "borough": ("LAD25CD", "LAD25NM"),
    "lsoa": ("LSOA21CD", "LSOA21NM"),
}
"""Area level -> (code column, name column), as in the boundary layers."""

AREA_LEVELS = ("ward", "deanery", "borough")
"""Levels for gap tables; ``lsoa`` is for map shading only (precisely located projects)."""

DEPRIVED_DECILES = (1, 2)
"""IMD 2025 deciles 1-2: the most deprived 20% of LSOAs in England."""

_GEOD = Geod(ellps="WGS84")
_WARD_ONLY = "ward_only"


@cache
def _transformer(source: str, target: str) -> Transformer:
    """One Transformer per pair of CRSs: pyproj (>= 3.1) makes a Transformer safe to share
    between threads (each thread gets its own PROJ object), and making one costs ~30 ms."""
    return Transformer.from_crs(source, target, always_xy=True)


def _transform(source: str, target: str, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Reproject coordinate arrays."""
    transformer = _transformer(source, target)
    return transformer.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def deprivation_weight(decile) -> np.ndarray:
    """Gap-score weight of a resident by their LSOA's IMD 2025 decile.

    2 for deciles 1-2 (most deprived 20% in England), 1.5 for deciles 3-4, 1 otherwise
    (including an unknown decile)."""
    decile = pd.to_numeric(pd.Series(decile), errors="coerce").to_numpy(dtype=float)
    return np.select([decile <= 2, decile <= 4], [2.0, 1.5], default=1.0)


def type_phrase(types: Iterable[str]) -> str:
    """``("food_bank", "warm_space")`` -> ``"a food bank or warm space"`` for headlines."""
    labels = project_types()
    if set(types) == set(labels):
        return "a project of any type"
    words = []
    for kind in types:
        label = labels[kind]["label"]
        rest = label.split()[1:]
        plain = all(word.islower() for word in rest)
        words.append(label[0].lower() + label[1:] if plain else label)
    phrase = " or ".join(words)
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def grid_scale(easting, northing) -> np.ndarray:
    """British National Grid metres per ground metre (WGS84 geodesic) at each point.

    Measured numerically across 100 m of grid with pyproj, so it includes both the
    Transverse Mercator scale and the datum transformation pyproj uses."""
    x = np.asarray(easting, dtype=float)
    y = np.asarray(northing, dtype=float)
    lon1, lat1 = _transform(boundaries.BNG, boundaries.WGS84, x - 50.0, y)
    lon2, lat2 = _transform(boundaries.BNG, boundaries.WGS84, x + 50.0, y)
    _, _, ground = _GEOD.inv(lon1, lat1, lon2, lat2)
    return 100.0 / np.asarray(ground, dtype=float)


@cache
def _population_cached(directory: Path, _stamp: tuple, columns: tuple | None = None):
    return boundaries.population(directory, columns)


def population_points(directory: Path = BOUNDARIES_DIR, columns=None) -> pd.DataFrame:
    """The population surface: one row per live region postcode (read once, then cached).

    Columns: postcode, lon, lat, easting, northing, residents, imd_decile (of its LSOA) and the
    code and name of its LSOA, ward (ONS assignment), borough and deanery. The deanery is the
    approximate deanery polygon the postcode lies in; postcodes outside the diocese have none.
    Read from the table `kindred-map build-boundaries` writes beside the layers
    (`boundaries.population`; computed from the layers when it was built from others), and
    read again when a layer file changes (e.g. after ``kindred-map replace-layer``).
    ``columns``: only these (read and cached apart from the whole table).
    """
    directory = Path(directory)
    columns = None if columns is None else tuple(columns)
    return _population_cached(directory, _stamp(directory), columns).copy()


def _stamp(directory: Path) -> tuple:
    """When each layer the population surface comes from last changed."""
    paths = [boundaries.layer_path(name, directory) for name in boundaries.POPULATION_INPUTS]
    return tuple(path.stat().st_mtime_ns if path.exists() else None for path in paths)


def _checked_population(population: pd.DataFrame) -> pd.DataFrame:
    """Validate a caller's population table; add easting/northing from lon/lat when missing."""
    missing = [c for c in ("lon", "lat", "residents") if c not in population.columns]
    if missing:
        raise ValueError(f"population table lacks columns {missing}")
    table = population.reset_index(drop=True).copy()
    residents = pd.to_numeric(table["residents"], errors="coerce")
    if residents.isna().any() or (residents < 0).any() or (residents % 1 != 0).any():
        raise ValueError("residents must be whole numbers >= 0 in every row")
    table["residents"] = residents.astype("int64")
    position = table[["lon", "lat"]].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(position.to_numpy(dtype=float)).all():
        raise ValueError("lon and lat must be numbers in every row of the population table")
    table[["lon", "lat"]] = position
    if "easting" not in table.columns or "northing" not in table.columns:
        table["easting"], table["northing"] = _transform(
            boundaries.WGS84, boundaries.BNG, table["lon"], table["lat"]
        )
    if "imd_decile" not in table.columns:
        table["imd_decile"] = pd.array([pd.NA] * len(table), dtype="Int64")
    for code, name in LEVELS.values():
        if code in table.columns and name not in table.columns:
            table[name] = table[code]
    return table


def ward_only_mask(projects: pd.DataFrame) -> np.ndarray:
    """True for home-run projects (location_precision ward_only): never drawn finer than a ward."""
    if "location_precision" not in projects.columns:
        return np.zeros(len(projects), dtype=bool)
    precision = projects["location_precision"].astype("string").str.strip().str.lower()
    return (precision == _WARD_ONLY).fillna(False).to_numpy(dtype=bool)


def synthetic_mask(projects: pd.DataFrame) -> np.ndarray:
    """True for illustrative records that are not real projects (the ``synthetic`` column)."""
    if "synthetic" not in projects.columns:
        return np.zeros(len(projects), dtype=bool)
    text = projects["synthetic"].astype("string").str.strip().str.lower()
    return text.isin(["true", "1", "yes"]).fillna(False).to_numpy(dtype=bool)


def outside_mask(projects: gpd.GeoDataFrame) -> np.ndarray:
    """True for projects outside the 9 boroughs: ``in_region`` False where the column is
    given (the join's answer, from the postcode where known), else a point outside the
    borough polygons. Projects without a position are not outside."""
    if "in_region" in projects.columns:
        flag = projects["in_region"].astype("string").str.strip().str.lower()
        return flag.isin(["false", "0", "no"]).fillna(False).to_numpy(dtype=bool)
    geometry = projects.geometry
    located = (geometry.notna() & ~geometry.is_empty).to_numpy()
    outside = np.zeros(len(projects), dtype=bool)
    if located.any():
        region = _region_outline()
        points = geometry[located].to_crs(boundaries.BNG)
        outside[located] = ~shapely.intersects(region, points.to_numpy())
    return outside


@cache
def _region_outline():
    """The 9 boroughs as one polygon in EPSG:27700."""
    return boundaries.load("borough").to_crs(boundaries.BNG).union_all()


def chosen_projects(projects: gpd.GeoDataFrame, types) -> tuple[gpd.GeoDataFrame, int]:
    """Located projects of the chosen types in EPSG:4326, and how many had no position."""
    if not isinstance(projects, gpd.GeoDataFrame):
        raise ValueError("projects must be a GeoDataFrame of points")
    if "type" not in projects.columns:
        raise ValueError("projects lack a 'type' column")
    if projects.crs is None and len(projects):
        raise ValueError("projects have no coordinate reference system")
    types = resolve_types(types)
    chosen = projects[projects["type"].astype("string").isin(types).fillna(False).to_numpy()]
    geometry = chosen.geometry
    located = (geometry.notna() & ~geometry.is_empty).to_numpy()
    if located.any() and not (geometry[located].geom_type == "Point").all():
        raise ValueError("project geometries must be points")
    chosen = chosen[located]
    if len(chosen):
        chosen = chosen.to_crs(boundaries.WGS84)
    return chosen, int((~located).sum())


KD_TREE_FROM = 2_000
"""Projects from which the nearest one to each postcode is found with SciPy's KD-tree (4x
faster per search than shapely's STRtree at 10,000 projects); below it with the STRtree, as
importing scipy.spatial costs a fresh process (a CLI command) ~0.3 s of CPU, more than the
STRtree's whole search of a few hundred projects. Both find the exact nearest point in
EPSG:27700, so the figures are the same either way."""


def _nearest_index(tree_xy: np.ndarray, query_xy: np.ndarray) -> np.ndarray:
    """Row of ``tree_xy`` nearest each row of ``query_xy`` (grid metres, EPSG:27700)."""
    if len(tree_xy) >= KD_TREE_FROM:
        from scipy.spatial import cKDTree  # here: see KD_TREE_FROM

        return cKDTree(tree_xy).query(query_xy, k=1)[1]
    tree = shapely.STRtree(shapely.points(tree_xy))
    query, found = tree.query_nearest(shapely.points(query_xy), all_matches=False)
    index = np.empty(len(query_xy), dtype=np.int64)
    index[query] = found
    return index


def _nearest(tree_xy, tree_lonlat, query_xy, query_lonlat) -> np.ndarray:
    """Geodesic metres from each query point to its nearest tree point (inf if none)."""
    if len(tree_xy) == 0:
        return np.full(len(query_xy), np.inf)
    index = _nearest_index(tree_xy, query_xy)
    _, _, metres = _GEOD.inv(
        query_lonlat[:, 0], query_lonlat[:, 1], tree_lonlat[index, 0], tree_lonlat[index, 1]
    )
    return np.asarray(metres, dtype=float)


def weighted_median(frame: pd.DataFrame, key: str, value: str, weight: str) -> pd.Series:
    """Per ``key``: the smallest ``value`` such that at least half the weight is at or below it."""
    ordered = frame[[key, value, weight]].sort_values([key, value], kind="stable")
    groups = ordered.groupby(key, sort=False, observed=True)[weight]
    total, running = groups.transform("sum"), groups.cumsum()
    at_half = ordered[(running * 2 >= total) & (total > 0)]
    return at_half.groupby(key, sort=False, observed=True)[value].first()


class _Areas(NamedTuple):
    """The postcodes' areas of one level (`_area_groups`)."""

    group: np.ndarray
    """Each row's area: a number into ``keys`` (-1 when it has no area code)."""
    keys: pd.DataFrame
    """The areas' codes and names, one row per (code, name) in sorted order, as a groupby on
    both columns gives them."""
    code: np.ndarray
    """Each row's area code as a number (-1 when none): medians and boroughs are per code."""
    key_code: np.ndarray
    """The code number of each row of ``keys``."""
    borough: np.ndarray | None = None
    """For wards: the borough name most of each code's postcodes have (ties: first in order)."""


def _area_groups(points: pd.DataFrame, code: str, name: str) -> _Areas:
    """Number the postcodes' areas of a level (code and name columns): see `_Areas`."""
    columns = []
    for column in (code, name):
        values = points[column]
        if (
            isinstance(values.dtype, pd.CategoricalDtype)
            and values.cat.categories.is_monotonic_increasing
        ):
            columns.append((values.cat.codes.to_numpy(np.int64), values.cat.categories))
        else:
            numbers, uniques = pd.factorize(values, sort=True)
            columns.append((numbers.astype(np.int64), uniques))
    (codes, code_values), (names, name_values) = columns
    missing = codes < 0  # a row without a name is kept, under a missing name, as groupby does
    size = len(name_values) + 1
    pair = codes * size + np.where(names < 0, len(name_values), names)
    found, group = np.unique(pair[~missing], return_inverse=True)
    numbers = np.full(len(pair), -1, dtype=np.int64)
    numbers[~missing] = group
    name_values = pd.Index(name_values).append(pd.Index([None], dtype=object))
    keys = pd.DataFrame(
        {code: _as_plain(code_values, found // size), name: _as_plain(name_values, found % size)}
    )
    for array in (numbers, codes):
        array.flags.writeable = False  # shared between results
    return _Areas(numbers, keys, codes, found // size)


def _as_plain(uniques, positions: np.ndarray):
    """Values of a factorised column at ``positions``: text for text and categories (as a
    groupby then ``astype(str)`` gave them), the column's own type otherwise."""
    values = pd.Index(uniques).take(positions)
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        return values.astype(str).to_numpy()
    return values.array


def _group_median(group: np.ndarray, count: int, value: np.ndarray, weight: np.ndarray):
    """`weighted_median` over area numbers 0..count-1 (NaN where an area has no weight)."""
    order = np.lexsort((value, group))
    group, value, weight = group[order], value[order], weight[order].astype(float)
    running = np.cumsum(weight)
    starts = np.searchsorted(group, np.arange(count))
    before = np.concatenate([[0.0], running])[starts]
    running -= np.repeat(before, np.diff(np.append(starts, len(group))))
    total = np.bincount(group, weights=weight, minlength=count)
    at_half = np.flatnonzero((running * 2 >= total[group]) & (total[group] > 0))
    first, where = np.unique(group[at_half], return_index=True)
    median = np.full(count, np.nan)
    median[first] = value[at_half[where]]
    return median


def _commonest(group: np.ndarray, count: int, values: np.ndarray) -> np.ndarray:
    """Per area number: its commonest value (ties: the first in sorted order), as
    ``Series.mode().iloc[0]`` gives it."""
    numbers, uniques = pd.factorize(values, sort=True)
    known = numbers >= 0  # mode() leaves missing values out
    group, numbers = group[known], numbers[known]
    pairs, counts = np.unique(group * (len(uniques) + 1) + numbers, return_counts=True)
    area, value = pairs // (len(uniques) + 1), pairs % (len(uniques) + 1)
    order = np.lexsort((value, -counts, area))
    area, value = area[order], value[order]
    first = np.unique(area, return_index=True)[1]
    chosen = np.full(count, len(uniques))
    chosen[area[first]] = value[first]
    return np.append(np.asarray(uniques, dtype=object), None)[chosen]


@dataclass(frozen=True, eq=False)
class CoverageResult:
    """Coverage of the population surface by projects of some types at a reach distance.

    ``points`` holds one row per postcode (in the population table's order, without positions)
    with its residents, IMD decile, area codes and names, ``nearest_m`` (geodesic metres to the
    nearest project, inf when there is none) and ``nearest_public_m`` (the same without
    home-run projects). It is for computation only: never display it.
    """

    types: tuple[str, ...]
    distance_m: float
    projects: int
    ward_only: int
    unlocated: int
    synthetic: int
    points: pd.DataFrame
    open_at: str | None = None
    hours_unknown: int = 0
    closed: int = 0
    outside: int = 0
    include_outside: bool = True
    areas: dict = field(default_factory=dict, repr=False)
    """Per level, the postcodes' area numbers (`_area_groups`) and, for wards, their boroughs:
    they depend on the population table only, so results over the same one share them."""

    def areas_of(self, level: str) -> "_Areas":
        """The postcodes' areas of ``level``, numbered (`_Areas`)."""
        if level not in self.areas:
            areas = _area_groups(self.points, *LEVELS[level])
            if level == "ward" and "LAD25NM" in self.points.columns:
                inside = areas.code >= 0
                names = self.points["LAD25NM"].to_numpy(dtype=object)[inside]
                count = int(areas.key_code.max()) + 1 if len(areas.key_code) else 0
                borough = _commonest(areas.code[inside], count, names)[areas.key_code]
                areas = areas._replace(borough=borough.astype(str))
            self.areas[level] = areas
        return self.areas[level]

    def _reached(self, public: bool = False) -> np.ndarray:
        column = "nearest_public_m" if public else "nearest_m"
        return self.points[column].to_numpy() <= self.distance_m

    def by_area(self, level: str, median: bool = True) -> pd.DataFrame:
        """Coverage per area: ward, deanery or borough (or lsoa, for map shading).

        Columns: code, name (wards also LAD25NM, their borough), population, reached,
        beyond_reach, pct_covered,
        residents_deciles_1_2, beyond_reach_deciles_1_2, pct_deciles_1_2 (0-100, like
        every percentage),
        median_distance_m (population-weighted median distance to the nearest project; NaN
        when there is none), gap_score and gap_per_1000 (see `gaps`). Postcodes outside the
        diocese belong to no deanery and are left out of the deanery table (``attrs["note"]``
        gives their residents). At LSOA level only precisely located projects count.
        ``median=False`` leaves median_distance_m out (the one column that sorts every
        postcode, ~9 ms a table; the change does not show it).
        """
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
        code, name = LEVELS[level]
        if code not in self.points.columns:
            raise ValueError(f"the population table has no {code} column for level {level!r}")
        public = level == "lsoa"
        distance = self.points["nearest_public_m" if public else "nearest_m"].to_numpy(float)
        residents = self.points["residents"].to_numpy()
        reached = self._reached(public)
        deprived = self.points["imd_decile"].isin(DEPRIVED_DECILES).fillna(False).to_numpy()
        areas = self.areas_of(level)
        group, keys, borough = areas.group, areas.keys, areas.borough
        outside = group < 0
        inside = ~outside
        count, at = len(keys), group[inside]

        def total(values) -> np.ndarray:
            return np.bincount(at, weights=np.asarray(values)[inside], minlength=count)

        people = total(residents).astype("int64")
        within = total(np.where(reached, residents, 0)).astype("int64")
        in_deciles = total(np.where(deprived, residents, 0)).astype("int64")
        weights = deprivation_weight(self.points["imd_decile"])
        gap = np.round(total(np.where(reached, 0.0, residents * weights)), 1)
        per = np.where(people > 0, people, np.nan)
        columns = {code: keys[code].array, name: keys[name].array}
        if borough is not None:
            columns["LAD25NM"] = borough
        columns |= {
            "population": people,
            "reached": within,
            "beyond_reach": people - within,
            "pct_covered": np.round(100 * within / per, 2),
            "residents_deciles_1_2": in_deciles,
            "beyond_reach_deciles_1_2": total(np.where(deprived & ~reached, residents, 0)).astype(
                "int64"
            ),
            "pct_deciles_1_2": np.round(100 * in_deciles / per, 2),
        }
        if median:
            columns["median_distance_m"] = self._medians(areas, distance, residents)
        columns |= {"gap_score": gap, "gap_per_1000": np.round(1000 * gap / per, 1)}
        table = pd.DataFrame(columns)
        if level == "deanery":
            left_out = int(residents[outside].sum())
            table.attrs["note"] = (
                f"{left_out:,} residents live outside the (approximate) diocese and belong to "
                "no deanery."
            )
        elif level == "lsoa":
            table.attrs["note"] = (
                f"Precisely located projects only: {self.ward_only} home-run project(s) left "
                "out so that their position cannot be read from the map."
            )
        table.attrs["synthetic_projects"] = self.synthetic
        table.attrs["distance_m"] = self.distance_m
        table.attrs["outside_projects"] = self.outside
        table.attrs["include_outside"] = self.include_outside
        return table

    @staticmethod
    def _medians(areas: "_Areas", distance: np.ndarray, residents: np.ndarray) -> np.ndarray:
        """Per area: the population-weighted median distance, whole metres (NaN: none)."""
        inside = areas.group >= 0
        codes = areas.code[inside]  # the median is per code, whatever names a code has
        count = int(areas.key_code.max()) + 1 if len(areas.key_code) else 0
        median = _group_median(codes, count, distance[inside], residents[inside])
        median = median[areas.key_code]
        return np.where(np.isfinite(median), median, np.nan).round(0)

    def gaps(
        self, level: str = "ward", top: int | None = None, median: bool = True
    ) -> pd.DataFrame:
        """The areas ranked by gap score, biggest gap first (``gap_rank`` 1).

        gap_score = sum over residents beyond reach of w(decile of their LSOA), with
        w = 2 for IMD 2025 deciles 1-2, 1.5 for deciles 3-4 and 1 otherwise: need-weighted
        people beyond reach, in people-equivalents. Ranking is on this absolute score (where
        most people in need are unreached); ``gap_per_1000`` = gap_score per 1,000 residents
        (0 to 2,000) compares areas of different sizes. Ties: more people in deciles 1-2 beyond
        reach first, then by code. ``median``: see `by_area`.
        """
        table = self.by_area(level, median)
        code = LEVELS[level][0]
        ranked = table.sort_values(
            ["gap_score", "beyond_reach_deciles_1_2", code],
            ascending=[False, False, True],
            kind="stable",
        ).reset_index(drop=True)
        ranked.insert(0, "gap_rank", np.arange(1, len(ranked) + 1))
        ranked.attrs = dict(table.attrs)
        return ranked if top is None else ranked.head(top)

    def underserved(self, level: str = "ward", min_share_deciles_1_2: float = 0.5) -> pd.DataFrame:
        """Deprived areas with no resident within reach of any project of the types.

        An area qualifies as deprived when at least ``min_share_deciles_1_2`` of its residents
        live in IMD 2025 deciles 1-2; at the default 0.5 that is exactly "its
        population-weighted median decile is 1 or 2", i.e. an area in the most deprived 20%.
        Example: wards in the most deprived 20% with no pantry within 1 km =
        ``assess(projects, "pantry", 1000).underserved("ward")``. Ranked by gap score.
        """
        if not 0 <= min_share_deciles_1_2 <= 1:
            raise ValueError("min_share_deciles_1_2 must be between 0 and 1")
        ranked = self.gaps(level)
        population = ranked["population"].where(ranked["population"] > 0)
        share = ranked["residents_deciles_1_2"] / population
        chosen = (share.fillna(0) >= min_share_deciles_1_2) & (ranked["reached"] == 0)
        chosen &= ranked["population"] > 0
        return ranked[chosen].reset_index(drop=True)

    def headline(self) -> dict:
        """Region-wide figures: residents, reached, beyond reach (all and in deciles 1-2), ..."""
        residents = self.points["residents"].to_numpy()
        reached = self._reached()
        deprived = self.points["imd_decile"].isin(DEPRIVED_DECILES).fillna(False).to_numpy()
        total = int(residents.sum())
        within = int(residents[reached].sum())
        deprived_total = int(residents[deprived].sum())
        deprived_within = int(residents[deprived & reached].sum())
        frame = pd.DataFrame({"all": 0, "d": self.points["nearest_m"].to_numpy(), "w": residents})
        median = weighted_median(frame, "all", "d", "w")
        median_m = float(median.iloc[0]) if len(median) else math.nan
        weights = deprivation_weight(self.points["imd_decile"])
        outside = (
            int(residents[self.points["deanery_id"].isna().to_numpy()].sum())
            if "deanery_id" in self.points.columns
            else None
        )
        return {
            "types": list(self.types),
            "distance_m": self.distance_m,
            "projects": self.projects,
            "ward_only_projects": self.ward_only,
            "unlocated_projects": self.unlocated,
            "synthetic_projects": self.synthetic,
            "residents": total,
            "reached": within,
            "beyond_reach": total - within,
            "pct_covered": round(100 * within / total, 2) if total else math.nan,
            "residents_deciles_1_2": deprived_total,
            "beyond_reach_deciles_1_2": deprived_total - deprived_within,
            "pct_covered_deciles_1_2": (
                round(100 * deprived_within / deprived_total, 2) if deprived_total else math.nan
            ),
            "median_distance_m": round(median_m) if math.isfinite(median_m) else math.nan,
            "gap_score": round(float((weights * residents)[~reached].sum()), 1),
            "residents_outside_diocese": outside,
            "outside_projects": self.outside,
            "include_outside": self.include_outside,
            "open_at": self.open_at,
            "closed_projects": self.closed,
            "hours_unknown_projects": self.hours_unknown,
            "reached_if_unknown_open": (
                int(residents[self.points["nearest_unknown_m"].to_numpy() <= self.distance_m].sum())
                if "nearest_unknown_m" in self.points.columns
                else within
            ),
        }

    def headline_text(self) -> str:
        """The headline figures as a few plain sentences."""
        h = self.headline()
        what = type_phrase(self.types)
        metres = f"{self.distance_m:,.0f} m"
        lines = []
        if self.projects == 0:
            lines.append(
                f"No located projects of the chosen types ({', '.join(self.types)}): all "
                f"{h['residents']:,} residents of the region are beyond reach."
            )
        else:
            lines.append(
                f"{h['pct_covered']:.1f}% of the region's {h['residents']:,} residents live "
                f"within {metres} (straight line) of {what}: {h['reached']:,} people, "
                f"{self.projects:,} project(s)."
            )
            lines.append(
                f"Beyond reach: {h['beyond_reach']:,} people, {h['beyond_reach_deciles_1_2']:,} "
                "of them in IMD 2025 deciles 1-2 (the most deprived 20% in England); "
                f"{h['pct_covered_deciles_1_2']:.1f}% of residents in deciles 1-2 are within "
                "reach."
            )
            lines.append(
                f"Population-weighted median distance to the nearest: {h['median_distance_m']:,} m."
            )
        if self.include_outside and self.outside:
            lines.append(
                f"{self.outside} of the projects lie outside the region: they count for "
                "the region's residents within reach of them, never in an area's project "
                "figures."
            )
        elif not self.include_outside:
            lines.append(
                "Only projects inside the region count (for comparison): residents near the "
                "boundary may be within reach of projects across it."
            )
        if self.synthetic:
            lines.append(
                f"{self.synthetic} of the projects are synthetic examples, not real projects: "
                "these figures are illustrative."
            )
        if self.ward_only:
            lines.append(
                f"{self.ward_only} home-run project(s) count at their ward's centre; LSOA "
                "shading and the gap surface leave them out."
            )
        if self.unlocated:
            lines.append(f"{self.unlocated} project(s) without a position were left out.")
        if self.open_at:
            upper = h["reached_if_unknown_open"]
            lines.append(
                f"Open {self.open_at}: {self.projects} project(s) open then count; "
                f"{self.closed} closed then are left out; {self.hours_unknown} with unknown "
                "hours are counted apart, not as open (if all of them were open then, "
                f"{upper:,} residents, {100 * upper / h['residents']:.1f}%, would be within reach)."
            )
        return "\n".join(lines)


def _shipped_surface() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict]:
    """The shipped population surface `_compact`, its grid and lon/lat coordinates, and the
    area numbers its results share (`CoverageResult.areas`)."""
    directory = Path(BOUNDARIES_DIR)
    table, xy, lonlat, areas = _surface_cached(directory, _stamp(directory))
    return table.copy(), xy, lonlat, areas


@cache
def _surface_cached(directory: Path, stamp: tuple):
    table = _population_cached(directory, stamp)
    xy = table[["easting", "northing"]].to_numpy(float)
    lonlat = table[["lon", "lat"]].to_numpy(float)
    xy.flags.writeable = lonlat.flags.writeable = False
    return _compact(table), xy, lonlat, {}


def _compact(table: pd.DataFrame) -> pd.DataFrame:
    """Per-postcode results without positions, area codes and names as categories (small to
    cache and to pickle)."""
    points = table.drop(columns=["postcode", "lon", "lat", "easting", "northing"], errors="ignore")
    for code, name in LEVELS.values():
        for column in (code, name):
            if column in points.columns and column != "deanery_id":
                points[column] = points[column].astype("category")
    return points


def assess(
    projects: gpd.GeoDataFrame,
    types: str | Iterable[str] | None = None,
    distance_m: float = DEFAULT_DISTANCE_M,
    population: pd.DataFrame | None = None,
    include_synthetic: bool = False,
    open_at: "str | hours.Window | None" = None,
    include_outside: bool = True,
) -> CoverageResult:
    """Coverage of the region's residents by projects of ``types`` within ``distance_m``.

    Illustrative (``synthetic``) records are left out unless ``include_synthetic`` is given:
    a made-up project must never make a real area look covered. ``open_at``: count only
    projects open then ("sat 10:00", "weekend", "evening" or an `hours.Window`); projects with
    unknown hours are counted apart (``hours_unknown``), never as open.

    ``projects``: points with a ``type`` column, any CRS (e.g. ``store.read_projects()``).
    Projects outside the region (`outside_mask`) count for the region's residents within
    reach of them unless ``include_outside`` is False (inside-only, for comparison).
    ``types``: a list,
    ``"a,b"`` or None for all. ``population``: a table like `population_points` (default: the
    shipped region). No projects of the types is not an error: everyone is beyond reach.
    """
    try:
        distance_m = float(distance_m)
    except (TypeError, ValueError) as error:
        raise ValueError(f"distance must be a number of metres, got {distance_m!r}") from error
    if not math.isfinite(distance_m) or distance_m <= 0:
        raise ValueError(f"distance must be a positive number of metres, got {distance_m}")
    types = resolve_types(types)
    if not include_synthetic:
        projects = projects[~synthetic_mask(projects)]
    if "WD24CD" in projects.columns and ward_only_mask(projects).any():
        projects = privacy.public_records(projects)
    if not include_outside:
        projects = projects[~outside_mask(projects)]
    chosen, unlocated = chosen_projects(projects, types)
    window = hours.window(open_at) if isinstance(open_at, str) else open_at
    status = open_status(chosen, window)
    if population is None:
        table, query_xy, query_lonlat, areas = _shipped_surface()
    else:
        table = _checked_population(population)
        query_xy = table[["easting", "northing"]].to_numpy(float)
        query_lonlat = table[["lon", "lat"]].to_numpy(float)
        table, areas = _compact(table), {}
    if window is not None:
        maybe = chosen[status.ne(False).fillna(True).to_numpy(dtype=bool)]
        table["nearest_unknown_m"] = _nearest(*_positions(maybe), query_xy, query_lonlat)
        chosen = chosen[status.eq(True).fillna(False).to_numpy(dtype=bool)]
    xy, lonlat = _positions(chosen)
    hidden = ward_only_mask(chosen)
    table["nearest_m"] = _nearest(xy, lonlat, query_xy, query_lonlat)
    if hidden.any():
        table["nearest_public_m"] = _nearest(xy[~hidden], lonlat[~hidden], query_xy, query_lonlat)
    else:
        table["nearest_public_m"] = table["nearest_m"]
    return CoverageResult(
        types=types,
        distance_m=distance_m,
        projects=len(chosen),
        ward_only=int(hidden.sum()),
        unlocated=unlocated,
        synthetic=int(synthetic_mask(chosen).sum()),
        points=table,
        open_at=None if window is None else window.label,
        hours_unknown=int(status.isna().sum()) if window is not None else 0,
        closed=int(status.eq(False).sum()) if window is not None else 0,
        outside=int(outside_mask(chosen).sum()),
        include_outside=bool(include_outside),
        areas=areas,
    )


def _positions(points: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """British National Grid and lon/lat coordinate arrays of points in EPSG:4326."""
    lonlat = np.column_stack([points.geometry.x.to_numpy(), points.geometry.y.to_numpy()])
    xy = np.column_stack(_transform(boundaries.WGS84, boundaries.BNG, lonlat[:, 0], lonlat[:, 1]))
    return xy, lonlat


def open_status(projects: pd.DataFrame, window: "hours.Window | None") -> pd.Series:
    """Per project: True (open some time in the window), False (closed then) or NA (hours
    unknown), from its ``schedules``; all NA without a window or a schedules column."""
    status = pd.Series(pd.NA, index=projects.index, dtype="boolean")
    if window is None or "schedules" not in projects.columns:
        return status
    text = projects["schedules"].fillna("").astype(str)
    answers = {value: hours.open_during(value, window) for value in text.unique()}
    return text.map(answers).astype("boolean")


def boundary_effect(
    counted: CoverageResult, inside_only: CoverageResult, level: str = "borough"
) -> pd.DataFrame:
    """What counting the projects outside the region changes, per area of ``level``.

    ``counted`` and ``inside_only`` are `assess` of the same projects, types and distance
    with ``include_outside`` True and False. Columns: the area's code and name (wards also
    LAD25NM), population, beyond_reach_inside_only, beyond_reach, newly_within_reach (residents
    who move from beyond reach to within reach once the outside projects count), gap_score
    of both, gap_rank_inside_only, gap_rank and rank_change (rank minus inside-only rank:
    positive = the area's gap ranks further down, among smaller gaps, once they count; the
    ranks of areas whose gap did not move shift too, as others pass them). Sorted by
    newly_within_reach, then by code."""
    if (counted.types, counted.distance_m) != (inside_only.types, inside_only.distance_m):
        raise ValueError("compare coverage of the same types and distance")
    code, name = LEVELS[level]
    before = inside_only.gaps(level)
    after = counted.gaps(level).set_index(code)
    keep = [c for c in dict.fromkeys((code, name, "LAD25NM", "population")) if c in before]
    table = before[keep].copy()
    table["beyond_reach_inside_only"] = before["beyond_reach"].to_numpy()
    table["beyond_reach"] = before[code].map(after["beyond_reach"]).to_numpy()
    table["newly_within_reach"] = table["beyond_reach_inside_only"] - table["beyond_reach"]
    table["gap_score_inside_only"] = before["gap_score"].to_numpy()
    table["gap_score"] = before[code].map(after["gap_score"]).to_numpy()
    table["gap_rank_inside_only"] = before["gap_rank"].to_numpy()
    table["gap_rank"] = before[code].map(after["gap_rank"]).to_numpy()
    table["rank_change"] = table["gap_rank"] - table["gap_rank_inside_only"]
    table = table.sort_values(
        ["newly_within_reach", code], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    table.attrs = {"outside_projects": counted.outside, "distance_m": counted.distance_m}
    return table


def gaps_text(ranked: pd.DataFrame, level: str, top: int = 10) -> str:
    """The first ``top`` rows of a `CoverageResult.gaps` table as numbered lines."""
    name = LEVELS[level][1]
    shown = min(top, len(ranked))
    lines = [f"Top {shown} {level} gaps (gap score: need-weighted people beyond reach):"]
    for row in ranked.head(top).itertuples(index=False):
        row = row._asdict()
        borough = f" ({row['LAD25NM']})" if level == "ward" and "LAD25NM" in row else ""
        lines.append(
            f"{row['gap_rank']:>3}. {row[name]}{borough}: {row['beyond_reach']:,} of "
            f"{row['population']:,} beyond reach ({row['beyond_reach_deciles_1_2']:,} in "
            f"deciles 1-2), score {row['gap_score']:,.0f}"
        )
    if "note" in ranked.attrs:
        lines.append(ranked.attrs["note"])
    return "\n".join(lines)


def gap_surface(
    projects: gpd.GeoDataFrame,
    types: str | Iterable[str] | None = None,
    distance_m: float = DEFAULT_DISTANCE_M,
    region: gpd.GeoDataFrame | None = None,
    simplify_m: float = 25.0,
    include_synthetic: bool = False,
    include_outside: bool = True,
) -> gpd.GeoDataFrame:
    """The part of the region out of reach: region minus the union of the catchment circles.

    Computed in EPSG:27700 (each circle's grid radius scaled so it is ``distance_m`` on the
    ground), simplified to ``simplify_m`` for a light map payload, returned as one row in
    EPSG:4326 with area_km2, the projects drawn and a note. Home-run projects are left out so
    that their position cannot be read from a hole in the surface. ``region``: polygons,
    default the 9 boroughs. Synthetic records are left out unless ``include_synthetic``;
    projects outside the region cut their circles into it unless ``include_outside`` is False.
    """
    if not include_synthetic:
        projects = projects[~synthetic_mask(projects)]
    if not include_outside:
        projects = projects[~outside_mask(projects)]
    if simplify_m < 0:
        raise ValueError("simplify_m must be >= 0")
    result_types = resolve_types(types)
    distance_m = float(distance_m)
    if not math.isfinite(distance_m) or distance_m <= 0:
        raise ValueError(f"distance must be a positive number of metres, got {distance_m}")
    chosen, _ = chosen_projects(projects, result_types)
    hidden = ward_only_mask(chosen)
    public = chosen[~hidden].to_crs(boundaries.BNG)
    area = boundaries.load("borough") if region is None else region
    if area.crs is None:
        raise ValueError("region has no coordinate reference system")
    outline = shapely.union_all(area.to_crs(boundaries.BNG).geometry.values)
    x, y = public.geometry.x.to_numpy(), public.geometry.y.to_numpy()
    if len(public):
        circles = shapely.buffer(shapely.points(x, y), distance_m * grid_scale(x, y), quad_segs=16)
        outline = shapely.difference(outline, shapely.union_all(circles))
    if simplify_m:
        outline = shapely.simplify(outline, simplify_m, preserve_topology=True)
    note = (
        f"Out of straight-line reach ({distance_m:,.0f} m) of {type_phrase(result_types)}. "
        f"{int(hidden.sum())} home-run project(s) left out of this surface so their position "
        "cannot be read from it; coverage figures count them."
    )
    if not include_outside:
        note += " Only projects inside the region count (for comparison)."
    return gpd.GeoDataFrame(
        {
            "types": [",".join(result_types)],
            "distance_m": [distance_m],
            "projects_drawn": [len(public)],
            "ward_only_left_out": [int(hidden.sum())],
            "area_km2": [round(shapely.area(outline) / 1e6, 2)],
            "note": [note],
        },
        geometry=[outline],
        crs=boundaries.BNG,
    ).to_crs(boundaries.WGS84)


def area_layer(
    table: pd.DataFrame, level: str, directory: Path = BOUNDARIES_DIR
) -> gpd.GeoDataFrame:
    """A coverage or gaps table joined to its area polygons (EPSG:4326), for maps and export."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    code = LEVELS[level][0]
    shapes = boundaries.load(level, directory)[[code, "geometry"]]
    keys = table[code].astype("string")
    geometry = keys.map(dict(zip(shapes[code].astype("string"), shapes.geometry, strict=True)))
    layer = gpd.GeoDataFrame(table.copy(), geometry=geometry.to_numpy(), crs=boundaries.WGS84)
    layer.attrs = dict(table.attrs)
    return layer
