"""Benchmark the upload screen: what an unrelated click costs with a big file on the page.

The dashboard is driven signed-in through Streamlit's AppTest (one process, no browser) on a
copy of the shipped store. A CSV of 100,000 rows (name and a live region postcode, fixed
seed: bench_store.batch_file) is uploaded; then "Show the table" is toggled three times, a
click that has nothing to do with the upload. Baseline in the same run: the same clicks with
no file on the page. CPU seconds (time.process_time) and wall seconds of each run.

Issue 21 measured 26 s of CPU per unrelated click with such a file, before the upload's work
was cached by the file's digest (issue 20).

Writes benchmarks/results/upload.md. Run: PYTHONPATH=. python benchmarks/bench_upload.py
"""

import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_store import batch_file, live  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from kindred_map import auth, location  # noqa: E402
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "upload.md"
ROWS = 100_000
CLICKS = 3


def timed(app: AppTest) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.monotonic()
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return time.process_time() - cpu, time.monotonic() - wall


def clicks(app: AppTest) -> list[tuple[float, float]]:
    times = []
    for number in range(CLICKS):
        app.toggle(key="show_table").set_value(number % 2 == 0)
        times.append(timed(app))
    return times


def session() -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=1800)
    app.session_state["signed_in_user"] = auth.User("bench", "Bench", "editor")
    app.run()
    return app


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        shutil.copy(DEFAULT_STORE, folder / "projects.gpkg")
        os.environ[location.STORE_ENV] = str(folder / "projects.gpkg")
        os.environ["KINDRED_MAP_BASEMAP"] = "none"
        data = batch_file(folder, "partner", ROWS, live(), seed=20).read_bytes()
        baseline = clicks(session())
        app = session()
        app.file_uploader(key="upload").set_value(("partner.csv", data, "text/csv"))
        first = timed(app)
        loaded = clicks(app)
    median = {
        name: statistics.median(t[0] for t in runs)
        for name, runs in (("baseline", baseline), ("loaded", loaded))
    }
    lines = [
        "# Upload screen: an unrelated click with a big file on the page",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, shared 2-core "
        f"host; load average at the end {os.getloadavg()[0]:.1f}. Run: "
        "`PYTHONPATH=. python benchmarks/bench_upload.py` (AppTest, one process, no browser).",
        "",
        f"A {ROWS:,}-row CSV (name, live postcode) uploaded to the shipped store; then 'Show the "
        f"table' toggled {CLICKS} times. CPU / wall seconds per run.",
        "",
        "| run | CPU s | wall s |",
        "|---|---|---|",
        f"| the upload (read, check, place, join; duplicates; plan) | {first[0]:.1f} | "
        f"{first[1]:.1f} |",
        *(
            f"| click {i + 1}, file on the page | {c:.2f} | {w:.2f} |"
            for i, (c, w) in enumerate(loaded)
        ),
        *(
            f"| click {i + 1}, no file (baseline) | {c:.2f} | {w:.2f} |"
            for i, (c, w) in enumerate(baseline)
        ),
        "",
        f"Median CPU of a click: {median['loaded']:.2f} s with the file, "
        f"{median['baseline']:.2f} s without ({median['loaded'] / median['baseline']:.1f}x).",
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
