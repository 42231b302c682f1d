"""The command line as a whole: help on every command, bad arguments, the dashboard launcher."""

import os
import subprocess
import sys

import pytest

from kindred_map import cli, figures, mapview
from kindred_map.paths import PROJECT_ROOT


def _commands() -> list[str]:
    parser = cli.build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: kindred-map" in capsys.readouterr().out


def test_unknown_arguments_fail_with_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["gaps", "--no-such-option"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_replace_layer_reports_a_bad_file_as_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "none.geojson"
    code = cli.main(["replace-layer", "ward", str(missing), "--boundaries", str(tmp_path)])
    assert code == 2
    assert "file not found" in capsys.readouterr().err


def test_field_mapping_must_be_ours_equals_theirs():
    assert cli._parse_mapping(["WD24CD=wd25cd", " WD24NM = name "]) == {
        "WD24CD": "wd25cd",
        "WD24NM": "name",
    }
    with pytest.raises(ValueError, match="OURS=THEIRS"):
        cli._parse_mapping(["WD24CD"])


def test_dashboard_warms_up_then_passes_streamlit_options_on(monkeypatch):
    calls = []
    monkeypatch.setattr(mapview, "warm_up", lambda: calls.append("warm_up"))

    def fake_streamlit(command, standalone_mode):
        calls.append(command)
        assert standalone_mode is False

    from streamlit.web import cli as streamlit_cli

    monkeypatch.setattr(streamlit_cli, "main", fake_streamlit)
    assert cli.main(["dashboard", "--server.port", "8502", "--server.headless=true"]) == 0
    app = str(PROJECT_ROOT / "app.py")
    local = ["--server.address", "localhost"]
    assert calls == [
        "warm_up",
        ["run", app, "--server.port", "8502", "--server.headless=true", *local],
    ]
    calls.clear()
    assert cli.main(["dashboard", "--server.address=0.0.0.0"]) == 0
    assert calls == ["warm_up", ["run", app, "--server.address=0.0.0.0"]]


def test_warm_up_fills_the_caches_the_first_page_reads():
    from kindred_map import geocode

    figures.area_choices.cache_clear()
    figures.area_deprivation.cache_clear()
    mapview.warm_up()
    assert figures.area_choices.cache_info().currsize == len(figures.LEVELS)
    assert figures.area_deprivation.cache_info().currsize == len(figures.LEVELS)
    assert geocode._postcode_index.cache_info().currsize >= 1


def test_nearest_area_and_gaps_load_neither_folium_nor_scipy():
    """Start-up (issue 26): the three commands import only what they need. Folium (maps) costs
    ~0.2 s of CPU to import and scipy.spatial ~0.3 s; the `export` package (every file writer)
    and pyarrow's dataset layer (`boundaries.read_parquet`) ~0.01 s each; none is needed to
    answer them."""
    unneeded = ("folium", "scipy", "kindred_map.export", "pyarrow.dataset")
    script = (
        "import contextlib, io, sys\n"
        "from kindred_map.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['nearest', 'L1 8JQ'], ['area', 'ward', 'Anfield'], ['gaps']):\n"
        "        assert main(argv) == 0\n"
        f"print(sorted(name for name in {unneeded!r} if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("preset", [None, "mimalloc"])
def test_the_program_reads_with_the_system_allocator_unless_the_user_chose(preset):
    """`cli.ARROW_POOL`: Arrow's mimalloc cost a fresh `nearest` 0.2 s of CPU on average here;
    a command that ends uses the C library's allocator, and a user's own choice stands."""
    script = (
        "import contextlib, io, sys\n"
        "sys.argv = ['kindred-map', 'nearest', 'L1 8JQ']\n"
        "from kindred_map.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main() == 0\n"
        "import pyarrow\n"
        "print(pyarrow.default_memory_pool().backend_name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if preset:
        env["ARROW_DEFAULT_MEMORY_POOL"] = preset
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.stdout.strip() == (preset or "system"), done.stderr
