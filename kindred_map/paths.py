"""Where the project's files live, overridable by environment variables."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOUNDARIES_DIR = Path(os.environ.get("KINDRED_MAP_BOUNDARIES", PROJECT_ROOT / "boundaries"))
DATA_DIR = Path(os.environ.get("KINDRED_MAP_DATA", PROJECT_ROOT / "data"))
DEFAULT_RAW_DIR = PROJECT_ROOT.parent / "shared" / "data" / "raw"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
"""Reference tables shipped in the package (diocese places, lookups) that builds and joins read."""
DEFAULT_STORE = DATA_DIR / "projects.gpkg"
"""The shipped sample store (a GeoPackage): what `kindred_map.location.resolve` gives when no
store is configured."""
STATIC_DIR = Path(os.environ.get("KINDRED_MAP_STATIC", PROJECT_ROOT / "static"))
"""Where the map's files are written: Streamlit serves `static/` beside app.py
(server.enableStaticServing), so a dashboard must keep the default. KINDRED_MAP_STATIC gives a
process that serves no dashboard a folder of its own: the tests' processes write theirs there,
so that a store write in one test (which removes the published project files,
`kindred_map.store.forget_published_positions`) cannot remove the files a dashboard under
test is serving meanwhile."""
PUBLISHED_DATA_DIR = STATIC_DIR / "data"
PUBLISHED_PROJECT_FILES = ("projects", "popups", "projectmap")
"""Prefixes of the files in PUBLISHED_DATA_DIR built from the store's projects (marker
positions and popups, `kindred_map.mapview.project_files`; the map's script carrying the
marker positions, `kindred_map.mapview.map_script`): a save that makes a position private
removes them (`kindred_map.store.forget_published_positions`)."""
