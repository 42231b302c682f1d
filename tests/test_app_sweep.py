"""Every option of the dashboard's view renders (AppTest): each area level x measure, every pair
of toggles, type subsets from none to all, with and without a postcode search, a selected area,
a chosen project and each "open at" choice; no exception and no error message in any."""

import shutil
from pathlib import Path

import pytest
from app_runs import first_page
from streamlit.testing.v1 import AppTest

from kindred_map import figures, hours, importing, location
from kindred_map.paths import PROJECT_ROOT
from kindred_map.schema import project_types

APP = PROJECT_ROOT / "app.py"
FIXTURE = Path(__file__).parent / "fixtures" / "dashboard_projects.csv"
TIMEOUT_S = 180

TOGGLES = ("gaps", "clusters", "grouped", "examples")
PAIRWISE_TOGGLES = ((0, 0, 0, 0), (0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0))
"""A covering array: every pair of the four toggles takes all four on/off pairs in these five
rows (the full product would be 16 rows for the same pairs)."""


def _type_subsets() -> list[tuple[str, ...]]:
    """No type chosen (= all), every type listed, and each type alone."""
    kinds = tuple(project_types())
    return [(), kinds, *[(kind,) for kind in kinds]]


OPEN_AT = ("", *hours.OPEN_CHOICES)


def _views() -> list[dict]:
    """One case per level x measure; toggles, types, search and selection spread over them so
    that every value of every option appears and every toggle pair is covered per level."""
    cases = []
    subsets = _type_subsets()
    for level_index, level in enumerate(figures.LEVELS):
        for measure_index, measure in enumerate(figures.MEASURES):
            index = level_index * len(figures.MEASURES) + measure_index
            case = {"layer": level, "measure": measure, "types": subsets[index % len(subsets)]}
            case |= dict(zip(TOGGLES, PAIRWISE_TOGGLES[measure_index], strict=True))
            case["postcode"] = "L1 8JQ" if index % 2 else ""
            case["area"] = next(iter(figures.area_choices(level))) if (index // 2) % 2 else ""
            case["project"] = "dashboard-projects:dash-05" if index % 3 == 0 else ""
            case["open_at"] = OPEN_AT[index % len(OPEN_AT)]
            cases.append(case)
    return cases


CASES = _views()


def test_the_sweep_covers_every_option_and_every_toggle_pair():
    assert {(c["layer"], c["measure"]) for c in CASES} == {
        (level, measure) for level in figures.LEVELS for measure in figures.MEASURES
    }
    assert {c["types"] for c in CASES} == set(_type_subsets())
    for first in TOGGLES:
        for second in TOGGLES:
            if first < second:
                pairs = {(c[first], c[second]) for c in CASES}
                assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1)}, (first, second)
    for field in ("postcode", "area", "project"):
        assert {bool(c[field]) for c in CASES} == {True, False}, field
    assert {c["open_at"] for c in CASES} == set(OPEN_AT)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "fixture.gpkg"
    importing.import_file(FIXTURE, path)
    return path


def _query(case: dict) -> dict:
    query = {"layer": case["layer"], "measure": case["measure"]}
    if case["types"]:
        query["types"] = ",".join(case["types"])
    query |= {name: "1" for name in ("gaps", "clusters", "examples") if case[name]}
    query |= {name: case[name] for name in ("postcode", "area", "project") if case[name]}
    if case["open_at"]:
        query["open"] = case["open_at"]
    return query


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['layer']}-{c['measure']}-{len(c['types'])}types" for c in CASES]
)
def test_every_view_renders_without_an_error(case, sweep_store, tmp_path, monkeypatch):
    path = tmp_path / "projects.gpkg"
    shutil.copy(sweep_store, path)
    monkeypatch.setenv(location.STORE_ENV, str(path))
    monkeypatch.setenv("KINDRED_MAP_BASEMAP", "none")
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.query_params.update(_query(case))
    first_page(app)
    if not case["grouped"]:
        app.checkbox(key="grouped").set_value(False).run()
    if case["gaps"]:
        app.radio(key="gaps_level").set_value("deanery").run()
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert not app.warning, [w.value for w in app.warning]
    assert any(m.value.startswith("**Showing ") for m in app.markdown), "the page ran to the end"
