"""Benchmark CLI start-up: `kindred-map --help`, `nearest`, `area` and `gaps` as a user runs them.

Each command is a fresh process (the installed ``kindred-map`` entry point, shipped store),
timed wall-clock, interleaved with its baseline in the same run: ``python -c "import
geopandas"``, the library every data command needs, for the data commands, and a bare
``python -c pass`` for ``--help``. Goals (issue 26): ``--help`` <= 0.3 s, the others <= 1 s.
Writes benchmarks/results/cli.md.

Run: PYTHONPATH=. python benchmarks/bench_cli.py
"""

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


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    rows = []
    for label, (arguments, baseline, goal) in COMMANDS.items():
        result = interleaved(
            lambda a=arguments: run([str(ENTRY), *a]),
            lambda b=baseline: run([sys.executable, "-c", b]),
        )
        rows.append((label, baseline, goal, result))
        print(label, result)
    lines = [
        "# CLI start-up: each command in a fresh process",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_cli.py", rows[0][3]),
        "Median of 5 interleaved pairs after a warm-up, wall time of the whole process.",
        "",
        *markdown_table(
            ["Command", "Wall", "Goal", "Baseline", "Baseline wall", "Ratio to baseline"],
            [
                [
                    f"`kindred-map {label}`",
                    f"{result['product']:.2f} s",
                    f"<= {goal} s",
                    f'`python -c "{baseline}"`',
                    f"{result['plain']:.2f} s",
                    f"{result['ratio']:.2f}x",
                ]
                for label, baseline, goal, result in rows
            ],
        ),
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
