"""The Map page: filters, searches, the area panel, the map, the table and coverage."""

from dataclasses import replace
from datetime import date

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_folium import st_folium

from kindred_map import (
    areapanel,
    downloads,
    figures,
    freshness,
    hours,
    maps,
    mapview,
    printmap,
    privacy,
    profile,
    search,
    tables,
    upload,
    upload_gate,
)
from kindred_map import view as views
from kindred_map.pages import editor, people
from kindred_map.pages import upload as upload_page
from kindred_map.pages.common import LOG, load_projects
from kindred_map.schema import project_types
from kindred_map.text import md_escape, md_table

MAP_HEIGHT = 640
MAP_KEY = "dashboard_map"
TABLE_ANCHOR = "projects-table"
SEARCH_ANCHOR = "find"
SAVED_VIEW = "saved_view"
LINK_NOTICES = "link_notices"
"""Session state: what the link or the background setting got wrong, shown above the map on a
session's first run and on the run that completes its page (then the map stays put)."""
MAP_FIRST = "map_first"
"""Session state, set from a session's first run (the header and the map only) to the run that
completes the page: the map's first report (dashboard.js: drawn), or `rest_of_page_soon`."""
REST_OF_PAGE_AFTER_S = 8
"""The rest of a new session's page comes this long after its first run if the map has not
reported by then (its script failed to load, say): a page is never left with the map alone."""
BASEMAP_LABELS = {"osm": "OpenStreetMap (needs internet)", "none": "Plain background (offline)"}


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
    signature: tuple,
    types: tuple,
    distance: int,
    examples: bool = False,
    open_at: str = "",
    inside_only: bool = False,
) -> dict:
    return figures.coverage_summary(
        load_projects(signature), types, distance, examples, open_at, inside_only
    )


@st.cache_data(max_entries=32)
def area_figures(signature: tuple, view: views.View, level: str):
    gaps = None
    if figures.needs_coverage(view):
        gaps = coverage_for(signature, *views.reach_choices(view))["areas"][level]
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
def published_map_files(signature: tuple, today: date) -> dict:
    """The map's static files for this store and day (marker arrays, popups), written once."""
    return mapview.project_files(load_projects(signature), today, masked_projects(signature))


def map_files(signature: tuple, today: date) -> dict:
    """`published_map_files`, written again if a store write removed them meanwhile: a write to
    another store on this install removes them too, and this store's unchanged signature would
    otherwise keep their dead URLs (popups answering 404) until the day changes."""
    files = published_map_files(signature, today)
    if not mapview.project_files_served(files):
        published_map_files.clear()
        files = published_map_files(signature, today)
    return files


@st.cache_data(max_entries=64, show_spinner=False)
def map_payload(signature: tuple, view: views.View, today: date) -> dict:
    """One view's map data, computed once per view (the map's position and the searched
    postcode are not part of ``view`` here: panning and searching need no new payload)."""
    areas = None
    if figures.needs_coverage(view):
        areas = coverage_for(signature, *views.reach_choices(view))["areas"]
    return mapview.view_payload(
        load_projects(signature),
        view,
        map_files(signature, today),
        coverage_areas=areas,
        masked=masked_projects(signature),
    )


# --- the view and the URL -----------------------------------------------------------------


