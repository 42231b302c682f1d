"""Editors' changes and their history: add, edit, verify, retire, restore, undo, conflicts.

Tests of store behaviour run on both backends (``target``, ``sample_store``: a GeoPackage and a
PostGIS database); migration of old files, kill -9 and file layers are the GeoPackage's own."""

import datetime as dt
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kindred_map import boundaries, importing, store
from kindred_map import stewardship as st
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import history

ROOT = Path(store.__file__).parents[1]


def _csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _values(projects: pd.DataFrame, drop=("version",)) -> dict:
    """Every field of every project (by id) as the history keeps it, minus ``drop``."""
    return {r["id"]: {k: v for k, v in r.items() if k not in drop} for r in store.records(projects)}


@pytest.fixture
def sample(tmp_path) -> Path:
    """A copy of the shipped sample store (written before history existed)."""
    target = tmp_path / "projects.gpkg"
    shutil.copy2(DEFAULT_STORE, target)
    return target


@pytest.fixture(params=["gpkg", "postgis"])
def sample_store(request, tmp_path):
    """The shipped sample store on each backend: a copied file (not yet migrated), or a PostGIS
    database it was copied into (`store.copy`: its baseline events come along)."""
    if request.param == "gpkg":
        return request.getfixturevalue("sample")
    return request.getfixturevalue("pg_sample")


def _snapshot(location):
    """What a refused change must leave as it was: a GeoPackage's bytes; on PostGIS every
    record, the log and the history."""
    if isinstance(location, Path):
        return location.read_bytes()
    projects = store.read_projects(location, include_retired=True)
    return (
        store.records(projects),
        store.read_imports(location).to_dict("records"),
        st.read_history(location).to_dict("records"),
    )


def test_the_sample_store_reads_as_migrated_and_migrates_on_first_write(sample):
    untouched = sample.read_bytes()
    baseline = st.read_history(sample)
    projects = store.read_projects(sample, include_retired=True)
    assert sample.read_bytes() == untouched  # reading never writes
    assert len(baseline) == len(projects) and set(baseline["action"]) == {"baseline"}
    first_import = store.read_imports(sample)["imported_at"].min()
    assert first_import and set(baseline["at"]) == {first_import}
    assert set(projects["version"]) == {1}

    one = projects["id"].iloc[0]
    st.verify_project(sample, one, "ann", expected_version=1)
    events = st.read_history(sample)
    assert events["action"].value_counts().to_dict() == {"baseline": len(projects), "verify": 1}
    stored = events[events["action"] == "baseline"].drop(columns="event_id")
    pd.testing.assert_frame_equal(
        stored.sort_values("project_id").reset_index(drop=True),
        baseline.drop(columns="event_id").sort_values("project_id").reset_index(drop=True),
    )
    after = store.read_projects(sample, include_retired=True)
    assert set(after["created_at"]) == {first_import}
    log = store.read_imports(sample)
    assert log["import_id"].tolist() == list(range(1, len(log) + 1))


def test_a_store_whose_log_has_no_dates_counts_from_the_files_time(sample, tmp_path):
    undated = tmp_path / "undated.gpkg"
    log = store.read_imports(sample).assign(imported_at="")
    store.write_store(store.read_projects(sample), log, undated, "2025-01-01T00:00:00Z")
    stamp = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC).timestamp()
    os.utime(undated, (stamp, stamp))
    assert set(st.read_history(undated)["at"]) == {"2025-06-01T09:00:00+00:00"}
    st.verify_project(undated, store.read_projects(undated)["id"].iloc[0], "ann")
    baseline = st.read_history(undated).query("action == 'baseline'")
    assert set(baseline["at"]) == {"2025-06-01T09:00:00+00:00"}


