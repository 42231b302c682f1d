"""Check that the import's prepare step gives what another commit's gives, on hostile files.

Writes a set of files (the test fixtures, seeded random messy CSVs of every problem the checks
name: control and invisible characters, odd spacing, lost characters, unknown types and
precisions, unreadable dates and flags, repeated ids, malformed, unknown and terminated
postcodes, swapped, grid and nonsense coordinates, cells beyond the header, title rows, blank
rows, Windows-1252 lines, other delimiters; and optionally the benchmark's big files), runs
`importing.prepare` (fixed secret) and `ingest.read_table` on each with this checkout's package
and with the package of ``REF`` (``git archive``), each in its own process, and compares the
projects with `pandas.testing.assert_frame_equal` and the reports field by field (an exception
must be the same type and message).

Run inside the repository: PYTHONPATH=. python benchmarks/prepare_identity.py [REF] [--big]
(REF defaults to main; --big adds bench_import.make_file's 10,000 and 100,000-row files).
The package compared with REF's is the one beside this script.
"""

import csv
import dataclasses
import io
import os
import pickle
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"identity-check-secret-0123456789"
FILES = 100


def _cell(rng: random.Random, kind: str) -> str:
    noise = ["\u00a0", "\u200b", "\t", "\x00", "\x1f", "\u2028", "\ufeff", "  ", " ", "\x85"]
    pieces = {
        "name": ["St Anne's", "Café", "Kitty?s", "Zoë", "{{7*7}}", "<b>x</b>", "=1+1", "Hub", ""],
        "type": [
            "Food Pantry",
            "warm hub",
            "food bank",
            "sto",
            "knitting",
            "",
            "church led",
            "pantry and warm space",
            "FOODBANK",
            "Place of Welcome",
            "other",
        ],
        "postcode": [
            "L1 8JQ",
            "l18jq",
            "L10 0WZ",
            "ZZ99 9ZZ",
            "CH1 1AB",
            "L99 9ZZ",
            "",
            "12345",
            " wa10 2dt ",
            "L1-8JQ",
            "PR9 0TS",
            "WN1 1DN",
        ],
        "lat": ["53.4084", "-2.9916", "53,41", "abc", "", "399000", "0", "95", "53.45°", "nan"],
        "lon": ["-2.9916", "53.4084", "-2,99", "", "x", "334000", "0", "-2.90", "inf"],
        "easting": ["334000", "", "390000", "-2.99", "9e9", "oops", "391000.5"],
        "northing": ["390000", "", "334000", "53.40", "1", "388000"],
        "precision": ["", "exact", "street", "ward", "home", "approximate", "nonsense", "EXACT"],
        "date": [
            "",
            "01/10/2025",
            "2025-02-30",
            "2024-06-01",
            "next week",
            "3 March 2024",
            "2025-01-01T10:00",
        ],
        "flag": ["", "yes", "no", "Y", "maybe", "TRUE", "0"],
        "id": ["", "", "1", "2", "ref 1", "a:b", "x"],
        "hours": ["", "Tue 10:00-12:00", "Mon-Fri 9-5", "whenever", "Sat 10am-2pm"],
    }[kind]
    text = rng.choice(pieces)
    if rng.random() < 0.25:
        spot = rng.randrange(len(text) + 1)
        text = text[:spot] + rng.choice(noise) + text[spot:]
    if rng.random() < 0.1:
        text = rng.choice(noise) + text + rng.choice(noise)
    if kind == "name" and text and rng.random() < 0.7:
        text += f" {rng.randrange(40)}"
    return text


HEADER = [
    "ID",
    "Project Name",
    "Type",
    "Post Code",
    "Latitude",
    "Longitude",
    "Easting",
    "Northing",
    "Location precision",
    "Last checked",
    "Synthetic",
    "Opening hours",
    "Address 1",
    "Town",
]
KINDS = [
    "id",
    "name",
    "type",
    "postcode",
    "lat",
    "lon",
    "easting",
    "northing",
    "precision",
    "date",
    "flag",
    "hours",
    "name",
    "name",
]


