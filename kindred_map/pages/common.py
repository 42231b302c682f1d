"""What every page shares: server start-up, the store's projects read once, the error guard."""

import functools
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
