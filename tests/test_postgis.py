"""The PostGIS store: copies between backends, concurrent writers, the partners' read-only role."""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from kindred_map import boundaries, cli, importing, location, privacy, store, tables, upload
from kindred_map import stewardship as st
from kindred_map import view as views
from kindred_map.storage import history, postgis

FIXTURES = Path(__file__).parent / "fixtures"
HOME = (
    "id,name,type,address,postcode,location_precision\n"
    "home-001,Kitchen Table Club,pantry,14 Acacia Avenue,PR8 2FF,ward_only\n"
    "hall-002,Church Hall Cafe,place_of_welcome,1 Hall Road,L1 8JQ,street\n"
)


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_copy_geopackage_to_postgis_and_back_keeps_every_record_and_event(
    tmp_path, pg_store, capsys
):
    source = tmp_path / "source.gpkg"
    importing.import_file(FIXTURES / "messy_projects_cp1252.csv", source)
    importing.import_file(_csv(tmp_path / "homes.csv", HOME), source)
    one, two = store.read_projects(source)["id"].iloc[:2]
    st.edit_project(source, one, {"website": "https://example.org/ünï"}, 1, "Zoë")
    st.retire_project(source, two, "closed", "ann")
    back = tmp_path / "back.gpkg"
    assert cli.main(["store", "copy", str(source), pg_store]) == 0
    assert cli.main(["store", "copy", pg_store, str(back)]) == 0
    assert "history events" in capsys.readouterr().out
    events = st.read_history(source)
    assert set(events["action"]) == {"import", "edit", "retire"}
    for copied in (pg_store, back):
        assert store.same_projects(
            store.read_projects(copied, include_retired=True),
            store.read_projects(source, include_retired=True),
        )
        pd.testing.assert_frame_equal(store.read_imports(copied), store.read_imports(source))
        pd.testing.assert_frame_equal(st.read_history(copied), events)
        assert store.read_secret(copied) == store.read_secret(source) is not None
    # The copies go on as the source would: the next event is numbered after the copied ones.
    st.verify_project(pg_store, one, "ann", expected_version=2)
    assert st.read_history(pg_store)["event_id"].iloc[-1] == events["event_id"].max() + 1
    # The same secret derives the same ids: re-importing into the copy changes nothing.
    again = importing.import_file(FIXTURES / "messy_projects_cp1252.csv", pg_store)
    assert (again.new, again.updated) == (0, 0) and again.unchanged > 0
    assert cli.main(["store", "copy", str(source), pg_store]) == 2
    assert "already holds projects" in capsys.readouterr().err


