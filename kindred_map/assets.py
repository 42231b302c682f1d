"""Leaflet and Leaflet.markercluster from the installed xstatic packages (so no map asks a CDN),
the dashboard's own script, and the map's data files, all served from static/."""

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import xstatic.pkg.leaflet as xstatic_leaflet
import xstatic.pkg.leaflet_markercluster as xstatic_markercluster

from kindred_map.paths import PUBLISHED_DATA_DIR, STATIC_DIR

STATIC_URL = "/app/static"
"""Where Streamlit serves STATIC_DIR."""
VENDOR = "vendor"
DATA = PUBLISHED_DATA_DIR.name
"""static/data/: the map's data files (geometry, places, project positions and popups), named
by their content's hash so that a browser may keep them."""
DATA_KEEP_SECONDS = 2 * 24 * 3600

BUNDLES = {
    "leaflet": {
        "source": Path(xstatic_leaflet.BASE_DIR),
        "folder": f"leaflet-{xstatic_leaflet.VERSION}",
        "js": {"leaflet": "leaflet.js"},
        "css": {"leaflet_css": "leaflet.css"},
        "images": (
            "images/layers.png",
            "images/layers-2x.png",
            "images/marker-icon.png",
            "images/marker-icon-2x.png",
            "images/marker-shadow.png",
        ),
    },
    "markercluster": {
        "source": Path(xstatic_markercluster.BASE_DIR),
        "folder": f"leaflet.markercluster-{xstatic_markercluster.VERSION}",
        "js": {"markerclusterjs": "leaflet.markercluster.js"},
        "css": {
            "markerclustercss": "MarkerCluster.css",
            "markerclusterdefaultcss": "MarkerCluster.Default.css",
        },
        "images": (),
    },
}
"""Files served per bundle. The js/css keys are folium's own link names, so a local link
replaces folium's CDN link of the same name."""

_CSS_URL = re.compile(r"url\((['\"]?)(images/[\w.-]+\.png)\1\)")


def _bundle(name: str) -> dict:
    try:
        return BUNDLES[name]
    except KeyError:
        raise ValueError(
            f"Unknown asset bundle {name!r}; expected one of {sorted(BUNDLES)}"
        ) from None


def _bundle_files(name: str) -> list[str]:
    bundle = _bundle(name)
    return [*bundle["js"].values(), *bundle["css"].values(), *bundle["images"]]


def _is_current(source: Path, target: Path) -> bool:
    try:
        target_stat = target.stat()
    except FileNotFoundError:
        return False
    source_stat = source.stat()
    return (target_stat.st_size, target_stat.st_mtime_ns) == (
        source_stat.st_size,
        source_stat.st_mtime_ns,
    )


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy through a temporary file, so a browser or a second app never reads half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def install_static(static_dir: Path = STATIC_DIR) -> list[Path]:
    """Copy every bundle into `static_dir/vendor/` (only files missing or changed); return them.

    Cheap when already installed: one stat per file."""
    installed = []
    for name, bundle in BUNDLES.items():
        for relative in _bundle_files(name):
            source = bundle["source"] / relative
            target = static_dir / VENDOR / bundle["folder"] / relative
            if not _is_current(source, target):
                _copy_atomically(source, target)
            installed.append(target)
    return installed


def publish(prefix: str, data: bytes, static_dir: Path = STATIC_DIR, suffix: str = ".json") -> str:
    """Write ``data`` once as static/data/<prefix>-<hash><suffix> and return its URL.

    Files of the same prefix older than two days are removed (a store change or a new day
    writes new ones; sessions still open keep theirs meanwhile)."""
    if not re.fullmatch(r"[a-z0-9-]+", prefix):
        raise ValueError(f"data file prefix {prefix!r}: use lower-case letters, digits and -")
    if suffix not in (".json", ".js", ".css"):
        raise ValueError(f"data file suffix {suffix!r}: .json, .js or .css")
    digest = hashlib.sha256(data).hexdigest()[:20]
    folder = Path(static_dir) / DATA
    target = folder / f"{prefix}-{digest}{suffix}"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
        cutoff = time.time() - DATA_KEEP_SECONDS
        for old in folder.glob(f"{prefix}-*{suffix}"):
            if old != target and old.stat().st_mtime < cutoff:
                old.unlink(missing_ok=True)
    return f"{STATIC_URL}/{DATA}/{target.name}"