def restore_view() -> None:
    """Widget values from the link on a session's first run, else from the last saved view;
    what the link got wrong into `LINK_NOTICES` (the link's text shown as typed, never as
    Markdown)."""
    if SAVED_VIEW not in st.session_state:
        view, problems = views.view_from_query(st.query_params.to_dict())
        st.session_state[SAVED_VIEW] = view
        st.session_state[LINK_NOTICES] = [md_escape(problem) for problem in problems]
    for key, value in views.widget_values(st.session_state[SAVED_VIEW]).items():
        st.session_state.setdefault(key, value)
    if "basemap" not in st.session_state:
        try:
            st.session_state["basemap"] = maps.basemap_choice()
        except ValueError as error:
            notice = f"{md_escape(error)}: using the plain background"
            st.session_state.setdefault(LINK_NOTICES, []).append(notice)
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
        st.checkbox(
            "Count only projects inside the region",
            key="inside_only",
            help="For comparison. By default a project just outside the nine boroughs counts "
            "for the residents within reach of it; it never counts in an area's projects.",
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
    panel = areapanel.area_panel(view.layer, code, shown, numbers, today)
    st.subheader(panel["title"])
    profile_download(view, signature, code)
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


def profile_download(view: views.View, signature: tuple, code: str) -> None:
    """ "Download profile (PDF)": the area's printable profile (`kindred_map.profile`) at the
    view's types, reach and examples setting, made when clicked. LSOAs have no profile."""
    if view.layer not in profile.LEVELS:
        return
    st.download_button(
        "Download profile (PDF)",
        data=lambda: profile.profile_pdf(
            view.layer,
            code,
            distance_m=view.distance,
            types=list(view.types) or None,
            projects=load_projects(signature),
            include_synthetic=view.examples,
        ),
        file_name=f"kindred-map-profile-{code}.pdf",
        mime="application/pdf",
        on_click="ignore",
        key="download_profile",
    )


def map_downloads(signature: tuple) -> None:
    """ "Download this map" as an A4 landscape PDF (vector) or a PNG (`kindred_map.printmap`),
    made when clicked from the view as it is then: the session's state is read in the
    download's own thread, so a pan or zoom since the page's last full run is included."""
    state = get_script_run_ctx().session_state
    left, right = st.columns(2)
    for column, fmt, mime in ((left, "pdf", "application/pdf"), (right, "png", "image/png")):
        column.download_button(
            f"Download this map ({fmt.upper()})",
            data=lambda fmt=fmt: printed_map(
                signature, views.view_from_state(state.filtered_state), fmt
            ),
            file_name=f"kindred-map.{fmt}",
            mime=mime,
            on_click="ignore",
            key=f"download_map_{fmt}",
        )


def printed_map(signature: tuple, view: views.View, fmt: str) -> bytes:
    areas = None
    if figures.needs_coverage(view):
        areas = coverage_for(signature, *views.reach_choices(view))["areas"]
    return printmap.map_bytes(load_projects(signature), view, fmt, coverage_areas=areas)


@st.fragment
def show_map(view: views.View, signature: tuple, today: date) -> None:
    """The map: its fixed layers are sent when the area level, background or grouping changes;
    otherwise only the view's payload (colours, marker runs, legend) is, and Leaflet keeps its
    zoom and centre. Moving the map reruns only this fragment, to keep the position in the
    link; the map's first placement is not reported (dashboard.js), as it would rerun the
    fragment while the map is still fetching its layers, and a link without a position
    opens on that same fit."""
    st.markdown(f"[Skip the map (to the searches and the table)](#{SEARCH_ANCHOR})")
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
    if st.session_state.get(MAP_FIRST):  # the map's first report: the rest of the page now
        st.rerun(scope="app")
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
    "Check due": f"'yes' when last checked over {freshness.STALE_MONTHS} months ago: the project "
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
        data=lambda: downloads.download_bytes(shown, "csv", view),
        file_name="kindred-map-projects.csv",
        mime="text/csv",
        on_click="ignore",
    )
    right.download_button(
        "Download GeoJSON",
        data=lambda: downloads.download_bytes(shown, "geojson", view),
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
    summary = coverage_for(signature, *views.reach_choices(view))
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


def freshness_counts(counts: dict[str, int]) -> None:
    """Checked / stale / never checked counts of the projects shown (`freshness.counts` of the
    filtered projects): the editor's view; they add up to the map's count."""
    lines = [
        f"- {freshness.FRESHNESS[name].capitalize()}: **{count:,}**"
        for name, count in counts.items()
    ]
    st.markdown(  # Markdown, not metric cards: seven fewer scripts to load
        f"Of the {sum(counts.values()):,} projects shown:\n\n" + "\n".join(lines)
    )
    st.caption(
        "When staff last confirmed that each project still runs (Checked today in the editor); "
        "a stale project may have stopped. The counts follow the filters."
    )


def page_header(shown, total: int, view: views.View, counts: dict[str, int]) -> None:
    """Title, counts and the data's currency on one line (wrapping on a phone): the map
    starts high on the page (issue 23)."""
    with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
        st.title("Kindred Map", anchor=False, width="content")  # no heading link: one Tab fewer
        st.markdown(f"**{tables.counts_text(shown, total)}**", width="content")
        hidden = "" if view.examples else " Illustrative examples hidden."
        st.caption(freshness.currency_text(counts) + hidden, width="content")


@st.fragment(run_every=REST_OF_PAGE_AFTER_S)
def rest_of_page_soon() -> None:
    """Below the map on a session's first run: says the rest is coming, and brings it if the
    map has not reported within `REST_OF_PAGE_AFTER_S` (its first tick)."""
    if st.session_state.get(MAP_FIRST) == "waiting":
        st.rerun(scope="app")
    st.session_state[MAP_FIRST] = "waiting"
    st.caption("Loading the searches, filters and table...")


def map_page() -> None:
    """The page. A session's first run sends the header and the map only: the widgets' code,
    which the browser fetches as they arrive (about 45 files), would otherwise queue before the
    map's own. The map's first report (drawn) reruns the page whole; the map stays as it is
    (the same element, key and arguments), and the link's view applies from the first run."""
    first_run = SAVED_VIEW not in st.session_state
    completing = bool(st.session_state.pop(MAP_FIRST, None))
    if not first_run and not completing:
        st.session_state[LINK_NOTICES] = []  # shown until the page is complete
    restore_view()
    for notice in st.session_state.get(LINK_NOTICES, []):
        st.warning(notice)
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
    counts = freshness_numbers(signature, views.filter_view(view), today)
    page_header(shown, len(projects), view, counts)
    # The map first and across the page (issue 23), then the searches and the area chooser
    # beside each other (stacked on a phone, where they follow the map): "Skip the map" leads
    # to them, and Tab goes on to the table. The sidebar's widgets last, so that the map's
    # frame starts before the browser loads their code. The view was read from the session
    # (`restore_view`) before any widget is drawn, so the order changes no value.
    show_map(view, signature, today)
    if first_run:
        rest_of_page_soon()
        return
    st.header("Find projects and areas", anchor=SEARCH_ANCHOR)
    postcode_column, name_column, area_column = st.columns(3, gap="medium")
    with postcode_column:
        postcode_search(view, shown)
    with name_column:
        project_search(view, shown, today)
    with area_column:
        area_panel(view, signature, shown, today)
    map_downloads(signature)  # after the searches: "Skip the map" leads straight to them
    sidebar()
    keep_view_in_url(views.view_from_state(st.session_state))
    projects_table(view, signature, shown, today)
    coverage_section(view, signature)
    user = editor.current_user()
    upload_gate.allow(get_script_run_ctx().session_id, user is not None and user.can("upload"))
    if user is not None:  # viewers get no editor controls at all
        st.subheader("Freshness of the projects shown")
        freshness_counts(counts)
        upload_page.upload_section(store_file, user, signature)
        editor.editor_panel(signature, user)
        if user.can("users"):
            people.people_section(user)
