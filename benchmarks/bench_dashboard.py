"""Benchmark the dashboard in Chromium against three baselines measured in the same run.

Four pages, each served by its own `streamlit run` (no basemap tiles; every non-local request
aborted), opened in turn (interleaved) by headless Debian Chromium:
- floor: a Streamlit page that only writes a title (benchmarks/pages/floor.py);
- bare st_folium: the same wards (shaded) and clustered markers, built the plain folium way
  (benchmarks/pages/bare_folium.py);
- FastMarkerCluster: the same wards and markers through folium's `FastMarkerCluster`, the
  markers made in the browser from one data array (benchmarks/pages/fast_cluster.py; issue 26:
  the product's first map within 5% of it);
- product: app.py;
- with ``--before DIR``: the product as it was, app.py of another checkout (say
  `git archive main`), served from there: a change's before and after in one run.
On three stores: the shipped one (copied), and 10,000 and 50,000 synthetic benchmark projects
at real live postcodes of the region (generated here in a temporary folder, never in data/).

Measured: cold (the first page of a fresh server) and warm (a new browser, empty HTTP cache,
same server) to the map drawn (every located project in the markercluster layer; title shown
for the floor); a borough filter change (on and off) to the map redrawn with that borough's
projects, and the WebSocket bytes each change brings; a postcode search to its answer shown;
the WebSocket bytes of a whole page, and its HTTP requests and their body bytes. min / median /
max go to benchmarks/results/dashboard.md (``--first-map-only``: the page loads alone, to
benchmarks/results/dashboard_first_map.md).

Run once, near the end of a piece of work (2 shared cores): PYTHONPATH=. python
benchmarks/bench_dashboard.py [--sizes 10000,50000]
"""

import argparse
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

import numpy as np
import pandas as pd

from kindred_map import assets, boundaries, figures, importing, store
from kindred_map import view as views
from kindred_map.paths import PROJECT_ROOT

RESULTS = Path(__file__).parent / "results" / "dashboard.md"
FIRST_MAP_RESULTS = Path(__file__).parent / "results" / "dashboard_first_map.md"
"""Where ``--first-map-only`` writes (the full run's file keeps its filter and search rows)."""
PAGES = Path(__file__).parent / "pages"
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
POSTCODES = ("L1 8JQ", "CH41 5LH", "WN1 1XL", "L20 3NL", "WA10 1HJ", "PR8 1RH")
TIMEOUT_MS = 180_000
SEED = 20261130
PRODUCT_DRAWN_JS = """([selector, count]) => {
    const frame = document.querySelector(selector);
    const km = frame && frame.contentWindow.KM && frame.contentWindow.KM.current;
    return Boolean(km && km.applied && km.projectLayer.getLayers().length === count
        && frame.contentWindow.document.querySelector(
            '.km-cluster, .leaflet-kmProjects-pane path'));
}"""
BARE_DRAWN_JS = """([selector, count]) => {
    const frame = document.querySelector(selector);
    const win = frame && frame.contentWindow;
    if (!win || !win.map || !win.L || !win.L.MarkerClusterGroup) return false;
    let group = null;
    win.map.eachLayer((layer) => { if (layer instanceof win.L.MarkerClusterGroup) group = layer; });
    return Boolean(group && group.getLayers().length === count
        && win.document.querySelector('.marker-cluster, path.leaflet-interactive'));
}"""
KINDS = {
    "floor": "floor",
    "bare": "bare",
    "fast": "fast",
    "before": "product",
    "product": "product",
}
"""Each page's "drawn" test (`wait_drawn`): the product's before and after alike."""
LABELS = {
    "floor": "floor",
    "bare": "bare st_folium",
    "fast": "FastMarkerCluster",
    "before": "product before",
    "product": "product",
}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def staged(script: Path, folder: Path) -> Path:
    """A baseline page copied beside a link to the project's static/ (Streamlit serves the
    static/ folder next to the script it runs), so it gets the same local Leaflet."""
    target = folder / "pages" / script.name
    target.parent.mkdir(exist_ok=True)
    shutil.copy(script, target)
    link = target.parent / "static"
    if not link.is_symlink():
        link.symlink_to(PROJECT_ROOT / "static")
    return target


def start_server(
    script: Path, store_path: Path, log: Path, root: Path = PROJECT_ROOT
) -> tuple[str, subprocess.Popen]:
    """`streamlit run script` on a free port with this store and no tiles, importing the
    project's code from ``root``; URL once healthy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"KINDRED_MAP_BASEMAP": "none", "KINDRED_MAP_STORE": str(store_path)}
    env["PYTHONPATH"] = str(root)
    command = [sys.executable, "-m", "streamlit", "run", str(script)]
    command += ["--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}"]
    command += ["--server.fileWatcherType=none", "--browser.gatherUsageStats=false"]
    command += ["--server.enableStaticServing=true"]
    with log.open("w") as output:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    while time.perf_counter() - started < 180:
        try:
            with NO_PROXY.open(f"{url}/_stcore/health", timeout=2):
                return url, server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def new_page(browser):
    """A fresh browser context (empty cache) whose non-local requests are aborted, counting
    the WebSocket bytes it receives."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    received = {"bytes": 0, "external": [], "requests": []}

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
    page.on("requestfinished", lambda request: received["requests"].append(request))
    return context, page, received