def messy_csv(rng: random.Random, rows: int) -> bytes:
    """One random messy CSV (see the module docstring)."""
    header = list(HEADER)
    if rng.random() < 0.3:
        header = [h for h in header if rng.random() < 0.8] or HEADER[1:4]
    lines = [["Projects list", ""]] if rng.random() < 0.2 else []
    lines.append(header)
    kinds = dict(zip(HEADER, KINDS, strict=True))
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.03:
            lines.append([""] * len(header))
            continue
        row = [_cell(rng, kinds.get(column, "name")) for column in header]
        if roll > 0.95:
            row += ["beyond", ""]
        if roll < 0.06:
            row = row[: rng.randrange(len(row) + 1)]
        lines.append(row)
    buffer = io.StringIO()
    delimiter = rng.choice([",", ",", ",", ";", "\t"])
    csv.writer(buffer, delimiter=delimiter).writerows(lines)
    encoding = rng.choice(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"])
    data = buffer.getvalue().encode(encoding, errors="replace")
    if encoding == "utf-8" and rng.random() < 0.3:
        data += "\r\nL\xe9on's Caf\xe9,pantry,L1 8JQ\r\n".encode("cp1252")
    return data


def write_inputs(folder: Path, big: bool) -> list[Path]:
    """The files compared: fixtures, random messy CSVs and (with ``big``) the benchmark's."""
    paths = []
    for fixture in sorted((ROOT / "tests" / "fixtures").glob("*")):
        if fixture.suffix in (".csv", ".xlsx"):
            paths.append(fixture)
    rng = random.Random(26)
    for number in range(FILES):
        path = folder / f"messy_{number}.csv"
        path.write_bytes(messy_csv(rng, rng.choice([0, 1, 3, 10, 40, 200, 1000])))
        paths.append(path)
    if big:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import bench_import

        live = bench_import.live_postcodes()
        paths += [bench_import.make_file(live, rows, folder)[0] for rows in (10_000, 100_000)]
    return paths


def run(paths: list[str], out: str) -> None:
    """In a child: prepare and read each file with the package on sys.path; pickle results."""
    from kindred_map import importing, ingest

    results = {}
    for path in map(Path, paths):
        try:
            table = ingest.read_table(path)
            read = (
                table.frame,
                table.kind,
                table.header_row,
                table.encoding,
                table.blank_rows,
                table.notes,
                table.issues,
            )
        except Exception as error:  # compared as type and message
            read = (type(error).__name__, str(error))
        try:
            prepared = importing.prepare(path, SECRET, source="identity")
            report = dataclasses.asdict(prepared.report)
            done = (pd.DataFrame(prepared.projects), report, prepared.namespace)
        except Exception as error:  # compared as type and message
            done = (type(error).__name__, str(error))
        results[path.name] = (read, done)
    Path(out).write_bytes(pickle.dumps(results))


def same(left, right, where: str) -> None:
    """Assert two results are identical (frames by assert_frame_equal)."""
    if isinstance(left, pd.DataFrame):
        pd.testing.assert_frame_equal(left, right, check_exact=True, obj=where)
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list | tuple):
        assert len(left) == len(right), where
        for number, (a, b) in enumerate(zip(left, right, strict=True)):
            same(a, b, f"{where}[{number}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def main(ref: str = "main", big: bool = False) -> None:
    folder = Path(tempfile.mkdtemp(prefix="prepare_identity_"))
    paths = [str(p) for p in write_inputs(folder, big)]
    base = folder / "base"
    base.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "kindred_map", "boundaries", "data"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(base, filter="data")
    outputs = {}
    for name, root in (("ref", base), ("here", ROOT)):
        out = folder / f"{name}.pickle"
        code = f"import sys; sys.path.insert(0, {str(root)!r}); import prepare_identity as p; "
        code += f"p.run({paths!r}, {str(out)!r})"
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            cwd=Path(__file__).parent,
            env={**os.environ, "PYTHONPATH": f"{root}:{Path(__file__).parent}"},
        )
        outputs[name] = pickle.loads(out.read_bytes())
    errors = 0
    for path in paths:
        name = Path(path).name
        same(outputs["ref"][name], outputs["here"][name], name)
        errors += isinstance(outputs["here"][name][1][0], str)
    print(f"{len(paths)} files identical to {ref} ({errors} refused with the same message)")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--big"]
    main(arguments[0] if arguments else "main", "--big" in sys.argv)
