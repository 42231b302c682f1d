"""The team's deployment end to end, as deploy/ and the README set it up: PostgreSQL with
PostGIS, the dashboard and the open data API started by the commands in
deploy/kindred-map.service and deploy/kindred-map-api.service with the settings of
deploy/kindred-map.env, Caddy running deploy/Caddyfile with its own certificate authority
(``tls internal``), and oidc-provider-mock as the organisation's identity provider. Chromium
signs in through the provider: an editor edits, a viewer cannot, an outsider is refused, and
an admin removes the editor from the page, whose open session then writes nothing.

Figures (sign-in time, the first map through the proxy against direct, the dashboard's memory
with 10 signed-in sessions) go to test-artifacts/deploy-figures.json; they are measured here,
where everything runs, and asserted nowhere."""

import json
import os
import re
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit_waits import COUNT_RUNS, rerun_by, wait_idle

from kindred_map import stewardship, store
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

pytestmark = pytest.mark.browser

DEPLOY = PROJECT_ROOT / "deploy"
RAJ, ANN, MO, EVE = (
    "raj@charity.org.uk",
    "ann@charity.org.uk",
    "mo@charity.org.uk",
    "eve@elsewhere.org",
)
"""An editor and an admin by address, a viewer by the domain's entry, an outsider."""
START_TIMEOUT_S = 120
STEP_TIMEOUT_MS = 90_000
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
SIGN_IN = "Sign in with your work account"
FIRST_MAP_PAIRS = 1
"""First maps taken through Caddy and direct, interleaved (figures only)."""
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _settings_file() -> dict[str, str]:
    """The settings deploy/kindred-map.env gives (KEY=value lines)."""
    lines = (DEPLOY / "kindred-map.env").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _unit_command(unit: str, key: str, env: dict[str, str]) -> list[str]:
    """The unit file's ``key`` (ExecStart...) command, with ${VAR}s from ``env`` as systemd
    expands them, and the installed kindred-map run from this checkout's Python."""
    text = (DEPLOY / unit).read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith(f"{key}=")]
    words = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], line.split("=", 1)[1]))
    assert words[0] == "/opt/kindred-map/.venv/bin/kindred-map", words
    return [sys.executable, "-m", "kindred_map.cli", *words[1:]]


