"""The pytest-xdist worker a test runs in, for names that parallel workers must not share."""

import os

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""This worker's id (gw0, gw1, ...) under `pytest -n N`; empty in a serial run."""


def per_worker(name: str) -> str:
    """A file name made this worker's own (``server.log`` -> ``server-gw1.log``); unchanged in a
    serial run."""
    if not WORKER:
        return name
    stem, dot, suffix = name.partition(".")
    return f"{stem}-{WORKER}{dot}{suffix}"
