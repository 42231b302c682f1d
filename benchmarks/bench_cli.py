"""Benchmark CLI start-up: `kindred-map --help`, `nearest`, `area` and `gaps` as a user runs them.

Each command is a fresh process (the installed ``kindred-map`` entry point, shipped store),
timed wall-clock, interleaved with its baseline in the same run: ``python -c "import
geopandas"``, the library every data command needs, for the data commands, and a bare
``python -c pass`` for ``--help``. Goals (issue 26): ``--help`` <= 0.3 s, the others <= 1 s.
Also the CPU seconds (user + system) of each command's process, steadier than wall time on a
shared machine. Writes benchmarks/results/cli.md.

With ``--before PATH`` (another tree's ``kindred-map``, e.g. main's), each round also runs
that one, so the before and after figures come from the same interleaved run.

Every process runs with a bytecode cache, as an installed command does (`main`);
``--compile-each-run`` measures without one and writes results/cli_compiling.md.

Run: PYTHONPATH=. python benchmarks/bench_cli.py [--before /work/main/.venv/bin/kindred-map]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pairs import machine_line, markdown_table

RESULTS = Path(__file__).parent / "results" / "cli.md"
ENTRY = Path(sys.executable).parent / "kindred-map"
COMMANDS = {
    "--help": (["--help"], "pass", 0.3),
    "nearest L1 8JQ": (["nearest", "L1 8JQ"], "import geopandas", 1.0),
    "area ward Anfield": (["area", "ward", "Anfield"], "import geopandas", 1.0),
    "gaps": (["gaps"], "import geopandas", 1.0),
}


ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
"""Commands run without this run's PYTHONPATH: with it, another tree's kindred-map (--before)
would import this tree's package."""


def run(command: list[str], cpu: list[float] | None = None) -> None:
    """Run ``command``; append its CPU seconds (user + system) to ``cpu`` when given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def timed_run(command: list[str], wall: list[float], cpu: list[float]) -> None:
    """Run ``command``; append its wall and CPU seconds."""
    started = time.perf_counter()
    run(command, cpu)
    wall.append(time.perf_counter() - started)


def main(before: str | None = None, pairs: int = 5, bytecode: bool = True) -> None:
    """Run the rounds and write the table. ``bytecode``: every process uses a bytecode cache in
    a temporary folder (PYTHONPYCACHEPREFIX; the warm-up round fills it, and no tree's own
    folders are written), as a user's installed command does; else (this machine sets
    PYTHONDONTWRITEBYTECODE=1) each run compiles the project's modules again (~0.05 s of CPU)."""
    with tempfile.TemporaryDirectory() as cache:
        if bytecode:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = cache
        else:
            ENV["PYTHONDONTWRITEBYTECODE"] = "1"
            ENV.pop("PYTHONPYCACHEPREFIX", None)
        rows = _rounds(before, pairs)
    _write(rows, before, pairs, bytecode)


def _rounds(before: str | None, pairs: int) -> list:
    rows = []
    for label, (arguments, baseline, goal) in COMMANDS.items():
        commands = {
            "product": [str(ENTRY), *arguments],
            "plain": [sys.executable, "-c", baseline],
        }
        if before:  # another tree's command in the same rounds
            commands["before"] = [before, *arguments]
        wall = {name: [] for name in commands}
        cpu = {name: [] for name in commands}
        load = os.getloadavg()[0]
        for _ in range(pairs + 1):  # the first round is the warm-up
            for name, command in commands.items():
                timed_run(command, wall[name], cpu[name])
        result = {name: statistics.median(values[1:]) for name, values in wall.items()}
        result |= {f"process_{k}": statistics.median(v[1:]) for k, v in cpu.items()}
        result["ratio"] = result["product"] / result["plain"]
        result["load"] = (load, os.getloadavg()[0])
        rows.append((label, baseline, goal, result))
        print(label, result)
    return rows


def _write(rows: list, before: str | None, pairs: int, bytecode: bool) -> None:
    header = [
        "Command",
        "Wall",
        "Goal",
        "Baseline",
        "Baseline wall",
        "Ratio to baseline",
        "Process CPU (command / baseline)",
    ]
    if before:
        header += ["Before: CPU (wall)"]
    table = []
    for label, baseline, goal, result in rows:
        row = [
            f"`kindred-map {label}`",
            f"{result['product']:.2f} s",
            f"<= {goal} s",
            f'`python -c "{baseline}"`',
            f"{result['plain']:.2f} s",
            f"{result['ratio']:.2f}x",
            f"{result['process_product']:.2f} / {result['process_plain']:.2f} s",
        ]
        if before:
            row.append(f"{result['process_before']:.2f} s ({result['before']:.2f} s)")
        table.append(row)
    lines = [
        "# CLI start-up: each command in a fresh process",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_cli.py", rows[0][3]),
        f"Median of {pairs} interleaved pairs after a warm-up, wall time of the whole process; "
        "the processes' CPU seconds (user + system) beside it."
        + (f" Before: `{before}`, run in the same rounds." if before else "")
        + (
            " Bytecode cached (as an installed command runs; PYTHONPYCACHEPREFIX in a temporary "
            "folder, filled by the warm-up round)."
            if bytecode
            else " Bytecode not cached (PYTHONDONTWRITEBYTECODE=1: each run compiles the "
            "project's modules)."
        ),
        f"Load average at the end: {os.getloadavg()}.",
        "",
        *markdown_table(header, table),
    ]
    results = RESULTS if bytecode else RESULTS.with_name("cli_compiling.md")
    results.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", help="another tree's kindred-map, run in the same rounds")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--compile-each-run",
        action="store_true",
        help="no bytecode cache (writes results/cli_compiling.md)",
    )
    options = parser.parse_args()
    main(options.before, options.pairs, not options.compile_each_run)
