"""Benchmark ward profiles as PDF: `profile.write_wards` against the same HTML printed by Chromium.

Product: `profile.write_wards`, what `kindred-map profile --all` runs: each page built here and
printed by WeasyPrint in a pool of worker processes (one per available core), written to disk.
Plain way: the same pages (`profile.profile_html`, built in the same loop) printed by Debian's
Chromium through Playwright's ``page.set_content`` + ``page.pdf`` in one headless browser kept
open for the batch and written to disk. That is the fair plain way for a batch: ``chromium
--headless --print-to-pdf`` starts a browser per file (about 1 s each here). Both sides include
their start-up (the product's worker pool, the plain way's browser launch); the shared setup
(store read, coverage at 800 m, ward deprivation) is done once before and not timed.

Interleaved pairs after a warm-up of each (benchmarks/pairs.py), on all 221 wards or, with
``--every N``, every Nth ward in code order (a batch spread over all nine boroughs). Also checks
both give the same number of pages for every ward. Writes benchmarks/results/profiles.md.

Run: PYTHONPATH=. python benchmarks/bench_profiles.py [--every N] [--pairs 5]
"""

import argparse
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.pairs import interleaved, machine_line, markdown_table
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


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="every Nth ward (default: all)")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    ctx = profile.context()
    profile.deprivation("ward")
    codes = sorted(boundaries.code_texts(boundaries.load("ward")["WD24CD"]))[:: args.every]
    before = uptime()
    with tempfile.TemporaryDirectory() as folder:
        ours, theirs = Path(folder) / "product", Path(folder) / "plain"
        written = {}
        result = interleaved(
            lambda: written.update(product=profile.write_wards(ours, codes, ctx, "pdf")),
            lambda: written.update(plain=chromium_pdfs(theirs, codes, ctx)),
            pairs=args.pairs,
        )
        print(result)
        pages = [page_count(path) for path in written["product"]]
        plain_pages = [page_count(path) for path in written["plain"]]
    after = uptime()
    differ = sum(a != b for a, b in zip(pages, plain_pages, strict=True))
    batch = "all" if args.every == 1 else f"every {args.every}th ward in code order:"
    count = len(codes)
    command = "PYTHONPATH=. python benchmarks/bench_profiles.py" + (
        f" --every {args.every}" if args.every != 1 else ""
    )
    lines = [
        "# Ward profiles as PDF: `profile.write_wards` vs the same HTML printed by Chromium",
        "",
        machine_line(command, result),
        f"`uptime` before: `{before}`; after: `{after}`.",
        f"Median of {args.pairs} interleaved pairs after a warm-up; {batch} {count} ward "
        f"profiles a run, each run start-up included (worker pool; browser launch), shared "
        "setup (store, coverage, deprivation) not timed.",
        "",
        *markdown_table(
            [
                "Profiles",
                "`write_wards` (WeasyPrint, process pool)",
                "Chromium `page.pdf` (Playwright, one browser)",
                "Ratio (goal <= 1x)",
                "Pair ratios",
            ],
            [
                [
                    str(count),
                    f"{result['product']:.1f} s ({result['product'] / count:.3f} s each)",
                    f"{result['plain']:.1f} s ({result['plain'] / count:.3f} s each)",
                    f"{result['ratio']:.2f}x",
                    ", ".join(f"{r:.2f}" for r in result["pair_ratios"]),
                ]
            ],
        ),
        "",
        f"Pages per profile (product): median {statistics.median(pages):g}, max {max(pages)}; "
        f"{sum(p == 1 for p in pages)} of {count} on one page. Chromium's print of the same page "
        f"has a different page count for {differ} of them.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
