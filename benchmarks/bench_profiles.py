"""Benchmark ward profiles as PDF: `profile.write_wards` against the same HTML printed by Chromium.

Product: `profile.write_wards`, what `kindred-map profile --all` runs: each page built here and
printed by WeasyPrint in a pool of worker processes (one per available core), written to disk.
Plain way: the same pages (`profile.profile_html`, built in the same loop) printed by Debian's
Chromium through Playwright's ``page.set_content`` + ``page.pdf`` in one headless browser kept
open for the batch and written to disk. That is the fair plain way for a batch: ``chromium
--headless --print-to-pdf`` starts a browser per file (about 1 s each here). Both sides include
their start-up (the product's worker pool, the plain way's browser launch); the shared setup
(store read, coverage at 800 m, ward deprivation) is done once before and not timed.

Interleaved rounds after a warm-up of each, on all 221 wards or, with ``--every N``, every Nth
ward in code order (a batch spread over all nine boroughs). With ``--before TREE`` (a checkout
of the code to compare, e.g. main) each round also prints the batch with that tree's
`write_wards`, in a process of its own started (and set up) once before the rounds, so before,
after and Chromium run under the same load. Each arm's CPU seconds (its processes and their
children: workers, the browser) are counted too: on a shared machine the steadier figure. Also
checks every arm gives the same number of pages for every ward. Writes
benchmarks/results/profiles.md (or ``--out``).

Run: PYTHONPATH=. python benchmarks/bench_profiles.py [--every N] [--pairs 5] [--before TREE]
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pairs import machine_line, markdown_table
from kindred_map import boundaries, files, profile

RESULTS = Path(__file__).parent / "results" / "profiles.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def page_count(path: Path) -> int:
    """Pages of a PDF, by poppler's pdfinfo."""
    report = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", report.stdout, flags=re.MULTILINE).group(1))


def chromium_pdfs(folder: Path, codes: list[str], ctx: profile.Context) -> list[Path]:
    """The plain way: each page printed by one headless Chromium (CSS page size and margins)."""
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        for code in codes:
            page.set_content(profile.profile_html("ward", code, ctx=ctx))
            payload = page.pdf(prefer_css_page_size=True, print_background=True)
            written.append(files.write_bytes(folder / f"{code}.pdf", payload))
        browser.close()
    return written


BEFORE_SERVER = """
import json, resource, sys, time
from pathlib import Path
from kindred_map import boundaries, profile
ctx = profile.context()
profile.deprivation("ward")
codes = sorted(boundaries.code_texts(boundaries.load("ward")["WD24CD"]))[:: int(sys.argv[1])]
print("ready", flush=True)
for line in sys.stdin:
    folder = Path(line.strip())
    cpu = time.process_time(); kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    written = profile.write_wards(folder, codes, ctx, "pdf")
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + done.ru_utime + done.ru_stime - kids.ru_utime - kids.ru_stime
    print(json.dumps({"cpu": cpu, "paths": [str(p) for p in written]}), flush=True)
"""


