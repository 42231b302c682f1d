"""Benchmark stewardship: one edit, undoing a 1,000-row import, store growth per 1,000 changes.

A store of 20,000 projects at real live postcode positions (bench_store.synthetic_store,
fixed seed) is written and migrated (its 20,000 baseline events written by a first verify).
Boundary layers and the postcode index are loaded first (not timed), as in the dashboard.

- One edit: `stewardship.edit_project` changing a project's postcode (look-up, re-join, version
  check, one row and one history event in one transaction), median of 10; likewise
  `verify_project` (no re-join).
- Undo: a 1,000-row CSV of new projects is imported, then `undo_import` removes them; a second
  1,000-row file updates 1,000 stored projects, then `undo_import` puts them back.
- Growth: the file's size before and after 1,000 changed rows (the update import: 1,000 rows
  rewritten plus 1,000 events with before and after) and after 200 single verifies (x5).

Writes benchmarks/results/stewardship.md. Run: PYTHONPATH=. python benchmarks/bench_stewardship.py
"""

import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import batch_file, live, synthetic_store  # noqa: E402

from kindred_map import geocode, importing, join, store  # noqa: E402
from kindred_map import stewardship as st  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "stewardship.md"
ROWS = 20_000
BATCH = 1_000
EDITS = 10
VERIFIES = 200


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def run(folder: Path) -> dict:
    postcodes = live()
    join.reference()
    geocode.postcode_index()
    target = folder / "projects.gpkg"
    synthetic_store(target, ROWS, postcodes)
    ids = store.read_projects(target)["id"].tolist()
    migrate_s, _ = _timed(st.verify_project, target, ids[0], "bench")
    migrated_mb = target.stat().st_size / 1e6

    edits = []
    codes = postcodes["postcode"].sample(EDITS, random_state=4).tolist()
    for number, code in enumerate(codes, start=1):
        seconds, _ = _timed(st.edit_project, target, ids[number], {"postcode": code}, 1, "bench")
        edits.append(seconds)
    verifies = [_timed(st.verify_project, target, i, "bench")[0] for i in ids[20:30]]

    new = batch_file(folder, "partner", BATCH, postcodes, 21)
    import_s, report = _timed(importing.import_file, new, target, who="bench")
    assert report.new == BATCH, report.new
    undo_new_s, undone = _timed(st.undo_import, target, report.import_id, "bench")
    assert len(undone.removed) == BATCH

    first = batch_file(folder, "partner2", BATCH, postcodes, 22)
    importing.import_file(first, target, who="bench")
    size = target.stat().st_size
    changed = batch_file(folder, "partner2", BATCH, postcodes, 23)
    report = importing.import_file(changed, target, who="bench")
    assert report.updated == BATCH, report.updated
    import_growth = target.stat().st_size - size
    undo_changed_s, undone = _timed(st.undo_import, target, report.import_id, "bench")
    assert len(undone.reverted) == BATCH

    size = target.stat().st_size
    for project_id in ids[100 : 100 + VERIFIES]:
        st.verify_project(target, project_id, "bench")
    verify_growth = (target.stat().st_size - size) * BATCH / VERIFIES
    return {
        "migrate_s": migrate_s,
        "migrated_mb": migrated_mb,
        "edit_s": statistics.median(edits),
        "edit_max_s": max(edits),
        "verify_s": statistics.median(verifies),
        "import_s": import_s,
        "undo_new_s": undo_new_s,
        "undo_changed_s": undo_changed_s,
        "import_growth_mb": import_growth / 1e6,
        "verify_growth_mb": verify_growth / 1e6,
        "events": len(st.read_history(target)),
    }


def render(figures: dict) -> str:
    f = figures
    return "\n".join(
        [
            "# Stewardship benchmark",
            "",
            f"Machine: {platform.machine()}, Python {platform.python_version()}, shared 2-core "
            f"host; {pd.Timestamp.now('UTC'):%Y-%m-%d}. Run: "
            "`PYTHONPATH=. python benchmarks/bench_stewardship.py`.",
            "",
            f"Store: {ROWS:,} projects at real postcode positions.",
            "",
            "| What | Figure |",
            "| --- | --- |",
            f"| Migration (first write: {ROWS:,} baseline events) | {f['migrate_s']:.2f} s; "
            f"file {f['migrated_mb']:.1f} MB after |",
            f"| One edit (new postcode: look-up, re-join, version check, row + event) | "
            f"{f['edit_s']:.3f} s median of {EDITS} (max {f['edit_max_s']:.3f} s) |",
            f"| One verify (row + event) | {f['verify_s']:.3f} s median of 10 |",
            f"| Import of {BATCH:,} new rows (with {BATCH:,} events) | {f['import_s']:.2f} s |",
            f"| Undo that import ({BATCH:,} projects removed) | {f['undo_new_s']:.2f} s |",
            f"| Undo an import that changed {BATCH:,} projects (all put back) | "
            f"{f['undo_changed_s']:.2f} s |",
            f"| Growth per {BATCH:,} changes (one import changing {BATCH:,} rows) | "
            f"{f['import_growth_mb']:.2f} MB |",
            f"| Growth per {BATCH:,} changes (single verifies, {VERIFIES} measured x5) | "
            f"{f['verify_growth_mb']:.2f} MB |",
            f"| History events at the end | {f['events']:,} |",
            "",
            "Each event keeps the whole record before and after as JSON (about 1.3 KB each for",
            "these records), so the history grows by about two records per change; SQLite",
            "reuses freed pages, so an undo that removes rows does not shrink the file.",
            "",
        ]
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        figures = run(Path(folder))
    RESULTS.write_text(render(figures), encoding="utf-8")
    print(RESULTS.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
