"""Kindred Map dashboard: the Streamlit pages (thin: the work lives in the kindred_map package)."""

import functools
import hashlib
import logging
import uuid
from dataclasses import replace
from datetime import date

import numpy as np
import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_folium import st_folium

import editor
import people_page
from kindred_map import (
    assets,
    boundaries,
    change,
    changecharts,
    coverage,
    export,
    figures,
    files,
    freshness,
    hours,
    maps,
    mapview,
    privacy,
    search,
    store,
    tables,
    upload,
    upload_gate,
)
from kindred_map import report as reports
from kindred_map import view as views
from kindred_map.schema import project_types
from kindred_map.text import md_escape, md_table

LOG = logging.getLogger("kindred_map.app")

MAP_HEIGHT = 640
MAP_KEY = "dashboard_map"
TABLE_ANCHOR = "projects-table"
SAVED_VIEW = "saved_view"
SAVED_UPLOAD = "saved_upload"
UPLOAD_DIGEST = "upload_digest"
BASEMAP_LABELS = {"osm": "OpenStreetMap (needs internet)", "none": "Plain background (offline)"}


# --- cached loads and heavy work ---------------------------------------------------------


@st.cache_resource
def install_assets() -> list:
    """Copy Leaflet into static/ once per server process (served at /app/static/vendor/)."""
    return assets.install_static()


@st.cache_resource
def guard_uploads() -> bool:
    """Once per server process: remove the uploads a killed server left (`files`), and open
    Streamlit's upload endpoint to editors' sessions only (`upload_gate`; not where no server
    runs, as under AppTest: then False)."""
    files.clean_work_folders()
    if not runtime.exists():
        return False
    upload_gate.install(runtime.get_instance())
    return True


@st.cache_resource(max_entries=4, show_spinner="Loading projects...")
def load_projects(signature: tuple):
    """The store's projects, read once per store version and shared, never copied: read-only."""
    return store.read_projects(signature[0])


@st.cache_resource(max_entries=4)
def masked_projects(signature: tuple):
    """The projects with home-run ones at their ward's centre (`privacy.public_records`), once."""
    return privacy.public_records(load_projects(signature))


@st.cache_data(max_entries=64)
def shown_rows(signature: tuple, filters: views.View) -> np.ndarray:
    """Row positions of the shown projects: a small array per filter choice, not a pickled
    GeoDataFrame (``filters``: `views.filter_view`)."""
    masked = masked_projects(signature)
    return masked.index.get_indexer(views.filter_masked(masked, filters).index)


def shown_projects(signature: tuple, view: views.View):
    return masked_projects(signature).iloc[shown_rows(signature, views.filter_view(view))]


@st.cache_data(max_entries=16, show_spinner="Working out who lives within reach...")
def coverage_for(
    signature: tuple, types: tuple, distance: int, examples: bool = False, open_at: str = ""
) -> dict:
    return figures.coverage_summary(load_projects(signature), types, distance, examples, open_at)


@st.cache_data(max_entries=32)
def area_figures(signature: tuple, view: views.View, level: str):
    gaps = None
    if figures.needs_coverage(view):
        gaps = coverage_for(signature, view.types, view.distance, view.examples, view.open_at)[
            "areas"
        ][level]
    return figures.area_figures(level, shown_projects(signature, view), gaps)


@st.cache_data(max_entries=16, show_spinner=False)
def freshness_numbers(signature: tuple, filters: views.View, today: date) -> dict[str, int]:
    """Checked / stale / never checked counts of the projects the filters show (the map's and
    the table's), once per filter choice, store version and day."""
    return freshness.counts(shown_projects(signature, filters), today)


@st.cache_data(max_entries=16, show_spinner="Building the table...")
def project_table(signature: tuple, filters: views.View, today: date):
    """The table of the shown projects, built (dates parsed) once per filter choice."""
    return tables.project_table(shown_projects(signature, filters), today)


