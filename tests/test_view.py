"""The view carried by the link: query <-> view <-> widgets, and what a view shows."""

from dataclasses import fields
from datetime import date

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kindred_map import (
    boundaries,
    figures,
    hours,
    privacy,
)
from kindred_map import view as views
from kindred_map.schema import project_types

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
        open_at="sat 10:00",
        inside_only=True,
    )
    query = views.view_to_query(view)
    assert all(isinstance(value, str) for value in query.values())
    assert query["boroughs"] == f"{LIVERPOOL},E08000014"
    assert query["open"] == "sat 10:00" and "open_at" not in query
    assert query["inside_only"] == "1"
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
            "open": "3am",
        }
    )
    assert view == views.View(types=("food_bank",), imd=(3,))
    assert len(problems) == 9
    joined = " ".join(problems)
    for word in ("spaceship", "Atlantis", "'0'", "'x'", "parish", "'-5'", "E05999999", "'3am'"):
        assert word in joined


def test_a_huge_link_list_is_refused_whole_with_a_message():
    """A 269 KB wards list (it cost 55 s of CPU) and a list of too many values are ignored,
    each with one message; every ward of the region, by code or by name, still fits."""
    huge = ",".join(["E05000000XX"] * 22_400)
    view, problems = views.view_from_query({"wards": huge})
    assert view.wards == ()
    assert problems == [
        f"Ignored wards in the link: {len(huge):,} characters; a list may hold at most "
        f"{views.LINK_LIST_MAX_CHARS:,}"
    ]
    view, problems = views.view_from_query({"types": ["food_bank"] * 251})
    assert view.types == ()
    assert problems == [
        f"Ignored types in the link: 251 values; a list may hold at most "
        f"{views.LINK_LIST_MAX_VALUES:,}"
    ]
    wards = boundaries.load("ward")
    view, problems = views.view_from_query({"wards": ",".join(wards["WD24CD"])})
    assert len(view.wards) == len(wards) and problems == []
    assert len(",".join(wards["WD24NM"])) <= views.LINK_LIST_MAX_CHARS


def test_many_bad_values_give_a_few_short_messages():
    view, problems = views.view_from_query({"boroughs": ",".join(["x" * 100] * 50)})
    assert view.boroughs == ()
    assert len(problems) == views.MAX_PROBLEMS
    assert problems[-1] == "... and 41 more values ignored in the link"
    assert all(len(problem) < 100 for problem in problems)


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
    half = views.View(zoom=11.5, lat=53.4, lon=-3.0)  # the map zooms in half steps
    assert views.view_to_query(half)["zoom"] == "11.5"
    assert views.view_from_query({"zoom": "11.4", "lat": "53.4", "lon": "-3"})[0] == half


QUERY_KEYS = [spec.name for spec in fields(views.View)] + ["open", "other", "TYPES", ""]
QUERY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["1", "0", "-1", "nan", "inf", "1e400", "ward", "lsoa", "gap_score", "L1 8JQ"]),
    st.sampled_from(
        ["pantry,food_bank", LIVERPOOL, "E05015288", "53.4", "-2.99", "13", ",,", "Weekend"]
    ),
)
QUERIES = st.dictionaries(
    st.sampled_from(QUERY_KEYS),
    st.one_of(QUERY_TEXT, st.lists(QUERY_TEXT, max_size=3)),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(QUERIES)
def test_any_link_gives_a_valid_view_and_messages_never_an_exception(query):
    view, problems = views.view_from_query(query)
    assert isinstance(view, views.View)
    assert all(isinstance(problem, str) and problem for problem in problems)
    assert set(view.types) <= set(project_types())
    assert view.layer in figures.LEVELS and view.measure in figures.MEASURES
    assert all(1 <= decile <= 10 for decile in view.imd)
    low, high = views.DISTANCE_LIMITS_M
    assert low <= view.distance <= high
    assert not view.area or view.area in figures.area_choices(view.layer)
    assert len(view.postcode) <= views.POSTCODE_MAX_CHARS
    assert len(view.project) <= views.PROJECT_ID_MAX_CHARS
    assert view.open_at in ("", *hours.OPEN_CHOICES)
    again, more = views.view_from_query(views.view_to_query(view))
    assert again == view and more == [], "a valid view's own link reproduces it silently"


def test_reach_distances_offered_with_walking_times():
    assert views.distance_label(800) == "800 m (10 min walk)"
    assert views.distance_label(850) == "850 m (11 min walk)"
    assert views.distance_label(5000) == "5,000 m (5 km)"
    assert views.distance_choices(800) == list(views.DISTANCE_CHOICES_M)
    offered = views.distance_choices(850)  # a link's distance is offered among the rest
    assert 850 in offered and offered == sorted(offered)
    assert set(views.DISTANCE_CHOICES_M) < set(offered)


MEASURES = ["reached_change", "gap_score_change"]


def test_change_view_goes_into_its_link_and_back():
    view = views.ChangeView(
        start=date(2025, 6, 1),
        level="deanery",
        distance=1200,
        types=("pantry", "warm_space"),
        measure="gap_score_change",
        area="7",
    )
    query = views.change_view_to_query(view)
    assert query == {
        "from": "2025-06-01",
        "level": "deanery",
        "distance": "1200",
        "types": "pantry,warm_space",
        "measure": "gap_score_change",
        "area": "7",
    }
    assert views.change_view_from_query(query, MEASURES) == (view, [])
    assert views.change_view_to_query(views.ChangeView()) == {}


def test_change_link_values_that_make_no_sense_are_reported_and_left_out():
    query = {"from": "last year", "level": "parish", "distance": "99999", "measure": "x"}
    view, problems = views.change_view_from_query(query | {"types": "pantry,ghosts"}, MEASURES)
    assert view == views.ChangeView(types=("pantry",))
    assert len(problems) == 5
    assert "'last year'" in problems[0] and "YYYY-MM-DD" in problems[0]


def test_change_widgets_left_at_their_defaults_leave_the_link_empty():
    today = date(2026, 11, 30)
    values = views.change_widget_values(views.ChangeView(), today, MEASURES)
    assert values["change_from"] == date(2025, 11, 30) and values["change_to"] == today
    assert values["change_measure"] == "reached_change" and values["change_area"] is None
    state = values | {"change_area": "E05000001"}  # the page's first area
    assert views.change_view_from_state(state, today, MEASURES, "E05000001") == views.ChangeView()
    later = views.change_view_from_state(state, date(2026, 12, 1), MEASURES, "E05000001")
    assert later.start == date(2025, 11, 30) and later.end == today  # kept, not relative


CHANGE_QUERIES = st.dictionaries(
    st.sampled_from(["from", "to", "level", "distance", "types", "measure", "area", "other"]),
    st.one_of(
        QUERY_TEXT,
        st.sampled_from(["2025-06-01", "2026-02-30", "deanery", "gap_score_change", "800"]),
        st.lists(QUERY_TEXT, max_size=3),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(CHANGE_QUERIES)
def test_any_change_link_gives_a_valid_view_and_messages_never_an_exception(query):
    view, problems = views.change_view_from_query(query, MEASURES)
    assert all(isinstance(problem, str) and problem for problem in problems)
    assert view.level in ("ward", "deanery", "borough") and view.measure in ("", *MEASURES)
    low, high = views.CHANGE_DISTANCE_LIMITS_M
    assert low <= view.distance <= high and set(view.types) <= set(project_types())
    assert views.change_view_from_query(views.change_view_to_query(view), MEASURES) == (view, [])
