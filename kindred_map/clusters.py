"""Where projects bunch together: DBSCAN point clusters and Getis-Ord Gi* hot and cold spots.

Both are exploratory. Point clusters are drawn as buffered convex hulls of at least 3 precisely
located projects, with counts by type and no per-project coordinates; home-run (``ward_only``)
projects are left out of them, so no hull can give a home away. Hot spots are computed per ward,
where home-run projects count in their ward like any other.
"""

import warnings
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from kindred_map import boundaries
from kindred_map.coverage import chosen_projects, synthetic_mask, ward_only_mask
from kindred_map.schema import resolve_types

# scikit-learn and PySAL (esda, libpysal) are imported inside the functions that use them: they
# take seconds to import, and the dashboard imports this module but clusters only when asked.

DEFAULT_EPS_M = 500.0
DEFAULT_MIN_SAMPLES = 3
DEFAULT_HULL_BUFFER_M = 50.0
DEFAULT_PERMUTATIONS = 999
DEFAULT_SEED = 2021
DEFAULT_ALPHA = 0.05

HOT, COLD, NOT_SIGNIFICANT = "hot", "cold", "not significant"
EXPLORATORY_NOTE = (
    "Exploratory: Getis-Ord Gi* (star) on projects per 10,000 residents by ward, Queen "
    "contiguity, two-sided permutation p-values with a Benjamini-Hochberg false-discovery-rate "
    "correction. Shows where provision is unusually dense or sparse for its neighbourhood; "
    "not evidence of need on its own."
)