def is_published(url: str, static_dir: Path = STATIC_DIR) -> bool:
    """Whether the file behind a URL `publish` gave is still there: a store write on this
    install removes the published project files (`kindred_map.store.forget_published_positions`),
    whichever store they were built from."""
    prefix = f"{STATIC_URL}/{DATA}/"
    if not url.startswith(prefix):
        raise ValueError(f"{url!r} is not a URL publish gives (they start {prefix!r})")
    return (Path(static_dir) / DATA / url.removeprefix(prefix)).is_file()


def static_url(name: str, relative: str) -> str:
    """URL under which Streamlit serves one file of a bundle."""
    return f"{STATIC_URL}/{VENDOR}/{_bundle(name)['folder']}/{relative}"


def folium_js(name: str) -> list[tuple[str, str]]:
    """A fresh `default_js` list for a folium element, pointing at the served local copies."""
    return [(key, static_url(name, file)) for key, file in _bundle(name)["js"].items()]


def folium_css(name: str) -> list[tuple[str, str]]:
    """A fresh `default_css` list for a folium element, pointing at the served local copies."""
    return [(key, static_url(name, file)) for key, file in _bundle(name)["css"].items()]


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def inline_js(names: tuple[str, ...] = ("leaflet", "markercluster")) -> str:
    """The bundles' JavaScript as one text, for a self-contained HTML file."""
    parts = []
    for name in names:
        bundle = _bundle(name)
        parts.extend(
            (bundle["source"] / file).read_text(encoding="utf-8") for file in bundle["js"].values()
        )
    return "\n;\n".join(parts)


DASHBOARD_JS = Path(__file__).parent / "js" / "dashboard.js"
"""The dashboard map's own code (`dashboard.js`), served only inside `combined_js`."""


def combined_js(
    names: tuple[str, ...] = ("leaflet", "markercluster"),
    css_names: tuple[str, ...] = ("leaflet", "markercluster"),
    static_dir: Path = STATIC_DIR,
    data: Mapping[str, bytes] | None = None,
    prefix: str = "map",
) -> str:
    """The bundles' JavaScript, then `DASHBOARD_JS`, and the CSS of ``css_names`` (images
    inlined) put into the page by the same file: one served file named by its content; its URL.

    streamlit-folium loads a map's scripts one after another, and every request of a new
    visitor's page waits its turn on the server and for one of the browser's few connections:
    one file for the map's code and style costs one request instead of six. ``data``: JSON
    files' content by URL (`json.dumps` output: ASCII, a JavaScript expression), handed to
    dashboard.js in the same file (``KM.seed``), so that the map asks for none of them after
    its code (a second round trip, behind the page's other requests on a new visitor's
    page); written under ``prefix``."""
    script = inline_js(names) + "\n;\n" + DASHBOARD_JS.read_text(encoding="utf-8")
    if css_names:
        style = json.dumps(inline_css(css_names))  # a JavaScript string: the CSS as data
        script = (
            "(function () { var style = document.createElement('style');"
            f" style.textContent = {style}; document.head.appendChild(style); }})();\n;\n" + script
        )
    parts = [script.encode("utf-8")]
    for url, content in (data or {}).items():
        parts.append(f"\n;\nKM.seed({json.dumps(url)}, ".encode() + content + b");")
    return publish(prefix, b"".join(parts), static_dir, suffix=".js")


def inline_css(names: tuple[str, ...] = ("leaflet", "markercluster")) -> str:
    """The bundles' CSS as one text, images as data URIs, for a self-contained HTML file."""
    parts = []
    for name in names:
        bundle = _bundle(name)
        for file in bundle["css"].values():
            css = (bundle["source"] / file).read_text(encoding="utf-8")
            parts.append(
                _CSS_URL.sub(
                    lambda match, source=bundle["source"]: (
                        f'url("{_data_uri(source / match.group(2))}")'
                    ),
                    css,
                )
            )
    return "\n".join(parts)