class Before:
    """The batch printed by another checkout's code, in a process of its own set up once."""

    def __init__(self, tree: Path, every: int):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", BEFORE_SERVER, str(every)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.cpu = 0.0

    def __call__(self, folder: Path) -> list[Path]:
        self.process.stdin.write(f"{folder}\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        self.cpu = answer["cpu"]
        return [Path(path) for path in answer["paths"]]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def own_cpu() -> float:
    """CPU seconds of this process and its ended children (pool workers, the browser)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def rounds(arms: dict, pairs: int) -> dict:
    """Wall and CPU seconds of each arm over ``pairs`` rounds after one warm-up round, the arms
    run one after another in each round; the load average before and after."""
    for function in arms.values():
        function()
    load = os.getloadavg()[0]
    wall = {name: [] for name in arms}
    cpu = {name: [] for name in arms}
    for _ in range(pairs):
        for name, function in arms.items():
            started, cpu_started = time.perf_counter(), own_cpu()
            used = function()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(used if used is not None else own_cpu() - cpu_started)
    return {"wall": wall, "cpu": cpu, "load": (load, os.getloadavg()[0])}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="every Nth ward (default: all)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a checkout to compare (e.g. /work/main)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ctx = profile.context()
    profile.deprivation("ward")
    codes = sorted(boundaries.code_texts(boundaries.load("ward")["WD24CD"]))[:: args.every]
    before = Before(args.before, args.every) if args.before else None
    started = uptime()
    with tempfile.TemporaryDirectory() as folder:
        folders = {name: Path(folder) / name for name in ("product", "plain", "before")}
        written = {}

        def arm(name, function):
            def run():
                written[name] = function(folders[name])
                return before.cpu if name == "before" else None

            return run

        arms = {
            "product": arm("product", lambda out: profile.write_wards(out, codes, ctx, "pdf")),
            "plain": arm("plain", lambda out: chromium_pdfs(out, codes, ctx)),
        }
        if before:
            arms["before"] = arm("before", before)
        result = rounds(arms, args.pairs)
        pages = {name: [page_count(path) for path in paths] for name, paths in written.items()}
    if before:
        before.close()
    ended = uptime()
    lines = report(args, codes, result, pages, started, ended)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def report(args, codes, result, pages, started, ended) -> list[str]:
    """The results file's lines."""
    count = len(codes)
    wall = {name: statistics.median(runs) for name, runs in result["wall"].items()}
    cpu = {name: statistics.median(runs) for name, runs in result["cpu"].items()}
    names = {
        "product": "`write_wards` (WeasyPrint, process pool)",
        "before": f"`write_wards` of {args.before} (before)",
        "plain": "Chromium `page.pdf` (Playwright, one browser)",
    }
    rows = []
    for name in ("product", "before"):
        if name not in wall:
            continue
        pair = [p / q for p, q in zip(result["wall"][name], result["wall"]["plain"], strict=True)]
        rows.append(
            [
                names[name],
                f"{wall[name]:.1f} s ({wall[name] / count:.3f} s each)",
                f"{wall['plain']:.1f} s",
                f"{wall[name] / wall['plain']:.2f}x",
                ", ".join(f"{r:.2f}" for r in pair),
                f"{cpu[name]:.1f} s / {cpu['plain']:.1f} s = {cpu[name] / cpu['plain']:.2f}x",
            ]
        )
    batch = "all" if args.every == 1 else f"every {args.every}th ward in code order:"
    command = (
        "PYTHONPATH=. python benchmarks/bench_profiles.py"
        + (f" --every {args.every}" if args.every != 1 else "")
        + (f" --before {args.before}" if args.before else "")
    )
    machine = machine_line(command, {"load": result["load"]})
    product = pages["product"]
    differ = {
        name: sum(a != b for a, b in zip(product, other, strict=True))
        for name, other in pages.items()
        if name != "product"
    }
    return [
        "# Ward profiles as PDF: `profile.write_wards` vs the same HTML printed by Chromium",
        "",
        machine,
        f"`uptime` before: `{started}`; after: `{ended}`.",
        f"Median of {args.pairs} interleaved rounds after a warm-up; {batch} {count} ward "
        "profiles a run, each run's start-up included (worker pool; browser launch), shared "
        "setup (store, coverage, deprivation) not timed. CPU: the arm's processes and their "
        "children (pool workers; the browser and its renderer).",
        "",
        *markdown_table(
            [
                "Product",
                "Wall",
                "Chromium wall",
                "Ratio (goal <= 1x)",
                "Round ratios",
                "CPU (product / Chromium)",
            ],
            rows,
        ),
        "",
        f"Pages per profile (product): median {statistics.median(product):g}, max "
        f"{max(product)}; {sum(p == 1 for p in product)} of {count} on one page. A different "
        "page count from the product's: "
        + ", ".join(f"{name} {number}" for name, number in differ.items())
        + ".",
    ]


if __name__ == "__main__":
    main()
