"""Benchmark the dashboard in Chromium: cold start to map drawn, a filter change to the redrawn
map, and the bytes the map costs.

A Streamlit server runs app.py on a copy of the shipped store (data/projects.gpkg) with no basemap
tiles; Chromium (Debian's, headless, every non-local request aborted) opens it. "Drawn" means the
map shows every project of the view (cluster badges' counts plus single markers equal the number
of located projects). Cold start: the first page of a freshly started server (imports, boundary
and project loads, map build); warm: a new browser (empty HTTP cache) on the same server; again:
the same browser opening the page again (median each). A filter change: choose one borough in
the sidebar, wait until the map shows that borough's projects, then remove it and wait for all
again (median of both directions over several boroughs). Baselines
measured in the same run: the same app on an empty store (areas only, no projects) for the page
loads, and a rerun that keeps the map (choosing an area in the panel's selectbox) for filter
changes. Payload: bytes the browser received over Streamlit's WebSocket for the page and the
st_folium arguments for the map alone (script, header, html), per area layer. Writes
benchmarks/results/dashboard.md.

Run: PYTHONPATH=. python benchmarks/bench_dashboard.py
"""

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from kindred_map import assets, figures, mapview, store
from kindred_map import view as views
from kindred_map.paths import PROJECT_ROOT

