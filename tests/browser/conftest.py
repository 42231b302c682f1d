"""Browser harness: the dashboard served on a free port, driven by Chromium kept on this machine."""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit_waits import COUNT_RUNS, wait_idle
from workers import per_worker

from kindred_map.paths import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # One renderer process for every page: a new page then reuses its warm V8 and Blink
    # caches; a dashboard load costs Chromium 2.6 CPU s, not 3.2 s, with the profile below
    # (benchmarks/results/browser_loads.md). The pages are all this machine's own.
    "--renderer-process-limit=1",
    "--disable-site-isolation-trials",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PAGE_SIZE = {"width": 1400, "height": 1300}
SERVER_START_TIMEOUT_S = 120
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
"""streamlit-folium draws the map inside this component iframe."""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _unavailable(reason: str) -> None:
    """Skip a browser test for a missing tool, except in CI, where it must run."""
    if _in_ci():
        pytest.fail(f"{reason}; CI=true, so browser tests must run, not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_tools() -> None:
    """Chromium and Playwright are present (else skip, or fail under CI=true)."""
    if not CHROMIUM.exists():
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def deploy_tools(browser_tools) -> None:
    """Caddy and the mock OpenID provider are present too (else skip, or fail under CI=true)."""
    if not shutil.which("caddy"):
        _unavailable("Caddy not found (apt-get install caddy)")
    try:
        import oidc_provider_mock  # noqa: F401
    except ImportError:
        _unavailable("oidc-provider-mock is not installed (pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with NO_PROXY.open(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"Streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{log.read_text()}"
    )


def _start_app(
    basemap: str, log: Path, extra_env: dict[str, str] | None = None, launcher: bool = False
) -> tuple[str, subprocess.Popen]:
    """`streamlit run app.py`, or with ``launcher`` `kindred-map dashboard` (what `make run`
    starts), headless on a free port; returns its URL and process once healthy."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    start = ["streamlit", "run", str(PROJECT_ROOT / "app.py")]
    if launcher:
        start = ["kindred_map.cli", "dashboard"]
    command = [
        sys.executable,
        "-m",
        *start,
        "--server.headless=true",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]
    # A dashboard writes its map files where Streamlit serves them (the tests' own folder,
    # KINDRED_MAP_STATIC, is for processes that serve none).
    env = {k: v for k, v in os.environ.items() if k != "KINDRED_MAP_STATIC"}
    env |= {"KINDRED_MAP_BASEMAP": basemap} | (extra_env or {})
    with log.open("w") as output:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(url, server, log)
    except BaseException:
        _stop(server)
        raise
    return url, server


STOP_GRACE_S = 3
"""How long a test server may take to stop on SIGTERM before it is killed: Streamlit takes 2 s
with no session open, and up to 13 s was seen with some; nothing the tests read needs a
graceful stop (their logs are written as they go, their stores committed)."""


def _stop(*servers: subprocess.Popen) -> None:
    """Stop servers: all asked at once, then each waited for until `STOP_GRACE_S` after the
    ask, and killed if still running, so a session's servers take at most that long to stop."""
    for server in servers:
        server.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for server in servers:
        try:
            server.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def started_servers():
    """Every dashboard server of the session, stopped together at its end: stopping one takes
    0.5-7 s, and the three fixtures below once stopped theirs one fixture after another."""
    servers: list[subprocess.Popen] = []
    yield servers
    _stop(*servers)


@pytest.fixture(scope="session")
def serve_app(browser_tools, artifacts_dir, started_servers):
    """serve_app(basemap) -> URL of `streamlit run app.py` headless on a free local port.

    One server per basemap for the whole session, stopped at its end."""
    servers: dict[str, str] = {}

    def serve(basemap: str) -> str:
        if basemap not in servers:
            log = artifacts_dir / per_worker(f"streamlit-server-{basemap}.log")
            servers[basemap], server = _start_app(basemap, log)
            started_servers.append(server)
        return servers[basemap]

    return serve


SHIPPED_STORE = PROJECT_ROOT / "data" / "projects.gpkg"
DASHBOARD_FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "dashboard_projects.csv"


@pytest.fixture(scope="session")
def store_copy(tmp_path_factory):
    """store_copy(name) -> a fresh temporary copy of the shipped project store (data/), so that a
    test may write to it; built from tests/fixtures/dashboard_projects.csv if none is shipped."""
    from kindred_map import importing

    folder = tmp_path_factory.mktemp("stores")

    def copy(name: str) -> Path:
        path = folder / f"{name}.gpkg"
        if SHIPPED_STORE.exists():
            shutil.copy(SHIPPED_STORE, path)
        else:
            importing.import_file(DASHBOARD_FIXTURE, path)
        return path

    return copy


EDITOR = ("ann", "a long password", "Ann Editor")
"""The editor every dashboard server knows (user name, password, display name)."""


@pytest.fixture(scope="session")
def editor_credentials() -> tuple[str, str]:
    """The EDITOR's user name and password, for a client that signs in without a browser."""
    return EDITOR[0], EDITOR[1]


@pytest.fixture(scope="session")
def users_file(tmp_path_factory) -> Path:
    """A temporary credentials file (KINDRED_MAP_USERS) holding the EDITOR."""
    from kindred_map import auth

    path = tmp_path_factory.mktemp("users") / "users.json"
    auth.add_user(EDITOR[0], EDITOR[1], name=EDITOR[2], path=path)
    return path


@pytest.fixture(scope="session")
def sign_in():
    """sign_in(page): sign the EDITOR in with the sidebar form; waits until the page says so."""

    def sign(page, timeout_ms: int = 60_000) -> None:
        page.get_by_label("User name").fill(EDITOR[0])
        page.get_by_label("Password", exact=True).fill(EDITOR[1])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as").wait_for(timeout=timeout_ms)
        wait_idle(page, timeout_ms)  # the run that drew it (sign-in reruns) has finished

    return sign


@pytest.fixture(scope="session")
def serve_dashboard(browser_tools, artifacts_dir, users_file, started_servers):
    """serve_dashboard(store_path) -> URL of the app reading (and writing) that project store,
    with no basemap tiles and the EDITOR able to sign in; one server per store."""
    servers: dict[Path, str] = {}

    def serve(store_path: Path) -> str:
        if store_path not in servers:
            log = artifacts_dir / per_worker(f"streamlit-server-{store_path.stem}.log")
            env = {"KINDRED_MAP_STORE": str(store_path), "KINDRED_MAP_USERS": str(users_file)}
            servers[store_path], server = _start_app("none", log, env)
            started_servers.append(server)
        return servers[store_path]

    return serve


@pytest.fixture(scope="session")
def viewer_store(store_copy) -> Path:
    """One copy of the shipped store for every test that only reads it, through one server
    (`viewer_url`): a server's first visit costs 6-10 s of its start-up and cold caches, paid
    once instead of once per file. Fails at the session's end if any test wrote to it."""
    path = store_copy("read-only")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    yield path
    after = hashlib.sha256(path.read_bytes()).hexdigest()
    assert after == before, f"a test wrote to the shared read-only store {path}"


@pytest.fixture(scope="session")
def viewer_url(serve_dashboard, viewer_store) -> str:
    """The dashboard reading `viewer_store` (no basemap tiles, the EDITOR able to sign in) for
    the tests that change no stored project; a test that writes has a store of its own."""
    return serve_dashboard(viewer_store)


@pytest.fixture(scope="session")
def launcher_url(browser_tools, artifacts_dir, started_servers):
    """The dashboard as `make run` starts it (`kindred-map dashboard`), with no basemap tiles."""
    url, server = _start_app(
        "none", artifacts_dir / per_worker("kindred-map-dashboard.log"), launcher=True
    )
    started_servers.append(server)
    return url


@pytest.fixture(scope="session")
def playwright_driver(browser_tools):
    """The one Playwright driver of the run: its sync API allows one per thread, so a test that
    needs a browser of its own (other flags) launches it from this driver."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_driver):
    """A plain Chromium for tests that need contexts of their own (offline, a cold cache)."""
    chromium = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def dead_end_port():
    """A local port bound but never listening: connections to it are refused at once. The
    shared profile's proxy, so a request to another machine fails without leaving it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture(scope="session")
def profile(playwright_driver, tmp_path_factory, dead_end_port):
    """One Chromium profile for the session's ordinary pages, kept on disk: its HTTP cache and
    V8 code cache hold Streamlit's JavaScript between page loads. A load then costs Chromium
    3.2 CPU s, not 4.7 s in a fresh context with every request routed (Playwright turns the
    cache off while it routes; benchmarks/results/browser_loads.md). Requests are recorded
    from its events, not routed; one to another machine goes to a proxy that refuses it
    (Chromium never proxies loopback addresses). Each test gets a new page with the cookies
    cleared (`page`), so it is a new visitor with a warm cache."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--proxy-server=http://127.0.0.1:{dead_end_port}"],
        headless=True,
        viewport=PAGE_SIZE,
    )
    context.add_init_script(script=COUNT_RUNS)
    yield context
    context.close()


class Network:
    """Every request the page made; those leaving the machine are kept apart (and fail: routed
    contexts abort them, the shared profile's proxy refuses them)."""

    def __init__(self):
        self.requests: list[str] = []
        self.external: list[str] = []
        self.checked = False

    def _record(self, url: str) -> bool:
        self.requests.append(url)
        local = urlsplit(url).hostname in LOCAL_HOSTS
        if not local:
            self.external.append(url)
        return local

    def request(self, request) -> None:
        """A `request` event's handler (no routing: the HTTP cache stays on)."""
        self._record(request.url)

    def route(self, route) -> None:
        """A route handler, for a context of a test's own."""
        if self._record(route.request.url):
            route.continue_()
        else:
            route.abort()

    def websocket(self, websocket) -> None:
        self._record(websocket.url)

    def assert_stayed_local(self, allowed_hosts: frozenset[str] = frozenset()) -> None:
        """Fail if any request went to another machine, other than to `allowed_hosts`."""
        self.checked = True
        assert self.requests, "no request was recorded: is the route handler in place?"
        stray = [url for url in self.external if urlsplit(url).hostname not in allowed_hosts]
        assert not stray, f"requests left the machine: {stray}"


@pytest.fixture
def network() -> Network:
    """The current page's requests (checked after the test if the test did not check)."""
    recorded = Network()
    yield recorded
    if not recorded.checked:
        recorded.assert_stayed_local()


@pytest.fixture
def profile_pages(profile, network):
    """profile_pages(viewport) -> a new page of the shared `profile` at that size, its requests
    recorded in `network`; the cookies are cleared before the test and after it (a new visitor:
    the sign-in lives in a cookie), and the pages closed after it."""
    pages = []
    profile.clear_cookies()
    profile.on("request", network.request)

    def make(size: dict = PAGE_SIZE):
        page = profile.new_page()
        pages.append(page)
        if size != PAGE_SIZE:
            page.set_viewport_size(size)
        page.on("websocket", network.websocket)
        return page

    yield make
    profile.remove_listener("request", network.request)
    for page in pages:
        page.close()
    profile.clear_cookies()


@pytest.fixture
def page(profile_pages):
    """A new page of the shared profile (a new visitor: no cookies; a warm cache); every
    request is recorded in `network`, any to another host refused."""
    return profile_pages()


@pytest.fixture
def screenshot(artifacts_dir):
    """save(page_or_locator, name) -> path of test-artifacts/<name>.png."""

    def save(target, name: str) -> Path:
        path = artifacts_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        target.screenshot(path=str(path))
        return path

    return save


@pytest.fixture
def map_frame(page):
    """The streamlit-folium iframe holding the Leaflet map."""
    return page.frame_locator(MAP_FRAME).first