def point_clusters(
    projects: gpd.GeoDataFrame,
    types: str | Iterable[str] | None = None,
    eps_m: float = DEFAULT_EPS_M,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    hull_buffer_m: float = DEFAULT_HULL_BUFFER_M,
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """DBSCAN clusters of projects in metres (EPSG:27700), as hulls with counts by type.

    A project is in a cluster when at least ``min_samples`` projects (itself included) lie
    within ``eps_m`` of it, or it is within ``eps_m`` of such a project. Each cluster is its
    members' convex hull buffered by ``hull_buffer_m``; columns: cluster_id (1 = largest),
    projects, one ``n_<type>`` count per chosen type, n_synthetic (illustrative records, not
    real projects), area_km2. Returned in EPSG:4326;
    ``attrs`` records the parameters, unclustered projects and home-run projects left out.
    ``min_samples`` must be at least 3 so that every hull has 3 or more projects.
    Illustrative (synthetic) records are left out unless ``include_synthetic``.
    """
    if not eps_m > 0:
        raise ValueError(f"eps_m must be a positive number of metres, got {eps_m}")
    if int(min_samples) != min_samples or min_samples < 3:
        raise ValueError(f"min_samples must be a whole number >= 3, got {min_samples}")
    if not hull_buffer_m > 0:
        raise ValueError(f"hull_buffer_m must be positive, got {hull_buffer_m}")
    from sklearn.cluster import DBSCAN

    types = resolve_types(types)
    if not include_synthetic:
        projects = projects[~synthetic_mask(projects)]
    chosen, unlocated = chosen_projects(projects, types)
    hidden = ward_only_mask(chosen)
    public = chosen[~hidden].to_crs(boundaries.BNG)
    xy = np.column_stack([public.geometry.x.to_numpy(), public.geometry.y.to_numpy()])
    kinds = public["type"].astype(str).to_numpy()
    synthetic = synthetic_mask(public)
    order = np.lexsort((kinds, xy[:, 1], xy[:, 0])) if len(xy) else np.array([], dtype=int)
    xy, kinds, synthetic = xy[order], kinds[order], synthetic[order]
    labels = (
        DBSCAN(eps=eps_m, min_samples=int(min_samples)).fit(xy).labels_
        if len(xy)
        else np.array([], dtype=int)
    )
    rows = []
    for label in sorted(set(labels) - {-1}):
        members = labels == label
        hull = shapely.multipoints(xy[members]).convex_hull.buffer(hull_buffer_m, quad_segs=8)
        row = {"projects": int(members.sum())}
        row |= {f"n_{kind}": int((kinds[members] == kind).sum()) for kind in types}
        row |= {"n_synthetic": int(synthetic[members].sum())}
        row |= {"area_km2": round(hull.area / 1e6, 3), "geometry": hull}
        rows.append(row)
    columns = ["projects", *[f"n_{kind}" for kind in types], "n_synthetic", "area_km2"]
    frame = pd.DataFrame(rows, columns=[*columns, "geometry"])
    frame = frame.sort_values("projects", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(0, "cluster_id", np.arange(1, len(frame) + 1))
    frame["exploratory"] = True
    clusters = gpd.GeoDataFrame(frame, geometry="geometry", crs=boundaries.BNG)
    clusters = clusters.to_crs(boundaries.WGS84)
    clusters.attrs = {
        "types": ",".join(types),
        "eps_m": float(eps_m),
        "min_samples": int(min_samples),
        "clustered": int((labels >= 0).sum()),
        "not_clustered": int((labels < 0).sum()),
        "ward_only_left_out": int(hidden.sum()),
        "unlocated_left_out": unlocated,
    }
    return clusters


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    q_(i) = min over j >= i of p_(j) * m / j for the sorted p-values, capped at 1; reject at
    false-discovery rate alpha where q <= alpha."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie between 0 and 1")
    order = np.argsort(p, kind="stable")
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(adjusted, 1.0)
    return q


def two_sided_p(observed, simulated) -> np.ndarray:
    """Two-sided permutation p-values: twice the smaller tail, capped at 1.

    ``observed``: (n,) statistics; ``simulated``: (n, permutations). Each tail counts the
    observed value itself: (#{sim >= obs} + 1) / (R + 1), likewise for <=."""
    observed = np.asarray(observed, dtype=float)[:, None]
    simulated = np.asarray(simulated, dtype=float)
    draws = simulated.shape[1]
    upper = ((simulated >= observed).sum(axis=1) + 1) / (draws + 1)
    lower = ((simulated <= observed).sum(axis=1) + 1) / (draws + 1)
    return np.minimum(1.0, 2 * np.minimum(upper, lower))


def _ward_counts(chosen: gpd.GeoDataFrame, wards: gpd.GeoDataFrame) -> tuple[pd.Series, int]:
    """Projects per ward code: the stored ward where known, else the ward polygon it lies in."""
    codes = pd.Series(pd.NA, index=chosen.index, dtype="string")
    if "WD24CD" in chosen.columns:
        codes = chosen["WD24CD"].astype("string").str.strip().replace("", pd.NA)
    unknown = codes.isna().to_numpy()
    if unknown.any():
        points = chosen[unknown].to_crs(boundaries.BNG)[["geometry"]]
        shapes = wards.to_crs(boundaries.BNG)[["WD24CD", "geometry"]].sort_values("WD24CD")
        inside = gpd.sjoin(points, shapes, how="inner", predicate="intersects")
        inside = inside[~inside.index.duplicated()]
        codes.loc[inside.index] = inside["WD24CD"].astype("string")
    known = codes[codes.isin(wards["WD24CD"].astype("string")).fillna(False)]
    return known.value_counts(), int(len(codes) - len(known))


def hot_spots(
    projects: gpd.GeoDataFrame,
    types: str | Iterable[str] | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
    alpha: float = DEFAULT_ALPHA,
    wards: gpd.GeoDataFrame | None = None,
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """Hot and cold spots of provision per ward (exploratory): Getis-Ord Gi* with FDR.

    y = projects of the types per 10,000 residents in each ward (a project counts in its
    stored ward, else the ward polygon it lies in). Gi* (esda.G_Local, star=True, binary Queen
    contiguity; Wirral, across the Mersey, is its own component) with ``permutations``
    conditional permutations under a fixed ``seed``. ``gi_z`` is the z-score against the
    permutations; the two-sided permutation p-values (either tail: a hot or a cold spot) get a
    Benjamini-Hochberg correction, and
    a ward is ``hot`` (z > 0) or ``cold`` (z < 0) when its q-value is at most ``alpha``.
    ``wards``: polygons with WD24CD, WD24NM and population (default: the shipped wards).
    Returned in EPSG:4326 with an ``exploratory`` column and ``note``. Illustrative
    (synthetic) records are left out unless ``include_synthetic``.
    """
    if int(permutations) != permutations or permutations < 99:
        raise ValueError(f"permutations must be a whole number >= 99, got {permutations}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, got {alpha}")
    import esda
    import libpysal

    types = resolve_types(types)
    if not include_synthetic:
        projects = projects[~synthetic_mask(projects)]
    chosen, unlocated = chosen_projects(projects, types)
    wards = boundaries.load("ward") if wards is None else wards.to_crs(boundaries.WGS84)
    missing = [c for c in ("WD24CD", "population") if c not in wards.columns]
    if missing:
        raise ValueError(f"wards lack columns {missing}")
    wards = wards.reset_index(drop=True)
    counts, outside = _ward_counts(chosen, wards)
    result = wards[[c for c in ("WD24CD", "WD24NM", "LAD24NM") if c in wards.columns]].copy()
    result["population"] = wards["population"].astype("int64")
    result["projects"] = result["WD24CD"].astype("string").map(counts).fillna(0).astype("int64")
    people = result["population"].where(result["population"] > 0)
    result["per_10k"] = (10_000 * result["projects"] / people).fillna(0.0)
    y = result["per_10k"].to_numpy(dtype=float)
    z = np.full(len(y), np.nan)
    p = np.ones(len(y))
    if len(y) >= 3 and np.ptp(y) > 0:
        with warnings.catch_warnings():
            # Wirral is its own component; G_Local's own p-values (replaced below) warn of a
            # change of default alternative.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            weights = libpysal.weights.Queen.from_dataframe(
                wards.to_crs(boundaries.BNG), use_index=False, silence_warnings=True
            )
            gi = esda.G_Local(
                y,
                weights,
                transform="B",
                permutations=int(permutations),
                star=True,
                keep_simulations=True,
                n_jobs=1,
                seed=int(seed),
            )
        z = np.asarray(gi.z_sim, dtype=float)
        p = two_sided_p(gi.Gs, gi.rGs)
    q = benjamini_hochberg(p)
    significant = q <= alpha
    result["per_10k"] = result["per_10k"].round(3)
    result["gi_z"] = np.round(z, 3)
    result["p_value"] = p
    result["q_value"] = np.round(q, 4)
    result["spot"] = np.select(
        [significant & (z > 0), significant & (z < 0)], [HOT, COLD], default=NOT_SIGNIFICANT
    )
    result["exploratory"] = True
    result["note"] = EXPLORATORY_NOTE
    spots = gpd.GeoDataFrame(result, geometry=wards.geometry.values, crs=boundaries.WGS84)
    spots.attrs = {
        "types": ",".join(types),
        "permutations": int(permutations),
        "seed": int(seed),
        "alpha": float(alpha),
        "projects_counted": int(result["projects"].sum()),
        "projects_outside_wards": outside,
        "unlocated_left_out": unlocated,
        "degenerate": bool(np.isnan(z).all()),
    }
    return spots


def summary_text(clusters: gpd.GeoDataFrame, spots: gpd.GeoDataFrame) -> str:
    """What `point_clusters` and `hot_spots` found, as a few plain lines."""
    info = clusters.attrs
    lines = [
        f"{len(clusters)} cluster(s) of projects within {info['eps_m']:,.0f} m of each other "
        f"(DBSCAN, at least {info['min_samples']} projects): {info['clustered']} project(s) in "
        f"clusters, {info['not_clustered']} not clustered."
    ]
    synthetic = int(clusters["n_synthetic"].sum()) if len(clusters) else 0
    if synthetic:
        lines.append(f"{synthetic} clustered project(s) are synthetic examples, not real.")
    if info["ward_only_left_out"]:
        lines.append(f"{info['ward_only_left_out']} home-run project(s) left out of the hulls.")
    lines.append("Hot and cold spots of projects per 10,000 residents by ward (exploratory):")
    if spots.attrs["degenerate"]:
        lines.append("  none: every ward has the same rate, so there is nothing to compare.")
        return "\n".join(lines)
    for kind in (HOT, COLD):
        chosen = spots[spots["spot"] == kind].sort_values("gi_z", ascending=kind == COLD)
        names = ", ".join(chosen["WD24NM"].astype(str)) if "WD24NM" in chosen else ""
        lines.append(f"  {kind}: {len(chosen)} ward(s){': ' + names if names else ''}")
    if (spots["spot"] == NOT_SIGNIFICANT).all():
        lines.append("  No ward stands out once the false-discovery rate is controlled.")
    lines.append(
        f"  q-value <= {spots.attrs['alpha']} after Benjamini-Hochberg; "
        f"{spots.attrs['permutations']} permutations, seed {spots.attrs['seed']}."
    )
    return "\n".join(lines)
