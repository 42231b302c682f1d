"""Change between two dates: the store as of a date, and per-area change, on known events."""

import datetime as dt
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from history_fixture import dated_copy, write_history
from pyproj import Geod
from streamlit.testing.v1 import AppTest

from kindred_map import (
    boundaries,
    change,
    changecharts,
    cli,
    columns,
    coverage,
    location,
    privacy,
    store,
)
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import asof
from kindred_map.text import md_escape

GEOD = Geod(ellps="WGS84")
DISTANCE = 800.0

# Residents at postcodes: two wards (W1, W2) in one borough and one deanery; W2's second
# postcode is in IMD decile 1.
POSTCODES = pd.DataFrame(
    {
        "postcode": ["A", "B", "C", "D"],
        "lon": [-2.980, -2.960, -2.900, -2.890],
        "lat": [53.400, 53.400, 53.420, 53.425],
        "residents": [100, 250, 40, 610],
        "imd_decile": pd.array([5, 3, 7, 1], dtype="Int64"),
        "WD24CD": ["W1", "W1", "W2", "W2"],
        "WD24NM": ["One", "One", "Two", "Two"],
        "LAD25CD": ["E1", "E1", "E1", "E1"],
        "LAD25NM": ["Borough", "Borough", "Borough", "Borough"],
        "deanery_id": pd.array([1, 1, 1, 1], dtype="Int64"),
        "deanery_name": ["Deanery"] * 4,
        "LSOA21CD": ["L1", "L1", "L2", "L3"],
        "LSOA21NM": ["L1", "L1", "L2", "L3"],
    }
)


def _record(pid, lon, lat, ward, **extra):
    record = {
        "id": pid,
        "name": pid,
        "type": "pantry",
        "lon": lon,
        "lat": lat,
        "WD24CD": ward,
        "LAD25CD": "E1",
        "deanery_id": 1,
        "location_precision": "exact",
        "synthetic": False,
        "in_region": True,
        "retired_at": "",
    }
    return record | extra


def _event(event_id, pid, at, action, after):
    return {
        "event_id": event_id,
        "project_id": pid,
        "at": at,
        "who": "test",
        "action": action,
        "source": "test",
        "import_id": None,
        "before": None,
        "after": json.dumps(after),
        "version": 1,
    }


# p1 opens near A in January, moves near D in March; p2 opens near C in February and is
# retired in April; p3 is imported then its import undone (removed) the same day in May.
EVENTS = pd.DataFrame(
    [
        _event(1, "p1", "2025-01-10T09:00:00+00:00", "add", _record("p1", -2.981, 53.401, "W1")),
        _event(2, "p2", "2025-02-01T12:00:00+00:00", "add", _record("p2", -2.901, 53.421, "W2")),
        _event(3, "p1", "2025-03-05T10:00:00+00:00", "edit", _record("p1", -2.889, 53.424, "W2")),
        _event(
            4,
            "p2",
            "2025-04-01T08:00:00+00:00",
            "retire",
            _record("p2", -2.901, 53.421, "W2", retired_at="2025-04-01"),
        ),
        _event(5, "p3", "2025-05-02T08:00:00+00:00", "import", _record("p3", -2.96, 53.4, "W1")),
        _event(
            6,
            "p3",
            "2025-05-02T09:00:00+00:00",
            "undo",
            _record("p3", -2.96, 53.4, "W1", removed=True),
        ),
    ]
)


def _frame(records):
    frame = pd.DataFrame(records, columns=list(_record("x", 0, 0, "W1")))
    points = gpd.points_from_xy(frame["lon"], frame["lat"])
    return store.conform(gpd.GeoDataFrame(frame, geometry=points, crs=4326))


def _expected_reached(projects, deprived_only=False):
    """Residents within DISTANCE of any project, per ward, measured here with pyproj (only
    those in IMD deciles 1-2 if ``deprived_only``)."""
    reached = {"W1": 0, "W2": 0}
    for row in POSTCODES.itertuples():
        if deprived_only and row.imd_decile > 2:
            continue
        near = [
            GEOD.inv(row.lon, row.lat, lon, lat)[2] <= DISTANCE
            for lon, lat in zip(projects["lon"], projects["lat"], strict=True)
        ]
        if any(near):
            reached[row.WD24CD] += row.residents
    return reached