@st.cache_resource(max_entries=4, show_spinner="Preparing the map...")
def map_files(signature: tuple, today: date) -> dict:
    """The map's static files for this store and day (marker arrays, popups), written once."""
    return mapview.project_files(load_projects(signature), today)


@st.cache_data(max_entries=64, show_spinner=False)
def map_payload(signature: tuple, view: views.View, today: date) -> dict:
    """One view's map data, computed once per view (the map's position and the searched
    postcode are not part of ``view`` here: panning and searching need no new payload)."""
    areas = None
    if figures.needs_coverage(view):
        areas = coverage_for(signature, view.types, view.distance, view.examples, view.open_at)[
            "areas"
        ]
    return mapview.view_payload(
        load_projects(signature),
        view,
        map_files(signature, today),
        coverage_areas=areas,
        masked=masked_projects(signature),
    )


# An upload's work is cached by the file's SHA-256 (``digest``; the bytes themselves, ``_data``,
# are not hashed again on every rerun) and by what changes the result: the column mapping and
# constants, the store (its signature where stored projects matter), the duplicate choices.
# Resources, not data: a 100,000-row file is not pickled and copied on every rerun; read-only.
# A file that cannot be read is cached as its error, so it is not read again either.


@st.cache_resource(max_entries=4, show_spinner="Reading the file's columns...")
def upload_columns(digest: str, name: str, _data: bytes):
    try:
        return upload.upload_columns(name, _data), None
    except ValueError as error:
        return None, str(error)


@st.cache_resource(max_entries=4, show_spinner="Checking and placing every row...")
def prepared_upload(digest: str, name: str, mapping, constants, location: str, id_key: str, _data):
    # id_key: the store's id secret's fingerprint; derived ids, so the rows, depend on it
    try:
        return upload.prepare_upload(name, _data, location, dict(mapping), dict(constants)), None
    except ValueError as error:
        return None, str(error)


@st.cache_resource(max_entries=4, show_spinner="Looking for projects already stored...")
def upload_matches(digest, name, mapping, constants, signature: tuple, id_key: str, _data):
    (projects, _), _ = prepared_upload(
        digest, name, mapping, constants, signature[0], id_key, _data
    )
    return upload.upload_duplicates(projects, signature[0])


@st.cache_resource(max_entries=16, show_spinner="Counting what Save will do...")
def upload_plan(digest, name, mapping, constants, signature: tuple, id_key, choices, _data):
    (projects, report), _ = prepared_upload(
        digest, name, mapping, constants, signature[0], id_key, _data
    )
    try:
        return upload.plan_upload(projects, report, signature[0], dict(choices)), None
    except ValueError as error:
        return None, str(error)


@st.cache_data
def deanery_method() -> str:
    return boundaries.metadata("deanery")["method"]


# --- the view and the URL -----------------------------------------------------------------


def restore_view() -> None:
    """Widget values from the link on a session's first run, else from the last saved view."""
    if SAVED_VIEW not in st.session_state:
        view, problems = views.view_from_query(st.query_params.to_dict())
        st.session_state[SAVED_VIEW] = view
        for problem in problems:
            st.warning(md_escape(problem))  # the link's text is shown as typed, never as Markdown
    for key, value in views.widget_values(st.session_state[SAVED_VIEW]).items():
        st.session_state.setdefault(key, value)
    if "basemap" not in st.session_state:
        try:
            st.session_state["basemap"] = maps.basemap_choice()
        except ValueError as error:
            st.warning(f"{md_escape(error)}: using the plain background")
            st.session_state["basemap"] = "none"
    st.session_state.setdefault("grouped", True)


def keep_view_in_url(view: views.View) -> None:
    st.session_state[SAVED_VIEW] = view
    query = views.view_to_query(view)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


# --- the map page -------------------------------------------------------------------------


CLUSTER_SETTINGS = (
    ("Cluster distance (m)", "eps", views.EPS_LIMITS_M, 50),
    ("At least (projects)", "min_samples", views.MIN_SAMPLES_LIMITS, 1),
)
# label, key, (least, most), step of the sidebar's cluster settings


