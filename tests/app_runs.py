"""A new session's dashboard page as a browser gets it, for AppTest: two runs."""

from streamlit.testing.v1 import AppTest


def first_page(app: AppTest) -> AppTest:
    """``app``'s first run (the header and the map only: `kindred_map.pages.map.map_page`) and
    the run that the map's first report (drawn) starts in a browser: the whole page."""
    return app.run().run()
