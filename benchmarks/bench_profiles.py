"""Benchmark area profiles: wall time to make all 221 ward profiles (PDF, and HTML alone).

One `profile.context` (store read, coverage at 800 m for every type) is shared by the batch,
as `kindred-map profile --all` shares it for a borough; the shared setup is timed apart. PDF
time = build the page + WeasyPrint; HTML time = build the page only, so the difference is
WeasyPrint's share. Writes benchmarks/results/profiles.md.

Run: PYTHONPATH=. python benchmarks/bench_profiles.py
"""

import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from kindred_map import boundaries, profile

RESULTS = Path(__file__).parent / "results" / "profiles.md"


def page_count(path: Path) -> int:
    """Pages of a PDF, by poppler's pdfinfo."""
    report = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", report.stdout, flags=re.MULTILINE).group(1))


def main() -> None:
    started = time.perf_counter()
    ctx = profile.context()
    profile.deprivation("ward")  # computed once per process, as in a batch
    setup = time.perf_counter() - started
    boroughs = sorted(boundaries.load("borough")["LAD25NM"])
    times = {"pdf": [], "html": []}
    pages = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("html", "pdf"):
            for borough in boroughs:
                began = time.perf_counter()
                written = profile.write_all(Path(folder) / fmt / borough, borough, ctx, fmt)
                times[fmt].append((time.perf_counter() - began, len(written)))
                if fmt == "pdf":
                    pages += [page_count(path) for path in written]
    total = {fmt: sum(t for t, _ in runs) for fmt, runs in times.items()}
    count = sum(n for _, n in times["pdf"])
    per = {fmt: total[fmt] / count for fmt in total}
    slowest = max(t / n for t, n in times["pdf"])
    lines = [
        "# Area profiles: all ward profiles",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other work; "
        f"Python {platform.python_version()}. `PYTHONPATH=. python benchmarks/bench_profiles.py`.",
        "",
        "| What | Wall time |",
        "|---|---|",
        f"| Shared setup (store, coverage at 800 m, ward deprivation) | {setup:.1f} s |",
        f"| {count} ward profiles as PDF (page + WeasyPrint) | {total['pdf']:.1f} s "
        f"({per['pdf']:.2f} s a profile; slowest borough {slowest:.2f} s a profile) |",
        f"| {count} ward profiles as HTML (page only) | {total['html']:.1f} s "
        f"({per['html']:.3f} s a profile) |",
        f"| All {count} PDFs, setup included | {setup + total['pdf']:.1f} s |",
        "",
        f"Pages per PDF: median {statistics.median(pages):g}, max {max(pages)} (limit 2). "
        f"WeasyPrint is {100 * (1 - per['html'] / per['pdf']):.0f}% of the PDF time.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
