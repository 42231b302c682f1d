"""Kindred Map dashboard: the Streamlit pages (thin: the work lives in the kindred_map package)."""

import copy
import hashlib
from dataclasses import replace
from datetime import date

import streamlit as st
from streamlit_folium import st_folium

from kindred_map import assets, boundaries, dashboard, export, maps, store
from kindred_map import report as reports
from kindred_map.schema import project_types

MAP_HEIGHT = 640
MAP_KEY = "dashboard_map"
SAVED_VIEW = "saved_view"
SAVED_UPLOAD = "saved_upload"
BASEMAP_LABELS = {"osm": "OpenStreetMap (needs internet)", "none": "Plain background (offline)"}


# --- cached loads and heavy work ---------------------------------------------------------


@st.cache_resource
def install_assets() -> list:
    """Copy Leaflet into static/ once per server process (served at /app/static/vendor/)."""
    return assets.install_static()


@st.cache_data(max_entries=4, show_spinner="Loading projects...")
def load_projects(signature: tuple):
    return store.read_projects(signature[0])


@st.cache_data(max_entries=32)
def shown_projects(signature: tuple, view: dashboard.View):
    return dashboard.shown_projects(load_projects(signature), view)


@st.cache_data(max_entries=16, show_spinner="Working out who lives within reach...")
def coverage_for(signature: tuple, types: tuple, distance: int) -> dict:
    return dashboard.coverage_summary(load_projects(signature), types, distance)


@st.cache_data(max_entries=32)
def area_figures(signature: tuple, view: dashboard.View, level: str):
    gaps = None
    if dashboard.needs_coverage(view):
        gaps = coverage_for(signature, view.types, view.distance)["areas"][level]
    return dashboard.area_figures(level, shown_projects(signature, view), gaps)


@st.cache_resource(max_entries=16, show_spinner="Drawing the map...")
def project_map(signature: tuple, view: dashboard.View, today: date, tiles: str, grouped: bool):
    """The folium map, built once per view (without the selected area), so that clicking or
    panning reruns the page without rebuilding or redrawing it. Never render this shared
    object: st_folium renames the elements it renders, so it gets a copy."""
    areas = None
    if dashboard.needs_coverage(view):
        areas = coverage_for(signature, view.types, view.distance)["areas"]
    return dashboard.build_map(
        load_projects(signature),
        view,
        coverage_areas=areas,
        today=today,
        tiles=tiles,
        cluster_markers=grouped,
    )


@st.cache_data(max_entries=4, show_spinner="Checking the file...")
def preview_upload(name: str, data: bytes):
    return dashboard.preview_upload(name, data)


@st.cache_data
def deanery_method() -> str:
    return boundaries.metadata("deanery")["method"]


# --- the view and the URL -----------------------------------------------------------------


def restore_view() -> None:
    """Widget values from the link on a session's first run, else from the last saved view."""
    if SAVED_VIEW not in st.session_state:
        view, problems = dashboard.view_from_query(st.query_params.to_dict())
        st.session_state[SAVED_VIEW] = view
        for problem in problems:
            st.warning(problem)
    for key, value in dashboard.widget_values(st.session_state[SAVED_VIEW]).items():
        st.session_state.setdefault(key, value)
    if "basemap" not in st.session_state:
        try:
            st.session_state["basemap"] = maps.basemap_choice()
        except ValueError as error:
            st.warning(f"{error}: using the plain background")
            st.session_state["basemap"] = "none"
    st.session_state.setdefault("grouped", True)


def keep_view_in_url(view: dashboard.View) -> None:
    st.session_state[SAVED_VIEW] = view
    query = dashboard.view_to_query(view)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


# --- the map page -------------------------------------------------------------------------


def sidebar() -> None:
    types = project_types()
    boroughs = dashboard.area_choices("borough")
    deaneries = dashboard.area_choices("deanery")
    wards = dashboard.area_choices("ward")
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
            format_func=dashboard.decile_label,
            key="imd",
            placeholder="All deciles",
            help="Home-run projects carry no decile (it would place them too precisely), so "
            "they drop out when a decile is chosen.",
        )
        st.header("Map")
        st.selectbox(
            "Shade areas",
            list(dashboard.LEVELS),
            format_func=lambda level: dashboard.LEVELS[level]["label"],
            key="layer",
        )
        st.selectbox(
            "by",
            list(dashboard.MEASURES),
            format_func=lambda measure: dashboard.MEASURES[measure]["label"],
            key="measure",
        )
        st.number_input(
            "Reach distance (metres, straight line)",
            min_value=dashboard.DISTANCE_LIMITS_M[0],
            max_value=dashboard.DISTANCE_LIMITS_M[1],
            step=100,
            key="distance",
            help="Used by the postcode search circle, the gap score and the gap layer. "
            "800 m is about a 10-minute walk.",
        )
        st.checkbox("Show where people are beyond reach", key="gaps")
        st.checkbox("Show clusters of projects (exploratory)", key="clusters")
        left, right = st.columns(2)
        left.number_input(
            "Cluster distance (m)",
            min_value=dashboard.EPS_LIMITS_M[0],
            max_value=dashboard.EPS_LIMITS_M[1],
            step=50,
            key="eps",
            disabled=not st.session_state["clusters"],
        )
        right.number_input(
            "At least (projects)",
            min_value=dashboard.MIN_SAMPLES_LIMITS[0],
            max_value=dashboard.MIN_SAMPLES_LIMITS[1],
            step=1,
            key="min_samples",
            disabled=not st.session_state["clusters"],
        )
        st.checkbox("Group nearby markers", key="grouped")
        st.selectbox(
            "Background map", list(maps.BASEMAPS), format_func=BASEMAP_LABELS.get, key="basemap"
        )


