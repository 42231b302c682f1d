"""Check that this tree's `kindred-map` prints and writes what another tree's does.

Runs each command line below with both entry points (shipped store and boundaries) and
compares exit code, stdout and stderr byte for byte, and each file the command writes: CSV,
text and GeoJSON byte for byte but for the time they were written (``generated:
2026-12-04T23:02:26Z``), a GeoPackage by its layers' content (read with pyogrio; the file
itself carries write times). Prints one line per command and exits 1 on any difference.

Run: PYTHONPATH=. python benchmarks/cli_identical.py --before /work/main/.venv/bin/kindred-map
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pyogrio

ENTRY = Path(sys.executable).parent / "kindred-map"
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
"""Without this run's PYTHONPATH: with it, the other tree's command would import this tree."""
WRITTEN_AT = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")
"""A UTC time stamp: when a file was written, the one thing two runs may differ in."""

COMMANDS = [
    ["nearest", "L1 8JQ"],
    ["nearest", "L1 8JQ", "--limit", "40", "--distance", "2000"],
    ["nearest", "L8 1TH", "--types", "food_bank,warm_space"],
    ["nearest", "WA10 1AA"],
    ["nearest", "CH41 1AA", "--include-synthetic"],
    ["nearest", "PR8 1AA"],
    ["nearest", "L1 8JQ", "--as-of", "2025-06-01"],
    ["nearest", "ZZ9 9ZZ"],
    ["nearest", "not a postcode"],
    ["area", "ward", "Anfield"],
    ["area", "ward", "E05015289", "--distance", "800"],
    ["area", "borough", "Liverpool"],
    ["area", "borough", "Wirral", "--distance", "1200", "--types", "food_bank"],
    ["area", "deanery", "West Derby"],
    ["area", "deanery", "No Such Deanery"],
    ["area", "lsoa", "E01006512"],
    ["area", "ward", "Nowhere"],
    ["area", "ward", "Anfield", "--include-synthetic"],
    ["gaps"],
    ["gaps", "--by", "deanery"],
    ["gaps", "--by", "borough", "--types", "food_bank,warm_space", "--distance", "1200"],
    ["gaps", "--open", "sat 10:00", "--top", "25"],
    ["gaps", "--inside-only", "--include-synthetic"],
    ["gaps", "--by", "ward", "-o", "{out}/gaps.csv"],
    ["gaps", "--by", "deanery", "-o", "{out}/gaps.geojson"],
    ["gaps", "--by", "borough", "-o", "{out}/gaps.gpkg"],
    ["change", "--from", "2025-01-01"],
    ["change", "--from", "2025-03-01", "--by", "borough", "--types", "food_bank"],
    ["change", "--from", "2025-01-01", "-o", "{out}/change.csv"],
    ["need"],
    ["need", "--by", "borough", "--inside-only"],
    ["need", "-o", "{out}/need.csv"],
]


def run(entry: str, arguments: list[str], out: Path) -> tuple:
    """(exit code, stdout, stderr with the output folder's name made neutral, files)."""
    out.mkdir()
    command = [entry, *(a.replace("{out}", str(out)) for a in arguments)]
    done = subprocess.run(command, capture_output=True, env=ENV)
    neutral = str(out).encode()
    files = {}
    for path in sorted(out.iterdir()):
        if path.suffix == ".gpkg":
            files[path.name] = {
                layer: pyogrio.read_dataframe(path, layer=layer).map(_neutral_time)
                for layer, _ in pyogrio.list_layers(path)
            }
        else:
            files[path.name] = WRITTEN_AT.sub(b"TIME", path.read_bytes().replace(neutral, b"OUT"))
    return (
        done.returncode,
        done.stdout.replace(neutral, b"OUT"),
        done.stderr.replace(neutral, b"OUT"),
        files,
    )


def _neutral_time(value):
    if isinstance(value, str):
        return WRITTEN_AT.sub(b"TIME", value.encode()).decode()
    return value


def same_files(mine: dict, theirs: dict) -> bool:
    if mine.keys() != theirs.keys():
        return False
    for name, value in mine.items():
        other = theirs[name]
        if isinstance(value, bytes):
            if value != other:
                return False
            continue
        if value.keys() != other.keys():
            return False
        for layer, frame in value.items():
            try:
                pd.testing.assert_frame_equal(frame, other[layer], check_exact=True)
            except AssertionError:
                return False
    return True


def main(before: str) -> int:
    differ = 0
    with tempfile.TemporaryDirectory() as folder:
        for number, arguments in enumerate(COMMANDS):
            mine = run(str(ENTRY), arguments, Path(folder, f"{number}-mine"))
            theirs = run(before, arguments, Path(folder, f"{number}-theirs"))
            same = mine[:3] == theirs[:3] and same_files(mine[3], theirs[3])
            differ += not same
            files = f", {len(mine[3])} file(s)" if mine[3] else ""
            status = "same" if same else "DIFFERENT"
            print(f"{status}: {' '.join(arguments)} (exit {mine[0]}{files})")
    print(f"{len(COMMANDS) - differ} of {len(COMMANDS)} command lines the same")
    return 1 if differ else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="another tree's kindred-map")
    sys.exit(main(parser.parse_args().before))
