"""Fixtures shared by the tests: where artifacts are written; the dashboard fixture store."""

from pathlib import Path

import pytest

from kindred_map.paths import PROJECT_ROOT

ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
"""Screenshots and logs from test runs (gitignored): look at them after a run."""


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


DASHBOARD_FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"


@pytest.fixture(scope="session")
def store_file(tmp_path_factory) -> Path:
    """A store holding the dashboard fixture's 12 placeable projects (one row is rejected)."""
    from kindred_map import store

    path = tmp_path_factory.mktemp("dashboard") / "projects.gpkg"
    store.import_file(DASHBOARD_FIXTURE, path)
    return path


@pytest.fixture(scope="session")
def projects(store_file):
    from kindred_map import store

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
