"""Kindred Map dashboard: the Streamlit entry (thin: the pages live in `kindred_map.pages`)."""

import streamlit as st

from kindred_map.pages import about, change, common, people
from kindred_map.pages import map as map_page


def main() -> None:
    st.set_page_config(page_title="Kindred Map", layout="wide")
    common.server_log()
    common.page_style()
    common.install_assets()
    common.guard_uploads()
    common.freeze_startup_heap()
    if not people.gate():  # a private map: nothing but the sign-in page
        return
    pages = [
        st.Page(common.guarded(map_page.map_page), title="Map", default=True),
        st.Page(common.guarded(change.change_page), title="Change", url_path="change"),
        st.Page(common.guarded(about.about_page), title="About", url_path="about"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