def sidebar() -> None:
    types = project_types()
    boroughs = figures.area_choices("borough")
    deaneries = figures.area_choices("deanery")
    wards = figures.area_choices("ward")
    with st.sidebar:
        st.header("Filter projects")
        st.multiselect(
            "Project types",
            list(types),
            format_func=lambda kind: types[kind]["label"],
            key="types",
            placeholder="All types",
        )
        st.multiselect(
            "Borough",
            list(boroughs),
            format_func=boroughs.get,
            key="boroughs",
            placeholder="All boroughs",
        )
        st.multiselect(
            "Deanery (approximate)",
            list(deaneries),
            format_func=deaneries.get,
            key="deaneries",
            placeholder="All deaneries",
        )
        st.multiselect(
            "Ward", list(wards), format_func=wards.get, key="wards", placeholder="All wards"
        )
        st.multiselect(
            "IMD 2025 decile of the project's area",
            list(range(1, 11)),
            format_func=views.decile_label,
            key="imd",
            placeholder="All deciles",
            help="Home-run projects carry no decile (it would place them too precisely), so "
            "they drop out when a decile is chosen.",
        )
        st.multiselect(
            "Freshness (when last checked)",
            list(freshness.FRESHNESS),
            format_func=freshness.FRESHNESS.get,
            key="fresh",
            placeholder="Checked, stale or never checked",
        )
        st.toggle(
            "Show illustrative examples",
            key="examples",
            help="Made-up example records for project types with no open data. They are not "
            "real projects: left out of the map, tables, figures and coverage unless shown.",
        )
        st.header("Map")
        st.selectbox(
            "Shade areas",
            list(figures.LEVELS),
            format_func=lambda level: figures.LEVELS[level]["label"],
            key="layer",
        )
        st.selectbox(
            "by",
            list(figures.MEASURES),
            format_func=lambda measure: figures.MEASURES[measure]["label"],
            key="measure",
            help=figures.MEASURES[st.session_state["measure"]]["help"],
        )
        st.selectbox(
            "Reach distance (straight line)",
            st.session_state.setdefault(  # the same list all session, a link's 850 kept in it
                "distance_offered", views.distance_choices(st.session_state["distance"])
            ),
            format_func=views.distance_label,
            key="distance",
            help="Used by the postcode search circle, the gap score and the gap layer. "
            f"Walking times at {views.WALKING_M_PER_MINUTE} m a minute; a link may carry any "
            f"distance from {views.DISTANCE_LIMITS_M[0]:,} to {views.DISTANCE_LIMITS_M[1]:,} m.",
        )
        st.selectbox(
            "Open at",
            ["", *hours.OPEN_CHOICES],
            format_func=lambda choice: choice or "any time",
            key="open_at",
            help="Coverage counts only projects open then (from their structured opening "
            "hours); projects with unknown hours are counted apart, never as open.",
        )
        st.checkbox("Show where people are beyond reach", key="gaps")
        st.checkbox("Show clusters of projects (exploratory)", key="clusters")
        if st.session_state["clusters"]:  # their settings only while clustering
            for column, (label, key, limits, step) in zip(
                st.columns(2), CLUSTER_SETTINGS, strict=True
            ):
                column.number_input(
                    label, min_value=limits[0], max_value=limits[1], step=step, key=key
                )
        else:  # kept while hidden (Streamlit drops the state of a widget not drawn)
            for _, key, _, _ in CLUSTER_SETTINGS:
                st.session_state[key] = st.session_state[key]
        st.checkbox("Group nearby markers", key="grouped")
        st.selectbox(
            "Background map", list(maps.BASEMAPS), format_func=BASEMAP_LABELS.get, key="basemap"
        )
        editor.sign_in_box()


