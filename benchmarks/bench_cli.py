"""Benchmark CLI start-up: `kindred-map --help`, `nearest`, `area` and `gaps` as a user runs them.

Each command is a fresh process (the installed ``kindred-map`` entry point, shipped store),
timed wall-clock, interleaved with its baseline in the same run: ``python -c "import
geopandas"``, the library every data command needs, for the data commands, and a bare
``python -c pass`` for ``--help``. Goals (issue 26): ``--help`` <= 0.3 s, the others <= 1 s.
Also the CPU seconds (user + system) of each command's process, steadier than wall time on a
shared machine. Writes benchmarks/results/cli.md.

Run: PYTHONPATH=. python benchmarks/bench_cli.py
"""

import resource
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.pairs import interleaved, machine_line, markdown_table

RESULTS = Path(__file__).parent / "results" / "cli.md"
ENTRY = Path(sys.executable).parent / "kindred-map"
COMMANDS = {
    "--help": (["--help"], "pass", 0.3),
    "nearest L1 8JQ": (["nearest", "L1 8JQ"], "import geopandas", 1.0),
    "area ward Anfield": (["area", "ward", "Anfield"], "import geopandas", 1.0),
    "gaps": (["gaps"], "import geopandas", 1.0),
}


def run(command: list[str], cpu: list[float] | None = None) -> None:
    """Run ``command``; append its CPU seconds (user + system) to ``cpu`` when given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def main() -> None:
    rows = []
    for label, (arguments, baseline, goal) in COMMANDS.items():
        cpu = {"product": [], "plain": []}
        result = interleaved(
            lambda a=arguments, c=cpu: run([str(ENTRY), *a], c["product"]),
            lambda b=baseline, c=cpu: run([sys.executable, "-c", b], c["plain"]),
        )
        # the first run of each is the warm-up
        result |= {f"process_{k}": statistics.median(v[1:]) for k, v in cpu.items()}
        rows.append((label, baseline, goal, result))
        print(label, result)
    lines = [
        "# CLI start-up: each command in a fresh process",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_cli.py", rows[0][3]),
        "Median of 5 interleaved pairs after a warm-up, wall time of the whole process; the "
        "processes' CPU seconds (user + system) beside it.",
        "",
        *markdown_table(
            [
                "Command",
                "Wall",
                "Goal",
                "Baseline",
                "Baseline wall",
                "Ratio to baseline",
                "Process CPU (command / baseline)",
            ],
            [
                [
                    f"`kindred-map {label}`",
                    f"{result['product']:.2f} s",
                    f"<= {goal} s",
                    f'`python -c "{baseline}"`',
                    f"{result['plain']:.2f} s",
                    f"{result['ratio']:.2f}x",
                    f"{result['process_product']:.2f} / {result['process_plain']:.2f} s",
                ]
                for label, baseline, goal, result in rows
            ],
        ),
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
