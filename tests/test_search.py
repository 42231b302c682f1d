"""Postcode search: finding a postcode, the nearest projects, and the same from the CLI."""

import numpy as np
import pytest
from pyproj import Transformer

from kindred_map import (
    boundaries,
    cli,
    search,
)

XSS = "<img src=x onerror=alert(1)>"


def test_find_postcode_normalises_and_explains_failures():
    point = search.find_postcode(" l18jq ")
    assert point["postcode"] == "L1 8JQ" and point["status"] == "live"
    with pytest.raises(ValueError) as unknown:
        search.find_postcode("zz1 1zz")
    assert str(unknown.value) == (
        "Postcode ZZ1 1ZZ is not a live or terminated postcode in the region"
    )
    with pytest.raises(ValueError, match="not a valid UK postcode"):
        search.find_postcode("hello")
    with pytest.raises(ValueError, match="Enter a postcode"):
        search.find_postcode("  ")
    postcodes = boundaries.load("postcode")
    ended = postcodes[postcodes["status"] == "terminated"].iloc[0]["postcode"]
    assert "approximate" in search.find_postcode(ended)["note"]
    chester = search.find_postcode("ch1 1ab")
    assert chester["postcode"] == "CH1 1AB" and "outside the region" in chester["note"]
    assert search.find_postcode("L1 8JQ")["note"] == ""


def test_nearest_projects_are_sorted_by_grid_distance(shown):
    point = search.find_postcode("L1 8JQ")
    nearest = search.nearest_projects(shown, point, 800)
    assert len(nearest) == len(shown)
    assert nearest["Distance (m)"].is_monotonic_increasing
    to_grid = Transformer.from_crs(boundaries.WGS84, boundaries.BNG, always_xy=True)
    for row in nearest.itertuples(index=False):
        place = shown[shown["id"] == row.Id].geometry.iloc[0]
        x, y = to_grid.transform(place.x, place.y)
        expected = np.hypot(x - point["easting"], y - point["northing"])
        assert abs(row[2] - expected) <= 0.5
        assert row[3] == (expected <= 800)
    assert nearest.iloc[0]["Name"] == XSS and nearest.iloc[0]["Distance (m)"] < 50
    home = nearest[nearest["Name"] == "Home Welcome"].iloc[0]
    assert "ward centre" in home["Note"]
    text = search.nearest_text(point, nearest, 800, 3)
    assert text.splitlines()[0].startswith(f"L1 8JQ (live): {int(nearest['Within reach'].sum())}")
    assert len(text.splitlines()) == 4


def test_the_nearest_few_are_the_head_of_the_whole_list(shown):
    """The dashboard asks for the nearest ten only: the same rows, in the same order."""
    point = search.find_postcode("WN1 1XL")
    everything = search.nearest_projects(shown, point, 5000)
    for limit in (0, 1, 3, len(everything) + 5):
        few = search.nearest_projects(shown, point, 5000, limit=limit)
        assert few.equals(everything.head(limit).reset_index(drop=True))
    distance = search.distances_m(shown, point)
    assert int((distance <= 5000).sum()) == int(everything["Within reach"].sum())
    unplaced = shown.copy()
    unplaced.loc[unplaced.index[0], unplaced.geometry.name] = None
    assert np.isnan(search.distances_m(unplaced, point)[0])
    assert len(search.nearest_projects(unplaced, point, 800)) == len(shown) - 1


def test_cli_nearest_and_area(store_file, capsys):
    assert cli.main(["nearest", "l18jq", "--distance", "800", "--store", str(store_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("L1 8JQ (live):") and XSS in out and " m  " in out
    assert cli.main(["nearest", "ZZ1 1ZZ", "--store", str(store_file)]) == 2
    assert "not a live or terminated postcode" in capsys.readouterr().err
    code = cli.main(["area", "borough", "Liverpool", "--store", str(store_file)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Borough: Liverpool") and "Population (Census 2021)" in out


def test_name_search_ignores_case_accents_and_punctuation(shown):
    renamed = shown.assign(name=shown["name"].replace("Wigan Warm Space", "Café Zoë's Wárm Space"))
    found = search.find_by_name(renamed, "cafe zoes")
    assert found.empty, "an apostrophe splits words: 'zoe s', not 'zoes'"
    found = search.find_by_name(renamed, "  CAFÉ zoe  ")
    assert found["Name"].tolist() == ["Café Zoë's Wárm Space"]
    assert found["Id"].tolist() == ["dashboard-projects:dash-05"]
    warm = search.find_by_name(renamed, "warm space")
    assert set(warm["Id"]) == {
        "dashboard-projects:dash-05",
        "dashboard-projects:dash-08",
        "dashboard-projects:dash-11",
    }
    assert search.find_by_name(renamed, "").empty, "an empty query lists nothing"


def test_name_search_puts_names_starting_with_the_query_first(shown):
    found = search.find_by_name(shown, "pantry")
    assert found["Name"].tolist() == ["Coordinates Only Pantry", "Example Pantry"]
    found = search.find_by_name(shown, "example")
    assert found["Name"].tolist()[0] == "Example Pantry", "starts with the query"
    assert len(search.find_by_name(shown, "a", limit=2)) == 2


def test_name_search_finds_by_organisation_and_refuses_long_queries(shown):
    assert search.find_by_name(shown, "trussell")["Id"].tolist() == ["dashboard-projects:dash-04"]
    with pytest.raises(ValueError, match="at most"):
        search.find_by_name(shown, "x" * (search.NAME_QUERY_MAX_CHARS + 1))