def postcode_search(view: views.View, shown) -> None:
    st.text_input(
        "Find projects near a postcode",
        key="postcode",
        placeholder="e.g. L1 8JQ",
        help="Straight-line distances from the postcode's position (OS Code-Point Open).",
    )
    if not view.postcode:
        return
    try:
        point = search.find_postcode(view.postcode)
    except ValueError as error:
        st.error(md_escape(error))
        return
    distance = search.distances_m(shown, point)  # once: the count and the list both need it
    within = int((distance <= view.distance).sum())
    nearest = search.nearest_projects(
        shown, point, view.distance, limit=search.NEAREST_LIMIT, distance=distance
    )
    st.markdown(
        f"**{within:,} project(s) within {view.distance:,} m of {md_escape(point['postcode'])}** "
        "(straight line). Nearest first:"
    )
    if point["note"]:
        st.caption(md_escape(point["note"]))
    listed = md_table(nearest[["Name", "Type", "Distance (m)", "Note"]], ["Name", "Type", "Note"])
    noted = listed["Note"] != ""  # with the name: three columns fit beside the map
    listed.loc[noted, "Name"] += " (" + listed.loc[noted, "Note"] + ")"
    listed["Distance (m)"] = listed["Distance (m)"].map("{:,}".format)  # no Styler: it is slow
    st.table(listed.drop(columns="Note"), hide_index=True)  # st.table cells are Markdown


def project_search(view: views.View, shown, today: date) -> None:
    """Find a shown project by name (case, accents and punctuation ignored); choosing one
    shows its details and puts its id in the link (``project``)."""
    query = st.text_input(
        "Find a project by name",
        key="name_query",
        placeholder="e.g. food bank, St Mary",
        help="Part of the name or organisation; capitals and accents do not matter.",
    )
    try:
        found = search.find_by_name(shown, query)
    except ValueError as error:
        st.error(md_escape(error))
        found = search.find_by_name(shown, "")
    labels = found["Name"] + " (" + found["Type"] + ", " + found["Ward"] + ")"
    choices = dict(zip(found["Id"], labels, strict=True))
    selected = st.session_state.get("project") or ""
    st.session_state["project"] = selected or None  # None: nothing chosen (index=None)
    if selected and selected not in choices:
        names = shown.loc[shown["id"].astype(str) == selected, "name"]
        choices[selected] = str(names.iloc[0]) if len(names) else selected
    if query.strip() and not len(found):
        st.caption(f"No project shown here has {md_escape(query.strip())} in its name.")
    if not choices:
        return
    chosen = st.selectbox(
        f"Projects found ({len(found):,}{'+' if len(found) == search.NAME_LIMIT else ''})",
        list(choices),
        format_func=choices.get,
        index=None,
        key="project",
        placeholder="Choose a project",
    )
    if not chosen:
        return
    try:
        card = tables.project_card(shown, chosen, today)
    except ValueError as error:
        st.info(md_escape(error))
        return
    st.markdown(f"**{card['title']}**")
    st.table(card["facts"], hide_index=True)


def area_panel(view: views.View, signature: tuple, shown, today: date) -> None:
    codes = figures.areas_in_view(view.layer, view)
    choices = figures.area_choices(view.layer)
    noun = figures.LEVELS[view.layer]["noun"]
    if st.session_state.get("area") not in codes:
        st.session_state["area"] = None  # nothing chosen: the placeholder, of this level
    # Options are area codes only; "nothing chosen" is index None and a placeholder, which is
    # sent afresh on every run. (A "" option labelled "Choose a ward" kept that label in the
    # browser after the level changed: the browser holds an option's label, not its code.)
    code = st.selectbox(
        f"{noun} details (or click an area on the map)",
        codes,
        index=None,
        format_func=choices.__getitem__,
        key="area",
        placeholder=f"Choose a {noun.lower()}",
        help="The keyboard way to an area: type to filter the list. The map's shapes are "
        "left out of the tab order.",
    )
    if not code:
        return
    numbers = area_figures(signature, view, view.layer)
    panel = tables.area_panel(view.layer, code, shown, numbers, today)
    st.subheader(panel["title"])
    per = "n/a" if panel["per_10k"] is None else f"{panel['per_10k']:.1f}"
    st.markdown(
        f"- Population (Census 2021): **{panel['population']:,}**\n"
        f"- Projects shown: **{panel['projects']:,}** ({per} per 10,000 residents)\n"
        f"- {panel['imd']}"
    )
    st.caption(figures.MEASURES["per_10k"]["help"])
    if panel["gap"]:
        gap = panel["gap"]
        st.write(
            f"Within {view.distance:,} m{views.open_words(view)}: "
            f"{gap['pct_covered']:.1f}% of residents; "
            f"{gap['beyond_reach']:,} beyond reach; gap score {gap['gap_score']:,.0f} "
            f"({gap['gap_per_1000']:,.0f} per 1,000 residents)."
        )
        st.caption(f"{figures.GAP_SCORE_HELP} {figures.PER_1000_HELP}")
    for note in panel["notes"]:
        st.caption(note)
    if len(panel["by_type"]):
        st.table(panel["by_type"], hide_index=True)
    if len(panel["table"]):
        st.dataframe(
            panel["table"][["Name", "Type", "Ward", "Check due", "Location"]],
            hide_index=True,
            key="area_projects",
        )
    else:
        st.caption("No project shown here with the current filters.")


