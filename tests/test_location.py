"""Where the store is (`kindred_map.location`): a GeoPackage path or a PostGIS DSN resolved
once, passwords masked everywhere, a bad DSN a one-line error from every command, and every
command that reads a store giving the same answer on both backends."""

import datetime as dt
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from history_fixture import dated_copy
from pg_admin import admin, database

from kindred_map import cli, location, store
from kindred_map.location import StoreLocation, resolve
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import postgis

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "s3cret-pw"


def test_resolve_names_a_geopackage_or_a_postgisdatabase(tmp_path, monkeypatch):
    gpkg = resolve(tmp_path / "p.gpkg")
    assert (gpkg.is_postgis, gpkg.path, gpkg.dsn) == (False, tmp_path / "p.gpkg", None)
    assert resolve(f" {tmp_path / 'p.gpkg'} ") == gpkg and resolve(gpkg) is gpkg
    for dsn in ("postgresql://ann@db.example/kindred", "postgres://ann@db.example:5433/k"):
        where = resolve(dsn)
        assert (where.is_postgis, where.dsn, where.path) == (True, dsn, None)
        assert str(where) == dsn and where.name == dsn
    monkeypatch.setenv(location.STORE_ENV, " postgresql://ann@db.example/kindred ")
    assert resolve() == resolve(None) == resolve("postgresql://ann@db.example/kindred")
    monkeypatch.delenv(location.STORE_ENV)
    assert resolve() == StoreLocation(path=DEFAULT_STORE)


@pytest.mark.parametrize(
    "setting",
    [
        "postgresql:/nobody@127.0.0.1:1/nodb",  # what Path() makes of a DSN
        Path("postgresql://nobody@127.0.0.1:1/nodb"),
        "mysql://nobody@127.0.0.1/nodb",
        f"postgresql://nobody:{PASSWORD}@[::1/nodb",
        "postgresql://nobody@127.0.0.1:port/nodb",
        "postgresql://127.0.0.1/nodb?colour=blue",
        "  ",
    ],
)
def test_a_bad_setting_is_a_one_line_value_error_never_a_file_name(setting):
    with pytest.raises(ValueError) as caught:
        resolve(setting)
    message = str(caught.value)
    assert "\n" not in message and PASSWORD not in message


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://ann:{PASSWORD}@db.example:5432/kindred",
        f"postgresql://ann@db.example/kindred?sslmode=disable&password={PASSWORD}",
        f"postgres://ann:{PASSWORD}@db.example/kindred?password={PASSWORD}",
    ],
)
def test_a_dsn_password_is_masked_wherever_the_store_is_named(dsn):
    where = resolve(dsn)
    assert where.dsn == dsn  # the driver gets it as given
    for shown in (str(where), repr(where), where.name, f"{where}", where.hide(f"{dsn} {PASSWORD}")):
        assert PASSWORD not in shown and location.MASK in shown


UNREACHABLE = f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/nodb"
BAD_DSNS = {
    "unreachable": UNREACHABLE,
    "malformed": f"postgresql://nobody:{PASSWORD}@[::1/nodb",
    "bad port": f"postgresql://nobody:{PASSWORD}@127.0.0.1:port/nodb",
    "folded": f"postgresql:/nobody:{PASSWORD}@127.0.0.1:1/nodb",
}
READERS = {
    "change": ["change", "--from", "2025-01-01", "--by", "borough"],
    "need": ["need", "--by", "borough", "--reach-from", "2025-01-01"],
    "gaps": ["gaps", "--by", "borough"],
    "area": ["area", "ward", "E05015289"],
    "nearest": ["nearest", "L1 8JQ"],
    "export": ["export", "--format", "csv", "-o", "{out}/projects.csv"],
    "profile": ["profile", "borough", "Sefton", "-o", "{out}/sefton.html"],
    "clusters": ["clusters", "--permutations", "99"],
    "freshness": ["freshness"],
    "imports": ["imports"],
    "history": ["history", "x:1"],
}
"""Every command that reads a store, with arguments that work on a reachable one."""


def _argv(name: str, folder: Path) -> list[str]:
    return [part.format(out=folder) for part in READERS[name]]


@pytest.mark.parametrize("bad", BAD_DSNS)
@pytest.mark.parametrize("command", READERS)
def test_every_reading_command_stops_on_a_bad_dsn_with_one_line(command, bad, tmp_path, capsys):
    code = cli.main([*_argv(command, tmp_path), "--store", BAD_DSNS[bad]])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert err.startswith(f"kindred-map {command}: ") and err.count("\n") == 1, err
    assert PASSWORD not in out + err
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_store_line_of_an_import_masks_the_password(pg_store, capsys):
    """A trusting test server takes any password: the import runs and names the store."""
    for dsn in (
        pg_store.replace("://postgres@", f"://postgres:{PASSWORD}@"),
        f"{pg_store}?password={PASSWORD}",
    ):
        argv = ["import", str(FIXTURES / "projects_utf8_bom.csv"), "--store", dsn]
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert f"Store {location.masked(dsn)}: " in out and PASSWORD not in out


def test_a_connection_error_names_the_store_without_its_password():
    with pytest.raises(ValueError) as caught, postgis.connect(UNREACHABLE):
        pass
    message = str(caught.value)
    assert message.startswith("cannot connect to the PostGIS store postgresql://nobody:***@")
    assert "\n" not in message and PASSWORD not in message


# --- every reading command on both backends ----------------------------------------------


@pytest.fixture(scope="module")
def dated_gpkg(tmp_path_factory) -> Path:
    """The shipped store with a made-up dated history (openings over two years, retirements)."""
    target = tmp_path_factory.mktemp("both") / "dated.gpkg"
    return dated_copy(DEFAULT_STORE, target, dt.date.today())


@pytest.fixture(scope="module")
def dated_postgis(dated_gpkg, pg_server, pg_template) -> str:
    """The same store copied into a PostGIS database of its own (a clone of the module's)."""
    name = f"km_both_{uuid.uuid4().hex[:12]}"
    admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {urlsplit(pg_template).path[1:]}")
    dsn = database(pg_server, name)
    store.copy(dated_gpkg, dsn)
    yield dsn
    admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


_GENERATED = re.compile(r"\d{1,2} \w+ \d{4}, \d{2}:\d{2} UTC|\d{4}-\d{2}-\d{2}T[\d:.]+Z?")


@pytest.mark.parametrize("command", READERS)
def test_every_reading_command_answers_the_same_on_both_backends(
    command, dated_gpkg, dated_postgis, tmp_path, capsys
):
    answers = []
    for name, where in (("gpkg", str(dated_gpkg)), ("postgis", dated_postgis)):
        folder = tmp_path / name
        folder.mkdir()
        argv = _argv(command, folder)
        if command == "history":
            argv = ["history", store.read_projects(dated_gpkg)["id"].iloc[0]]
        code, out, err = _run([*argv, "--store", where], capsys)
        assert code == 0, err
        assert "Traceback" not in err
        files = {
            path.name: _GENERATED.sub("(time)", path.read_text(encoding="utf-8-sig"))
            for path in sorted(folder.iterdir())
            if path.suffix in (".csv", ".html")
        }
        out = out.replace(str(folder), "(folder)").replace(str(resolve(where)), "(store)")
        answers.append((out, err, files))
    assert answers[0] == answers[1]
    if command in ("export", "profile"):
        assert answers[0][2], "no file written"
