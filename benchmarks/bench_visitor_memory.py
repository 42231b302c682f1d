"""Server memory held by one unsigned visitor doing the worst it can, against idle.

One `streamlit run app.py` (a copy of the shipped store, one editor in a temporary users file).
Idle: the server's resident memory (VmRSS) after one ordinary visit (caches warm), that session
closed. Then one unsigned session, driven over Streamlit's own protocol
(tests/streamlit_client.py), does what issue 21 found costly:
- opens a link whose wards= list is 269 KB (it cost 55 s of CPU), timed against a new
  session's plain first visit;
- fails 55 sign-ins with different user names just under the 1 MB message limit (the box keeps
  64 characters), then sends one 20 MB user name (the connection is closed: it never arrives),
  on a second session of the same visitor;
- PUTs 15 files of 190 MB to the upload endpoint of its own session (it took 2.7 GB in 9 s).
The server's memory is sampled every 0.2 s: the peak, and what is held once the attack is over
(session still open) and once it is closed, each above idle, go to
benchmarks/results/visitor_memory.md, with the time the long link took to show against a plain
visit of the same page (same run).

Run once (2 shared cores, about 2 minutes): PYTHONPATH=. python benchmarks/bench_visitor_memory.py
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import requests

from kindred_map import auth, view
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tests"))
from bench_dashboard import start_server  # noqa: E402
from streamlit_client import Visitor  # noqa: E402

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "visitor_memory.md"
LONG_LINK = "wards=" + ",".join(["E05000000XX"] * 22_400)  # 269 KB, as in issue 21
SIGN_INS = 55
NAME_CHARS = 900_000
UPLOADS = 15
UPLOAD_BYTES = 190_000_000
SAMPLE_S = 0.2


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Sampler(threading.Thread):
    """The server's resident memory every SAMPLE_S seconds, until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.running = pid, [], True

    def run(self) -> None:
        while self.running:
            self.samples.append(_rss_mb(self.pid))
            time.sleep(SAMPLE_S)


def _settled_rss(pid: int, seconds: float = 5.0) -> float:
    """Median resident memory over a few quiet seconds."""
    samples = []
    for _ in range(int(seconds / SAMPLE_S)):
        samples.append(_rss_mb(pid))
        time.sleep(SAMPLE_S)
    return statistics.median(samples)


def _start(folder: Path) -> tuple[str, subprocess.Popen]:
    """The dashboard on a copy of the shipped store, one editor in a temporary users file."""
    store = folder / "projects.gpkg"
    shutil.copy(DEFAULT_STORE, store)
    users = folder / "users.json"
    auth.add_user("ann", "a long password", path=users)
    os.environ[auth.USERS_ENV] = str(users)  # start_server passes the environment on
    return start_server(PROJECT_ROOT / "app.py", store, folder / "server.log")


def _timed_run(visitor: Visitor, query: str = "") -> float:
    started = time.perf_counter()
    visitor.run(query=query)
    return time.perf_counter() - started


def _attack(url: str) -> dict:
    """One unsigned visitor's worst; what each step got back."""
    found = {}
    plain = Visitor(url)  # a new session's first page, as the attack's is (caches warm)
    found["plain_visit_s"] = _timed_run(plain)
    plain.close()
    visitor = Visitor(url)  # the link is read on a session's first visit
    found["long_link_s"] = _timed_run(visitor, LONG_LINK)
    found["long_link_message"] = any("Ignored wards in the link" in t for t in visitor.texts)
    failures = []
    for number in range(SIGN_INS):
        name = f"{number:02d}" + "x" * NAME_CHARS
        visitor.run(values={"User name": name, "Password": "wrong", "Sign in": True})
        failures.append(any("not recognised" in t for t in visitor.texts))
    found["failed_sign_ins"] = sum(failures)
    statuses = []
    body = b"x" * UPLOAD_BYTES
    for _ in range(UPLOADS):
        try:
            statuses.append(visitor.upload("big.csv", body))
        except requests.RequestException as error:  # the server may close before the body
            statuses.append(type(error).__name__)
    found["upload_statuses"] = sorted({str(s) for s in statuses})
    second = Visitor(url).run()
    try:
        second.run(values={"User name": "y" * 20_000_000, "Sign in": True})
        found["huge_name"] = "accepted"
    except Exception as error:  # the server closes the connection: 1009, message too big
        found["huge_name"] = f"connection closed ({type(error).__name__})"
    second.close()
    found["visitor"] = visitor
    return found


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-visitor-") as folder:
        url, server = _start(Path(folder))
        try:
            started_mb = _settled_rss(server.pid, 2)
            warm = Visitor(url).run()
            warm.close()
            idle_mb = _settled_rss(server.pid)
            sampler = Sampler(server.pid)
            sampler.start()
            found = _attack(url)
            held_open_mb = _settled_rss(server.pid)
            found.pop("visitor").close()
            time.sleep(3)
            held_closed_mb = _settled_rss(server.pid)
            sampler.running = False
            sampler.join()
            peak_mb = max(sampler.samples)
        finally:
            server.terminate()
            server.wait(timeout=30)
    view.view_from_query({"wards": "E05000932"})  # layers loaded once, as in a warm server
    started = time.perf_counter()
    _, problems = view.view_from_query({"wards": LONG_LINK.removeprefix("wards=")})
    refuse_ms = (time.perf_counter() - started) * 1000
    lines = [
        "# One unsigned visitor's worst, against idle",
        "",
        f"Measured {date.today().isoformat()} by benchmarks/bench_visitor_memory.py on "
        f"{platform.machine()}, {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}.",
        "",
        "| | server memory (MB, VmRSS) | above idle (MB) |",
        "| --- | ---: | ---: |",
        f"| just started | {started_mb:,.0f} | |",
        f"| idle (after one ordinary visit) | {idle_mb:,.0f} | 0 |",
        f"| peak during the attack | {peak_mb:,.0f} | {peak_mb - idle_mb:,.0f} |",
        f"| held after it, session open | {held_open_mb:,.0f} | {held_open_mb - idle_mb:,.0f} |",
        f"| held after it, session closed | {held_closed_mb:,.0f} | "
        f"{held_closed_mb - idle_mb:,.0f} |",
        "",
        "What the visitor got back:",
        f"- a {len(LONG_LINK) / 1000:,.0f} KB wards= link: shown in "
        f"{found['long_link_s']:.2f} s against {found['plain_visit_s']:.2f} s for the page "
        f"without it (each a new session's first visit); message shown: "
        f"{found['long_link_message']}; the link's check alone (view.view_from_query) "
        f"{refuse_ms:.1f} ms: {problems[0]}",
        f"- {SIGN_INS} sign-ins with {NAME_CHARS:,}-character names: "
        f"{found['failed_sign_ins']} answered 'not recognised' (the box keeps "
        f"{auth.MAX_USERNAME_CHARS} characters; the failure table holds at most "
        f"{auth.MAX_TRACKED_ATTEMPTS:,} rows)",
        f"- a 20,000,000-character user name: {found['huge_name']}",
        f"- {UPLOADS} uploads of {UPLOAD_BYTES / 1e6:,.0f} MB to its own session: "
        f"{', '.join(found['upload_statuses'])} (400: refused before the body is read)",
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    # No options: the parser is there so that --help explains instead of running (and
    # rewriting results/visitor_memory.md).
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    main()