@st.fragment
def show_map(view: views.View, signature: tuple, today: date) -> None:
    """The map: its fixed layers are sent when the area level, background or grouping changes;
    otherwise only the view's payload (colours, marker runs, legend) is, and Leaflet keeps its
    zoom and centre. Moving the map reruns only this fragment, to keep the position in the
    link; the map's first placement is not reported (dashboard.js), as it would rerun the
    fragment while the map is still fetching its layers, and a link without a position
    opens on that same fit."""
    st.markdown(f"[Skip the map (to the table of projects)](#{TABLE_ANCHOR})")
    files = map_files(signature, today)
    placed = view.zoom > 0
    unplaced = replace(view, zoom=0, lat=0.0, lon=0.0, postcode="")
    payload = maps.safe_json(mapview.with_search(map_payload(signature, unplaced, today), view))
    base = mapview.base_map(
        view.layer, files, st.session_state["basemap"], st.session_state["grouped"]
    )
    result = st_folium(
        base,
        key=MAP_KEY,
        height=MAP_HEIGHT,
        use_container_width=True,
        feature_group_to_add=maps.view_group(payload),
        center=(view.lat, view.lon) if placed else None,
        zoom=view.zoom if placed else None,
        returned_objects=["last_active_drawing", "last_object_clicked", "center", "zoom"],
    )
    result = result or {}
    keep_map_position(result)
    clicked = mapview.area_from_click(result.get("last_active_drawing"), view.layer)
    click = (clicked, str(result.get("last_object_clicked")))
    if clicked and click != st.session_state.get("last_click"):
        st.session_state["last_click"] = click
        st.session_state["area"] = clicked
        st.rerun(scope="app")  # the area panel and the link show the chosen area


def keep_map_position(result: dict) -> None:
    """The map's zoom and centre into the session and the link (rounded: ~1 m), once someone
    has moved the map (dashboard.js keeps the first placement, a fit, to itself)."""
    centre, zoom = result.get("center"), result.get("zoom")
    if not isinstance(centre, dict) or not isinstance(zoom, int | float):
        return
    position = {
        "zoom": views.snap_zoom(zoom),
        "lat": round(float(centre.get("lat", 0.0)), views.POSITION_DECIMALS),
        "lon": round(float(centre.get("lng", 0.0)), views.POSITION_DECIMALS),
    }
    if all(st.session_state.get(name) == value for name, value in position.items()):
        return
    st.session_state.update(position)
    st.query_params.update(views.view_to_query(views.View(**position)))  # as the link writes it


PROJECT_COLUMN_HELP = {
    "Check due": f"'yes' when last checked over {tables.STALE_MONTHS} months ago: the project "
    "may have stopped.",
    "Location": "exact, approximate (a street or place centre) or a home-run project shown at "
    "its ward's centre.",
    "IMD decile": "IMD 2025 decile of the project's small area: 1 = most deprived 10% in England.",
    "Illustrative (not real)": "Made-up examples, shown only with 'Show illustrative examples'.",
    "Deanery (approx.)": "Deanery boundaries are approximate (derived from the parish list).",
}


