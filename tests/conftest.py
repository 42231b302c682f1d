"""Fixtures shared by every test: where test artifacts (screenshots, logs) are written."""

from pathlib import Path

import pytest

from kindred_map.paths import PROJECT_ROOT

ARTIFACTS_DIR = PROJECT_ROOT / "test-artifacts"
"""Screenshots and logs from test runs (gitignored): look at them after a run."""


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
