"""Fixtures shared by the tests: where artifacts are written; the dashboard fixture store;
empty stores of each backend (GeoPackage, PostGIS)."""

import gc
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

# Before kindred_map is imported: this process's map files go to a folder of its own, not the
# static/ the dashboards under test serve (a store write removes published project files, and
# in a parallel run another worker's dashboard serves them; kindred_map.paths.STATIC_DIR).
# tests/browser/conftest.py starts its dashboards without it.
os.environ["KINDRED_MAP_STATIC"] = tempfile.mkdtemp(prefix="kindred-map-static-")

import pytest
from pg_admin import admin, database
from streamlit.components.v2 import manifest_scanner
from streamlit.testing.v1 import local_script_runner
from workers import WORKER
from xdist.scheduler import LoadFileScheduling

from kindred_map import importing, store
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
"""Screenshots and logs from test runs (gitignored): look at them after a run."""


BROWSER_DIR = "tests/browser/"


class FilesWithOneBrowserLane(LoadFileScheduling):
    """xdist's loadfile, except that the files under tests/browser/ form one unit: one worker
    runs them one after another while the other workers take the remaining files, so the
    session's servers (the shared `viewer_url` one above all) and its Chromium start once. The
    browser waits that once failed in parallel runs failed because another worker's store write
    removed the map files a dashboard served (fixed by KINDRED_MAP_STATIC above), not for load;
    two lanes (4 workers) now pass too, in the same 7.5 min, both CPUs 98% busy either way
    (benchmarks/results/suite.md). (xdist's own `--dist loadgroup` cannot do this with
    pytest 9.2: it renames node ids through an attribute pytest no longer reads.)"""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith(BROWSER_DIR):
            return BROWSER_DIR
        return super()._split_scope(nodeid)


GC_THRESHOLDS = (10_000, 20, 20)
"""Python's cyclic garbage collector, run less often than its default (700, 10, 10)."""


def pytest_collection_finish(session):
    """Take what collection loaded (modules, the tests' module-level tables) out of the cyclic
    garbage collector's scans (`gc.freeze`) and run it less often: with the defaults, a full
    collection walked the whole heap (layers, Streamlit, GDAL bindings) 54 times in three test
    files, 9.5 of their 66 CPU s; with these, 0.75 s and the same peak memory
    (benchmarks/results/suite.md). Garbage is still collected; only cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def pytest_unconfigure(config):
    """Remove this process's map-file folder (KINDRED_MAP_STATIC, set above)."""
    shutil.rmtree(os.environ["KINDRED_MAP_STATIC"], ignore_errors=True)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadfile":
        return FilesWithOneBrowserLane(config, log)
    return None


NON_BROWSER_NICENESS = 10
"""How much lower the CPU priority of an xdist worker running the files outside tests/browser/:
the browser lane's Streamlit servers and Chromium keep the machine's full priority (Linux gives
a niceness-10 process about a tenth of a contended core's share), so its waits on drawn maps
hold under load while the other workers take every cycle the lane leaves idle. Serial runs
(no xdist) keep their priority."""


def pytest_runtest_setup(item):
    """Lower this worker's priority to NON_BROWSER_NICENESS at its first test outside
    tests/browser/. The browser unit is the first in collection order, so the worker that takes
    it runs it before any other file, its servers and Chromium started at full priority."""
    if WORKER and not item.nodeid.startswith(BROWSER_DIR):
        current = os.nice(0)
        if current < NON_BROWSER_NICENESS:
            os.nice(NON_BROWSER_NICENESS - current)


@pytest.fixture(scope="session", autouse=True)
def components_scanned_once():
    """Streamlit's scan of every installed distribution for v2 components, done once for the
    session: AppTest repeats it for each new AppTest (0.16 CPU s each, ~5 s in test_app.py
    alone), where a dashboard server does it once at start. Each AppTest still builds its own
    component registry, from the same list of installed components a server would find."""
    found = manifest_scanner.scan_component_manifests()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda **_: list(found))
        yield


def _join_the_script_thread(runner, timeout: float = 3) -> None:
    """AppTest's wait for a run, by joining the script's thread: Streamlit's own
    (`require_widgets_deltas`) wakes every millisecond to look, taking the interpreter's lock
    from the run it waits for (test_app*.py: 33.5 -> 30.0 CPU s, benchmarks/results/suite.md).
    A runner without that thread goes to Streamlit's own wait; so does a run not over by
    ``timeout``, which then gets one more ``timeout`` and Streamlit's timeout error, naming it."""
    thread = getattr(runner, "_script_thread", None)
    if thread is not None:
        thread.join(timeout)
        if runner.script_stopped():
            return
    STREAMLIT_WAIT(runner, timeout)


