"""The Change page: two dates, the map of the change, the ranked areas, an area over time."""

from datetime import date

import streamlit as st

from kindred_map import (
    change,
    changecharts,
    coverage,
    upload,
)
from kindred_map import view as views
from kindred_map.schema import project_types
from kindred_map.text import md_escape


@st.cache_data(max_entries=16, show_spinner="Replaying the history and measuring reach...")
def change_layer(signature: tuple, start: date, end: date, level: str, types: tuple, distance):
    return change.change_between(signature[0], start, end, level, types or None, distance)


@st.cache_data(max_entries=32, show_spinner="Drawing the area over time...")
def area_timeline(signature, level, code, start, end, types: tuple, distance):
    return change.timeline(signature[0], level, code, start, end, types or None, distance, 8)


@st.cache_data(max_entries=4, show_spinner=False)
def history_start(signature: tuple):
    return change.history_start(signature[0])


SAVED_CHANGE = "saved_change"
LINKED_CHANGE_AREA = "linked_change_area"


def restore_change_view(today: date) -> None:
    """The Change page's widgets from its link on the session's first visit, else from its last
    view (Streamlit forgets a page's widgets while another page is shown)."""
    measures = list(changecharts.MEASURES)
    if SAVED_CHANGE not in st.session_state:
        view, problems = views.change_view_from_query(st.query_params.to_dict(), measures)
        st.session_state[SAVED_CHANGE] = view
        st.session_state[LINKED_CHANGE_AREA] = view.area  # checked once the areas are known
        for problem in problems:
            st.warning(md_escape(problem))  # the link's text is shown as typed
    saved = st.session_state[SAVED_CHANGE]
    for key, value in views.change_widget_values(saved, today, measures).items():
        st.session_state.setdefault(key, value)


def known_change_dates(begins) -> str:
    """The page's dates moved to the history's first day when before it (before any date
    widget is drawn); the note saying so, or ""."""
    start, end = st.session_state["change_from"], st.session_state["change_to"]
    start, end, note = change.known_dates(begins, start, end)
    st.session_state["change_from"], st.session_state["change_to"] = start, end
    return note


def keep_change_in_url(view: views.ChangeView) -> None:
    st.session_state[SAVED_CHANGE] = view
    query = views.change_view_to_query(view)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def change_page() -> None:
    """Two dates (default a year ago and today, never before the store's history starts): the
    map of the change, where the gap grew and shrank most (only areas that moved that way) and
    a small chart of the chosen area over time; the choices are kept in the link. When nothing
    changed (a history that is only its baseline) the page says so instead of mapping zeros."""
    st.title("Change over time")
    try:
        signature = upload.store_signature()
        begins = history_start(signature)
    except ValueError as error:
        st.error(md_escape(error))
        st.stop()
    today = date.today()
    restore_change_view(today)
    note = known_change_dates(begins)
    st.caption(md_escape(begins.text() if begins else "The store has no history yet."))
    if note:
        st.info(md_escape(note))
    kinds = project_types()
    left, middle, right = st.columns(3)
    first_day = begins.on if begins else None
    start = left.date_input("From", key="change_from", min_value=first_day)
    end = left.date_input("To", key="change_to", min_value=first_day)
    level = middle.radio("Areas", change.LEVELS, horizontal=True, key="change_level")
    low, high = views.CHANGE_DISTANCE_LIMITS_M
    distance = middle.number_input("Reach (metres)", low, high, step=100, key="change_distance")
    types = right.multiselect(
        "Project types",
        list(kinds),
        format_func=lambda kind: kinds[kind]["label"],
        placeholder="All types",
        key="change_types",
    )
    measure = right.selectbox(
        "Colour the map by",
        list(changecharts.MEASURES),
        format_func=lambda key: changecharts.MEASURES[key][0],
        key="change_measure",
    )
    measures = list(changecharts.MEASURES)
    try:
        layer = change_layer(signature, start, end, level, tuple(types), distance)
    except ValueError as error:
        st.error(md_escape(error))
        st.stop()
    st.caption(
        f"{md_escape(change.totals_text(layer, level))}. Projects open at each date come from "
        "the store's history; both dates count the same Census 2021 residents, straight-line "
        "reach. Blue: better, orange: worse, white: no change."
    )
    if change.unchanged(layer):
        only_baseline = bool(begins and begins.baseline and not begins.changes)
        st.info(
            f"Nothing changed between {start} and {end}: no project opened, closed or moved, "
            f"so no {level}'s reach or gap moved. There is nothing to map or rank."
            + (
                " The history is only its baseline so far: change shows from the first "
                "import, addition, edit or retirement after it."
                if only_baseline
                else ""
            )
        )
        keep_change_in_url(views.change_view_from_state(st.session_state, today, measures, ""))
        return
    st.altair_chart(changecharts.choropleth(layer, level, measure))
    formats = {
        heading: st.column_config.NumberColumn(format=shown)
        for heading, shown in changecharts.table_formats().items()
    }
    for direction, heading in change.DIRECTIONS.items():
        st.subheader(f"Ranked: {heading}")
        moved = change.ranked(layer, direction)
        if moved.empty:
            st.caption(f"None: no {level}'s gap {direction} between {start} and {end}.")
            continue
        shown = changecharts.ranked_table(moved, level)
        st.dataframe(shown, column_config=formats, width="stretch")
    code, name = coverage.LEVELS[level]
    names = dict(zip(layer[code].astype(str), layer[name].astype(str), strict=True))
    linked = st.session_state.pop(LINKED_CHANGE_AREA, "")
    if linked and linked not in names:
        st.warning(md_escape(f"Ignored area {linked!r} in the link: not a {level} code"))
    if st.session_state.get("change_area") not in names:  # another level's, or none yet
        st.session_state["change_area"] = next(iter(names), None)
    chosen = st.selectbox("Area over time", list(names), format_func=names.get, key="change_area")
    keep_change_in_url(
        views.change_view_from_state(st.session_state, today, measures, next(iter(names), ""))
    )
    if chosen:
        series = area_timeline(signature, level, chosen, start, end, tuple(types), distance)
        st.altair_chart(changecharts.timeline_chart(series, names[chosen]))