@pytest.mark.parametrize(
    ("when", "ids"),
    [
        ("2025-01-09", []),
        ("2025-01-10", ["p1"]),
        ("2025-02-15", ["p1", "p2"]),
        ("2025-03-31", ["p1", "p2"]),
        ("2025-04-01", ["p1"]),
        ("2025-05-02", ["p1"]),
        ("2025-02-01T11:59:59Z", ["p1"]),
    ],
)
def test_records_as_of_replay_opens_retires_and_removals(when, ids):
    assert [r["id"] for r in asof.records_as_of(EVENTS, when)] == ids


def test_records_as_of_keep_the_position_they_had_then():
    before = {r["id"]: r for r in asof.records_as_of(EVENTS, "2025-03-04")}
    after = {r["id"]: r for r in asof.records_as_of(EVENTS, "2025-03-05")}
    assert (before["p1"]["lon"], before["p1"]["WD24CD"]) == (-2.981, "W1")
    assert (after["p1"]["lon"], after["p1"]["WD24CD"]) == (-2.889, "W2")


def test_cutoff_reads_dates_times_and_rejects_nonsense():
    assert asof.cutoff("2025-01-01") == pd.Timestamp("2025-01-01T23:59:59.999999Z")
    assert asof.cutoff(dt.date(2025, 1, 1)) == asof.cutoff("2025-01-01")
    assert asof.cutoff("2025-01-01T10:00") == pd.Timestamp("2025-01-01T10:00Z")
    with pytest.raises(ValueError, match="not a date"):
        asof.cutoff("last tuesday")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-01-09", "2025-02-15"),
        ("2025-02-15", "2025-03-31"),
        ("2025-03-31", "2025-04-01"),
        ("2025-01-09", "2025-06-01"),
    ],
)
def test_change_between_dates_matches_reach_computed_here(start, end):
    then = _frame(asof.records_as_of(EVENTS, start))
    now = _frame(asof.records_as_of(EVENTS, end))
    table = change.change_by_area(then, now, "ward", "pantry", DISTANCE, POSTCODES).set_index(
        "WD24CD"
    )
    expected_then, expected_now = _expected_reached(then), _expected_reached(now)
    for ward in ("W1", "W2"):
        row = table.loc[ward]
        assert row["reached_from"] == expected_then[ward]
        assert row["reached_to"] == expected_now[ward]
        assert row["newly_reached"] - row["newly_beyond_reach"] == row["reached_change"]
        deprived_change = _expected_reached(now, True)[ward] - _expected_reached(then, True)[ward]
        net = row["newly_reached_deciles_1_2"] - row["newly_beyond_reach_deciles_1_2"]
        assert net == deprived_change
        assert row["projects_from"] == int((then["WD24CD"] == ward).sum())
        assert row["projects_to"] == int((now["WD24CD"] == ward).sum())


def test_opened_closed_and_moved_are_counted_where_they_happened():
    jan = _frame(asof.records_as_of(EVENTS, "2025-01-31"))
    jun = _frame(asof.records_as_of(EVENTS, "2025-06-01"))
    table = change.change_by_area(jan, jun, "ward", "pantry", DISTANCE, POSTCODES)
    table = table.set_index("WD24CD")
    assert table.loc["W1", "moved_out"] == 1 and table.loc["W2", "moved_in"] == 1
    assert table[["opened", "closed", "opened_pantry", "closed_pantry"]].sum().sum() == 0
    feb = _frame(asof.records_as_of(EVENTS, "2025-02-15"))
    table = change.change_by_area(jan, feb, "ward", "pantry", DISTANCE, POSTCODES)
    assert table.set_index("WD24CD").loc["W2", "opened_pantry"] == 1
    table = change.change_by_area(feb, jun, "ward", "pantry", DISTANCE, POSTCODES)
    assert table.set_index("WD24CD").loc["W2", "closed_pantry"] == 1


