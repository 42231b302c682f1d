"""Placing rows offline: postcodes (live, terminated, unknown) and every kind of coordinate slip."""

import re
import sys

import numpy as np
import pandas as pd
import pytest

from kindred_map import boundaries, geocode
from kindred_map.postcodes import WHITESPACE, pcd_key
from kindred_map.schema import RECORD_FIELDS


@pytest.fixture(scope="module")
def postcodes() -> pd.DataFrame:
    return pd.DataFrame(boundaries.load("postcode").drop(columns="geometry")).set_index("pcd_key")


def _records(**columns) -> pd.DataFrame:
    count = len(next(iter(columns.values())))
    frame = pd.DataFrame({name: [""] * count for name in RECORD_FIELDS})
    for name, values in columns.items():
        frame[name] = values
    frame["name"] = [f"project {i}" for i in range(count)]
    frame["row"] = range(2, count + 2)
    return frame


def _issues_by_row(issues: pd.DataFrame) -> dict[int, str]:
    return issues.groupby("row")["reason"].agg(" | ".join).to_dict()


def test_postcodes_in_any_case_and_spacing_take_the_layers_position(postcodes):
    live = postcodes[postcodes["status"] == "live"].iloc[[0, 500, 5000]]
    typed = [live.index[0].lower(), f"  {live['postcode'].iloc[1]} ", live.index[2].title()]
    located, issues = geocode.locate(_records(postcode=typed))
    assert issues.empty
    assert located["postcode"].tolist() == live["postcode"].tolist()
    assert located["easting"].tolist() == live["easting"].tolist()
    assert located["northing"].tolist() == live["northing"].tolist()
    assert located["location_precision"].eq("street").all()
    assert located.crs.to_epsg() == 4326
    assert np.allclose(located.geometry.y, live["lat"], atol=1e-5)


def test_terminated_postcodes_warn_and_unknown_ones_reject(postcodes):
    terminated = postcodes[postcodes["status"] == "terminated"].iloc[0]
    typed = [terminated["postcode"], "ZZ99 9ZZ", "", "L1"]
    located, issues = geocode.locate(_records(postcode=typed))
    assert located["row"].tolist() == [2]
    assert located["easting"].iloc[0] == terminated["easting"]
    reasons = _issues_by_row(issues)
    assert "was terminated" in reasons[2] and "approximate" in reasons[2]
    assert issues.set_index("row").loc[[3, 4, 5], "level"].eq("rejected").all()
    assert "ZZ99 9ZZ is not a known postcode" in reasons[3]
    assert "no postcode or usable coordinates" in reasons[4]
    assert "'L1' is not a valid UK postcode" in reasons[5]


def test_unknown_postcode_with_coordinates_uses_the_coordinates():
    located, issues = geocode.locate(_records(postcode=["ZZ99 9ZZ"], lat=["53.41"], lon=["-2.98"]))
    assert len(located) == 1
    assert located["lat"].iloc[0] == pytest.approx(53.41)
    assert "coordinates used" in issues["reason"].iloc[0]
    assert issues["level"].eq("warning").all()


def test_swapped_lat_lon_are_put_right():
    located, issues = geocode.locate(_records(lat=["-2.98"], lon=["53.41"]))
    assert located["lat"].iloc[0] == pytest.approx(53.41)
    assert located["lon"].iloc[0] == pytest.approx(-2.98)
    assert "swapped" in issues["reason"].iloc[0]
    assert located["location_precision"].iloc[0] == "exact"


def test_british_national_grid_is_accepted_in_either_set_of_columns():
    located, issues = geocode.locate(
        _records(
            easting=["336684", "390042", ""],
            northing=["390042", "336684", ""],
            lat=["", "", "390042"],
            lon=["", "", "336684"],
        )
    )
    assert located["easting"].tolist() == [336684.0] * 3
    assert located["northing"].tolist() == [390042.0] * 3
    reasons = _issues_by_row(issues)
    assert 2 not in reasons
    assert "easting and northing are swapped" in reasons[3]
    assert "read as easting" in reasons[4]
    assert located["lat"].iloc[0] == pytest.approx(53.4034, abs=1e-3)