def wait_drawn(page, kind: str, count: int) -> None:
    if kind == "floor":
        page.get_by_role("heading", name="Kindred Map").wait_for(timeout=TIMEOUT_MS)
    else:
        js = PRODUCT_DRAWN_JS if kind == "product" else BARE_DRAWN_JS  # bare and fast
        page.wait_for_function(js, arg=[MAP_FRAME, count], timeout=TIMEOUT_MS)


def load(browser, url: str, kind: str, count: int) -> tuple[float, int, int, int]:
    """Seconds from navigation to drawn, the WebSocket bytes of the page, and its HTTP requests
    (all frames) and their response body bytes (read after the timing)."""
    context, page, received = new_page(browser)
    started = time.perf_counter()
    page.goto(url)
    try:
        wait_drawn(page, kind, count)
    except Exception:
        page.screenshot(path=str(PROJECT_ROOT / "test-artifacts" / f"bench-failed-{kind}.png"))
        raise
    seconds = time.perf_counter() - started
    page.wait_for_timeout(300)
    requests = list(received["requests"])
    body = sum(max(request.sizes()["responseBodySize"], 0) for request in requests)
    context.close()
    if received["external"]:
        raise RuntimeError(f"requests left the machine: {received['external']}")
    return seconds, received["bytes"], len(requests), body


def located(store_path: Path, view: views.View) -> int:
    shown = views.shown_projects(store.read_projects(store_path), view)
    return int((shown.geometry.notna() & ~shown.geometry.is_empty).sum())


def filter_changes(browser, url: str, store_path: Path) -> tuple[list[float], list[int]]:
    """Seconds and WebSocket bytes per borough filter change (on, then off again)."""
    everything = located(store_path, views.View())
    context, page, received = new_page(browser)
    page.goto(url)
    wait_drawn(page, "product", everything)
    page.wait_for_timeout(500)
    times, sizes = [], []
    widget = page.get_by_label("Borough", exact=True)
    for name in BOROUGHS:
        count = located(store_path, views.View(boroughs=(figures.resolve_area("borough", name),)))
        widget.click()
        widget.fill(name)
        before, started = received["bytes"], time.perf_counter()
        page.get_by_role("option", name=name, exact=True).click()
        wait_drawn(page, "product", count)
        times.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
        sizes.append(received["bytes"] - before)
        page.keyboard.press("Escape")
        widget.click()
        before, started = received["bytes"], time.perf_counter()
        page.keyboard.press("Backspace")
        wait_drawn(page, "product", everything)
        times.append(time.perf_counter() - started)
        page.wait_for_timeout(300)
        sizes.append(received["bytes"] - before)
        page.keyboard.press("Escape")
    context.close()
    return times, sizes


SEARCH_TIMER_JS = """(postcode) => {
    let pressed = null;
    document.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { pressed = performance.now(); }
    }, {capture: true, once: true});
    window.__kmSearch = new Promise((resolve) => {
        const watch = new MutationObserver(() => {
            if (pressed === null || !document.body.innerText.includes("m of " + postcode)) return;
            watch.disconnect();
            requestAnimationFrame(() => resolve(performance.now() - pressed));
        });
        watch.observe(document.body, {subtree: true, childList: true, characterData: true});
    });
    return true;
}"""
"""Times one postcode search inside the page: from the Enter key to the next frame after the
answer ("... m of <postcode>") is in the page. The driver's own polling (about 0.1-0.3 s here)
is not counted; a long task that delays the frame is."""


def searches(browser, url: str, count: int) -> list[float]:
    """Seconds from Enter in the postcode box to the answer drawn (`SEARCH_TIMER_JS`)."""
    context, page, _ = new_page(browser)
    page.goto(url)
    wait_drawn(page, "product", count)
    times = []
    box = page.get_by_label("Find projects near a postcode", exact=True)
    for postcode in POSTCODES:
        box.fill(postcode)
        page.evaluate(SEARCH_TIMER_JS, postcode)
        box.press("Enter")
        page.get_by_text(f"m of {postcode}").first.wait_for(timeout=TIMEOUT_MS)
        times.append(page.evaluate("window.__kmSearch") / 1000)
        page.wait_for_timeout(500)  # the map's move to the postcode, before the next search
    context.close()
    return times