@pytest.mark.parametrize("level", change.LEVELS)
def test_change_between_a_date_and_itself_is_zero(level):
    now = _frame(asof.records_as_of(EVENTS, "2025-03-10"))
    table = change.change_by_area(now, now, level, "pantry", DISTANCE, POSTCODES)
    moving = [
        c
        for c in table.columns
        if c.endswith("_change") or c.startswith(("newly", "opened", "closed", "moved"))
    ]
    assert len(moving) >= 10
    assert (table[moving].to_numpy() == 0).all()
    assert (table["reached_from"] == table["reached_to"]).all()


def test_change_rejects_an_unknown_level():
    empty = _frame([])
    with pytest.raises(ValueError, match="unknown level"):
        change.change_by_area(empty, empty, "parish", "pantry", DISTANCE, POSTCODES)


def test_parse_date():
    assert change.parse_date("today", dt.date(2026, 1, 2)) == dt.date(2026, 1, 2)
    assert change.parse_date("2025-01-01") == dt.date(2025, 1, 1)
    with pytest.raises(ValueError, match="not a date"):
        change.parse_date("01/01/2025")


# --- a real store with a history table, on the shipped population --------------------------

LIVERPOOL = "E08000012"
WIGAN = "E08000010"
STORE_EVENTS = [
    # (event_id, id, at, action, lon, lat, retired); s0 (a pantry in Wigan, 25 km from every
    # Liverpool postcode) is the history's first event: it starts on 2024-12-02.
    (1, "s0", "2024-12-02T09:00:00+00:00", "add", -2.6310, 53.5450, ""),
    (2, "s1", "2025-01-10T09:00:00+00:00", "add", -2.9800, 53.4050, ""),
    (3, "s2", "2025-02-01T12:00:00+00:00", "add", -2.9500, 53.4100, ""),
    (4, "s1", "2025-03-05T10:00:00+00:00", "edit", -2.9000, 53.4200, ""),
    (5, "s2", "2025-04-01T08:00:00+00:00", "retire", -2.9500, 53.4100, "2025-04-01"),
]


def _history_store(tmp_path):
    """A store whose history table (the issue 12 contract) holds STORE_EVENTS."""
    last = {}
    rows = []
    for _event_id, pid, at, action, lon, lat, retired in STORE_EVENTS:
        wigan = pid == "s0"
        record = _record(pid, lon, lat, "", LAD25CD=WIGAN if wigan else LIVERPOOL)
        record |= {"type": "pantry" if wigan else "food_bank", "retired_at": retired}
        last[pid] = record
        rows.append((pid, at, action, record))
    path = tmp_path / "store.gpkg"
    current = _frame([r for r in last.values() if not r["retired_at"]])
    store.write_store(current, store.read_imports(path), path, "2025-05-01T00:00:00Z")
    write_history(path, rows)
    return path


def _open_at(when, food_banks_only=False):
    """The positions open at a date, worked out here from STORE_EVENTS."""
    state = {}
    for _id, pid, at, _action, lon, lat, retired in STORE_EVENTS:
        if food_banks_only and pid == "s0":
            continue
        if pd.Timestamp(at) <= asof.cutoff(when):
            state[pid] = None if retired else (lon, lat)
    return [position for position in state.values() if position]


def _liverpool_reached(positions):
    """Liverpool residents within DISTANCE of any position (pyproj over every postcode)."""
    points = coverage.population_points()
    points = points[points["LAD25CD"] == LIVERPOOL]
    near = np.zeros(len(points), dtype=bool)
    for lon, lat in positions:
        count = len(points)
        _, _, metres = GEOD.inv(points["lon"], points["lat"], [lon] * count, [lat] * count)
        near |= np.asarray(metres) <= DISTANCE
    return int(points["residents"][near].sum())


@pytest.mark.parametrize(
    "when", ["2025-01-09", "2025-01-10", "2025-02-20", "2025-03-05", "2025-04-01"]
)
def test_store_as_of_each_date_gives_the_projects_and_reach_then(tmp_path, when, target):
    path = _history_store(tmp_path)
    if isinstance(target, str):  # a PostGIS DSN: the same store and history, copied in
        store.copy(path, target)
        path = target
    projects = store.read_projects(path, as_of=when)
    expected = _open_at(when)
    assert sorted(zip(projects["lon"], projects["lat"], strict=True)) == sorted(expected)
    result = coverage.assess(projects, "food_bank", DISTANCE).by_area("borough")
    reached = result.set_index("LAD25CD").loc[LIVERPOOL, "reached"]
    assert reached == _liverpool_reached(expected)