def postcode_search(view: dashboard.View, shown) -> None:
    st.text_input(
        "Find projects near a postcode",
        key="postcode",
        placeholder="e.g. L1 8JQ",
        help="Straight-line distances from the postcode's position (OS Code-Point Open).",
    )
    if not view.postcode:
        return
    try:
        point = dashboard.find_postcode(view.postcode)
    except ValueError as error:
        st.error(str(error))
        return
    nearest = dashboard.nearest_projects(shown, point, view.distance)
    within = int(nearest["Within reach"].sum())
    st.markdown(
        f"**{within:,} project(s) within {view.distance:,} m of {point['postcode']}** "
        "(straight line). Nearest first:"
    )
    if point["note"]:
        st.caption(point["note"])
    listed = nearest.head(dashboard.NEAREST_LIMIT)[["Name", "Type", "Distance (m)", "Note"]]
    st.table(listed.style.format({"Distance (m)": "{:,}"}), hide_index=True)


def area_panel(view: dashboard.View, signature: tuple, shown, today: date) -> None:
    codes = dashboard.areas_in_view(view.layer, view)
    choices = dashboard.area_choices(view.layer)
    noun = dashboard.LEVELS[view.layer]["noun"]
    if st.session_state.get("area") not in ("", *codes):
        st.session_state["area"] = ""
    code = st.selectbox(
        f"{noun} details (or click an area on the map)",
        ["", *codes],
        format_func=lambda c: choices.get(c, f"Choose a {noun.lower()}"),
        key="area",
    )
    if not code:
        return
    figures = area_figures(signature, view, view.layer)
    panel = dashboard.area_panel(view.layer, code, shown, figures, today)
    st.subheader(panel["title"])
    per = "n/a" if panel["per_10k"] is None else f"{panel['per_10k']:.1f}"
    st.markdown(
        f"- Population (Census 2021): **{panel['population']:,}**\n"
        f"- Projects shown: **{panel['projects']:,}** ({per} per 10,000 residents)\n"
        f"- {panel['imd']}"
    )
    if panel["gap"]:
        gap = panel["gap"]
        st.write(
            f"Within {view.distance:,} m: {gap['pct_covered']:.1f}% of residents; "
            f"{gap['beyond_reach']:,} beyond reach; gap score {gap['gap_score']:,.0f} "
            f"({gap['gap_per_1000']:,.0f} per 1,000 residents)."
        )
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


def show_map(view: dashboard.View, signature: tuple, today: date) -> None:
    fmap = project_map(
        signature,
        replace(view, area=""),
        today,
        st.session_state["basemap"],
        st.session_state["grouped"],
    )
    result = st_folium(
        copy.deepcopy(fmap),
        key=MAP_KEY,
        height=MAP_HEIGHT,
        use_container_width=True,
        returned_objects=["last_active_drawing", "last_object_clicked"],
    )
    result = result or {}
    clicked = dashboard.area_from_click(result.get("last_active_drawing"), view.layer)
    click = (clicked, str(result.get("last_object_clicked")))
    if clicked and click != st.session_state.get("last_click"):
        st.session_state["last_click"] = click
        st.session_state["area"] = clicked


def projects_table(view: dashboard.View, shown, today: date) -> None:
    st.subheader("The projects shown, as a table")
    table = dashboard.project_table(shown, today)
    st.caption(
        f"{dashboard.table_summary(table)} Sort by clicking a column heading; search with the "
        "magnifier above the table."
    )
    st.dataframe(table, hide_index=True, key="projects_table")
    left, right = st.columns(2)
    left.download_button(
        "Download CSV",
        data=lambda: dashboard.download_bytes(shown, "csv", view),
        file_name="kindred-map-projects.csv",
        mime="text/csv",
        on_click="ignore",
    )
    right.download_button(
        "Download GeoJSON",
        data=lambda: dashboard.download_bytes(shown, "geojson", view),
        file_name="kindred-map-projects.geojson",
        mime="application/geo+json",
        on_click="ignore",
    )
    st.caption("Home-run projects leave at their ward's centre, without address or postcode.")


