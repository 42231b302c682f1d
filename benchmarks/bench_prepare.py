"""Benchmark the import's prepare step (read, check every row, geocode, ids, join, report; no
store write) against the plain way, in interleaved pairs (issue 26's import row, its part
before `importing.store_prepared`).

Input: `bench_import.make_file` (real region postcodes, half postcode-only, half coordinates)
of 10,000 and 100,000 rows. Product: `importing.prepare` with a fixed secret. Plain:
`bench_history.plain_import` (`geopandas.read_file` of the CSV, points made, `to_file` to a new
GeoPackage). Each stage of one more prepare is timed in CPU seconds after the pairs.

Run: PYTHONPATH=. python benchmarks/bench_prepare.py [LABEL] [PAIRS_100K] [PAIRS_10K]
(defaults: this checkout, 3 and 5). With LABEL the results are appended to
benchmarks/results/prepare.md under that label (e.g. to run main's package first:
PYTHONPATH=/path/to/main:benchmarks python benchmarks/bench_prepare.py "main 32e2602").
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import bench_import
from bench_history import plain_import
from pairs import interleaved, machine_line, markdown_table, result_cells

from kindred_map import geocode, hours, importing, ingest, join
from kindred_map.paths import BOUNDARIES_DIR

RESULTS = Path(__file__).parent / "results" / "prepare.md"
SECRET = b"bench-prepare-secret-0123456789a"


def stages(path: Path) -> dict[str, float]:
    """CPU seconds of each stage of `join.prepare_file`, run once."""
    seconds = {}

    def timed(name, function, *arguments):
        started = time.process_time()
        result = function(*arguments)
        seconds[name] = time.process_time() - started
        return result

    table = timed("read", ingest.read_table, path)
    raw, _ = timed("columns", ingest.to_records, table)
    records, _ = timed("checks (normalise)", ingest.normalise, raw)
    records, _ = timed("hours", hours.fill_schedules, records)
    located, _ = timed("geocode (locate)", geocode.locate, records, BOUNDARIES_DIR)
    located, _ = timed("ids", ingest.assign_ids, located, records, SECRET, "bench")
    joined = timed("area join (join.py)", join.join_projects, located, BOUNDARIES_DIR)
    timed("outside region", join.outside_issues, joined, BOUNDARIES_DIR)
    started = time.process_time()
    importing.prepare(path, SECRET)
    seconds["whole prepare"] = time.process_time() - started
    return seconds


def main(label: str, pairs_100k: int, pairs_10k: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    live = bench_import.live_postcodes()
    runs = iter(range(10**6))
    rows_out, results, stage_rows = [], [], {}
    for rows, pairs in ((10_000, pairs_10k), (100_000, pairs_100k)):
        path, _ = bench_import.make_file(live, rows, folder)

        def product(path=path):
            importing.prepare(path, SECRET)

        def plain(path=path):
            plain_import(path, folder / f"plain_{next(runs)}.gpkg")

        result = interleaved(product, plain, pairs)
        results.append(result)
        rows_out.append(result_cells(f"{rows:,}", result, pairs))
        stage_rows[rows] = stages(path)
    names = list(stage_rows[100_000])
    lines = [
        f"## {label}",
        "",
        machine_line("PYTHONPATH=. python benchmarks/bench_prepare.py", results[-1]),
        f"`uptime` after: {os.getloadavg()}. Package: {Path(join.__file__).parent}.",
        "",
        *markdown_table(
            [
                "rows",
                "pairs",
                "prepare s",
                "plain s",
                "wall ratio",
                "prepare CPU s",
                "plain CPU s",
                "CPU ratio",
                "load",
            ],
            rows_out,
        ),
        "",
        "CPU seconds of each stage (one more run after the pairs):",
        "",
        *markdown_table(
            ["stage", "10,000 rows", "100,000 rows"],
            [
                [name, f"{stage_rows[10_000][name]:.3f}", f"{stage_rows[100_000][name]:.3f}"]
                for name in names
            ],
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        arguments[0] if arguments else "this checkout",
        int(arguments[1]) if len(arguments) > 1 else 3,
        int(arguments[2]) if len(arguments) > 2 else 5,
    )
