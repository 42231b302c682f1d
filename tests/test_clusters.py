"""Clusters: DBSCAN hulls on hand-placed points, Benjamini-Hochberg, Gi* on a synthetic lattice."""

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

from kindred_map import boundaries, clusters, coverage
from kindred_map.cli import main


def _projects_bng(points) -> gpd.GeoDataFrame:
    """Projects from (easting, northing, type, location_precision) tuples."""
    return gpd.GeoDataFrame(
        {"type": [p[2] for p in points], "location_precision": [p[3] for p in points]},
        geometry=gpd.points_from_xy([p[0] for p in points], [p[1] for p in points]),
        crs=boundaries.BNG,
    )


GROUP_A = [
    (340000, 390000, "food_bank", "exact"),
    (340150, 390000, "food_bank", "exact"),
    (340000, 390150, "warm_space", "street"),
    (340150, 390150, "warm_space", "exact"),
]
GROUP_B = [
    (345000, 390000, "pantry", "exact"),
    (345300, 390000, "pantry", "exact"),
    (345150, 390250, "pantry", "exact"),
]
NOISE = [(350000, 390000, "pantry", "exact")]
PAIR = [(355000, 390000, "food_bank", "exact"), (355100, 390000, "food_bank", "exact")]
HOME = [(340075, 390075, "food_bank", "ward_only")]


@pytest.fixture(scope="module")
def found() -> gpd.GeoDataFrame:
    points = _projects_bng(GROUP_A + GROUP_B + NOISE + PAIR + HOME)
    return clusters.point_clusters(points, "pantry,food_bank,warm_space", eps_m=500)


def test_dbscan_finds_the_two_groups_with_counts_by_type(found):
    assert found.crs == boundaries.WGS84
    assert found["cluster_id"].tolist() == [1, 2]
    assert found["projects"].tolist() == [4, 3]
    first, second = found.iloc[0], found.iloc[1]
    assert (first["n_food_bank"], first["n_warm_space"], first["n_pantry"]) == (2, 2, 0)
    assert (second["n_food_bank"], second["n_warm_space"], second["n_pantry"]) == (0, 0, 3)
    assert found.attrs["clustered"] == 7
    assert found.attrs["not_clustered"] == 3
    assert found.attrs["ward_only_left_out"] == 1
    assert found["exploratory"].all()


def test_hulls_hold_their_members_and_nothing_else(found):
    hulls = found.to_crs(boundaries.BNG).geometry
    for (x, y, *_), hull in [(p, hulls.iloc[0]) for p in GROUP_A] + [
        (p, hulls.iloc[1]) for p in GROUP_B
    ]:
        assert hull.contains(shapely.Point(x, y))
    for x, y, *_ in NOISE + PAIR:
        assert not hulls.union_all().contains(shapely.Point(x, y))
    # A 150 m square buffered by 50 m: 150^2 + 4 x 150 x 50 + pi x 50^2.
    assert hulls.iloc[0].area == pytest.approx(22500 + 30000 + np.pi * 2500, rel=0.01)


def test_outputs_carry_no_project_coordinates(found):
    assert set(found.geom_type) == {"Polygon"}
    revealing = {"lat", "lon", "easting", "northing", "address", "postcode", "name", "id"}
    assert not revealing & set(found.columns)


def test_synthetic_members_count_only_when_asked_for():
    points = _projects_bng(GROUP_B)
    points["synthetic"] = [True, True, False]
    assert clusters.point_clusters(points, "pantry").empty
    found = clusters.point_clusters(points, "pantry", include_synthetic=True)
    assert found["n_synthetic"].tolist() == [2]
    spots = clusters.hot_spots(points, "pantry", wards=_lattice(), include_synthetic=True)
    assert "2 clustered project(s) are synthetic" in clusters.summary_text(found, spots)


def test_home_run_projects_never_form_a_hull():
    homes = _projects_bng([(340000 + 10 * i, 390000, "food_bank", "ward_only") for i in range(5)])
    assert clusters.point_clusters(homes).empty


def test_eps_is_in_metres():
    line = _projects_bng([(340000 + 400 * i, 390000, "sto", "exact") for i in range(3)])
    assert clusters.point_clusters(line, "sto", eps_m=450)["projects"].tolist() == [3]
    assert clusters.point_clusters(line, "sto", eps_m=350).empty


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_samples": 2}, "min_samples"),
        ({"eps_m": 0}, "eps_m"),
        ({"types": "soup"}, "valid types"),
    ],
)
def test_bad_parameters_are_clear_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        clusters.point_clusters(_projects_bng(GROUP_A), **arguments)


def test_no_projects_gives_an_empty_layer():
    empty = clusters.point_clusters(_projects_bng(GROUP_A), "pantry")
    assert empty.empty
    assert "n_pantry" in empty.columns


def test_benjamini_hochberg_by_hand():
    # Sorted 0.01, 0.03, 0.04, 0.2 (m = 4): 0.04, 0.06, 0.0533, 0.2 -> running minimum from
    # the top: 0.04, 0.0533, 0.0533, 0.2.
    q = clusters.benjamini_hochberg([0.04, 0.01, 0.2, 0.03])
    assert q == pytest.approx([0.16 / 3, 0.04, 0.2, 0.16 / 3])
    assert clusters.benjamini_hochberg([0.9, 0.95]).tolist() == [0.95, 0.95]
    with pytest.raises(ValueError):
        clusters.benjamini_hochberg([0.5, 1.5])