def test_change_between_store_dates_nets_to_the_person(tmp_path):
    path = _history_store(tmp_path)
    table = change.change_between(path, "2025-02-20", "2025-04-30", "ward", "food_bank", DISTANCE)
    net = table["newly_reached"] - table["newly_beyond_reach"]
    assert (net == table["reached_change"]).all()
    assert table["reached_change"].sum() == _liverpool_reached(
        _open_at("2025-04-30")
    ) - _liverpool_reached(_open_at("2025-02-20"))
    same = change.change_between(path, "2025-03-01", "2025-03-01", "deanery", "food_bank")
    assert (
        same[
            ["reached_change", "newly_reached", "newly_beyond_reach", "opened", "closed"]
        ].to_numpy()
        == 0
    ).all()
    with pytest.raises(ValueError, match="after"):
        change.change_between(path, "2025-04-01", "2025-01-01", "ward")


NARROW_EVENTS = pd.concat(
    [
        EVENTS,
        pd.DataFrame(
            [
                _event(
                    7,
                    "h1",
                    "2025-02-10T09:00:00+00:00",
                    "add",
                    _record("h1", -2.95, 53.41, "W2", location_precision="ward_only"),
                ),
                _event(8, "f1", "2025-03-01T09:00:00+00:00", "add", _record("f1", 1, 2, "W1"))
                | {"after": json.dumps({"id": "f1", "synthetic": True, "deanery_id": "7"})},
                _event(9, "p1", "2025-06-01T09:00:00+00:00", "edit", _record("p1", None, 53.4, ""))
                | {"after": json.dumps(_record("p1", None, 53.4, "") | {"in_region": False})},
            ]
        ),
    ],
    ignore_index=True,
)


@pytest.mark.parametrize("source", ["events", "shipped"])
def test_the_narrow_replay_equals_the_full_replays_columns_at_every_date(source):
    """The change's replay (`change.FIELDS` only) is the full replay's same columns, typed the
    same, at each date: made-up events (a home-run, a synthetic record holding three fields,
    a position lost) and the shipped store's history."""
    if source == "events":
        events = NARROW_EVENTS
        dates = ["2025-01-09", "2025-02-01", "2025-02-28", "2025-03-31", "2025-05-02", "today"]
    else:
        events = store.read_history(DEFAULT_STORE)
        dates = [asof.history_start(events).on, "today"]
    full = asof.projects_at_dates(events, dates, include_retired=True)
    narrow = asof.projects_at_dates(events, dates, include_retired=True, fields=change.FIELDS)
    assert sum(map(len, full)) > 0
    for whole, part in zip(full, narrow, strict=True):
        assert set(part.columns) == {*change.FIELDS, "geometry"}
        kept = [name for name in whole.columns if name in part.columns]
        assert list(part.columns) == kept
        pd.testing.assert_frame_equal(part, whole[kept], check_exact=True)
        assert store.same_projects(part, whole[kept])
    with pytest.raises(ValueError, match="unknown store field"):
        asof.projects_at_dates(events, dates, fields=["id", "wardcode"])