def projects_table(view: views.View, signature: tuple, shown, today: date) -> None:
    st.subheader("The projects shown, as a table", anchor=TABLE_ANCHOR)
    if not st.toggle(
        "Show the table",
        key="show_table",
        help="The same projects as the map, one row each: the accessible way to read them.",
    ):
        st.caption(f"{len(shown):,} projects: turn on to list, sort and search them.")
        return
    table = project_table(signature, views.filter_view(view), today)
    st.caption(
        f"{tables.table_summary(table)} Sort by clicking a column heading; search with the "
        "magnifier above the table."
    )
    st.dataframe(
        table,
        hide_index=True,
        key="projects_table",
        column_config={
            heading: st.column_config.Column(help=text)
            for heading, text in PROJECT_COLUMN_HELP.items()
        },
    )
    left, right = st.columns(2)
    left.download_button(
        "Download CSV",
        data=lambda: tables.download_bytes(shown, "csv", view),
        file_name="kindred-map-projects.csv",
        mime="text/csv",
        on_click="ignore",
    )
    right.download_button(
        "Download GeoJSON",
        data=lambda: tables.download_bytes(shown, "geojson", view),
        file_name="kindred-map-projects.geojson",
        mime="application/geo+json",
        on_click="ignore",
    )
    st.caption("Home-run projects leave at their ward's centre, without address or postcode.")


def coverage_section(view: views.View, signature: tuple) -> None:
    st.subheader("Coverage and gaps")
    wanted = st.toggle(
        "Show who lives beyond reach",
        key="show_coverage",
        value=view.gaps or figures.needs_coverage(view),
    )
    if not wanted:
        return
    summary = coverage_for(signature, view.types, view.distance, view.examples, view.open_at)
    st.text(summary["headline"])
    level = st.radio(
        "Rank gaps by", ["ward", "deanery", "borough"], horizontal=True, key="gaps_level"
    )
    ranked = tables.gaps_table(summary["gaps"][level], level)
    st.caption(f"{figures.GAP_SCORE_HELP} {figures.PER_1000_HELP}")
    st.dataframe(
        ranked.head(25),
        hide_index=True,
        key="gaps_table",
        column_config={
            heading: st.column_config.NumberColumn(
                help=tables.column_help(heading),
                format="%.1f" if heading.endswith("(%)") else "localized",
            )
            for heading in ranked.columns
            if tables.column_help(heading)
        },
    )
    if "note" in ranked.attrs:
        st.caption(ranked.attrs["note"])


def _digest(uploaded) -> str:
    """The uploaded file's SHA-256, worked out once per upload (kept by its file id)."""
    kept = st.session_state.get(UPLOAD_DIGEST)
    if not kept or kept[0] != uploaded.file_id:
        kept = (uploaded.file_id, hashlib.sha256(uploaded.getvalue()).hexdigest())
        st.session_state[UPLOAD_DIGEST] = kept
    return kept[1]