def _wait(check, process: subprocess.Popen, log: Path, what: str) -> None:
    """Wait until ``check()`` is true (OSError counts as not yet), or fail with the log."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {START_TIMEOUT_S} s:\n{log.read_text()}")


def _get(url: str, context: ssl.SSLContext | None = None, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as error:
        return error


class Deployment:
    """The running deployment: its addresses, processes and the store."""

    def __init__(self, folder: Path, store_dsn: str):
        self.folder = folder
        self.store = store_dsn
        self.processes: dict[str, subprocess.Popen] = {}
        self.checks: dict[str, object] = {}
        self.ports = {
            name: _free_port() for name in ("provider", "dashboard", "api", "https", "http")
        }
        self.public = f"https://localhost:{self.ports['https']}"
        self.direct = f"http://localhost:{self.ports['dashboard']}"
        self.provider = f"http://127.0.0.1:{self.ports['provider']}"
        self.caddy_home = folder / "caddy"
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        """deploy/kindred-map.env with this machine's values: every setting it names is set
        here (a new setting there fails this until the test sets it)."""
        ours = {
            "KINDRED_MAP_ADDRESS": "localhost",
            "KINDRED_MAP_TLS": "internal",
            "KINDRED_MAP_PORT": str(self.ports["dashboard"]),
            "KINDRED_MAP_API_PORT": str(self.ports["api"]),
            "KINDRED_MAP_STORE": self.store,
            "KINDRED_MAP_USERS": str(self.folder / "state" / "users.json"),
            "KINDRED_MAP_SECRETS": str(self.folder / "secrets.toml"),
            "KINDRED_MAP_BASEMAP": "none",
            "TMPDIR": str(self.folder / "cache"),
            "KINDRED_MAP_BACKUPS": str(self.folder / "backups"),
            "KINDRED_MAP_BACKUP_DAYS": "14",
        }
        assert set(_settings_file()) == set(ours), "deploy/kindred-map.env changed: set it here"
        (self.folder / "cache").mkdir()
        caddy = {
            "CADDY_ADMIN": "off",
            "CADDY_HTTP_PORT": str(self.ports["http"]),
            "CADDY_HTTPS_PORT": str(self.ports["https"]),
            "HOME": str(self.caddy_home),
            "XDG_DATA_HOME": str(self.caddy_home),
            "XDG_CONFIG_HOME": str(self.caddy_home),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("KINDRED_MAP_")}
        return env | ours | caddy

    def start(self, name: str, command: list[str], check, env: dict | None = None) -> None:
        """Start ``name``; `wait` for it later (the services start side by side)."""
        log = self.folder / f"{name}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env or self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        self.checks[name] = check

    def wait(self, *names: str) -> None:
        """Until each of ``names`` answers its check (or fail with its log)."""
        for name in names:
            _wait(self.checks[name], self.processes[name], self.folder / f"{name}.log", name)

    def cli(self, *arguments: str) -> str:
        """`kindred-map ARGUMENTS` with the deployment's settings, as the README runs it."""
        done = subprocess.run(
            [sys.executable, "-m", "kindred_map.cli", *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    @property
    def tls(self) -> ssl.SSLContext:
        """A TLS context trusting Caddy's local certificate authority only."""
        root = self.caddy_home / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        return ssl.create_default_context(cafile=str(root))

    def stop(self) -> None:
        """All asked to stop at once, then each waited for (killed after 15 s)."""
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def deployment(deploy_tools, pg_template, tmp_path_factory, artifacts_dir):
    """Everything the README sets up, on free local ports; stopped after the module."""
    folder = tmp_path_factory.mktemp("deployment")
    store.copy(DEFAULT_STORE, pg_template)
    site = Deployment(folder, pg_template)
    try:
        # The services start side by side, each once what it needs is in place: the provider
        # and Caddy at once, the dashboard and the API after the users and the store's
        # migration (the README's order); then each is waited for.
        site.start(
            "provider",
            [sys.executable, "-m", "oidc_provider_mock", "--port", str(site.ports["provider"])],
            lambda: _get(f"{site.provider}/.well-known/openid-configuration").status == 200,
        )
        site.start(
            "caddy",
            ["caddy", "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
            lambda: _get(f"{site.public}/_stcore/health", site.tls).status == 200,
        )
        (folder / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "{site.public}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
            'client_id = "kindred-map"\n'
            'client_secret = "the mock checks no secret"\n'
            f'server_metadata_url = "{site.provider}/.well-known/openid-configuration"\n',
            encoding="utf-8",
        )
        # The README's people: an admin and an editor by address, the staff's domain viewing
        # a private map.
        site.cli("users", "grant", ANN, "--role", "admin")
        site.cli("users", "grant", RAJ, "--role", "editor")
        site.cli("users", "grant", "charity.org.uk", "--role", "viewer")
        site.cli("users", "public", "no")
        pre = _unit_command("kindred-map.service", "ExecStartPre", site.env)
        assert subprocess.run(pre, env=site.env, check=False).returncode == 0
        site.start(
            "dashboard",
            _unit_command("kindred-map.service", "ExecStart", site.env)
            + ["--server.fileWatcherType=none"],
            lambda: _get(f"{site.direct}/_stcore/health").status == 200,
        )
        site.start(
            "api",
            _unit_command("kindred-map-api.service", "ExecStart", site.env),
            lambda: _get(f"http://127.0.0.1:{site.ports['api']}/healthz").status == 200,
        )
        site.wait("provider", "dashboard", "api", "caddy")
        yield site
    finally:
        site.stop()
        for name in ("provider", "dashboard", "api", "caddy"):
            log = folder / f"{name}.log"
            if log.exists():
                shutil.copy(log, artifacts_dir / f"deploy-{name}.log")


@pytest.fixture(scope="module")
def figures(artifacts_dir):
    """Measured figures, written to test-artifacts/deploy-figures.json after the module."""
    found: dict = {}
    yield found
    (artifacts_dir / "deploy-figures.json").write_text(json.dumps(found, indent=2))


@pytest.fixture(scope="module")
def chromium(deploy_tools, deployment, playwright_driver, dead_end_port):
    """Chromium trusting Caddy's local certificate authority: the public key of the CA's
    intermediate (which signs the site's certificate) is the only one whose errors are
    ignored, so a certificate Caddy did not issue still fails. A request to another machine
    goes to a proxy that refuses it (conftest's `profile` explains)."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    authority = deployment.caddy_home / "caddy" / "pki" / "authorities" / "local"
    pins = []
    for name in ("intermediate.crt", "root.crt"):
        key = x509.load_pem_x509_certificate((authority / name).read_bytes()).public_key()
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pins.append(base64.b64encode(hashlib.sha256(der).digest()).decode())
    browser = playwright_driver.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--ignore-certificate-errors-spki-list={','.join(pins)}",
            f"--proxy-server=http://127.0.0.1:{dead_end_port}",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def new_page(chromium, deployment):
    """new_page() -> a page in a fresh browser context (its own cookies: one person); every
    request to another machine is refused (`chromium`'s proxy) and listed in ``page.external``
    (but those of the mock provider's own sign-in page, which asks a CDN for its stylesheet:
    not ours). Recorded from events, not routed: routing turns Chromium's HTTP cache off, and
    the tabs of one context then each fetch and compile Streamlit's JavaScript anew."""
    contexts = []

    def make():
        context = chromium.new_context(viewport={"width": 1440, "height": 1000})
        context.add_init_script(script=COUNT_RUNS)
        contexts.append(context)
        page = context.new_page()
        page.external = []

        def record(request):
            if urlsplit(request.url).hostname in LOCAL_HOSTS:
                return
            if not request.frame.url.startswith(deployment.provider):
                page.external.append(request.url)

        context.on("request", record)
        return page

    yield make
    for context in contexts:
        stray = [url for page in context.pages for url in page.external]
        assert not stray, f"requests left the machine: {stray}"
        context.close()


def _shown(text: str) -> re.Pattern:
    """``text`` as the page shows it: an address's '@' is followed by a word joiner (so that
    Markdown makes no link of it)."""
    return re.compile(re.escape(text).replace("@", "@\u2060?"))


def _sign_in(page, site: Deployment, email: str) -> float:
    """Open the public address and sign in through the provider as ``email``; seconds from
    the click on the sign-in button to the dashboard's first screen after it."""
    page.goto(site.public)
    button = page.get_by_role("button", name=SIGN_IN)
    button.wait_for(timeout=STEP_TIMEOUT_MS)
    started = time.monotonic()
    button.click()
    page.wait_for_url(f"{site.provider}/oauth2/authorize**", timeout=STEP_TIMEOUT_MS)
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{site.public}/**", timeout=STEP_TIMEOUT_MS)
    page.get_by_text(re.compile("Signed in as|not allowed to see this map")).first.wait_for(
        timeout=STEP_TIMEOUT_MS
    )
    return time.monotonic() - started


def _idle(page) -> None:
    """Until the run that drew what the caller waited for has ended (a condition, no pause)."""
    wait_idle(page, STEP_TIMEOUT_MS)


def _map_seconds(page, url: str) -> float:
    """Seconds from opening ``url`` to the map's Leaflet container drawn in its frame."""
    started = time.monotonic()
    page.goto(url)
    try:
        page.frame_locator(MAP_FRAME).first.locator(".leaflet-container").wait_for(
            timeout=STEP_TIMEOUT_MS
        )
    except Exception:
        page.screenshot(path=str(PROJECT_ROOT / "test-artifacts" / "deploy-map-failed.png"))
        raise
    return time.monotonic() - started


def test_the_proxy_serves_https_with_security_headers_and_routes_the_api(deployment):
    response = _get(f"{deployment.public}/", deployment.tls, method="HEAD")
    headers = {key.lower(): value for key, value in response.headers.items()}
    assert response.status == 200
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in headers["content-security-policy"]
    assert "server" not in headers
    # /healthz, /oruk/ and /ogc/ go to the API (JSON), not to the dashboard (its HTML page).
    answers = {
        path: _get(f"{deployment.public}{path}", deployment.tls)
        for path in ("/healthz", "/oruk/services", "/ogc/collections", "/_stcore/health")
    }
    assert {path: answer.status for path, answer in answers.items()} == dict.fromkeys(answers, 200)
    assert json.loads(answers["/healthz"].read()) == {"status": "ok", "store": "readable"}
    assert json.loads(answers["/oruk/services"].read())["total_items"] > 0
    collections = json.loads(answers["/ogc/collections"].read())["collections"]
    assert "projects" in {collection["id"] for collection in collections}
    assert answers["/_stcore/health"].read() == b"ok"  # the dashboard's own, through Caddy
    with pytest.raises(urllib.error.URLError):  # an untrusted certificate authority fails
        _get(f"{deployment.public}/", ssl.create_default_context(cafile=None), "HEAD")


def test_an_editor_signs_in_through_the_provider_and_the_history_names_them(
    deployment, new_page, figures, screenshot
):
    page = new_page()
    figures["sign_in_seconds"] = round(_sign_in(page, deployment, RAJ), 2)
    page.get_by_text(_shown(f"Signed in as {RAJ} (editor).")).wait_for(timeout=STEP_TIMEOUT_MS)
    page.get_by_role("heading", name="Keep the directory true").wait_for(timeout=STEP_TIMEOUT_MS)
    _idle(page)
    website = page.get_by_label("Website", exact=True).first  # the edit form's (the first tab)
    website.wait_for(timeout=STEP_TIMEOUT_MS)  # Playwright's 30 s for fill ran out at load 9
    website.fill("https://pantry.charity.org.uk")
    page.get_by_role("button", name="Save changes").click()
    saved = page.get_by_text(re.compile(r"Saved .* now version \d+"))
    saved.wait_for(timeout=STEP_TIMEOUT_MS)
    pid = re.search(r"\(([^()]+)\), now version", saved.inner_text()).group(1)
    screenshot(page, "deploy-editor-signed-in")
    events = stewardship.read_history(deployment.store, pid)
    assert events["action"].iloc[-1] == "edit"
    assert events["who"].iloc[-1] == RAJ
    record = store.read_projects(deployment.store).set_index("id").loc[pid]
    assert record["website"] == "https://pantry.charity.org.uk"


def test_a_viewer_cannot_edit_and_an_outsider_is_refused(deployment, new_page, screenshot):
    viewer = new_page()
    _sign_in(viewer, deployment, MO)
    viewer.get_by_text(_shown(f"Signed in as {MO} (viewer).")).wait_for(timeout=STEP_TIMEOUT_MS)
    viewer.frame_locator(MAP_FRAME).first.locator(".leaflet-container").wait_for(
        timeout=STEP_TIMEOUT_MS
    )
    _idle(viewer)
    assert viewer.get_by_role("heading", name="Keep the directory true").count() == 0
    assert viewer.get_by_role("button", name="Save changes").count() == 0
    outsider = new_page()
    _sign_in(outsider, deployment, EVE)
    outsider.get_by_text(_shown(f"Your account ({EVE}) is not allowed to see this map")).wait_for(
        timeout=STEP_TIMEOUT_MS
    )
    _idle(outsider)
    screenshot(outsider, "deploy-outsider-refused")
    assert outsider.locator(MAP_FRAME).count() == 0
    assert outsider.get_by_text("projects shown").count() == 0
    anonymous = new_page()
    anonymous.goto(deployment.public)
    anonymous.get_by_text("sign in to see it").wait_for(timeout=STEP_TIMEOUT_MS)
    assert anonymous.locator(MAP_FRAME).count() == 0


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (typed, as a keyboard user would)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.keyboard.type(option)
    rerun_by(page, lambda: page.keyboard.press("Enter"), STEP_TIMEOUT_MS)


def test_an_admin_removes_the_editor_in_the_page_and_their_open_session_writes_nothing(
    deployment, new_page, screenshot
):
    editor = new_page()
    _sign_in(editor, deployment, RAJ)
    editor.get_by_role("heading", name="Keep the directory true").wait_for(timeout=STEP_TIMEOUT_MS)
    _idle(editor)
    before = len(stewardship.read_history(deployment.store, None))
    admin = new_page()
    _sign_in(admin, deployment, ANN)
    admin.get_by_role("heading", name="People").wait_for(timeout=STEP_TIMEOUT_MS)
    _idle(admin)
    _choose(admin, "Entry to remove", RAJ)
    admin.get_by_role("button", name="Remove", exact=True).click()
    admin.get_by_text(_shown(f"Removed {RAJ}.")).wait_for(timeout=STEP_TIMEOUT_MS)
    screenshot(admin, "deploy-admin-people")
    editor.get_by_role("button", name="Checked today").click()  # the removed editor's click
    editor.get_by_text("An administrator has changed your role: you are now viewer.").wait_for(
        timeout=STEP_TIMEOUT_MS
    )
    _idle(editor)
    assert editor.get_by_role("heading", name="Keep the directory true").count() == 0
    assert len(stewardship.read_history(deployment.store, None)) == before
    assert deployment.cli("users", "audit").splitlines()[0].split("\t")[1:4] == [
        ANN,
        "revoke",
        RAJ,
    ]


def _rss_mb(process: subprocess.Popen) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_figures_first_map_through_the_proxy_and_direct_and_memory_of_10_sessions(
    deployment, new_page, figures
):
    """Measured, not asserted (beyond each map drawing): a first map through Caddy and one
    direct, then the dashboard's resident memory with 10 signed-in sessions open. One pair,
    not three: three pairs showed only that the spread between loads is larger than any cost
    of the proxy (README), and each pair cost the suite two full page loads (about 7 s); a
    comparison of timings belongs in benchmarks/, not in the suite."""
    # Streamlit takes the sign-in cookie only at the address it was issued for (the public
    # one): for the comparison the map is made public for a moment and opened unsigned.
    deployment.cli("users", "public", "yes")
    try:
        visitor = new_page()
        proxy, direct = [], []
        for _ in range(FIRST_MAP_PAIRS):
            proxy.append(round(_map_seconds(new_tab(visitor), deployment.public), 2))
            direct.append(round(_map_seconds(new_tab(visitor), deployment.direct), 2))
        for tab in visitor.context.pages:  # their sessions end: not counted below
            tab.close()
    finally:
        deployment.cli("users", "public", "no")
    figures["first_map_seconds"] = {"through_caddy": proxy, "direct": direct}
    page = new_page()
    _sign_in(page, deployment, MO)
    rss_before = _rss_mb(deployment.processes["dashboard"])
    tabs = [new_tab(page) for _ in range(10)]
    for tab in tabs:  # opened together, as ten people might, then each waited for
        tab.goto(deployment.public, wait_until="commit")
    for tab in tabs:
        tab.frame_locator(MAP_FRAME).first.locator(".leaflet-container").wait_for(
            timeout=STEP_TIMEOUT_MS
        )
        tab.get_by_text(_shown(f"Signed in as {MO}")).wait_for(timeout=STEP_TIMEOUT_MS)
    figures["dashboard_rss_mb"] = {
        "before_10_sessions": round(rss_before, 1),
        "with_10_sessions": round(_rss_mb(deployment.processes["dashboard"]), 1),
    }


def new_tab(page):
    """Another page in ``page``'s context (same person, a new Streamlit session)."""
    tab = page.context.new_page()
    tab.external = []
    return tab