RESULTS = Path(__file__).parent / "results" / "dashboard.md"
SHIPPED_STORE = PROJECT_ROOT / "data" / "projects.gpkg"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
WARM_LOADS = 5
BOROUGHS = ("Liverpool", "Wirral", "Sefton", "Wigan")
WARD_RERUNS = 4
TIMEOUT_MS = 120_000
DRAWN_JS = """([selector, count]) => {
    const frame = document.querySelector(selector);
    const win = frame && frame.contentWindow;
    if (!win || !win.map || !win.L || !win.document.querySelector('.km-legend')) return false;
    const doc = win.document;
    const badges = Array.from(doc.querySelectorAll('.km-cluster span'));
    const clustered = badges.reduce((sum, badge) => sum + parseInt(badge.textContent, 10), 0);
    return clustered + doc.querySelectorAll('path.km-project').length === count;
}"""
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_server(
    store_path: Path, log: Path, launcher: bool = False
) -> tuple[str, subprocess.Popen, float]:
    """`streamlit run app.py` (or, with ``launcher``, `kindred-map dashboard`, which `make run`
    uses: it loads the heavy modules and layers before serving) on a free port; returns URL,
    process, seconds until healthy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"KINDRED_MAP_BASEMAP": "none", "KINDRED_MAP_STORE": str(store_path)}
    command = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py")]
    if launcher:
        command = [sys.executable, "-m", "kindred_map.cli", "dashboard"]
    command += ["--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}"]
    command += ["--server.fileWatcherType=none", "--browser.gatherUsageStats=false"]
    started = time.perf_counter()
    with log.open("w") as output:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 120:
        try:
            with NO_PROXY.open(f"{url}/_stcore/health", timeout=2):
                return url, server, time.perf_counter() - started
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def new_page(browser):
    """A page whose non-local requests are aborted, counting WebSocket bytes received."""
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    received = {"bytes": 0, "external": []}

    def route(request_route):
        if urlsplit(request_route.request.url).hostname in ("127.0.0.1", "localhost"):
            request_route.continue_()
        else:
            received["external"].append(request_route.request.url)
            request_route.abort()

    def on_websocket(websocket):
        def count(payload):
            received["bytes"] += len(payload.encode() if isinstance(payload, str) else payload)

        websocket.on("framereceived", count)

    context.route("**/*", route)
    page = context.new_page()
    page.on("websocket", on_websocket)
    return context, page, received


def wait_drawn(page, count: int) -> None:
    page.wait_for_function(DRAWN_JS, arg=[MAP_FRAME, count], timeout=TIMEOUT_MS)


def load(browser, url: str, count: int) -> tuple[float, int]:
    """Seconds from navigation to the map drawn with ``count`` projects, and WebSocket bytes."""
    context, page, received = new_page(browser)
    started = time.perf_counter()
    page.goto(url)
    wait_drawn(page, count)
    seconds = time.perf_counter() - started
    page.wait_for_load_state("networkidle")
    context.close()
    if received["external"]:
        raise RuntimeError(f"requests left the machine: {received['external']}")
    return seconds, received["bytes"]


def reloads(browser, url: str, count: int) -> list[float]:
    """Seconds to the map drawn when the same browser opens the page again (its HTTP cache
    holds Streamlit's and Leaflet's files; the server starts a new session each time)."""
    context, page, _ = new_page(browser)
    page.goto(url)
    wait_drawn(page, count)
    times = []
    for _ in range(WARM_LOADS):
        started = time.perf_counter()
        page.goto(url)
        wait_drawn(page, count)
        times.append(time.perf_counter() - started)
    context.close()
    return times


def located(store_path: Path, view: views.View) -> int:
    shown = views.shown_projects(store.read_projects(store_path), view)
    return int((shown.geometry.notna() & ~shown.geometry.is_empty).sum())


def filter_changes(browser, url: str, store_path: Path) -> tuple[list[float], list[float]]:
    """Seconds per borough filter change (on and off), and per map-keeping rerun (baseline)."""
    everything = located(store_path, views.View())
    context, page, _ = new_page(browser)
    page.goto(url)
    wait_drawn(page, everything)
    changes, reruns = [], []
    widget = page.get_by_label("Borough", exact=True)
    for name in BOROUGHS:
        code = figures.resolve_area("borough", name)
        count = located(store_path, views.View(boroughs=(code,)))
        widget.click()
        widget.fill(name)
        started = time.perf_counter()
        page.get_by_role("option", name=name, exact=True).click()
        wait_drawn(page, count)
        changes.append(time.perf_counter() - started)
        page.keyboard.press("Escape")
        widget.click()
        started = time.perf_counter()
        page.keyboard.press("Backspace")
        wait_drawn(page, everything)
        changes.append(time.perf_counter() - started)
        page.keyboard.press("Escape")
    area = page.get_by_label("Ward details (or click an area on the map)", exact=True)
    for label in list(figures.area_choices("ward").values())[:WARD_RERUNS]:
        area.click()
        area.fill(label)
        started = time.perf_counter()
        page.get_by_role("option", name=label, exact=True).click()
        page.get_by_role("heading", name=f"Ward: {label}").wait_for(timeout=TIMEOUT_MS)
        reruns.append(time.perf_counter() - started)
    context.close()
    return changes, reruns


def map_payloads(store_path: Path) -> list[tuple[str, int]]:
    """Bytes of the st_folium arguments (script, header, html) for several views."""
    import copy

    from streamlit_folium import _get_header, _get_html, _get_map_string

    projects = store.read_projects(store_path)
    chosen = {
        "wards by projects (default)": views.View(),
        "wards by IMD decile": views.View(measure="imd_decile"),
        "LSOAs by projects": views.View(layer="lsoa"),
        "deaneries by per 10,000": views.View(layer="deanery", measure="per_10k"),
        "boroughs by projects": views.View(layer="borough"),
        "Liverpool wards + L1 8JQ search": views.View(
            boroughs=(figures.resolve_area("borough", "Liverpool"),), postcode="L1 8JQ"
        ),
    }
    sizes = []
    for label, view in chosen.items():
        fmap = copy.deepcopy(mapview.build_map(projects, view, today=date.today(), tiles="none"))
        fmap.get_root().render()
        fmap.render()
        text = _get_html(fmap) + _get_header(fmap) + _get_map_string(fmap)
        sizes.append((label, len(text.encode("utf-8"))))
    return sizes


def static_bytes() -> int:
    """Bytes of the locally served Leaflet and Leaflet.markercluster files."""
    return sum(path.stat().st_size for path in assets.install_static())


def main() -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="kindred-bench-"))
    try:
        shipped = folder / "projects.gpkg"
        shutil.copy(SHIPPED_STORE, shipped)
        empty = folder / "empty" / "projects.gpkg"
        count = located(shipped, views.View())
        results = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            for name, path, expected in (("empty store", empty, 0), ("shipped", shipped, count)):
                url, server, boot = start_server(path, folder / f"{name}.log")
                try:
                    cold, cold_bytes = load(browser, url, expected)
                    warm = [load(browser, url, expected) for _ in range(WARM_LOADS)]
                    results[name] = {
                        "boot": boot,
                        "cold": cold,
                        "cold_bytes": cold_bytes,
                        "warm": statistics.median(s for s, _ in warm),
                        "warm_bytes": statistics.median(b for _, b in warm),
                        "again": statistics.median(reloads(browser, url, expected)),
                    }
                    if name == "shipped":
                        changes, reruns = filter_changes(browser, url, path)
                        results["changes"], results["reruns"] = changes, reruns
                finally:
                    server.terminate()
                    server.wait(timeout=30)
            url, server, boot = start_server(shipped, folder / "launcher.log", launcher=True)
            try:
                cold, _ = load(browser, url, count)
                results["launcher"] = {"boot": boot, "cold": cold}
            finally:
                server.terminate()
                server.wait(timeout=30)
            browser.close()
        payloads = map_payloads(shipped)
        write_results(results, payloads, count)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_results(results: dict, payloads: list[tuple[str, int]], count: int) -> None:
    shipped, empty = results["shipped"], results["empty store"]
    change = statistics.median(results["changes"])
    rerun = statistics.median(results["reruns"])
    load1, load5, load15 = os.getloadavg()
    lines = [
        "# Dashboard benchmark",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/bench_dashboard.py` on "
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average at the end {load1:.1f} / {load5:.1f} / {load15:.1f}; the machine was "
        "shared with other work, so treat single figures as indicative). Headless Debian "
        f"Chromium; shipped store with {count} located projects; no basemap tiles.",
        "",
        "## Page loads: navigation to the map drawn with every project",
        "",
        "| | shipped store | empty store (baseline) | ratio |",
        "|---|---|---|---|",
        f"| server start to healthy (s) | {shipped['boot']:.2f} | {empty['boot']:.2f} | "
        f"{shipped['boot'] / empty['boot']:.2f} |",
        f"| cold: first page of a fresh server (s) | {shipped['cold']:.2f} | "
        f"{empty['cold']:.2f} | {shipped['cold'] / empty['cold']:.2f} |",
        f"| warm: a new browser, same server, median of {WARM_LOADS} (s) | {shipped['warm']:.2f} | "
        f"{empty['warm']:.2f} | {shipped['warm'] / empty['warm']:.2f} |",
        f"| again in the same browser (HTTP cache warm), median of {WARM_LOADS} (s) | "
        f"{shipped['again']:.2f} | {empty['again']:.2f} | "
        f"{shipped['again'] / empty['again']:.2f} |",
        f"| WebSocket bytes received, cold page | {shipped['cold_bytes']:,} | "
        f"{empty['cold_bytes']:,} | {shipped['cold_bytes'] / empty['cold_bytes']:.2f} |",
        f"| WebSocket bytes received, warm page | {shipped['warm_bytes']:,.0f} | "
        f"{empty['warm_bytes']:,.0f} | {shipped['warm_bytes'] / empty['warm_bytes']:.2f} |",
        f"| `kindred-map dashboard` (what `make run` starts): server start to healthy (s) | "
        f"{results['launcher']['boot']:.2f} | | |",
        f"| `kindred-map dashboard`: cold, first page (s) | {results['launcher']['cold']:.2f} "
        "| | |",
        "",
        "Target: interactive in < 3 s cold. `kindred-map dashboard` does the imports and layer "
        "loads before it serves, so its first visitor waits about as long as a later one.",
        "",
        "## Filter change: a borough chosen or removed, to the map redrawn",
        "",
        f"- median {change:.2f} s over {len(results['changes'])} changes "
        f"({', '.join(BOROUGHS)}, each on and off); slowest {max(results['changes']):.2f} s",
        f"- baseline, a rerun that keeps the map (an area chosen in the panel): median "
        f"{rerun:.2f} s over {len(results['reruns'])}; ratio {change / rerun:.2f}",
        "",
        "Target: < 1 s per filter change.",
        "",
        "## Map payload: st_folium arguments (script + header + html), bytes",
        "",
        "| view | bytes |",
        "|---|---|",
        *[f"| {label} | {size:,} |" for label, size in payloads],
        "",
        f"Target: < 2 MB. Leaflet and Leaflet.markercluster ({static_bytes():,} bytes of JS, CSS "
        "and images) come from the app's own static folder, once per browser cache.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
