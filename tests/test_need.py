"""Need over time: IMD 2019 -> 2025 per LSOA 2021 against the published files, and per area."""

import os

import numpy as np
import pandas as pd
import pytest

from kindred_map import boundaries, build, cli, columns, need
from kindred_map.paths import DEFAULT_RAW_DIR

needs_raw = pytest.mark.skipif(
    not DEFAULT_RAW_DIR.is_dir() and os.environ.get("CI") != "true",
    reason=f"raw data not found at {DEFAULT_RAW_DIR}",
)


@pytest.fixture(scope="module")
def table():
    return need.load_imd_change()


def _raw(key):
    return pd.read_csv(DEFAULT_RAW_DIR / need.RAW[key])


@needs_raw
def test_unchanged_lsoas_carry_both_published_files(table):
    lookup = _raw("lookup")
    unchanged = lookup[lookup["change_code"] == "U"]
    iod19 = _raw("iod2019").set_index("lsoa11_code")
    iod25 = _raw("iod2025").set_index("lsoa21_code")
    mine = table.set_index("LSOA21CD").loc[unchanged["lsoa21_code"]]
    parents = unchanged["lsoa11_code"].to_numpy()
    assert len(mine) == len(unchanged) > 1300
    for short, (stem19, stem25, _title) in need.DOMAINS.items():
        assert (mine[f"{short}_rank_2019"].to_numpy() == iod19.loc[parents, f"{stem19}_rank"]).all()
        assert (
            mine[f"{short}_decile_2019"].to_numpy() == iod19.loc[parents, f"{stem19}_decile"]
        ).all()
        assert (mine[f"{short}_rank_2025"] == iod25.loc[mine.index, f"{stem25}_rank"]).all()
        assert (mine[f"{short}_decile_2025"] == iod25.loc[mine.index, f"{stem25}_decile"]).all()
        change = (
            iod25.loc[mine.index, f"{stem25}_decile"].to_numpy()
            - iod19.loc[parents, f"{stem19}_decile"].to_numpy()
        )
        assert (mine[f"{short}_decile_change"].to_numpy() == change).all()
    assert not mine["approximate"].any()


@needs_raw
def test_split_lsoas_take_their_parent_and_merged_ones_a_weighted_mean(table):
    lookup = _raw("lookup")
    iod19 = _raw("iod2019").set_index("lsoa11_code")
    mine = table.set_index("LSOA21CD")
    split = lookup[lookup["change_code"] == "S"]
    assert len(split) > 0
    for row in split.itertuples():
        assert mine.loc[row.lsoa21_code, "imd_rank_2019"] == iod19.loc[row.lsoa11_code, "IMD_rank"]
        assert mine.loc[row.lsoa21_code, "treatment"] == need.TREATMENTS["S"]
    merged = lookup[lookup["change_code"] == "M"].groupby("lsoa21_code")["lsoa11_code"]
    assert merged.ngroups == 3
    for code, parents in merged:
        ranks = iod19.loc[list(parents), "IMD_rank"]
        row = mine.loc[code]
        assert ranks.min() <= row["imd_rank_2019"] <= ranks.max()
        assert row["approximate"]
        assert row["imd_decile_2019"] == need.decile_of_rank([row["imd_rank_2019"]], 2019)[0]
        assert row["lsoa11_codes"] == ";".join(sorted(parents))


@needs_raw
@pytest.mark.parametrize(("key", "year"), [("iod2019", 2019), ("iod2025", 2025)])
def test_deciles_re_derived_from_ranks_match_the_published_ones(key, year):
    published = _raw(key)
    for stem in ("IMD", "Income", "Health", "Environment"):
        derived = need.decile_of_rank(published[f"{stem}_rank"], year)
        assert (derived == published[f"{stem}_decile"]).all()


def test_parent_weights_follow_residents_or_fall_back_to_equal_shares():
    lookup = pd.DataFrame(
        {"lsoa21_code": ["A", "A", "B", "B"], "lsoa11_code": ["p", "q", "r", "s"]}
    )
    postcodes = pd.DataFrame(
        {"LSOA21CD": ["A", "A", "A"], "lsoa11cd": ["p", "q", "q"], "residents": [10, 20, 10]}
    )
    weights = need.parent_weights(lookup, postcodes).set_index(["lsoa21_code", "lsoa11_code"])
    assert weights.loc[("A", "p"), "weight"] == pytest.approx(10 / 40)
    assert weights.loc[("A", "q"), "weight"] == pytest.approx(30 / 40)
    assert weights.loc[("B", "r"), "weight"] == pytest.approx(0.5)