def test_postcode_and_coordinates_more_than_500_m_apart_use_the_postcode(postcodes):
    pc = postcodes.loc["L18JQ"]
    near_lat = pc["lat"] + 0.002  # ~220 m north
    located, issues = geocode.locate(
        _records(
            postcode=["L1 8JQ", "L1 8JQ"],
            lat=[str(near_lat), "53.45"],
            lon=[str(pc["lon"]), "-2.90"],
            location_precision=["", "exact"],
        )
    )
    near, far = located.iloc[0], located.iloc[1]
    assert near["lat"] == pytest.approx(near_lat, abs=1e-6)
    assert near["location_precision"] == "exact"
    assert far["easting"] == pc["easting"] and far["northing"] == pc["northing"]
    assert far["location_precision"] == "street"
    reasons = _issues_by_row(issues)
    assert 2 not in reasons
    assert "m from postcode L1 8JQ's position: the postcode's position was used" in reasons[3]


def test_nonsense_coordinates_are_named_and_the_row_rejected_without_a_postcode():
    located, issues = geocode.locate(
        _records(lat=["abc", "0", "91", "53.4"], lon=["-2.9", "0", "-2.9", ""])
    )
    assert located.empty
    reasons = _issues_by_row(issues)
    assert "'abc' is not a number" in reasons[2]
    assert "not valid coordinates" in reasons[3]
    assert "not valid coordinates" in reasons[4]
    assert "lat without lon" in reasons[5]
    assert set(issues.loc[issues["level"] == "rejected", "row"]) == {2, 3, 4, 5}


def test_decimal_commas_and_degree_signs_are_read():
    values = geocode.parse_number(pd.Series(["53,41", "-2.98°", "", "x"]))
    assert values.iloc[0] == pytest.approx(53.41)
    assert values.iloc[1] == pytest.approx(-2.98)
    assert values.iloc[2:].isna().all()


def test_postcode_row_is_the_postcode_index_row_without_building_the_index():
    """Issue 26: a postcode search reads one row of the layer (arrow) instead of the pandas
    index; it must give the same fields and values for live, terminated and outside postcodes."""
    index = geocode.postcode_index()
    keys = [
        index.index[index["status"].eq("live") & index["in_region"]][0],
        index.index[index["status"].eq("terminated")][0],
        index.index[~index["in_region"].astype(bool)][0],
    ]
    for key in keys:
        row = geocode.postcode_row(key)
        expected = index.loc[key]
        assert row["pcd_key"] == key
        for field in ("postcode", "status", "easting", "northing", "lat", "lon", "in_region"):
            assert row[field] == expected[field], (key, field)
    assert geocode.postcode_row("ZZ11ZZ") is None


def test_postcode_keys_drop_exactly_what_pythons_white_space_class_matches():
    """`postcodes.WHITESPACE` (run by pyarrow) is Python's ``\\s``: every code point it
    matches and no other, so keys are what ``str.replace(r"\\s+", "")`` gave."""
    every = [chr(point) for point in range(sys.maxunicode + 1)]
    python = {c for c in every if re.match(r"\s", c)}
    assert {c for c in every if re.fullmatch(WHITESPACE, c)} == python
    values = pd.Series([f"l8{c}1th{c}{c}" for c in sorted(python)] + ["ß l1", None, "L1\u200b8JQ"])
    expected = (
        values.astype("string")
        .str.upper()
        .map(lambda text: text if text is pd.NA else re.sub(r"\s+", "", text))
    )
    pd.testing.assert_series_equal(pcd_key(values), expected.astype("string"))
    assert pcd_key(values).iloc[0] == "L81TH"