def test_each_change_is_in_the_history_with_before_and_after(sample_store):
    sample = sample_store
    added = st.add_project(
        sample, {"name": "Hope Pantry", "type": "food_bank", "postcode": "l8 7sq"}, "ann"
    )
    assert added["id"].startswith("form:") and added["version"] == 1
    assert added["postcode"] == "L8 7SQ" and added["LAD25NM"] == "Liverpool"
    pid = added["id"]
    edited = st.edit_project(sample, pid, {"postcode": "L20 4RW"}, 1, "bob")
    assert edited["LAD25NM"] == "Sefton" and edited["lat"] != added["lat"]
    st.verify_project(sample, pid, "cat", expected_version=2, on=dt.date(2026, 1, 5))
    st.retire_project(sample, pid, "closed in March", "dan", 3)
    assert pid not in set(store.read_projects(sample)["id"])
    assert pid in set(store.read_projects(sample, include_retired=True)["id"])
    restored = st.restore_project(sample, pid, "eve", 4)
    assert restored["retired_at"] == "" and restored["version"] == 5

    events = st.read_history(sample, pid)
    assert events["action"].tolist() == ["add", "edit", "verify", "retire", "restore"]
    assert events["who"].tolist() == ["ann", "bob", "cat", "dan", "eve"]
    assert events["version"].tolist() == [1, 2, 3, 4, 5]
    assert events["before"].iloc[0] is None
    befores = [json.loads(b) for b in events["before"].iloc[1:]]
    afters = [json.loads(a) for a in events["after"]]
    assert befores == afters[:-1]  # each change starts from the one before
    assert (befores[0]["postcode"], afters[1]["postcode"]) == ("L8 7SQ", "L20 4RW")
    assert afters[2]["last_checked"] == "2026-01-05" and afters[2]["checked_by"] == "cat"
    assert afters[3]["retired_reason"] == "closed in March"
    assert set(afters[1]) == set(store.STORE_FIELDS)
    assert (
        afters[-1]
        == store.records(store.read_projects(sample).set_index("id").loc[[pid]].reset_index())[0]
    )


def test_a_home_stays_ward_only_when_edited(sample_store):
    sample = sample_store
    home = st.add_project(
        sample,
        {"name": "Kitchen table club", "postcode": "L8 7SQ", "location_precision": "ward_only"},
        "ann",
    )
    edited = st.edit_project(sample, home["id"], {"postcode": "L20 4RW"}, 1, "ann")
    assert edited["location_precision"] == "ward_only"


def test_bad_edits_are_refused_and_write_nothing(sample_store):
    sample = sample_store
    pid = store.read_projects(sample)["id"].iloc[0]
    untouched = _snapshot(sample)
    with pytest.raises(ValueError, match="no project name"):
        st.edit_project(sample, pid, {"name": "  "}, 1, "ann")
    with pytest.raises(ValueError, match="cannot edit"):
        st.edit_project(sample, pid, {"WD24CD": "E05000001"}, 1, "ann")
    with pytest.raises(ValueError, match="say who"):
        st.verify_project(sample, pid, " ")
    with pytest.raises(ValueError, match="give a reason"):
        st.retire_project(sample, pid, "", "ann")
    with pytest.raises(ValueError, match="not retired"):
        st.restore_project(sample, pid, "ann")
    with pytest.raises(st.VersionConflict, match="you had version 7"):
        st.verify_project(sample, pid, "ann", expected_version=7)
    with pytest.raises(ValueError, match="no project with id 'nope'"):
        st.verify_project(sample, "nope", "ann")
    assert _snapshot(sample) == untouched


def _edit(path, pid, name, barrier, results):
    barrier.wait()
    try:
        st.edit_project(path, pid, {"name": name}, 1, name)
        results.put(("saved", name))
    except st.VersionConflict as error:
        results.put(("conflict", str(error)))


def test_two_editors_saving_one_record_one_saves_one_is_told(sample_store):
    sample = sample_store
    pid = store.read_projects(sample)["id"].iloc[5]
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_edit, args=(sample, pid, name, barrier, results))
        for name in ("Alice", "Bilal")
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join()
    (conflict, message), (saved, winner) = outcomes
    assert (conflict, saved) == ("conflict", "saved")
    loser = ({"Alice", "Bilal"} - {winner}).pop()
    assert f"changed by {winner}" in message and "you had version 1" in message
    assert json.dumps({"name": loser}) in message  # the loser's change is handed back
    stored = store.read_projects(sample).set_index("id").loc[pid]
    assert (stored["name"], stored["version"]) == (winner, 2)
    assert st.read_history(sample, pid)["action"].tolist() == ["baseline", "edit"]