def synthetic_store(folder: Path, size: int) -> Path:
    """``size`` benchmark projects at random live residential postcodes of the region (types
    in the shipped store's proportions), imported through the normal pipeline."""
    rng = np.random.default_rng(SEED + size)
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & (postcodes["residents"] > 0)]
    picked = live["postcode"].to_numpy()[rng.integers(0, len(live), size)]
    kinds = store.read_projects(SHIPPED_STORE)["type"].to_numpy()
    rows = pd.DataFrame(
        {
            "id": [f"bench-{i:06d}" for i in range(size)],
            "name": [f"Benchmark project {i}" for i in range(size)],
            "type": kinds[rng.integers(0, len(kinds), size)],
            "postcode": picked,
            "source": "Benchmark (synthetic, not real)",
            "last_checked": "2026-01-15",
        }
    )
    source = folder / f"bench-{size}.csv"
    rows.to_csv(source, index=False)
    path = folder / f"bench-{size}.gpkg"
    importing.import_file(source, path)
    return path


def spread(values) -> str:
    values = list(values)
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def measure(
    browser,
    folder: Path,
    label: str,
    store_path: Path,
    floor_url: str,
    loads: int,
    first_map_only: bool = False,
    before: Path | None = None,
    bare: bool = True,
) -> dict:
    """Every figure for one store, the pages interleaved (``before``: also the product of
    that checkout; ``bare``: with the bare st_folium page)."""
    count = located(store_path, views.View())
    servers = {}
    try:
        scripts = {
            "bare": (staged(PAGES / "bare_folium.py", folder), PROJECT_ROOT),
            "fast": (staged(PAGES / "fast_cluster.py", folder), PROJECT_ROOT),
            "before": (before / "app.py", before) if before else None,
            "product": (PROJECT_ROOT / "app.py", PROJECT_ROOT),
        }
        if not bare:
            del scripts["bare"]
        for kind, (script, root) in ((k, v) for k, v in scripts.items() if v):
            log = folder / f"{label}-{kind}.log"
            servers[kind] = start_server(script, store_path, log, root)
        urls = {"floor": floor_url} | {kind: url for kind, (url, _) in servers.items()}
        result = {"label": label, "projects": count}
        for kind in servers:
            print(f"{label}: cold {kind}", flush=True)
            result[f"{kind} cold"] = load(browser, urls[kind], KINDS[kind], count)
        warm = {kind: [] for kind in urls}
        for _ in range(loads):
            for kind, url in urls.items():
                warm[kind].append(load(browser, url, KINDS[kind], count))
        result["warm"] = warm
        if first_map_only:
            result["changes"], result["searches"] = ([], []), []
            return result
        print(f"{label}: filter changes and searches", flush=True)
        result["changes"] = filter_changes(browser, urls["product"], store_path)
        result["searches"] = searches(browser, urls["product"], count)
        return result
    finally:
        for _, server in servers.values():
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="synthetic store sizes")
    parser.add_argument("--loads", type=int, default=WARM_LOADS, help="warm loads per page")
    parser.add_argument(
        "--postgis",
        metavar="DSN",
        help="also measure the shipped store copied into this empty PostGIS database "
        "(`kindred-map store copy`), against the same baselines",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also measure app.py of this checkout (the product before a change), interleaved",
    )
    parser.add_argument(
        "--without-bare",
        action="store_true",
        help="leave out the bare st_folium page (35 s a load at 10,000 projects)",
    )
    parser.add_argument(
        "--first-map-only",
        action="store_true",
        help="only the page loads (no filter changes or searches)",
    )
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",") if size]
    loads = arguments.loads
    folder = Path(tempfile.mkdtemp(prefix="kindred-bench-"))
    assets.install_static()  # the baseline pages link to the same local Leaflet
    try:
        shipped = folder / "projects.gpkg"
        shutil.copy(SHIPPED_STORE, shipped)
        stores = [("shipped", shipped)]
        if arguments.postgis:
            store.copy(shipped, arguments.postgis)
            stores.append(("shipped, on PostGIS,", arguments.postgis))
        for size in sizes:
            started = time.perf_counter()
            stores.append((f"{size:,} synthetic", synthetic_store(folder, size)))
            print(f"built {size:,} projects in {time.perf_counter() - started:.0f} s", flush=True)
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            floor_page = staged(PAGES / "floor.py", folder)
            floor_url, floor = start_server(floor_page, shipped, folder / "floor.log")
            try:
                for label, path in stores:
                    results.append(
                        measure(
                            browser,
                            folder,
                            label,
                            path,
                            floor_url,
                            loads,
                            arguments.first_map_only,
                            arguments.before,
                            not arguments.without_bare,
                        )
                    )
                    print(f"measured {label}", flush=True)
            finally:
                floor.terminate()
                floor.wait(timeout=30)
            browser.close()
        write_results(results, FIRST_MAP_RESULTS if arguments.first_map_only else RESULTS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _column(runs: list[tuple], at: int, form: str = "{:,.0f}") -> str:
    return form.format(statistics.median(run[at] for run in runs))


def _ratios(warm: dict, top: str, bottom: str) -> str:
    """Median ``top`` over median ``bottom`` and the ratio of each interleaved round."""
    over = statistics.median(r[0] for r in warm[top]) / statistics.median(
        r[0] for r in warm[bottom]
    )
    rounds = [a / b for (a, *_), (b, *_) in zip(warm[top], warm[bottom], strict=True)]
    per_round = ", ".join(f"{ratio:.2f}" for ratio in rounds)
    return f"{over:.2f} (per round: {per_round}; median of rounds {statistics.median(rounds):.2f})"


def write_results(results: list[dict], target: Path = RESULTS) -> None:
    load_average = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        "# Dashboard benchmark",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/bench_dashboard.py` on "
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average at the end {load_average}; shared machine: treat single figures as "
        "indicative, compare ratios). Headless Debian Chromium at 1440x1000, no basemap tiles, a "
        "new browser context (empty HTTP cache) per page load. Pages opened in turn "
        "(interleaved): floor (a title only), bare st_folium (the same wards and clustered "
        "markers, plain folium `MarkerCluster`), FastMarkerCluster (the same through folium's "
        "`FastMarkerCluster`), product before (with `--before`: app.py of another checkout), "
        "product (app.py). Figures are min / median / max in seconds "
        "unless said.",
        "",
    ]
    first = None
    for result in results:
        warm = result["warm"]
        kinds = [kind for kind in LABELS if kind in warm]
        median = {kind: statistics.median(run[0] for run in warm[kind]) for kind in kinds}
        product, fast = median["product"], median["fast"]
        times, sizes = result["changes"]
        first = first or product
        blank = " | " * (len(kinds) - 1)
        lines += [
            f"## {result['label']} store ({result['projects']:,} located projects)",
            "",
            "| measure | " + " | ".join(LABELS[kind] for kind in kinds) + " |",
            "|---|" + "---|" * len(kinds),
            "| cold: first page of a fresh server, to drawn | | "
            + " | ".join(f"{result[f'{kind} cold'][0]:.2f}" for kind in kinds[1:])
            + " |",
            f"| warm: a new visitor, to drawn ({len(warm['product'])} loads) | "
            + " | ".join(spread(run[0] for run in warm[kind]) for kind in kinds)
            + " |",
            "| WebSocket bytes of a warm page (median) | "
            + " | ".join(_column(warm[kind], 1) for kind in kinds)
            + " |",
            "| HTTP requests of a warm page, all frames (median) | "
            + " | ".join(_column(warm[kind], 2) for kind in kinds)
            + " |",
            "| HTTP response body bytes of a warm page (median) | "
            + " | ".join(_column(warm[kind], 3) for kind in kinds)
            + " |",
        ]
        if times:
            lines += [
                f"| filter change to the map redrawn ({len(times)}: {', '.join(BOROUGHS)} on "
                f"and off) |{blank}{spread(times)} |",
                f"| WebSocket bytes per filter change |{blank}"
                f"{min(sizes):,} / {statistics.median(sizes):,.0f} / {max(sizes):,} |",
                f"| postcode search to the answer drawn, timed in the page ({len(POSTCODES)} "
                f"postcodes of six boroughs) |{blank}{spread(result['searches'])} |",
            ]
        lines += ["", f"Warm page, product / FastMarkerCluster: {_ratios(warm, 'product', 'fast')}"]
        if "before" in warm:
            lines[-1] += (
                f"; product before / FastMarkerCluster: {_ratios(warm, 'before', 'fast')}; "
                f"product / product before: {_ratios(warm, 'product', 'before')}"
            )
        if "bare" in warm:
            lines[-1] += f"; product / bare st_folium: {product / median['bare']:.2f}"
        lines[-1] += (
            f"; product / floor: {product / median['floor']:.2f}; product / shipped-store "
            f"product: {product / first:.2f}; FastMarkerCluster: {fast:.2f} s."
        )
        lines.append("")
    lines += [
        "Targets (issue 10): shipped store: filter change <= 0.30 s median, postcode search <= "
        "0.30 s, <= 50 KB per filter change, warm page <= 1.1x the bare st_folium page; 10,000 "
        "projects: filter change <= 0.5 s, page <= 1.5 MB over the WebSocket, drawn <= 1.3x the "
        "shipped-store page; 50,000: filter change <= 2 s. Issue 26: the warm first map within "
        "1.05x the FastMarkerCluster page at the shipped store and at 10,000 projects.",
        "",
    ]
    target.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