def coverage_section(view: dashboard.View, signature: tuple) -> None:
    wanted = st.toggle(
        "Coverage and gaps: who lives beyond reach",
        key="show_coverage",
        value=view.gaps or dashboard.needs_coverage(view),
    )
    if not wanted:
        return
    summary = coverage_for(signature, view.types, view.distance)
    st.text(summary["headline"])
    level = st.radio(
        "Rank gaps by", ["ward", "deanery", "borough"], horizontal=True, key="gaps_level"
    )
    ranked = summary["gaps"][level]
    st.dataframe(ranked.head(25), hide_index=True, key="gaps_table")
    if "note" in ranked.attrs:
        st.caption(ranked.attrs["note"])


def upload_section(store_file) -> None:
    st.subheader("Add projects from a spreadsheet")
    st.caption(
        f"CSV or XLSX. Nothing is saved until you confirm; then the store "
        f"({store.shown_location(store_file)}) is "
        "updated by project id (importing the same file twice changes nothing)."
    )
    uploaded = st.file_uploader("Project file", type=["csv", "xlsx"], key="upload")
    if uploaded is None:
        return
    data = uploaded.getvalue()
    try:
        projects, report = preview_upload(uploaded.name, data)
    except ValueError as error:
        st.error(f"{uploaded.name} could not be read: {error}")
        return
    st.markdown(
        f"**Import report for {uploaded.name}**: {report.rows_read:,} rows read = "
        f"{report.imported:,} to import + {report.rejected:,} rejected; "
        f"{len(projects):,} projects"
    )
    st.code(reports.to_text(report), language=None, wrap_lines=True)
    if len(report.issues):
        st.dataframe(report.issues, hide_index=True, key="upload_issues")
    st.download_button(
        "Download this report (CSV)",
        data=reports.to_csv_bytes(report),
        file_name=f"import-report-{uploaded.name}.csv",
        mime="text/csv",
        on_click="ignore",
    )
    if not len(projects):
        st.warning("No row could be placed: nothing to save.")
        return
    upload_id = (uploaded.name, hashlib.sha256(data).hexdigest(), str(store_file))
    saved = st.session_state.get(SAVED_UPLOAD)
    if saved and saved[0] == upload_id:
        st.success(saved[1])
    elif st.button(f"Save {len(projects):,} projects to the store", key="confirm_upload"):
        result = dashboard.save_upload(uploaded.name, data, store_file)
        message = (
            f"Saved: {result.new or 0:,} new, {result.updated or 0:,} updated, "
            f"{result.unchanged or 0:,} unchanged."
        )
        st.session_state[SAVED_UPLOAD] = (upload_id, message)
        st.rerun()  # the map, counts and table now read the updated store


def map_page() -> None:
    restore_view()
    sidebar()
    store_file = dashboard.store_path()
    signature = dashboard.store_signature(store_file)
    today = date.today()
    view = dashboard.view_from_state(st.session_state)
    st.title("Kindred Map")
    try:
        projects = load_projects(signature)
    except ValueError as error:
        st.error(f"{error}. Check KINDRED_MAP_STORE or rebuild the store.")
        st.stop()
    shown = shown_projects(signature, view)
    st.markdown(f"**{dashboard.counts_text(shown, len(projects))}**")
    map_column, side_column = st.columns([2.8, 1], gap="medium")
    with map_column:
        show_map(view, signature, today)
    with side_column:
        postcode_search(view, shown)
        area_panel(view, signature, shown, today)
    keep_view_in_url(dashboard.view_from_state(st.session_state))
    projects_table(view, shown, today)
    coverage_section(view, signature)
    upload_section(store_file)


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
    st.table(dashboard.layer_sources(), hide_index=True)
    with st.expander("How the approximate deanery boundaries were derived"):
        st.markdown(deanery_method())
    st.subheader("Project data")
    try:
        projects = load_projects(dashboard.store_signature(dashboard.store_path()))
    except ValueError as error:
        st.error(str(error))
        projects = store.empty_projects()
    sources = export.project_sources(projects)
    if sources:
        st.table(dashboard.source_table(sources), hide_index=True)
    notes = dashboard.data_sources_text()
    if notes:
        with st.expander("Project data sources in detail"):
            st.markdown(notes)
    st.subheader("Attribution")
    lines = [*export.attribution(projects), export.LEAFLET_CREDIT, dashboard.OSM_CREDIT]
    st.markdown("\n".join(f"- {line}" for line in lines))
    st.subheader("Method notes")
    st.markdown(dashboard.METHOD_NOTES)


def main() -> None:
    st.set_page_config(page_title="Kindred Map", layout="wide")
    install_assets()
    pages = [
        st.Page(map_page, title="Map", default=True),
        st.Page(about_page, title="About", url_path="about"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