def test_undo_import_restores_every_field_and_keeps_later_edits(tmp_path, target):
    first = "id,name,postcode,type\n" + "\n".join(
        f"p{i},Project {i},{pc},food_bank"
        for i, pc in enumerate(["L1 8JQ", "L20 4RW", "L7 3HJ", "L8 7SQ"])
    )
    importing.import_file(_csv(tmp_path / "a" / "partner.csv", first), target)
    st.verify_project(target, "partner:p3", "ann")
    before = store.read_projects(target, include_retired=True)
    second = (
        "id,name,postcode,type\n"
        "p0,Project 0 renamed,L1 8JQ,warm_space\n"
        "p1,Project 1,L7 3HJ,food_bank\n"
        "p2,Project 2 moved,L8 7SQ,food_bank\n"
        "p3,Project 3,L8 7SQ,food_bank\n"
        "p9,Project 9,L20 4RW,sto\n"
    )
    report = importing.import_file(_csv(tmp_path / "b" / "partner.csv", second), target, who="bob")
    assert (report.new, report.updated, report.unchanged) == (1, 3, 1)
    st.edit_project(target, "partner:p3", {"website": "https://p3.example"}, 2, "cat")
    st.edit_project(target, "partner:p2", {"opening_hours": "Mo 10:00-12:00"}, 2, "cat")
    kept = store.read_projects(target, include_retired=True).set_index("id")

    undone = st.undo_import(target, report.import_id, "dan")
    assert sorted(undone.reverted) == ["partner:p0", "partner:p1"]
    assert undone.removed == ["partner:p9"]
    assert [c.split(":")[1] for c in undone.conflicts] == ["p2"]
    assert "changed by cat" in undone.conflicts[0]

    after = _values(store.read_projects(target, include_retired=True))
    wanted = _values(before)
    wanted["partner:p2"] = _values(kept.loc[["partner:p2"]].reset_index())["partner:p2"]
    wanted["partner:p3"] = _values(kept.loc[["partner:p3"]].reset_index())["partner:p3"]
    assert after == wanted
    points = store.read_projects(target, include_retired=True).set_index("id").geometry
    old = before.set_index("id").geometry
    assert (
        points.loc[old.index]
        .geom_equals_exact(old, tolerance=0)
        .drop(["partner:p2", "partner:p3"])
        .all()
    )
    events = st.read_history(target)
    undo = events[events["action"] == "undo"]
    assert set(undo["import_id"]) == {report.import_id} and len(undo) == 3
    assert json.loads(undo.set_index("project_id").loc["partner:p9", "after"])["removed"]
    with pytest.raises(ValueError, match="already undone by dan"):
        st.undo_import(target, report.import_id, "dan")
    with pytest.raises(ValueError, match="no import 99"):
        st.undo_import(target, 99, "dan")


def test_an_import_records_one_event_per_changed_row_with_its_file_row(tmp_path, target):
    text = "id,name,postcode\na,Hub,L1 8JQ\nb,Cafe,L20 4RW\n"
    report = importing.import_file(_csv(tmp_path / "partner.csv", text), target, who="ann")
    again = importing.import_file(_csv(tmp_path / "partner.csv", text), target, who="ann")
    events = st.read_history(target)
    assert events["source"].tolist() == ["file partner.csv row 2", "file partner.csv row 3"]
    assert set(events["import_id"]) == {report.import_id}
    log = store.read_imports(target)
    assert log["import_id"].tolist() == [report.import_id, again.import_id]
    assert again.import_id > report.import_id and log["who"].tolist() == ["ann", "ann"]
    projects = store.read_projects(target)
    moved = projects.assign(name=projects["name"] + " (renamed)").head(1)
    counts = store.upsert(moved, target, {"file": "fix.csv"}, who="bob")
    assert counts["updated"] == 1 and counts["import_id"] == again.import_id + 1
    last = st.read_history(target).iloc[-1]
    assert (last["action"], last["who"], last["import_id"], last["version"]) == (
        "import",
        "bob",
        counts["import_id"],
        2,
    )
    assert json.loads(last["before"])["name"] == "Hub" and last["source"] == "file fix.csv"