def test_a_failed_import_leaves_the_database_as_it_was(tmp_path, pg_store, monkeypatch):
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    before, log = store.read_projects(pg_store), store.read_imports(pg_store)

    send = postgis._send

    def fail_midway(conn, table, names, text):
        """The public rows' COPY fails once the projects' COPY is done (COPYs are sent in
        order, by a worker thread for a fresh batch: `postgis._copying`)."""
        if "public_id" in names:
            assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] > len(before)
            raise OSError("disk full")
        send(conn, table, names, text)

    monkeypatch.setattr(postgis, "_send", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        importing.import_file(FIXTURES / "messy_projects_cp1252.csv", pg_store)
    assert store.same_projects(store.read_projects(pg_store), before)
    pd.testing.assert_frame_equal(store.read_imports(pg_store), log)


def test_store_init_and_migrate_on_both_backends(tmp_path, pg_store, capsys):
    gpkg = tmp_path / "new.gpkg"
    assert cli.main(["store", "migrate", "--store", str(gpkg)]) == 2
    assert "store init" in capsys.readouterr().err
    for where in (str(gpkg), pg_store):
        assert cli.main(["store", "init", "--store", where]) == 0
        secret = store.read_secret(where)
        assert len(secret) == 32
        assert cli.main(["store", "migrate", "--store", where]) == 0
        assert store.read_secret(where) == secret and store.read_projects(where).empty


def test_the_dashboard_sees_each_postgis_write(pg_store, monkeypatch):
    monkeypatch.setenv(location.STORE_ENV, pg_store)
    assert upload.store_signature()[0] == location.resolve(pg_store)
    first = upload.store_signature(pg_store)
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    second = upload.store_signature(pg_store)
    assert first != second
    projects = store.read_projects(pg_store)
    projects.loc[0, "name"] = "Renamed"
    store.upsert(projects.head(1), pg_store)
    assert upload.store_signature(pg_store) != second


# --- concurrent writer processes ----------------------------------------------------------

WRITERS = 4
OWN_ROWS = 500
SHARED = 40
"""Records every writer edits (the same name at the same place: an update each time)."""
CLASHES = 25
"""Ids every writer claims for a project of its own, far from the others': one wins each."""
EDITED = 20
"""Records every writer edits one at a time (`stewardship.edit_project`) with the version it
read before its imports: each save is one version, every other attempt a VersionConflict."""


WRITER = """
import json, os, sys
from pathlib import Path
from kindred_map import geocode, importing, join, stewardship, store
join.reference(); geocode.postcode_index()  # loaded once, before the writers are forked

def write(dsn, writer, edited, files, out, ready, go):
    who = f"writer {writer}"
    read = store.read_projects(dsn).set_index("id").loc[edited, "version"].astype(int).to_dict()
    os.write(ready, b"r")
    os.read(go, 1)  # every writer starts writing at once
    reports = [
        importing.import_file(Path(path), dsn, source=source, who=who)
        for path, source in zip(files, (None, "shared", "claims"))
    ]
    edits = []
    for pid in edited:
        change = {"website": f"https://writer{writer}.example/{pid[5:]}"}
        try:
            saved = stewardship.edit_project(dsn, pid, change, read[pid], who)
            edits.append((pid, "saved", saved["version"]))
        except stewardship.VersionConflict as conflict:
            edits.append((pid, "conflict", str(conflict)))
    counts = [(r.new, r.updated, r.unchanged, r.rejected) for r in reports]
    Path(out).write_text(json.dumps({"imports": counts, "edits": edits}))

dsn, count, jobs = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
edited = [f"edit:e{i}" for i in range(count)]
ready, go = os.pipe(), os.pipe()
children = []
for writer, (files, out) in enumerate(jobs):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            write(dsn, writer, edited, files, out, ready[1], go[0])
            code = 0
        finally:
            os.write(ready[1], b"r")  # never leave the others waiting (a second byte is unread)
            os._exit(code)
    children.append(pid)
said = b""
while len(said) < len(jobs):
    said += os.read(ready[0], len(jobs) - len(said))
print("ready", flush=True)
sys.stdin.readline()
os.write(go[1], b"g" * len(jobs))
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]))
"""
"""The writers: one interpreter loads the layers, then forks one process per writer. Each reads
the edited records' versions, says it is ready; on the word to go (all at once, not one after
another) it imports its own file, the shared edits and its claims, then edits each shared
record, and writes (new, updated, unchanged, rejected) of each import and each edit's outcome
as JSON to its own file. The parent says the writers' exit codes. A fresh interpreter, forked
only after the layers are loaded (not multiprocessing from the test process: the app tests
leave a __main__ that spawned workers would try to run)."""


def test_concurrent_writer_processes_lose_nothing_and_report_every_clash(tmp_path, pg_store):
    """WRITERS processes import, update, claim and edit the same records at once. The trade: 4
    writers of 500 rows each, not 8 of 1,000 (41 s serially before, most of it 8 interpreters
    loading the layers on 2 cores). Still twice as many writers as cores, and since every
    writer now waits for the others to be ready before writing, they all write at the same
    time, which 8 writers that started writing as each finished loading did not ensure. The
    writers are forked from one interpreter that loaded the layers (WRITER), not started as
    four: the same four processes with their own connections write at once, without three of
    the four layer loads (about 1.7 CPU s each), and now none loads layers after the word to
    go, so their writes overlap more than before."""
    live = boundaries.load("postcode").query("status == 'live'")["postcode"].to_numpy()
    rng = np.random.default_rng(15)
    seed = pd.DataFrame(
        {"id": [f"s{i}" for i in range(SHARED)], "name": "Shared hub", "postcode": "L1 8JQ"}
    )
    seed_file = _csv(tmp_path / "seed.csv", seed.to_csv(index=False))
    importing.import_file(seed_file, pg_store, source="shared")
    edited = [f"edit:e{i}" for i in range(EDITED)]
    common = pd.DataFrame({"id": [e[5:] for e in edited], "name": "Common", "postcode": "L7 3HJ"})
    importing.import_file(_csv(tmp_path / "edit.csv", common.to_csv(index=False)), pg_store)
    # Claims sit far apart: a different borough for each writer (a clearly different project).
    far = ["L1 8JQ", "PR8 2FF", "WA10 2DT", "L34 2AA", "L26 0TY", "L20 4RW", "L7 3HJ", "L32 8UE"]
    jobs = []
    for writer in range(WRITERS):
        own = pd.DataFrame(
            {
                "id": [f"w{writer}-{i}" for i in range(OWN_ROWS)],
                "name": [f"Writer {writer} project {i}" for i in range(OWN_ROWS)],
                "postcode": rng.choice(live, OWN_ROWS),
            }
        )
        edits = seed.assign(name=f"Shared hub (edited by writer {writer})")
        claims = pd.DataFrame(
            {
                "id": [f"c{i}" for i in range(CLASHES)],
                "name": [f"Claim by writer {writer} number {i}" for i in range(CLASHES)],
                "postcode": far[writer],
            }
        )
        paths = []
        for kind, frame in (("own", own), ("edits", edits), ("claims", claims)):
            path = tmp_path / f"{kind}_{writer}" / f"{kind}.csv"
            path.parent.mkdir()
            paths.append(str(_csv(path, frame.to_csv(index=False))))
        jobs.append(paths)
    environment = {**os.environ, "PYTHONPATH": str(Path(store.__file__).parents[1])}
    outs = [tmp_path / f"writer_{number}.json" for number in range(WRITERS)]
    given = json.dumps([[paths, str(out)] for paths, out in zip(jobs, outs, strict=True)])
    writers = subprocess.Popen(
        [sys.executable, "-c", WRITER, pg_store, str(EDITED), given],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
        text=True,
    )
    assert writers.stdout.readline().strip() == "ready"
    writers.stdin.write("go\n")
    writers.stdin.close()
    assert json.loads(writers.stdout.read()) == [0] * WRITERS
    assert writers.wait(timeout=600) == 0
    outputs = [out.read_text() for out in outs]
    results = [json.loads(output) for output in outputs]
    own, edits, claims = (np.array([r["imports"][k] for r in results]) for k in range(3))
    assert (own[:, 0] == OWN_ROWS).all() and (own[:, 1:] == 0).all()
    assert (edits[:, 1] == SHARED).all() and (edits[:, [0, 3]] == 0).all()
    # Every claimed id: one writer's project stored, every other writer told it was refused.
    assert claims[:, 0].sum() == CLASHES
    assert claims[:, 3].sum() == CLASHES * (WRITERS - 1)
    projects = store.read_projects(pg_store).set_index("id")
    assert len(projects) == WRITERS * OWN_ROWS + SHARED + CLASHES + EDITED
    for writer in range(WRITERS):
        mine = projects.loc[[f"own:w{writer}-{i}" for i in range(OWN_ROWS)], "name"]
        assert mine.str.startswith(f"Writer {writer} ").all()
    shared = projects.loc[[f"shared:s{i}" for i in range(SHARED)], "name"]
    assert shared.str.match(r"Shared hub \(edited by writer \d\)").all()
    winners = projects.loc[[f"claims:c{i}" for i in range(CLASHES)], "name"]
    won = winners.str.extract(r"writer (\d)")[0].astype(int).value_counts()
    assert (won.reindex(range(WRITERS), fill_value=0).to_numpy() == claims[:, 0]).all()
    log = store.read_imports(pg_store)
    # An import whose every row is refused writes nothing, its log entry included (as before).
    assert len(log) == 2 + 2 * WRITERS + (claims[:, 0] > 0).sum()
    assert log["new"].sum() == len(projects)
    # Single edits: every attempt saved or told, every save one version and one event.
    outcomes = [(w, *edit) for w, r in enumerate(results) for edit in r["edits"]]
    saved = {(pid, f"writer {w}", v) for w, pid, kind, v in outcomes if kind == "saved"}
    told = [(pid, message) for _, pid, kind, message in outcomes if kind == "conflict"]
    assert len(saved) + len(told) == len(outcomes) == WRITERS * EDITED
    assert all("Nothing was saved" in message and pid in message for pid, message in told)
    assert told and {pid for pid, _, _ in saved} == set(edited)
    every = st.read_history(pg_store)
    own_events = every[every["source"].str.startswith("file own.csv row ")]
    assert own_events["who"].value_counts().to_dict() == {
        f"writer {w}": OWN_ROWS for w in range(WRITERS)
    }
    events = every.query("action == 'edit'")
    assert set(zip(events["project_id"], events["who"], events["version"], strict=True)) == saved
    assert len(events) == len(saved)
    versions = store.read_projects(pg_store).set_index("id").loc[edited, "version"]
    for pid in edited:
        assert versions[pid] == 1 + sum(1 for p, _, _ in saved if p == pid)
    # The record holds the last saved edit's change.
    last = events.sort_values("event_id").drop_duplicates("project_id", keep="last")
    websites = store.read_projects(pg_store).set_index("id")["website"]
    for pid, who in zip(last["project_id"], last["who"], strict=True):
        assert websites[pid] == f"https://writer{who[-1]}.example/{pid[5:]}"


# --- the partners' role ------------------------------------------------------------------


def _reader_dsn(dsn: str, name: str, password: str) -> str:
    parts = urlsplit(dsn)
    return parts._replace(netloc=f"{name}:{quote(password)}@{parts.hostname}:{parts.port}").geturl()


def _readable(conn) -> set[str]:
    """Every table and view in the database's own schemas the connected role may SELECT."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND has_table_privilege(quote_ident(table_schema) || '.' || quote_ident(table_name), "
        "'SELECT')"
    ).fetchall()
    return {row[0] for row in rows}


def test_the_reader_role_sees_the_views_and_never_a_home(tmp_path, pg_store, monkeypatch):
    importing.import_file(_csv(tmp_path / "homes.csv", HOME), pg_store)
    stored = store.read_projects(pg_store).set_index("name")
    home = stored.loc["Kitchen Table Club"]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("partner pass\n"))
    grant = ["store", "grant-reader", "council_gis", "--store", pg_store, "--password-stdin"]
    assert cli.main(grant) == 0
    assert cli.main(["store", "grant-reader", "x;drop", "--store", pg_store]) == 2
    reader = _reader_dsn(pg_store, "council_gis", "partner pass")
    with psycopg.connect(reader, autocommit=True) as conn:
        assert _readable(conn) == {
            *postgis.READER_VIEWS,
            "spatial_ref_sys",
            "geometry_columns",
            "geography_columns",
        }
        public = conn.execute(
            "SELECT name, postcode_district, location_note, ST_X(geom), ST_Y(geom) "
            "FROM projects_public ORDER BY name"
        ).fetchall()
        private = ("projects", "projects_public_rows", "kindred_private", "imports")
        for table in (*private, history.TABLE):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {table}")
        for statement in (
            "DELETE FROM projects_public",
            "UPDATE ward_summary SET projects = 0",
            "INSERT INTO projects (id) VALUES ('x')",
            "CREATE TABLE mine (x int)",
            "REFRESH MATERIALIZED VIEW ward_summary",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
        total = conn.execute("SELECT sum(projects) FROM ward_summary").fetchone()[0]
    assert total == 2
    # The home sits at its ward's centre, with a district and no address or full postcode.
    rows = {row[0]: row[1:] for row in public}
    district, note, x, y = rows["Kitchen Table Club"]
    assert (district, rows["Church Hall Cafe"][0]) == ("PR8", "L1")
    assert note == privacy.SHOWN_AT_WARD_CENTRE
    centre = privacy.ward_centres()[home["WD24CD"]]
    true_point = shapely.Point(home["easting"], home["northing"])
    shown = shapely.Point(x, y)
    assert true_point.distance(shown) > 50
    assert shown.distance(store.gpd.GeoSeries([centre], crs=4326).to_crs(27700)[0]) < 0.01
    assert "Acacia" not in repr(public) and "2FF" not in repr(public)


def test_grant_reader_refuses_the_superuser_the_owner_and_other_roles(pg_store):
    """Only new roles and existing reader logins: `grant-reader postgres` altered the
    superuser (LOGIN, a reader's password, membership of kindred_reader)."""
    with psycopg.connect(pg_store, autocommit=True) as conn:
        superuser, owner = conn.execute(
            "SELECT (SELECT rolname FROM pg_roles WHERE rolsuper LIMIT 1), current_user"
        ).fetchone()
        other = f"app_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {other} NOLOGIN")
    for name in dict.fromkeys((superuser, owner)):
        with pytest.raises(ValueError, match="superuser or owns the store"):
            postgis.grant_reader(pg_store, name, "a new password")
    with pytest.raises(ValueError, match="not a kindred_reader login"):
        postgis.grant_reader(pg_store, other, "a new password")
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    postgis.grant_reader(pg_store, reader, "first pass")
    postgis.grant_reader(pg_store, reader, "second pass")  # a reader's password reset
    with psycopg.connect(_reader_dsn(pg_store, reader, "second pass")) as conn:
        assert conn.execute("SELECT count(*) FROM ward_summary").fetchone()[0] == 221
    with psycopg.connect(pg_store, autocommit=True) as conn:
        login, member = conn.execute(
            "SELECT rolcanlogin, pg_has_role(oid, 'kindred_reader', 'MEMBER') FROM pg_roles "
            "WHERE rolname = %s",
            (other,),
        ).fetchone()
    assert (login, member) == (False, False)


@pytest.mark.skipif(not shutil.which("ogrinfo"), reason="needs GDAL's ogrinfo (gdal-bin)")
def test_ogrinfo_as_the_reader_lists_the_summary_layers_with_geometry(pg_store):
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    postgis.grant_reader(pg_store, "qgis_reader", "qgis pass")
    parts = urlsplit(pg_store)
    connection = (
        f"PG:host={parts.hostname} port={parts.port} dbname={parts.path.lstrip('/')} "
        "user=qgis_reader password='qgis pass'"
    )
    for layer, count in (
        ("ward_summary", 221),
        ("deanery_summary", 14),
        ("borough_summary", 9),
    ):
        out = subprocess.run(
            ["ogrinfo", "-ro", "-so", connection, layer], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert "Geometry: Multi Polygon" in out.stdout
        assert f"Feature Count: {count}" in out.stdout and '"EPSG",27700' in out.stdout
    listed = subprocess.run(["ogrinfo", "-ro", connection], capture_output=True, text=True)
    assert "projects_public (Point)" in listed.stdout
    denied = subprocess.run(
        ["ogrinfo", "-ro", connection, "-sql", "SELECT * FROM projects"],
        capture_output=True,
        text=True,
    )
    assert "permission denied" in denied.stderr


def test_the_dashboard_runs_on_a_postgis_store(pg_store, monkeypatch):
    from app_runs import first_page
    from streamlit.testing.v1 import AppTest

    from kindred_map.paths import PROJECT_ROOT

    importing.import_file(FIXTURES / "dashboard_projects.csv", pg_store)
    monkeypatch.setenv(location.STORE_ENV, pg_store)
    monkeypatch.setenv("KINDRED_MAP_BASEMAP", "none")
    app = first_page(AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120))
    assert not app.exception, [e.message for e in app.exception]
    projects = store.read_projects(pg_store)
    shown = views.shown_projects(projects, views.View())
    expected = f"**{tables.counts_text(shown, len(projects))}**"
    assert expected in [m.value for m in app.markdown]


def test_a_postgis_store_from_before_history_gets_baseline_events_once(pg_store):
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    with psycopg.connect(pg_store, autocommit=True) as conn:  # as schema 1 left it
        conn.execute("DROP TABLE history")
        conn.execute("UPDATE kindred_meta SET value = '1' WHERE key = 'schema_version'")
    projects = store.read_projects(pg_store, include_retired=True)
    first_import = store.read_imports(pg_store)["imported_at"].min()
    events = st.read_history(pg_store)  # migrates: one baseline event per project
    assert sorted(events["project_id"]) == sorted(projects["id"])
    assert set(events["action"]) == {"baseline"} and set(events["at"]) == {first_import}
    assert [json.loads(a) for a in events.sort_values("project_id")["after"]] == store.records(
        projects
    )
    assert cli.main(["store", "migrate", "--store", pg_store]) == 0
    assert st.read_history(pg_store).equals(events)  # done once
    with psycopg.connect(pg_store) as conn:
        version = conn.execute("SELECT value FROM kindred_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(postgis.SCHEMA_VERSION)


# --- no path from the reader to a home's position ------------------------------------------

FAR = (
    "id,name,type,address,postcode,location_precision\n"
    "north,Hesketh Kitchen,pantry,2 Shore Road,PR4 6XS,ward_only\n"
    "east,Tyldesley Hub,warm_space,1 Elliott Street,M28 1BD,exact\n"
    "south,Wirral Cafe,place_of_welcome,3 Dock Road,CH62 9BG,street\n"
    "centre,Church Hall Cafe,place_of_welcome,1 Hall Road,L1 8JQ,street\n"
)
"""A home at the region's northernmost postcode and a public project at its easternmost,
which then becomes a home: either would set the extent PostGIS reports if a reader could see
it."""
STATISTICS_FUNCTIONS = (
    "_postgis_index_extent('projects', 'geom')::text",
    "_postgis_index_extent('projects', 'wgs84')::text",
    "_postgis_index_extent({oid}::regclass, 'geom')::text",
    "_postgis_stats('projects', 'geom')",
    "_postgis_stats('projects', 'wgs84')",
    "_postgis_stats({oid}::regclass, 'geom')",
    "_postgis_stats('projects_public_rows', 'geom')",
    "_postgis_stats('home_points', 'wkb')",
    "_postgis_selectivity('projects', 'geom', {box})::text",
    "_postgis_selectivity('projects_public_rows', 'geom', {box})::text",
    "ST_EstimatedExtent('projects', 'geom')::text",
    "ST_EstimatedExtent('public', 'projects', 'geom')::text",
    "ST_EstimatedExtent('public', 'projects', 'wgs84')::text",
    "ST_EstimatedExtent('public', 'projects', 'geom', true)::text",
    "ST_EstimatedExtent('public', 'projects_public_rows', 'geom')::text",
    "ST_EstimatedExtent('public', 'home_points', 'wkb')::text",
)
"""Every PostGIS function that reads a table's geometry index or statistics whatever the
caller's rights (a table named by its OID too)."""


def _homes(dsn: str) -> pd.DataFrame:
    projects = store.read_projects(dsn)
    return projects[privacy.is_ward_only(projects).to_numpy()]


def _what_the_reader_learns(reader: str, homes: pd.DataFrame) -> dict[str, str]:
    """Each function's answer as the reader, and any of it within 5 m of a home: a number
    near a home's easting or northing (or longitude or latitude), or a selectivity above 0
    for a box of 100 m around a home."""
    learned = {}
    points = homes.geometry.to_crs(27700)
    with psycopg.connect(reader, autocommit=True) as conn:
        oid = conn.execute("SELECT 'projects'::regclass::oid").fetchone()[0]
        for number, point in enumerate(points):
            box = (
                f"ST_MakeEnvelope({point.x - 50}, {point.y - 50}, {point.x + 50}, "
                f"{point.y + 50}, 27700)"
            )
            for function in STATISTICS_FUNCTIONS:
                query = "SELECT " + function.format(oid=oid, box=box)
                try:
                    answer = str(conn.execute(query).fetchone()[0])
                except psycopg.Error as error:  # no index, no statistics, not a geometry
                    answer = f"refused: {error.diag.message_primary}"
                numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", answer)]
                lon, lat = store.gpd.GeoSeries([point], crs=27700).to_crs(4326)[0].coords[0]
                near = [
                    n
                    for n in numbers
                    if min(abs(n - point.x), abs(n - point.y)) < 5
                    or min(abs(n - lon), abs(n - lat)) < 0.00005
                ]
                if "selectivity" in function and numbers and numbers[0] > 0:
                    near.append(numbers[0])
                key = function if number == 0 else f"{function} (home {number + 1})"
                learned[key] = answer if not near else f"LEARNED {near}: {answer}"
    return learned


def test_the_reader_learns_no_home_position_from_postgis_statistics(tmp_path, pg_store):
    importing.import_file(_csv(tmp_path / "far.csv", FAR), pg_store)
    with psycopg.connect(pg_store, autocommit=True) as conn:
        conn.execute("ANALYZE")  # as autovacuum would: statistics that hold the eastern project
    east = store.read_projects(pg_store).set_index("name").loc["Tyldesley Hub"]
    st.edit_project(pg_store, east["id"], {"location_precision": "ward_only"}, 1, "ann")
    postgis.grant_reader(pg_store, "council_gis", "partner pass")
    homes = _homes(pg_store)
    assert sorted(homes["name"]) == ["Hesketh Kitchen", "Tyldesley Hub"]
    learned = _what_the_reader_learns(_reader_dsn(pg_store, "council_gis", "partner pass"), homes)
    assert not [answer for answer in learned.values() if answer.startswith("LEARNED")], learned
    assert "BOX" in learned["ST_EstimatedExtent('public', 'projects', 'geom')::text"]
    with psycopg.connect(pg_store) as conn:  # the exact points are kept, where no reader goes
        rows = conn.execute(f"SELECT count(*) FROM {postgis.HOME_POINTS}").fetchone()[0]
        in_geometry = conn.execute(
            f"SELECT count(*) FROM projects WHERE {postgis.IS_HOME} AND wgs84 IS NOT NULL"
        ).fetchone()[0]
    assert (rows, in_geometry) == (2, 0)
    copy = tmp_path / "copy.gpkg"
    assert cli.main(["store", "copy", pg_store, str(copy)]) == 0
    assert store.same_projects(store.read_projects(copy), store.read_projects(pg_store))


def test_store_migrate_moves_homes_out_of_an_older_postgis_store(tmp_path, pg_store):
    importing.import_file(_csv(tmp_path / "far.csv", FAR), pg_store)
    before = store.read_projects(pg_store, include_retired=True)
    postgis.grant_reader(pg_store, "council_gis", "partner pass")
    with psycopg.connect(pg_store, autocommit=True) as conn:  # as schema 2 left it
        conn.execute(
            f"UPDATE projects p SET wgs84 = ST_GeomFromWKB(h.wkb, 4326) "
            f"FROM {postgis.HOME_POINTS} h WHERE h.id = p.id"
        )
        conn.execute(f"DROP TABLE {postgis.HOME_POINTS}")
        conn.execute("CREATE INDEX projects_geom_index ON projects USING gist (geom)")
        conn.execute("UPDATE kindred_meta SET value = '2' WHERE key = 'schema_version'")
        conn.execute("ANALYZE")
    reader = _reader_dsn(pg_store, "council_gis", "partner pass")
    homes = before[privacy.is_ward_only(before).to_numpy()]
    old = _what_the_reader_learns(reader, homes)
    assert old["_postgis_index_extent('projects', 'geom')::text"].startswith("LEARNED")
    assert cli.main(["store", "migrate", "--store", pg_store]) == 0
    learned = _what_the_reader_learns(reader, homes)
    assert not [answer for answer in learned.values() if answer.startswith("LEARNED")], learned
    assert store.same_projects(store.read_projects(pg_store, include_retired=True), before)
    with psycopg.connect(pg_store) as conn:
        version = conn.execute("SELECT value FROM kindred_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(postgis.SCHEMA_VERSION) == "5"


def test_projects_public_names_the_nearest_borough_and_migrate_fills_it_in(tmp_path, pg_store):
    """A project outside the region shows the region borough nearest it in the partners'
    view, as every output shows it (`privacy.public_records`); a store from before schema 5
    (no such column) gets it from `store migrate`, with the view's grants kept."""
    beyond = (
        "id,name,type,address,postcode,location_precision\n"
        "far,Chorley Pantry,pantry,1 Market Street,PR7 1DA,street\n"
        "home,Leyland Larder,pantry,1 Town Road,PR25 1AA,ward_only\n"
        "centre,Church Hall Cafe,place_of_welcome,1 Hall Road,L1 8JQ,street\n"
    )
    importing.import_file(_csv(tmp_path / "beyond.csv", beyond), pg_store)
    postgis.grant_reader(pg_store, "council_gis", "partner pass")
    reader = _reader_dsn(pg_store, "council_gis", "partner pass")
    public = privacy.public_records(store.read_projects(pg_store)).set_index("name")
    expected = public["nearest_borough"].to_dict()
    assert expected["Chorley Pantry"] == "Wigan" and expected["Church Hall Cafe"] == ""

    def shown():
        with psycopg.connect(reader) as conn:
            rows = conn.execute("SELECT name, nearest_borough FROM projects_public").fetchall()
        return {name: borough or "" for name, borough in rows}

    assert shown() == expected
    with psycopg.connect(pg_store, autocommit=True) as conn:  # as schema 4 left it
        conn.execute("DROP VIEW projects_public")
        conn.execute("ALTER TABLE projects_public_rows DROP COLUMN nearest_borough")
        view = postgis._view_statements()[-1].replace(', r."nearest_borough"', "")
        assert "nearest_borough" not in view
        conn.execute(view)
        conn.execute(f"GRANT SELECT ON projects_public TO {postgis.READER_ROLE}")
        conn.execute("UPDATE kindred_meta SET value = '4' WHERE key = 'schema_version'")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        shown()
    assert cli.main(["store", "migrate", "--store", pg_store]) == 0
    assert shown() == expected


HOSTILE = [
    "Tab\there",
    "Two\nlines",
    "Carriage\r\nreturn",
    "Back\\slash \\N \\t \\\\",
    "\\N",
    "Quote \" and 'single'",
    "{{7*7}} <b>bold</b> | pipe",
    "Zoë's café ünï 中文 \u2028 \u00a0",
    "Bell\x07 form\x0cfeed vtab\x0b backspace\x08 end",
]


def _hostile_file(path: Path, suffix: str, count: int) -> Path:
    """Rows whose every text field is hostile, with and without coordinates, a home among them."""
    frame = pd.DataFrame(
        {
            "id": [f"h{i}" for i in range(count)],
            "name": [f"{HOSTILE[i % len(HOSTILE)]} {suffix}" for i in range(count)],
            "organisation": [HOSTILE[(i + 1) % len(HOSTILE)] for i in range(count)],
            "address": [HOSTILE[(i + 2) % len(HOSTILE)] for i in range(count)],
            "postcode": ["L1 8JQ", "", "PR8 2FF"] * (count // 3) + ["L1 8JQ"] * (count % 3),
            "lat": ["", "53.4071", ""] * (count // 3) + [""] * (count % 3),
            "lon": ["", "-2.9810", ""] * (count // 3) + [""] * (count % 3),
            "website": [HOSTILE[(i + 3) % len(HOSTILE)] for i in range(count)],
            "location_precision": ["street", "exact", "ward_only"] * (count // 3)
            + ["street"] * (count % 3),
        }
    )
    frame.to_csv(path, index=False)
    return path


def _timeless(events: pd.DataFrame) -> pd.DataFrame:
    """History without the times at which each store took the import."""
    events = events.drop(columns="at")
    for side in ("before", "after"):
        events[side] = events[side].str.replace(r'"created_at":"[^"]*"', "", regex=True)
    return events


@pytest.mark.parametrize("count", [12, 2_000], ids=["events-as-json", "compact-events"])
def test_hostile_text_is_stored_as_typed_on_postgis_as_on_a_geopackage(tmp_path, pg_store, count):
    """Rows copied as one COPY text buffer (`postgis._copy`) read back exactly as the
    GeoPackage keeps them: tabs, newlines, backslashes, a literal ``\\N``, quotes, template
    text and Unicode, in the projects, their history and the public rows; on a new store
    (copied straight in) and on an update (staged and upserted)."""
    gpkg = tmp_path / "projects.gpkg"
    for suffix in ("first", "second"):
        (tmp_path / suffix).mkdir()
        source = _hostile_file(tmp_path / suffix / "hostile.csv", suffix, count)
        for target in (gpkg, pg_store):
            importing.import_file(source, target)
        stored = store.read_projects(pg_store, include_retired=True)
        kept = store.read_projects(gpkg, include_retired=True)
        # The two imports ran a moment apart: their times may differ, nothing else.
        assert store.same_projects(
            stored.drop(columns="created_at"), kept.drop(columns="created_at")
        )
        assert (
            stored["name"].str.endswith(suffix).all() and stored["name"].str.contains("\\\\").any()
        )
        pd.testing.assert_frame_equal(
            _timeless(st.read_history(pg_store)), _timeless(st.read_history(gpkg))
        )
    with psycopg.connect(pg_store) as conn:
        public = dict(conn.execute("SELECT store_id, name FROM projects_public_rows").fetchall())
        nulls = conn.execute("SELECT count(*) FROM projects WHERE name IS NULL").fetchone()[0]
    masked = privacy.public_records(stored, boundaries.load("ward"))
    assert public == dict(zip(stored["id"], masked["name"], strict=True))
    assert nulls == 0


def test_a_copy_buffer_stores_every_value_exactly(pg_store):
    """`postgis._copy` (one COPY text buffer built a column at a time) against the values:
    raw text with every character COPY escapes, a literal ``\\N``, NULLs of each type, doubles
    at full precision and extremes, big integers, booleans and bytes, read back unchanged."""
    rng = np.random.default_rng(7)
    texts = [*HOSTILE, "", None, "\\", "a\tb\\n\\N", "end\\"] * 3
    count = len(texts)
    floats = rng.normal(0, 1e3, count) * 10.0 ** rng.integers(-300, 300, count)
    floats[:4] = [0.1 + 0.2, 5e-324, -0.0, 1.7976931348623157e308]
    columns = {
        "t": pd.Series(texts, dtype=object),
        "s": pd.Series(texts, dtype="str"),
        "f": pd.Series(floats).where(np.arange(count) % 5 != 1),
        "i": pd.Series(rng.integers(-(2**62), 2**62, count))
        .astype("Int64")
        .where(np.arange(count) % 4 != 2),
        "b": pd.Series(np.arange(count) % 3 == 0),
        "raw": [
            None if i % 6 == 5 else bytes(rng.integers(0, 256, 9, dtype=np.uint8))
            for i in range(count)
        ],
        "mixed": [1, "x\ty", True, None, 2.5, False] * (count // 6) + [None] * (count % 6),
    }
    with psycopg.connect(pg_store) as conn:
        conn.execute(
            "CREATE TEMP TABLE copied (n serial, t text, s text, f double precision, "
            "i bigint, b boolean, raw bytea, mixed text)"
        )
        postgis._copy(conn, "copied", list(columns), list(columns.values()))
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM copied ORDER BY n").fetchall()
    got = dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True))
    assert got["t"] == got["s"] == texts
    assert [None if v is None else v for v in got["f"]] == [
        None if i % 5 == 1 else float(v) for i, v in enumerate(floats)
    ]
    assert str(got["f"][2]) == "-0.0"
    assert got["i"] == [None if v is pd.NA else int(v) for v in columns["i"]]
    assert got["b"] == columns["b"].tolist()
    assert [None if v is None else bytes(v) for v in got["raw"]] == columns["raw"]
    assert got["mixed"] == ["1", "x\ty", "t", None, "2.5", "f"] * (count // 6) + [None] * (
        count % 6
    )


KEYS_AND_INDEXES = (
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid IN "
    "('projects_public_rows'::regclass, 'history'::regclass) UNION ALL "
    "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c "
    "ON c.oid = i.indexrelid WHERE i.indrelid IN "
    "('projects_public_rows'::regclass, 'history'::regclass) ORDER BY 1"
)


def _keys_and_indexes(dsn: str) -> list:
    with psycopg.connect(dsn) as conn:
        return conn.execute(KEYS_AND_INDEXES).fetchall()


def _checked_after(monkeypatch) -> list[bool]:
    """Every batch counts as big (`postgis.CHECKED_AFTER_FROM`); what `_empty_and_held` said."""
    monkeypatch.setattr(postgis, "CHECKED_AFTER_FROM", 1)
    said, real = [], postgis._empty_and_held
    monkeypatch.setattr(
        postgis, "_empty_and_held", lambda conn: said.append(real(conn)) or said[-1]
    )
    return said


def test_a_big_import_into_an_empty_store_checks_its_key_after_and_keeps_it(pg_store, monkeypatch):
    """The public rows' foreign key and the history's indexes, made after the COPYs of a big
    first import, are the store's own again (same definitions), and the key still holds."""
    before = _keys_and_indexes(pg_store)
    said = _checked_after(monkeypatch)
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    assert said == [True]
    assert _keys_and_indexes(pg_store) == before
    stored = store.read_projects(pg_store)
    with psycopg.connect(pg_store) as conn:
        public = conn.execute("SELECT count(*) FROM projects_public_rows").fetchone()[0]
        assert public == len(stored) > 0
        conn.execute("DELETE FROM projects WHERE id = %s", (stored["id"].iloc[0],))
        assert conn.execute("SELECT count(*) FROM projects_public_rows").fetchone()[0] == public - 1
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO projects_public_rows (store_id, public_id, synthetic) "
                "VALUES ('no-such-project', 'x', false)"
            )
    assert len(st.read_history(pg_store)) == len(stored)


def test_a_public_row_naming_no_project_is_refused_when_the_key_is_checked_after(
    pg_store, monkeypatch
):
    """A big first import whose public rows (made wrongly here) name a project that is not
    stored fails when the key is added back: nothing is written, the key and indexes stay."""
    before = _keys_and_indexes(pg_store)
    said = _checked_after(monkeypatch)
    real = postgis._copy_upsert

    def stray(conn, table, key, columns, copy=None):
        if table == "projects_public_rows":
            ids = columns["store_id"]
            columns = {**columns, "store_id": ids.where(ids.index != ids.index[0], "no-such-id")}
        real(conn, table, key, columns, copy)

    monkeypatch.setattr(postgis, "_copy_upsert", stray)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    assert said == [True]
    assert store.read_projects(pg_store).empty and store.read_imports(pg_store).empty
    assert _keys_and_indexes(pg_store) == before


def test_a_big_import_never_waits_for_a_reader_of_an_empty_store(pg_store, monkeypatch):
    """A reader's open transaction holds a lock on the projects until the import has ended:
    the import does not wait for it (a wait would never end) and checks each public row as
    it goes."""
    said = _checked_after(monkeypatch)
    done = []
    with psycopg.connect(pg_store) as reader:
        assert reader.execute("SELECT count(*) FROM projects_public").fetchone()[0] == 0
        writer = threading.Thread(
            target=lambda: done.append(
                importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
            )
        )
        writer.start()
        writer.join(120)  # a deadlock guard, not a speed limit
        waited = writer.is_alive()
    writer.join()
    assert not waited and said == [False]
    assert len(store.read_projects(pg_store)) == done[0].new > 0


def test_a_copy_that_fails_behind_the_writer_rolls_back_the_whole_write(pg_store):
    """A fresh batch's COPYs run in a worker thread (`postgis._copying`): one that fails
    (ids said to be new but stored) raises in the writer and nothing of the batch stays."""
    importing.import_file(FIXTURES / "projects_utf8_bom.csv", pg_store)
    stored, log = store.read_projects(pg_store), store.read_imports(pg_store)
    with pytest.raises(psycopg.errors.UniqueViolation), postgis.transaction(pg_store) as conn:
        postgis.write_batch(conn, stored, dict(log.iloc[-1]) | {"import_id": 0}, fresh=True)
    assert store.same_projects(store.read_projects(pg_store), stored)
    pd.testing.assert_frame_equal(store.read_imports(pg_store), log)


def _backend(dsn: str) -> int:
    with postgis.connect(dsn) as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_is_kept_for_the_next_call_with_nothing_uncommitted(pg_store):
    """`postgis.connect` keeps its connection for the next call to the same store: the same
    backend answers, and what a block left uncommitted is gone (rolled back, as closing did)."""
    with postgis.connect(pg_store) as conn:
        first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("CREATE TABLE left_uncommitted (n int)")
    assert _backend(pg_store) == first
    with postgis.connect(pg_store) as conn:
        found = conn.execute("SELECT to_regclass('left_uncommitted')").fetchone()[0]
    assert found is None


def test_a_kept_connection_that_died_or_raised_is_replaced(pg_store):
    """A kept connection whose backend was ended (a restart, a dropped database) is found out
    and replaced without an error; a block that raised keeps nothing."""
    first = _backend(pg_store)
    with psycopg.connect(pg_store, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s, 10000)", (first,))  # waits: gone
    second = _backend(pg_store)
    assert second != first
    with pytest.raises(RuntimeError), postgis.connect(pg_store):
        raise RuntimeError("the caller's own error")
    assert _backend(pg_store) != second


def test_a_fork_closes_the_kept_connections_first(pg_store):
    """A forked child must never share its parent's connections: they are closed before any
    fork, so the child's `connect` opens its own, and so does the parent's next one."""
    first = _backend(pg_store)
    child = os.fork()
    if child == 0:
        os._exit(0 if _backend(pg_store) != first else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _backend(pg_store) != first