def test_change_of_a_home_run_project_counts_it_at_its_ward_centre_only(tmp_path):
    """The change reads a few fields of each record, and a home-run (ward_only) project still
    counts at its ward's centre (`privacy.public_records`), never at its stored position: the
    change equals the change of the full replay, and differs from the true position's."""
    wards = boundaries.load("ward")
    ward = wards[wards["LAD24CD"] == LIVERPOOL].iloc[0]
    centre = privacy.ward_centres().loc[ward["WD24CD"]]
    home = _record("h1", centre.x + 0.06, centre.y, ward["WD24CD"], LAD25CD=LIVERPOOL)
    home |= {"type": "food_bank", "location_precision": "ward_only"}
    first = _record("s0", -2.6310, 53.5450, "", LAD25CD=WIGAN)  # the history starts with it
    path = tmp_path / "store.gpkg"
    projects = _frame([first, home])
    store.write_store(projects, store.read_imports(path), path, "2025-05-01T00:00:00Z")
    rows = [("s0", "2024-12-02T09:00:00+00:00", "add", first)]
    write_history(path, [*rows, ("h1", "2025-02-01T09:00:00+00:00", "add", home)])
    table = change.change_between(path, "2025-01-15", "2025-03-01", "ward", "food_bank")
    before, after = asof.projects_at_dates(store.read_history(path), ["2025-01-15", "2025-03-01"])
    expected = change.change_by_area(before, after, "ward", "food_bank")
    shown = pd.DataFrame(table).set_index("WD24CD").sort_index()[expected.columns[1:]]
    wanted = expected.set_index("WD24CD").sort_index()
    pd.testing.assert_frame_equal(
        shown, wanted, check_exact=True, check_dtype=False, check_index_type=False
    )
    exact = after.assign(location_precision="exact")
    revealed = change.change_by_area(before, exact, "ward", "food_bank")
    assert table["newly_reached"].sum() > 0
    assert not revealed["newly_reached"].equals(expected["newly_reached"])


def test_cli_change_writes_a_described_geopackage(tmp_path, capsys):
    path = _history_store(tmp_path)
    out = tmp_path / "change.gpkg"
    argv = ["change", "--from", "2025-01-01", "--to", "2025-03-31", "--types", "food_bank"]
    argv += ["--by", "borough", "--store", str(path), "-o", str(out)]
    assert cli.main(argv) == 0
    assert "2 projects opened, 0 closed" in capsys.readouterr().out
    layer = gpd.read_file(out, layer="change_borough")
    assert layer.crs.to_epsg() == 27700 and len(layer) == 9
    liverpool = layer.set_index("LAD25CD").loc[LIVERPOOL]
    assert liverpool["opened_food_bank"] == 2 and liverpool["projects_to"] == 2
    for name in layer.columns.drop("geometry"):
        columns.describe(name, "change_borough")
    gaps = ["gaps", "--types", "food_bank", "--store", str(path), "--as-of", "2025-01-09"]
    assert cli.main(gaps) == 0
    assert "No located projects of the chosen types" in capsys.readouterr().out


def test_export_change_from_adds_the_change_tables(tmp_path):
    import zipfile

    import pyogrio

    path = _history_store(tmp_path)
    common = ["--store", str(path), "--types", "food_bank", "--distance", "800"]
    common += ["--change-from", "2025-01-01", "--as-of", "2025-03-31"]
    gpkg = tmp_path / "out.gpkg"
    assert cli.main(["export", "--format", "gpkg", "-o", str(gpkg), *common]) == 0
    layers = set(pyogrio.list_layers(gpkg)[:, 0])
    assert {"change_ward", "change_deanery", "change_borough"} <= layers
    borough = gpd.read_file(gpkg, layer="change_borough").set_index("LAD25CD")
    assert borough.loc[LIVERPOOL, "opened"] == 2
    pack = tmp_path / "pack.zip"
    assert cli.main(["export", "--format", "pack", "-o", str(pack), *common]) == 0
    with zipfile.ZipFile(pack) as members:
        assert "change_deanery.csv" in members.namelist()
        readme = members.read("README.txt").decode("utf-8")
    assert "Ward change between two dates columns" in readme
    assert "newly_beyond_reach_deciles_1_2" in readme
    csv = tmp_path / "out.csv"
    assert cli.main(["export", "--format", "csv", "-o", str(csv), *common]) == 2