def _batch(tmp_path: Path, rows: int) -> Path:
    postcodes = boundaries.load("postcode")
    live = postcodes[(postcodes["status"] == "live") & postcodes["in_region"]]
    live = live.sample(rows, random_state=3)
    frame = pd.DataFrame(
        {"id": [f"k{i}" for i in range(rows)], "name": [f"Kill {i}" for i in range(rows)]}
    )
    frame["postcode"] = live["postcode"].to_numpy()
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    return path


IMPORTER = """
import os, signal, sys
from kindred_map import geocode, importing, join
join.reference(); geocode.postcode_index()
print("ready", flush=True)
for line in sys.stdin:
    batch, target = line.split("\\t")
    pid = os.fork()
    if pid == 0:
        try:
            importing.import_file(batch, target.strip(), who="kill")
        finally:
            os._exit(0 if sys.exc_info()[0] is None else 1)
    print(pid, flush=True)
    if sys.stdin.readline().strip() == "kill":  # sent while it runs, or after it finished
        os.kill(pid, signal.SIGKILL)  # not reaped before this, so the pid is still the child's
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""
"""One interpreter that loads the layers once, then runs each import asked of it (a line
"batch<TAB>store" on stdin) in a child forked for it, says the child's pid as the import starts,
then on the next line ("kill" or "wait") kills it with SIGKILL or lets it finish, and says its
exit code once it has ended (-9: killed; 0: it had finished)."""


class Importer:
    """The importer above, started once for the kill -9 test. Loading the layers costs a fresh
    interpreter about 1.7 CPU s, nine times over before (the first of the three costliest
    non-browser tests): a fork starts with them loaded, as each child then did when it said it
    was ready, so the SIGKILL still lands on a process that is only importing."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-c", IMPORTER]
        self.process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline().strip() == "ready"

    def start(self, batch: Path, target: Path) -> None:
        """Returns once a child is forked and importing ``batch`` into ``target``."""
        self.process.stdin.write(f"{batch}\t{target}\n")
        self.process.stdin.flush()
        assert int(self.process.stdout.readline()) > 0

    def end(self, word: str) -> int:
        """With "kill", SIGKILL the child now; with "wait", let it finish. Its exit code."""
        self.process.stdin.write(f"{word}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0


@pytest.fixture
def importer():
    started = Importer()
    yield started
    if started.process.poll() is None:  # a failed test left it waiting
        started.process.kill()
        started.process.wait()


KILL_TRIALS = 8


def test_kill_9_during_an_import_leaves_all_or_none_with_its_history(tmp_path, importer):
    """Imports killed by SIGKILL, half at any moment of the import, half in its last 30% (where
    it writes), each moment drawn from its own slice of that span. The trade: 8 trials instead of
    20 uniform draws (about 42 s serially before). Stratified, the 8 still spread over the whole
    import and its write; what is given up is repeats near the same moment, so a narrow window
    (the commit itself) is hit less often per run. Each import runs in a process forked from one
    that loaded the layers (`Importer`), not in a new interpreter: what is killed is the same (a
    process in the middle of `import_file`, its store written by it alone), at a third of the
    CPU. At least one trial must have killed an import still running."""
    batch = _batch(tmp_path, 2_000)
    base = tmp_path / "base.gpkg"
    shutil.copy2(DEFAULT_STORE, base)
    st.verify_project(base, store.read_projects(base)["id"].iloc[0], "ann")  # migrated
    probe = tmp_path / "probe.gpkg"
    shutil.copy2(base, probe)
    importer.start(batch, probe)
    started = time.perf_counter()
    assert importer.end("wait") == 0
    duration = time.perf_counter() - started
    assert len(store.read_projects(probe)) == len(store.read_projects(base)) + 2_000
    stored, logged = len(store.read_projects(base)), len(store.read_imports(base))
    rng = np.random.default_rng(12)
    half = KILL_TRIALS // 2
    anywhere = np.linspace(0.0, 1.1, half + 1)
    writing = np.linspace(0.7, 1.05, half + 1)
    shares = [
        rng.uniform(edges[i], edges[i + 1]) for edges in (anywhere, writing) for i in range(half)
    ]
    endings = []
    for trial, share in enumerate(shares):
        target = tmp_path / f"t{trial}" / "projects.gpkg"
        target.parent.mkdir()
        shutil.copy2(base, target)
        importer.start(batch, target)
        time.sleep(share * duration)
        endings.append(importer.end("kill"))
        projects = store.read_projects(target)  # opens (and cleans up)
        imported = st.read_history(target).query("action == 'import'")
        whole = len(projects) == stored + 2_000
        assert whole or len(projects) == stored
        assert len(imported) == (2_000 if whole else 0)
        assert len(store.read_imports(target)) == logged + whole
        assert sorted(p.name for p in target.parent.iterdir()) == ["projects.gpkg"]
    importer.close()
    assert set(endings) <= {0, -signal.SIGKILL} and -signal.SIGKILL in endings, endings


def test_history_table_is_not_a_layer(sample):
    st.verify_project(sample, store.read_projects(sample)["id"].iloc[0], "ann")
    import pyogrio

    assert history.TABLE not in set(pyogrio.list_layers(sample)[:, 0])


def test_the_cli_does_each_change_and_shows_the_history(sample_store, tmp_path, capsys):
    from kindred_map.cli import main

    sample = sample_store
    where = ["--store", str(sample), "--who", "ann"]
    assert main(["add", "name=Hope Pantry", "postcode=L8 7SQ", "type=food_bank", *where]) == 0
    pid = capsys.readouterr().out.split()[1]
    assert main(["edit", pid, "postcode=L20 4RW", "--expect-version", "1", *where]) == 0
    assert main(["edit", pid, "name=Late", "--expect-version", "1", *where]) == 2
    assert "changed by ann" in capsys.readouterr().err
    assert main(["verify", pid, "--on", "2026-01-05", *where]) == 0
    assert main(["retire", pid, "--reason", "closed", *where]) == 0
    assert main(["restore", pid, *where]) == 0
    capsys.readouterr()
    assert main(["history", pid, "--store", str(sample)]) == 0
    shown = capsys.readouterr().out
    assert [line.split()[2] for line in shown.splitlines() if line.startswith("v")] == [
        "add",
        "edit",
        "verify",
        "retire",
        "restore",
    ]
    assert "postcode: 'L8 7SQ' -> 'L20 4RW'" in shown
    partner = _csv(tmp_path / "partner.csv", "id,name,postcode\na,Hub,L1 8JQ\n")
    assert main(["import", str(partner), *where]) == 0
    number = capsys.readouterr().out.split("undo-import ")[1].split(")")[0]
    assert main(["imports", "--store", str(sample)]) == 0
    assert f"{number:>4}" in capsys.readouterr().out.splitlines()[-1]
    assert main(["undo-import", number, *where]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert main(["imports", "--store", str(sample)]) == 0  # an undone import says so
    assert capsys.readouterr().out.splitlines()[-1].endswith(" by ann)")
    log = store.import_log(sample).set_index("import_id")
    assert log.loc[int(number), "undone"].startswith("undone on ")
    assert set(log.drop(index=int(number))["undone"]) <= {""}
    sheet = tmp_path / "calls.csv"
    assert main(["freshness", "--store", str(sample), "--call-sheet", str(sheet)]) == 0
    assert "never checked" in capsys.readouterr().out and sheet.exists()
