"""What one dashboard page load costs Chromium, by how the browser is set up: CPU seconds of
Chromium's process tree (and the server's) per load, the set-ups interleaved on one server.

    CI=true .venv/bin/python benchmarks/browser_loads.py [ROUNDS]

Set-ups: the test harness's old way (a fresh context per load with every request routed,
which turns Chromium's HTTP cache off), a fresh context unrouted, one shared context (fresh
page per load), and a persistent profile (disk HTTP cache and V8 code cache kept between
loads), the last also with extra flags. Writes benchmarks/results/browser_loads.md."""

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "browser"), str(ROOT / "tests")]

from conftest import CHROMIUM, CHROMIUM_ARGS, _start_app, _stop  # noqa: E402
from streamlit_waits import COUNT_RUNS, wait_page_complete  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
APPLIED_JS = """() => { const f = document.querySelector(
    'iframe[title="streamlit_folium.st_folium"]'); const km = f && f.contentWindow.KM;
    return Boolean(km && km.current && km.current.applied); }"""
FLAG_SETS = {
    "flags: renderer not backgrounded, no software rasterizer, scale 1": [
        "--disable-renderer-backgrounding",
        "--disable-software-rasterizer",
        "--force-device-scale-factor=1",
    ],
    "flags: one process per site": ["--process-per-site"],
    "flags: one renderer, no site isolation": [
        "--renderer-process-limit=1",
        "--disable-site-isolation-trials",
    ],
}


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every live process under it, with the children they reaped."""
    total, queue = 0.0, [pid]
    while queue:
        current = queue.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / TICK  # utime stime cutime cstime
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                queue.extend(int(child) for child in children)
        except OSError:
            continue
    return total


def _children(pid: int) -> set[int]:
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        found |= {int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()}
    return found


def _driver_pid() -> int:
    (driver,) = [p for p in _children(os.getpid()) if "node" in Path(f"/proc/{p}/comm").read_text()]
    return driver


def _new_chromium(driver: int, before: set[int]) -> int:
    (pid,) = _children(driver) - before
    return pid


class Fresh:
    """A fresh context per load, every request routed (routed=True: the old harness)."""

    def __init__(self, playwright, driver, routed, args=CHROMIUM_ARGS):
        before = _children(driver)
        self.browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=args, headless=True
        )
        self.pid = _new_chromium(driver, before)
        self.routed = routed

    def page(self):
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 1300})
        self.context.add_init_script(script=COUNT_RUNS)
        if self.routed:
            self.context.route("**/*", lambda route: route.continue_())
        return self.context.new_page()

    def done(self, page):
        self.context.close()


class Shared:
    """One context (in-memory cache) or a persistent profile (disk cache), a page per load."""

    def __init__(self, playwright, driver, persistent, args=CHROMIUM_ARGS):
        before = _children(driver)
        if persistent:
            self.folder = tempfile.mkdtemp(prefix="km-profile-")
            self.context = playwright.chromium.launch_persistent_context(
                self.folder,
                executable_path=str(CHROMIUM),
                args=args,
                headless=True,
                viewport={"width": 1400, "height": 1300},
            )
        else:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=args, headless=True
            )
            self.context = browser.new_context(viewport={"width": 1400, "height": 1300})
        self.pid = _new_chromium(driver, before)
        self.context.add_init_script(script=COUNT_RUNS)

    def page(self):
        self.context.clear_cookies()
        return self.context.new_page()

    def done(self, page):
        page.close()


def main(rounds: int) -> None:
    store = Path(tempfile.mkdtemp(prefix="km-store-")) / "read-only.gpkg"
    shutil.copy(ROOT / "data" / "projects.gpkg", store)
    log = Path(tempfile.mkdtemp()) / "server.log"
    url, server = _start_app("none", log, {"KINDRED_MAP_STORE": str(store)})
    results: dict[str, list[tuple[float, float, float]]] = {}
    with sync_playwright() as playwright:
        playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True).close()
        driver = _driver_pid()
        setups = {
            "fresh context, routed (old harness)": Fresh(playwright, driver, routed=True),
            "fresh context, not routed": Fresh(playwright, driver, routed=False),
            "one context, page per load": Shared(playwright, driver, persistent=False),
            "persistent profile, page per load": Shared(playwright, driver, persistent=True),
        }
        for name, flags in FLAG_SETS.items():
            setups[f"persistent profile, {name}"] = Shared(
                playwright, driver, persistent=True, args=CHROMIUM_ARGS + flags
            )
        for round_ in range(rounds + 1):  # round 0 warms every set-up and the server
            for name, setup in setups.items():
                browser_before, server_before = _tree_cpu(setup.pid), _tree_cpu(server.pid)
                start = time.monotonic()
                page = setup.page()
                page.goto(url)
                page.wait_for_function(APPLIED_JS, timeout=120_000)
                wait_page_complete(page, 120_000)
                wall = time.monotonic() - start
                browser_cpu = _tree_cpu(setup.pid) - browser_before
                server_cpu = _tree_cpu(server.pid) - server_before
                setup.done(page)
                if round_:
                    results.setdefault(name, []).append((browser_cpu, server_cpu, wall))
                print(round_, name, f"{browser_cpu:.2f} {server_cpu:.2f} {wall:.2f}", flush=True)
    _stop(server)
    load = os.getloadavg()[0]
    lines = [
        "# One dashboard page load: Chromium's CPU by browser set-up",
        "",
        f"`benchmarks/browser_loads.py {rounds}`: {rounds} rounds, set-ups interleaved, one",
        "server (shipped store, no basemap); a load is goto until the map is drawn and the page",
        f"whole and idle. 1-min load average at the end: {load:.1f}. Median (min-max).",
        "",
        "| set-up | Chromium CPU s | server CPU s | wall s |",
        "|---|---|---|---|",
    ]
    for name, rows in results.items():
        cells = []
        for column in zip(*rows, strict=True):
            cells.append(f"{statistics.median(column):.2f} ({min(column):.2f}-{max(column):.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out = ROOT / "benchmarks" / "results" / "browser_loads.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