def test_two_sided_permutation_p_by_hand():
    simulated = [[1, 2, 3, 4, 6], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
    # 5 vs 1-4,6: upper (1 + 1) / 6, lower (4 + 1) / 6 -> 2 x 2/6. 10: upper 1/6 -> 2/6.
    # 0: lower tail 1/6 -> 2/6.
    p = clusters.two_sided_p([5, 10, 0], simulated)
    assert p == pytest.approx([4 / 6, 2 / 6, 2 / 6])


def _lattice() -> gpd.GeoDataFrame:
    """10 x 10 square wards of 1 km, 10,000 residents each."""
    cells = [shapely.box(i * 1000, j * 1000, (i + 1) * 1000, (j + 1) * 1000) for j in range(10)
             for i in range(10)]  # fmt: skip
    return gpd.GeoDataFrame(
        {
            "WD24CD": [f"W{k:03d}" for k in range(100)],
            "WD24NM": [f"Ward {k}" for k in range(100)],
            "population": 10_000,
        },
        geometry=cells,
        crs=boundaries.BNG,
    )


def _block_projects() -> gpd.GeoDataFrame:
    """5 projects in each ward of the 3 x 3 block at the lattice's corner, none elsewhere."""
    points = [
        (i * 1000 + 200 + 100 * k, j * 1000 + 500, "pantry", "exact")
        for i in range(3)
        for j in range(3)
        for k in range(5)
    ]
    return _projects_bng(points)


def test_gi_star_finds_the_dense_block_as_a_hot_spot():
    spots = clusters.hot_spots(_block_projects(), "pantry", wards=_lattice())
    by_ward = spots.set_index("WD24CD")
    assert by_ward.loc["W011", "projects"] == 5
    assert by_ward.loc["W011", "per_10k"] == 5.0
    assert spots["projects"].sum() == 45
    assert by_ward.loc["W011", "spot"] == clusters.HOT  # the block's centre
    hot = set(spots.loc[spots["spot"] == clusters.HOT, "WD24CD"])
    block_and_ring = {f"W{j * 10 + i:03d}" for i in range(4) for j in range(4)}
    assert hot <= block_and_ring
    assert not (spots["spot"] == clusters.COLD).any()
    far = by_ward.loc["W099"]
    assert far["spot"] == clusters.NOT_SIGNIFICANT
    assert (spots["q_value"] >= spots["p_value"] - 1e-9).all()
    assert spots["exploratory"].all()
    assert spots["note"].str.startswith("Exploratory").all()


def test_gi_star_is_reproducible_with_a_seed():
    first = clusters.hot_spots(_block_projects(), "pantry", wards=_lattice(), seed=5)
    again = clusters.hot_spots(_block_projects(), "pantry", wards=_lattice(), seed=5)
    assert first["p_value"].tolist() == again["p_value"].tolist()


def test_gi_star_without_projects_is_not_significant_everywhere():
    spots = clusters.hot_spots(_block_projects(), "sto", wards=_lattice())
    assert (spots["spot"] == clusters.NOT_SIGNIFICANT).all()
    assert spots.attrs["degenerate"]


def test_hot_spots_on_the_shipped_wards():
    sites = coverage.population_points().sample(200, random_state=5)
    projects = gpd.GeoDataFrame(
        {"type": ["warm_space"] * len(sites), "location_precision": ["exact"] * len(sites)},
        geometry=gpd.points_from_xy(sites["lon"], sites["lat"]),
        crs=boundaries.WGS84,
    )
    spots = clusters.hot_spots(projects, "warm_space", permutations=199)
    assert len(spots) == len(boundaries.load("ward"))
    assert spots["projects"].sum() + spots.attrs["projects_outside_wards"] == 200
    rate = 10_000 * spots["projects"] / spots["population"]
    assert np.allclose(spots["per_10k"], rate.round(3))
    assert set(spots["spot"]) <= {clusters.HOT, clusters.COLD, clusters.NOT_SIGNIFICANT}
    assert spots.loc[spots["spot"] == clusters.HOT, "gi_z"].gt(0).all()
    assert spots.loc[spots["spot"] == clusters.COLD, "gi_z"].lt(0).all()


def test_cli_clusters_writes_hulls_and_hot_spots(tmp_path, capsys):
    from kindred_map import store

    projects = _projects_bng(GROUP_A + GROUP_B + NOISE + PAIR + HOME).to_crs(boundaries.WGS84)
    projects["id"] = [f"p{i}" for i in range(len(projects))]
    path = tmp_path / "projects.gpkg"
    store.write_store(projects, store.read_imports(path), path, "2025-01-01T00:00:00Z")
    hulls, spots = tmp_path / "clusters.geojson", tmp_path / "spots.csv"
    args = ["clusters", "--store", str(path), "-o", str(hulls), "--hot-spots", str(spots)]
    assert main([*args, "--permutations", "99"]) == 0
    printed = capsys.readouterr().out
    assert "2 cluster(s)" in printed
    assert "exploratory" in printed
    document = json.loads(hulls.read_text())
    assert "crs" not in document
    assert [f["properties"]["projects"] for f in document["features"]] == [4, 3]
    assert spots.read_text().count("\n") == len(boundaries.load("ward")) + 1
    assert main(["clusters", "--store", str(path), "--min-samples", "1"]) == 2