def upload_section(store_file, user, signature: tuple) -> None:
    st.subheader("Add projects from a spreadsheet")
    st.caption(
        "CSV or XLSX. Nothing is saved until you confirm; then the project store is updated "
        "by project id (importing the same file twice changes nothing)."
    )
    editor.upload_templates()
    # No type=[...]: Streamlit checks a typed uploader's file name before the page runs and a
    # NUL in it became a bare error box; the page checks the name itself, and says why.
    uploaded = st.file_uploader("Project file", key="upload")
    if uploaded is None:
        return
    problem = upload.name_problem(uploaded.name)
    if problem:
        st.error(md_escape(problem))
        return
    data = uploaded.getvalue()
    digest = _digest(uploaded)
    name = upload.safe_file_name(uploaded.name)
    shown_name = md_escape(uploaded.name)
    read, error = upload_columns(digest, name, data)
    if error:
        st.error(f"{shown_name} could not be read: {md_escape(error)}")
        return
    columns, found = read
    mapping = editor.column_mapping(columns, found, digest)
    constants = editor.constant_fields(found, mapping, digest)
    mapping, constants = tuple(sorted(mapping.items())), tuple(sorted(constants.items()))
    id_key = upload.id_key(store_file)
    prepared, error = prepared_upload(digest, name, mapping, constants, signature[0], id_key, data)
    if error:
        st.error(f"{shown_name} could not be read: {md_escape(error)}")
        return
    if not len(prepared[0]):
        st.code(reports.to_text(prepared[1]), language=None, wrap_lines=True)
        st.warning("No row could be placed: nothing to save.")
        return
    matches = upload_matches(digest, name, mapping, constants, signature, id_key, data)
    choices, unanswered = editor.duplicate_choices(matches, digest)
    answers = tuple(sorted(choices.items()))
    plan, error = upload_plan(digest, name, mapping, constants, signature, id_key, answers, data)
    if error:
        st.error(md_escape(error))
        return
    upload_report(plan, shown_name, name)
    upload_id = (digest, str(store_file))
    saved = st.session_state.get(SAVED_UPLOAD)
    if saved and saved[0] == upload_id:
        st.success(saved[1])
        return
    if unanswered:
        st.warning(
            f"Answer the {unanswered:,} likely duplicate(s) above before saving; until then "
            "they count as new below."
        )
    planned = upload.outcome(plan)
    st.info(upload.outcome_text(planned, done=False))
    if st.button(
        f"Save {plan.records:,} projects to the store",
        key="confirm_upload",
        disabled=bool(unanswered) or not plan.records,
    ):
        options = {"who": user.name, "choices": choices, "constants": dict(constants)}
        try:
            editor.confirm_signed_in()
            result = upload.save_upload(name, data, store_file, dict(mapping), **options)
        except ValueError as error:
            st.error(f"Not saved: {md_escape(error)}")
            return
        done = upload.outcome(result)
        message = (
            f"{upload.outcome_text(done, done=True)} Import {result.import_id}; undo it under "
            "Imports."
        )
        if done != planned:  # someone changed the store in between
            message += " (The store changed since the preview, so the counts differ from it.)"
        st.session_state[SAVED_UPLOAD] = (upload_id, message)
        st.rerun()  # the map, counts and table now read the updated store


def upload_report(plan, shown_name: str, name: str) -> None:
    """The import report for the editor's current answers: the line, the text, the issues."""
    st.markdown(
        f"**Import report for {shown_name}**: {plan.rows_read:,} rows read = "
        f"{plan.imported:,} to import + {plan.rejected:,} rejected; {plan.records:,} projects"
    )
    st.code(reports.to_text(plan), language=None, wrap_lines=True)
    if len(plan.issues):
        st.dataframe(plan.issues, hide_index=True, key="upload_issues")
    st.download_button(
        "Download this report (CSV)",
        data=reports.to_csv_bytes(plan),
        file_name=f"import-report-{name}.csv",
        mime="text/csv",
        on_click="ignore",
    )


