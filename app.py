"""Kindred Map dashboard: the Streamlit page (thin: the work lives in the kindred_map package)."""

import streamlit as st
from streamlit_folium import st_folium

from kindred_map import assets, boundaries, maps

MAP_HEIGHT = 620


@st.cache_resource
def install_assets() -> list:
    """Copy Leaflet into static/ once per server process (served at /app/static/vendor/)."""
    return assets.install_static()


@st.cache_data
def boundary_geojson(name: str) -> dict:
    """A boundary layer ready for the map; each call gets its own copy."""
    return maps.boundary_geojson(name)


@st.cache_data
def deanery_method() -> str:
    return boundaries.metadata("deanery")["method"]


def boundaries_section() -> None:
    """Boroughs, wards and approximate deaneries on one map, each a toggleable layer."""
    st.subheader("Boroughs, wards and deaneries")
    st.caption(
        "Deanery boundaries are approximate: derived from the parish list and small-area "
        "geography, not official Church of England boundaries. Switch layers on and off with "
        "the control at the top right of the map; hover a shape for its name and population."
    )
    with st.expander("How the deanery boundaries were derived"):
        st.markdown(deanery_method())
    layers = {name: boundary_geojson(name) for name in maps.BOUNDARY_LAYERS}
    st_folium(
        maps.boundary_layers_map(layers=layers),
        key="boundaries_map",
        height=MAP_HEIGHT,
        use_container_width=True,
        returned_objects=[],
    )


def main() -> None:
    st.set_page_config(page_title="Kindred Map", layout="wide")
    install_assets()
    st.title("Kindred Map")
    st.write(
        "Community social action across the Liverpool City Region, mapped against the "
        "region's boroughs, wards and Church of England deaneries."
    )
    boundaries_section()


if __name__ == "__main__":
    main()