STREAMLIT_WAIT = local_script_runner.require_widgets_deltas


@pytest.fixture(scope="session", autouse=True)
def apptest_waits_by_join():
    """Every AppTest run of the session waits by `_join_the_script_thread`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_script_runner, "require_widgets_deltas", _join_the_script_thread)
        yield


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


DASHBOARD_FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"


@pytest.fixture(scope="session")
def store_file(tmp_path_factory) -> Path:
    """A store holding the dashboard fixture's 12 placeable projects (one row is rejected)."""

    path = tmp_path_factory.mktemp("dashboard") / "projects.gpkg"
    importing.import_file(DASHBOARD_FIXTURE, path)
    return path


@pytest.fixture(scope="session")
def projects(store_file):
    return store.read_projects(store_file)


@pytest.fixture(scope="session")
def shown(projects):
    """Every fixture project as the map shows it (illustrative examples included)."""
    from kindred_map import view as views

    return views.shown_projects(projects, views.View(examples=True))


@pytest.fixture(scope="session")
def by_name():
    """The one row of a frame with this name (fails when there are none or several)."""

    def find(frame, name):
        rows = frame[frame["name"] == name]
        assert len(rows) == 1, name
        return rows.iloc[0]

    return find


PG_ENV = "KINDRED_MAP_TEST_PG"
"""A superuser DSN of a PostgreSQL server with PostGIS (`.ci/pg_cluster start DIR` prints one)."""


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The test server's DSN; skips (outside CI) or fails (CI=true) without a reachable one."""
    dsn = os.environ.get(PG_ENV, "").strip()
    problem = "" if dsn else f"{PG_ENV} is not set"
    if dsn:
        try:
            admin(dsn, "SELECT 1")
        except Exception as error:  # psycopg raises several kinds
            problem = f"cannot connect to {PG_ENV}: {error}"
    if problem:
        reason = f"PostGIS store tests need a PostgreSQL server with PostGIS: {problem}"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


@pytest.fixture(scope="module")
def pg_template(pg_server, request) -> str:
    """A fresh database for this test module with the store's schema (`store init`), used
    as the template each test's own database is cloned from."""
    from kindred_map.storage import postgis

    name = re.sub(r"\W", "_", f"km_{request.module.__name__}_{os.getpid()}").lower()
    admin(pg_server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    dsn = database(pg_server, name)
    postgis.migrate(dsn)
    yield dsn
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _clone(pg_server: str, template_dsn: str):
    """A new database of one test's own, cloned from ``template_dsn``; dropped after it."""
    name = f"km_test_{uuid.uuid4().hex[:12]}"
    template = urlsplit(template_dsn).path.lstrip("/")
    admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield database(pg_server, name)
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_store(pg_server, pg_template) -> str:
    """A new, empty PostGIS store for one test (a clone of the module's database)."""
    yield from _clone(pg_server, pg_template)


@pytest.fixture(scope="module")
def pg_sample_template(pg_server, pg_template) -> str:
    """The shipped sample store copied into a database (`store.copy`) once for this module, the
    template `pg_sample` clones: a copy costs 1.5-2 s of the server's time, a clone 0.1 s."""
    template = urlsplit(pg_template).path.lstrip("/")
    name = f"{template}_sample"
    admin(pg_server, f"DROP DATABASE IF EXISTS {name}")
    admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {template}")
    dsn = database(pg_server, name)
    store.copy(DEFAULT_STORE, dsn)
    yield dsn
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_sample(pg_server, pg_sample_template) -> str:
    """The shipped sample store in a PostGIS database of this test's own (its baseline events
    came along with `store.copy`): a clone, so that no test's writes reach another's."""
    yield from _clone(pg_server, pg_sample_template)


@pytest.fixture(params=["gpkg", "postgis"])
def target(request, tmp_path):
    """An empty store of each backend: a GeoPackage path, or a PostGIS DSN."""
    if request.param == "gpkg":
        return tmp_path / "projects.gpkg"
    return request.getfixturevalue("pg_store")


@pytest.fixture
def sign_in_as(tmp_path, monkeypatch):
    """sign_in_as(username, name) -> an editor added to the users file (KINDRED_MAP_USERS; a
    temporary one if none is set) and signed in, as the dashboard's sign-in box does: the
    session then holds a credential that `auth.confirm` accepts."""
    from kindred_map import auth

    if not os.environ.get(auth.USERS_ENV):
        monkeypatch.setenv(auth.USERS_ENV, str(tmp_path / "users.json"))
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)  # the cost is bcrypt's, not the behaviour's

    def sign_in(username: str, name: str, role: str = "editor"):
        auth.add_user(username, "a long password", role, name)
        return auth.sign_in(username, "a long password")

    return sign_in