def test_need_reach_from_judges_reach_between_dates(tmp_path):
    path = _history_store(tmp_path)
    out = tmp_path / "need.csv"
    argv = ["need", "--by", "borough", "--types", "food_bank", "--store", str(path)]
    assert cli.main([*argv, "--reach-from", "2025-01-09", "-o", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig").set_index("LAD25CD")
    assert (table["reach_basis"] == "between dates").all()
    assert table.loc[LIVERPOOL, "pct_covered_before"] == 0
    assert not table.loc[LIVERPOOL, "reach_not_improved"]  # a food bank opened since
    assert table.drop(index=LIVERPOOL)["reach_not_improved"].all()


@pytest.mark.parametrize(
    "argv",
    [
        ["gaps", "--as-of", "last tuesday"],
        ["change", "--from", "2025-13-01"],
        ["change", "--from", "2025-06-01", "--to", "2025-01-01"],
        ["export", "--format", "geojson", "-o", "x.geojson", "--change-from", "2025-01-01"],
    ],
)
def test_bad_dates_and_choices_get_a_one_line_error(tmp_path, capsys, argv):
    path = _history_store(tmp_path)
    assert cli.main([*argv, "--store", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kindred-map {argv[0]}:") and error.count("\n") == 1


def test_timeline_follows_the_events(tmp_path, capsys):
    path = _history_store(tmp_path)
    series = change.timeline(
        path, "borough", LIVERPOOL, "2025-01-01", "2025-04-30", "food_bank", steps=5
    )
    assert series["date"].iloc[0] == "2025-01-01" and series["date"].iloc[-1] == "2025-04-30"
    for row in series.itertuples():
        expected = _open_at(row.date, food_banks_only=True)
        assert row.projects == len(expected)
        assert row.reached == _liverpool_reached(expected)
    argv = ["change", "--from", "2025-01-01", "--to", "2025-04-30", "--types", "food_bank"]
    argv += ["--by", "borough", "--store", str(path), "--timeline", LIVERPOOL, "--steps", "3"]
    assert cli.main(argv) == 0
    assert f"borough {LIVERPOOL} over time:" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no borough"):
        change.timeline(path, "borough", "E99999999", "2025-01-01", "2025-02-01", steps=2)


def test_choropleth_is_centred_on_no_change_and_coloured_by_direction(tmp_path):
    import shapely

    path = _history_store(tmp_path)
    layer = change.change_between(path, "2025-01-01", "2025-03-31", "borough", "food_bank")
    for measure, (_label, higher_is_better) in changecharts.MEASURES.items():
        spec = changecharts.choropleth(layer, "borough", measure).to_dict()
        scale = spec["encoding"]["color"]["scale"]
        assert scale["domainMid"] == 0 and scale["domain"][0] == -scale["domain"][1]
        assert scale["reverse"] is higher_is_better  # blue (better) at the good end
    features = spec["datasets"][spec["data"]["name"]]["features"]
    assert len(features) == 9
    for feature in features:
        for polygon in shapely.geometry.shape(feature["geometry"]).geoms:
            assert not polygon.exterior.is_ccw  # d3 reads clockwise exteriors
    # Two food banks opened in Liverpool: its gap shrank; no other borough moved, none is ranked.
    assert change.ranked(layer, "grew").empty
    table = changecharts.ranked_table(change.ranked(layer, "shrank"), "borough")
    assert list(table.index) == [1] and table.iloc[0]["Borough"] == "Liverpool"
    assert table.iloc[0]["Gap score change"] == layer["gap_score_change"].min() < 0
    with pytest.raises(ValueError, match="unknown measure"):
        changecharts.choropleth(layer, "borough", "colour")


# --- when the history starts; rankings of areas that moved; formatted numbers -------------


def test_dates_before_the_history_starts_are_moved_to_its_first_day():
    begins = asof.history_start(EVENTS)
    assert begins == asof.HistoryStart(dt.date(2025, 1, 10), baseline=0, changes=len(EVENTS))
    day = dt.date
    assert change.known_dates(begins, day(2025, 2, 1), day(2025, 3, 1)) == (
        day(2025, 2, 1),
        day(2025, 3, 1),
        "",
    )
    start, end, note = change.known_dates(begins, day(2024, 6, 1), day(2025, 3, 1))
    assert (start, end) == (day(2025, 1, 10), day(2025, 3, 1))
    assert "2024-06-01 is before the store's history starts (2025-01-10)" in note
    start, end, note = change.known_dates(begins, day(2024, 6, 1), day(2024, 7, 1))
    assert (start, end) == (day(2025, 1, 10), day(2025, 1, 10)) and "are before" in note
    assert change.known_dates(None, day(2024, 6, 1), day(2024, 7, 1))[2] == ""
    baseline = EVENTS.assign(action="baseline").head(2)
    assert asof.history_start(baseline) == asof.HistoryStart(day(2025, 1, 10), 2, 0)
    assert "with a baseline: the 2 projects" in asof.history_start(baseline).text()
    assert "nothing has been recorded since" in asof.history_start(baseline).text()


def test_rankings_name_only_the_areas_that_moved_that_way():
    jan = _frame(asof.records_as_of(EVENTS, "2025-01-31"))
    feb = _frame(asof.records_as_of(EVENTS, "2025-02-15"))  # p2 opened in W2; W1 unchanged
    table = change.change_by_area(jan, feb, "ward", "pantry", DISTANCE, POSTCODES)
    table = table.assign(date_from="2025-01-31", date_to="2025-02-15")
    assert table.set_index("WD24CD").loc["W1", "gap_score_change"] == 0
    assert change.ranked(table, "grew").empty
    assert change.ranked(table, "shrank")["WD24CD"].tolist() == ["W2"]
    text = change.summary_text(table, "ward")
    assert "Where the gap grew most: none, no ward's gap grew" in text
    assert "Two (W2): gap score -" in text
    assert "One (W1)" not in text  # an area that did not move is not ranked
    back = change.change_by_area(feb, jan, "ward", "pantry", DISTANCE, POSTCODES)
    back = back.assign(date_from="2025-02-15", date_to="2025-01-31")
    assert change.ranked(back, "grew")["WD24CD"].tolist() == ["W2"]
    assert change.ranked(back, "shrank").empty
    with pytest.raises(ValueError, match="unknown direction"):
        change.ranked(table, "sideways")


def _history_start_of_shipped_store() -> dt.date:
    return pd.Timestamp(store.read_history(DEFAULT_STORE)["at"].min()).date()


def test_the_shipped_store_history_is_a_baseline_not_openings(capsys):
    events = store.read_history(DEFAULT_STORE)
    assert set(events["action"]) == {"baseline"}  # none of the sources gives opening dates
    start = _history_start_of_shipped_store()
    argv = ["change", "--from", "2025-01-01", "--by", "borough", "--store", str(DEFAULT_STORE)]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert f"note: 2025-01-01 is before the store's history starts ({start})" in err
    real = int((~store.read_projects(DEFAULT_STORE)["synthetic"]).sum())
    assert f"with a baseline: the {real:,} projects stored when the history began" in out
    assert f"{start} to {dt.date.today()}: 0 projects opened, 0 closed" in out
    assert "Where the gap grew most: none, no borough's gap grew" in out
    assert "Where the gap shrank most: none, no borough's gap shrank" in out
    assert "covered 0.0%" not in out and f"{real} projects opened" not in out


@pytest.fixture(scope="module")
def dated_store(tmp_path_factory):
    """The shipped store with made-up openings over the last two years, some retired."""
    target = tmp_path_factory.mktemp("dated") / "dated.gpkg"
    return dated_copy(DEFAULT_STORE, target, dt.date.today())


def test_change_numbers_are_formatted_in_the_cli_and_rounded_in_the_table(
    dated_store, tmp_path, capsys
):
    out_csv = tmp_path / "change.csv"
    start = dt.date.today() - dt.timedelta(days=365)
    argv = ["change", "--from", str(start), "--by", "ward", "--store", str(dated_store)]
    assert cli.main([*argv, "--top", "50", "-o", str(out_csv)]) == 0
    out = capsys.readouterr().out
    ranking = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(ranking) > 20
    for line in ranking:
        plain = re.sub(r"\(E\d{8}\)", "", line)  # area codes are not numbers
        grouped = re.sub(r"\d{1,3}(?:,\d{3})+", "", plain)
        assert not re.search(r"\d{4}|\.\d{2}", grouped), line  # 16293.5 would fail both
        assert re.search(r"gap score [+-][\d,]+ \([\d,]+ -> [\d,]+ need-weighted people\)", line)
        assert re.search(r"within reach \d+\.\d% -> \d+\.\d% \([+-]\d+\.\d points", line)
    table = pd.read_csv(out_csv, encoding="utf-8-sig")
    for column in ("gap_score_from", "gap_score_to", "gap_score_change"):
        assert pd.api.types.is_integer_dtype(table[column]), column
    for column in ("pct_covered_from", "pct_covered_to", "pct_covered_change"):
        assert (table[column].round(1) == table[column]).all(), column
    assert (table["gap_score_to"] - table["gap_score_from"] == table["gap_score_change"]).all()


# --- the Change page (AppTest) -------------------------------------------------------------


def _change_page():
    from kindred_map.pages import change

    change.change_page()


def _page(store_path, monkeypatch, query=None) -> AppTest:
    monkeypatch.setenv(location.STORE_ENV, str(store_path))
    app = AppTest.from_function(_change_page, default_timeout=180)
    app.query_params.update(query or {})
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def _texts(app) -> str:
    kinds = ("markdown", "caption", "info", "warning", "error", "subheader")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(app, kind))


def test_the_change_page_says_the_shipped_history_is_a_baseline(tmp_path, monkeypatch):
    copy = tmp_path / "projects.gpkg"
    copy.write_bytes(DEFAULT_STORE.read_bytes())
    start = _history_start_of_shipped_store()
    app = _page(copy, monkeypatch, {"from": "2025-01-01"})
    text = _texts(app)
    assert md_escape(f"history starts on {start.day} {start:%b %Y} with a baseline") in text
    assert md_escape(f"2025-01-01 is before the store's history starts ({start})") in text
    assert app.date_input(key="change_from").value == start
    assert f"Nothing changed between {start} and {dt.date.today()}" in text
    assert not app.dataframe  # no table of zeros, no ranking of areas that did not move
    assert not app.get("vega_lite_chart")


def test_the_change_page_ranks_only_areas_that_moved_with_formatted_numbers(
    dated_store, monkeypatch
):
    app = _page(dated_store, monkeypatch)
    text = _texts(app)
    assert "with its first recorded event" in text and "is before" not in text
    today = dt.date.today()
    layer = change.change_between(dated_store, today - dt.timedelta(days=365), today, "ward")
    grew, shrank = (change.ranked(layer, d) for d in ("grew", "shrank"))
    assert 0 < len(grew) < len(layer) and 0 < len(shrank) < len(layer)
    assert [len(frame.value) for frame in app.dataframe] == [len(grew), len(shrank)]
    first = app.dataframe[0].value
    assert first["Ward"].tolist() == grew["WD24NM"].tolist()
    assert (first["Gap score change"] > 0).all()
    assert (app.dataframe[1].value["Gap score change"] < 0).all()
    formats = {
        column.get("label", name): column
        for name, column in json.loads(app.dataframe[0].proto.columns).items()
    }
    assert formats["Gap score change"]["type_config"]["format"] == "%+,d"
    assert formats["% within reach now"]["type_config"]["format"] == "%.1f%%"
    assert len(app.get("vega_lite_chart")) == 2  # the map and the chosen area over time


def test_need_reach_from_before_the_history_is_judged_from_its_start(tmp_path, capsys):
    out = tmp_path / "need.csv"
    argv = ["need", "--by", "borough", "--reach-from", "2025-01-01", "-o", str(out)]
    assert cli.main([*argv, "--store", str(DEFAULT_STORE)]) == 0
    start = _history_start_of_shipped_store()
    assert f"note: 2025-01-01 is before the store's history starts ({start})" in (
        capsys.readouterr().err
    )
    table = pd.read_csv(out, encoding="utf-8-sig")
    # Nothing changed since the baseline: coverage then is coverage now, not 0% (every project
    # "opened" since), so reach improved nowhere.
    assert (table["pct_covered_before"] > 0).all()
    assert table["reach_not_improved"].all()


@pytest.mark.parametrize("level", [*change.LEVELS, "lsoa"])
def test_coverage_tables_without_the_median_are_the_other_columns_of_the_whole(level):
    """The change leaves out the median distance (`by_area(median=False)`): every other column
    and the ranking are those of the whole table."""
    result = coverage.assess(store.read_projects(), "food_bank,pantry", 800)
    for whole, part in (
        (result.by_area(level), result.by_area(level, median=False)),
        (result.gaps(level), result.gaps(level, median=False)),
    ):
        assert "median_distance_m" in whole.columns and "median_distance_m" not in part
        kept = whole.drop(columns="median_distance_m")
        pd.testing.assert_frame_equal(part, kept, check_exact=True)
        assert part.attrs == whole.attrs