def map_page() -> None:
    st.title("Kindred Map", anchor=False)  # no heading link: one Tab fewer to the searches
    restore_view()
    today = date.today()
    view = views.view_from_state(st.session_state)
    try:
        signature = upload.store_signature()  # the configured store, resolved once per run
        projects = load_projects(signature)
    except ValueError as error:
        LOG.warning("cannot read the project store: %s", error)
        st.error(f"{md_escape(error)}. Check KINDRED_MAP_STORE or rebuild the store.")
        st.stop()
    store_file = signature[0]
    shown = shown_projects(signature, view)
    st.markdown(f"**{tables.counts_text(shown, len(projects))}**")
    if not view.examples:
        st.caption("Illustrative examples are hidden: every figure counts real projects only.")
    # The searches and the area chooser in a column left of the map: first on a phone (where
    # columns stack) and first by keyboard, after "Skip to main content". Sent first, so that
    # a search's answer shows before the map's frame (which shares the page's one thread)
    # starts redrawing; the sidebar's widgets last, so that the map's frame starts before the
    # browser loads their code. The view was read from the session (`restore_view`) before
    # any widget is drawn, so the order changes no value.
    side_column, map_column = st.columns([1, 2.8], gap="medium")
    with side_column:
        editor.freshness_counts(freshness_numbers(signature, views.filter_view(view), today))
        postcode_search(view, shown)
        project_search(view, shown, today)
        area_panel(view, signature, shown, today)
    with map_column:
        show_map(view, signature, today)
    sidebar()
    keep_view_in_url(views.view_from_state(st.session_state))
    projects_table(view, signature, shown, today)
    coverage_section(view, signature)
    user = editor.current_user()
    upload_gate.allow(get_script_run_ctx().session_id, user is not None and user.can("upload"))
    if user is not None:  # viewers get no editor controls at all
        upload_section(store_file, user, signature)
        editor.editor_panel(store_file, user)
        if user.can("users"):
            people_page.people_section(user)


# --- the change page ----------------------------------------------------------------------


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


# --- the about page -----------------------------------------------------------------------


def about_page() -> None:
    st.title("About Kindred Map")
    st.write(
        "Kindred Map shows community social action across the Liverpool City Region (the six "
        "boroughs of the Combined Authority plus Warrington, Wigan and West Lancashire) "
        "against wards, boroughs, small areas (LSOAs) and the Church of England deaneries of "
        "the Diocese of Liverpool."
    )
    st.subheader("Boundary and reference data")
    # Layer metadata can come from `replace-layer --source/--licence/...`: text, never Markdown
    # (an image link in it was fetched on every visit).
    layers = tables.layer_sources()
    st.table(md_table(layers, layers.columns), hide_index=True)
    with st.expander("How the approximate deanery boundaries were derived"):
        st.markdown(deanery_method())
    st.subheader("Project data")
    try:
        projects = load_projects(upload.store_signature())
    except ValueError as error:
        st.error(md_escape(error))
        projects = store.empty_projects()
    sources = export.project_sources(projects)
    if sources:  # source names come from uploaded files: shown as typed
        st.table(
            md_table(tables.source_table(sources), ["Source", "Licence", "Note"]), hide_index=True
        )
    notes = tables.data_sources_text()
    if notes:
        with st.expander("Project data sources in detail"):
            st.markdown(notes)
    st.subheader("Attribution")
    lines = [*export.attribution(projects), export.LEAFLET_CREDIT, tables.OSM_CREDIT]
    st.markdown("\n".join(f"- {md_escape(line)}" for line in lines))  # from layers and files
    st.subheader("Method notes")
    st.markdown(tables.METHOD_NOTES)


# What a visitor sees of an unexpected error: no traceback, no server path (those go to the log,
# under the same reference). Comments, not docstrings, for constants in this file: Streamlit's
# "magic" would write a bare string into the page.
ERROR_MESSAGE = (
    "Sorry, something went wrong showing this page (reference {reference}). Try another view "
    "or reload; the details are in the server's log."
)


def guarded(page):
    """``page`` with any unexpected error turned into ERROR_MESSAGE and a log line.

    Streamlit's own stop and rerun signals are BaseExceptions and pass through."""

    @functools.wraps(page)
    def run() -> None:
        try:
            page()
        except Exception:
            reference = uuid.uuid4().hex[:8]
            LOG.exception("error on the %s (reference %s)", page.__name__, reference)
            st.error(ERROR_MESSAGE.format(reference=reference))

    return run


def main() -> None:
    st.set_page_config(page_title="Kindred Map", layout="wide")
    install_assets()
    guard_uploads()
    if not people_page.gate():  # a private map: nothing but the sign-in page
        return
    pages = [
        st.Page(guarded(map_page), title="Map", default=True),
        st.Page(guarded(change_page), title="Change", url_path="change"),
        st.Page(guarded(about_page), title="About", url_path="about"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
