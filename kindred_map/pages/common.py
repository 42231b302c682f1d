"""What every page shares: server start-up, the store's projects read once, the error guard."""

import functools
import gc
import logging
import uuid

import streamlit as st
from streamlit import runtime

from kindred_map import (
    assets,
    files,
    store,
    upload_gate,
)

LOG = logging.getLogger("kindred_map.app")
"""The dashboard's log: who signed in or out, every write (who, what, which project), and each
unexpected error under the reference the visitor is shown."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@st.cache_resource
def server_log() -> logging.Logger:
    """Once per server process: the package's log lines (INFO and up) on standard error, where
    systemd's journal keeps them (`journalctl -u kindred-map`), beside Streamlit's own."""
    logger = logging.getLogger("kindred_map")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding: 3.5rem 1.25rem 4rem; max-width: none; }
@media (min-width: 800px) {
  [data-testid="stMainBlockContainer"] { padding-top: 1rem; }
  [data-testid="stHeader"] { background: transparent; pointer-events: none; }
  [data-testid="stHeader"] * { pointer-events: auto; }
}
[data-testid="stMainBlockContainer"] h1 { font-size: 1.6rem; padding: 0.25rem 0; }
[data-testid="stMainBlockContainer"] h2 { font-size: 1.3rem; padding: 0.5rem 0 0; }
[data-testid="stCaptionContainer"] { color: #55595f; opacity: 1; }
@media (max-width: 640px) {
  [data-testid="stTable"] table { table-layout: fixed; width: 100%; }
  [data-testid="stTable"] > div { overflow-x: hidden; }
  [data-testid="stTable"] th, [data-testid="stTable"] td { overflow-wrap: anywhere;
    white-space: normal; padding: 0.25rem 0.2rem; font-size: 0.8rem; }
  [data-testid="stTable"] td > div { display: block !important; max-width: 100% !important;
    overflow: visible !important; }
}
</style>"""
"""The map first (issue 23): little padding around the page, a one-line title, so the map
gets the width and the height; captions darker than Streamlit's (its grey at 60% opacity
is 2.8:1 on white, under WCAG AA's 4.5:1; #55595f is 7:1); on a phone a table's columns share
its width and long words wrap, so that no table is a scrolling box the keyboard cannot reach
(axe's scrollable-region-focusable). Above 800 px the header bar lets the title show
through it (the sidebar holds its own button there); on a phone it keeps the sidebar's button."""


def page_style() -> None:
    """The page's CSS (PAGE_CSS): style only, so Streamlit puts it where it takes no room."""
    st.html(PAGE_CSS)


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


@st.cache_resource
def freeze_startup_heap() -> int:
    """Once per server process, early in its first run: collect, then move every object alive
    (the modules the app imported above all) out of the cyclic garbage collector's reach
    (`gc.freeze`); returns how many are frozen. Streamlit runs a full collection after every
    script run (`runner.postScriptGC`), and that walked this whole heap each time: 0.3 of the
    0.4 CPU s a new visitor's page cost the server, 0.1 s with it frozen
    (benchmarks/results/suite.md). The per-run collection stays, so what a run leaves in
    cycles is still freed after it; frozen objects are still freed by reference counting."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource(max_entries=4, show_spinner="Loading projects...")
def load_projects(signature: tuple):
    """The store's projects, read once per store version and shared, never copied: read-only."""
    return store.read_projects(signature[0])


@st.cache_resource(max_entries=4, show_spinner="Loading projects...")
def load_all_projects(signature: tuple):
    """`load_projects` with retired projects too (the editor's picker and forms): read once
    per store version, not on every run of an editor's page; read-only. Saves still check the
    stored version, and change the signature, so the next run reads the store again."""
    return store.read_projects(signature[0], include_retired=True)


# What a visitor sees of an unexpected error: no traceback, no server path (those go to the log,
# under the same reference).
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
