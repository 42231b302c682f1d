"""The About page: boundary and reference data, project sources, attribution, method notes."""

import streamlit as st

from kindred_map import (
    abouttext,
    boundaries,
    export,
    store,
    upload,
)
from kindred_map.pages.common import load_projects
from kindred_map.text import md_escape, md_table


@st.cache_data
def deanery_method() -> str:
    return boundaries.metadata("deanery")["method"]


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
    layers = abouttext.layer_sources()
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
            md_table(abouttext.source_table(sources), ["Source", "Licence", "Note"]),
            hide_index=True,
        )
    notes = abouttext.data_sources_text()
    if notes:
        with st.expander("Project data sources in detail"):
            st.markdown(notes)
    st.subheader("Attribution")
    lines = [*export.attribution(projects), export.LEAFLET_CREDIT, abouttext.OSM_CREDIT]
    st.markdown("\n".join(f"- {md_escape(line)}" for line in lines))  # from layers and files
    st.subheader("Method notes")
    st.markdown(abouttext.METHOD_NOTES)
