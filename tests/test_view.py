"""The view carried by the link: query <-> view <-> widgets, and what a view shows."""

import pandas as pd

from kindred_map import (
    figures,
    privacy,
)
from kindred_map import view as views

LIVERPOOL = "E08000012"


def test_default_view_has_an_empty_query():
    assert views.view_to_query(views.View()) == {}
    assert views.view_from_query({}) == (views.View(), [])


def test_every_view_field_round_trips_through_the_query():
    ward = next(iter(figures.area_choices("ward")))
    deanery = next(iter(figures.area_choices("deanery")))
    view = views.View(
        types=("food_bank", "pantry"),
        boroughs=(LIVERPOOL, "E08000014"),
        deaneries=(deanery,),
        wards=(ward,),
        imd=(1, 2),
        layer="ward",
        measure="gap_per_1000",
        postcode="L1 8JQ",
        distance=1200,
        area=ward,
        gaps=True,
        clusters=True,
        eps=300,
        min_samples=4,
    )
    query = views.view_to_query(view)
    assert all(isinstance(value, str) for value in query.values())
    assert query["boroughs"] == f"{LIVERPOOL},E08000014"
    assert views.view_from_query(query) == (view, [])
    # Widgets hold lists and numbers: the same view comes back from them.
    assert views.view_from_state(views.widget_values(view)) == view


def test_a_link_may_name_areas_and_repeat_keys():
    view, problems = views.view_from_query(
        {"boroughs": ["liverpool", "Sefton"], "types": "food_bank,food_bank"}
    )
    assert problems == []
    assert view.boroughs == (LIVERPOOL, "E08000014")
    assert view.types == ("food_bank",)


def test_bad_link_values_are_ignored_with_a_message_each():
    view, problems = views.view_from_query(
        {
            "types": "food_bank,spaceship",
            "boroughs": "Atlantis",
            "imd": "0,3,x",
            "layer": "parish",
            "distance": "-5",
            "eps": "1e9",
            "area": "E05999999",
        }
    )
    assert view == views.View(types=("food_bank",), imd=(3,))
    assert len(problems) == 8
    joined = " ".join(problems)
    for word in ("spaceship", "Atlantis", "'0'", "'x'", "parish", "'-5'", "E05999999"):
        assert word in joined


def test_area_of_another_layer_is_not_taken_from_the_link():
    borough_view, problems = views.view_from_query({"layer": "borough", "area": LIVERPOOL})
    assert borough_view.area == LIVERPOOL and problems == []
    ward_view, problems = views.view_from_query({"area": LIVERPOOL})
    assert ward_view.area == "" and problems


def test_home_run_project_is_shown_at_its_ward_centre_without_details(projects, shown, by_name):
    true = by_name(projects, "Home Welcome")
    drawn = by_name(shown, "Home Welcome")
    centre = privacy.ward_centres()[true["WD24CD"]]
    assert drawn.geometry.equals(centre)
    assert not drawn.geometry.equals(true.geometry)
    assert not drawn["address"] and drawn["postcode"] == "L20"
    assert pd.isna(drawn["LSOA21CD"]) and pd.isna(drawn["imd_decile"])


def test_filters_select_projects_and_imd_filter_drops_home_run(projects, shown):
    liverpool = views.shown_projects(projects, views.View(boroughs=(LIVERPOOL,), examples=True))
    assert set(liverpool["LAD25CD"]) == {LIVERPOOL}
    assert len(liverpool) == int((projects["LAD25CD"] == LIVERPOOL).sum())
    deprived = views.shown_projects(projects, views.View(imd=(1,), examples=True))
    expected = projects[(projects["imd_decile"] == 1).fillna(False).to_numpy()]
    expected = expected[expected["location_precision"] != "ward_only"]
    assert sorted(deprived["id"]) == sorted(expected["id"])
    assert "Home Welcome" not in set(deprived["name"])


def test_illustrative_examples_are_shown_only_when_asked_for(projects):
    synthetic = projects["synthetic"].fillna(False).astype(bool)
    assert synthetic.any()
    hidden = views.shown_projects(projects, views.View())
    assert sorted(hidden["id"]) == sorted(projects.loc[~synthetic, "id"])
    assert len(views.shown_projects(projects, views.View(examples=True))) == len(projects)
    view, problems = views.view_from_query({"examples": "1"})
    assert view.examples and not problems
    assert views.view_to_query(view) == {"examples": "1"}


def test_map_position_goes_into_the_link_and_back():
    view = views.View(zoom=13, lat=53.40812, lon=-2.99157)
    query = views.view_to_query(view)
    assert query == {"zoom": "13", "lat": "53.40812", "lon": "-2.99157"}
    assert views.view_from_query(query) == (view, [])
    assert views.view_from_state(views.widget_values(view)) == view
    wrong, problems = views.view_from_query({"zoom": "13", "lat": "953", "lon": "-2.9"})
    assert (wrong.zoom, wrong.lat, wrong.lon) == (0, 0.0, 0.0)
    assert len(problems) == 1 and "map position" in problems[0]