@needs_raw
def test_shipped_table_equals_a_fresh_build(table):
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    fresh = need.build_imd_change(
        DEFAULT_RAW_DIR, boundaries.load("lsoa"), build._postcode_lsoa11(DEFAULT_RAW_DIR, live)
    )
    pd.testing.assert_frame_equal(fresh, table)
    meta = need.imd_change_metadata()
    assert meta["licence"] == boundaries.OGL
    assert any("Indices of Deprivation 2019" in line for line in meta["attribution"])
    assert meta["lsoas_by_change_code"]["M"] == 3


def _population():
    """Four postcodes in two wards over three LSOAs."""
    return pd.DataFrame(
        {
            "WD24CD": ["W1", "W1", "W2", "W2"],
            "WD24NM": ["One", "One", "Two", "Two"],
            "LSOA21CD": ["L1", "L2", "L3", "L2"],
            "residents": [100, 300, 50, 10],
        }
    )


def _lsoa_table():
    rows = {"LSOA21CD": ["L1", "L2", "L3"], "approximate": [False, True, False]}
    rows |= {"imd_pct_2019": [10.0, 50.0, 60.0], "imd_pct_2025": [12.0, 52.0, 55.0]}
    for short in need.DOMAINS:
        rows[f"{short}_decile_2019"] = [1, 5, 6]
        rows[f"{short}_decile_2025"] = [2, 5, 6]
    return pd.DataFrame(rows)


def test_need_by_area_weights_by_residents():
    out = need.need_by_area("ward", _population(), _lsoa_table()).set_index("WD24CD")
    assert out.loc["W1", "imd_pct_2019"] == pytest.approx((100 * 10.0 + 300 * 50.0) / 400)
    assert out.loc["W1", "imd_pct_2025"] == pytest.approx((100 * 12.0 + 300 * 52.0) / 400)
    assert out.loc["W2", "imd_pct_change"] == pytest.approx(
        (50 * 55.0 + 10 * 52.0) / 60 - (50 * 60.0 + 10 * 50.0) / 60, abs=0.01
    )
    assert out.loc["W1", "imd_decile_2019"] == 5  # 300 of 400 residents in decile 5
    assert out.loc["W1", "residents_deciles_1_2_2019"] == 100
    assert out.loc["W1", "residents_deciles_1_2_2025"] == 100
    assert out.loc["W1", "residents_approximate_2019"] == 300
    assert out.loc["W2", "residents_approximate_2019"] == 10
    assert out.loc["W2", "imd_decile_change"] == 0
    assert out["need_rose"].to_dict() == {"W1": False, "W2": True}
    assert out["population"].to_dict() == {"W1": 400, "W2": 60}


def test_need_and_reach_says_which_basis_it_used():
    need_table = need.need_by_area("ward", _population(), _lsoa_table())
    now = pd.DataFrame(
        {"WD24CD": ["W1", "W2"], "population": [400, 60], "reached": [400, 0]}
    ).assign(beyond_reach=lambda f: f["population"] - f["reached"])
    now["pct_covered"] = 100 * now["reached"] / now["population"]
    flagged = need.need_and_reach(need_table, now).set_index("WD24CD")
    assert (flagged["reach_basis"] == "now").all()
    assert flagged.loc["W2", "need_rose_reach_not"]
    assert not flagged.loc["W1", "need_rose_reach_not"]
    before = now.assign(pct_covered=[100.0, 0.0])
    between = need.need_and_reach(need_table, now, before).set_index("WD24CD")
    assert (between["reach_basis"] == "between dates").all()
    assert between.loc["W2", "reach_not_improved"]  # 0% then, 0% now
    improved = need.need_and_reach(need_table, now.assign(pct_covered=[100.0, 20.0]), before)
    assert not improved.set_index("WD24CD").loc["W2", "need_rose_reach_not"]


def test_need_by_area_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="unknown level"):
        need.need_by_area("parish")


def test_cli_need_writes_a_described_csv(tmp_path, capsys):
    out = tmp_path / "need.csv"
    code = cli.main(["need", "--by", "borough", "--types", "food_bank", "-o", str(out)])
    assert code == 0
    assert "borough areas: 9" in capsys.readouterr().out
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert len(table) == 9
    assert table["population"].sum() == boundaries.load("borough")["population"].sum()
    for name in table.columns:
        columns.describe(name, "need_borough")
    about = (tmp_path / "need_about.txt").read_text(encoding="utf-8")
    assert "English Indices of Deprivation 2019" in about
    assert np.isfinite(table["imd_pct_change"]).all()
