"""Where the test suite's CPU goes: a pytest plugin that charges each test the CPU seconds its
worker and every process under it (Streamlit servers, Chromium, CLI runs) spent meanwhile.

    make test PYTEST_ARGS="-p suite_cpu" with PYTHONPATH=benchmarks and SUITE_CPU_OUT=<folder>

Each worker writes <folder>/cpu-<worker>.tsv (test id, setup + call + teardown CPU seconds,
wall seconds); `python benchmarks/suite_cpu.py <folder>` sums them by file, largest first. A
server started in one test and used by later ones is charged to the tests that used it, as its
start-up to the test that started it. CPU = user + system, from getrusage for the worker and
its reaped children and /proc/<pid>/stat for the live processes under it."""

import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

TICK = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                children = Path(f"/proc/{parent}/task/{thread}/children").read_text().split()
            except OSError:
                continue
            found += map(int, children)
            queue += map(int, children)
    return found


def _live_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICK  # utime stime cutime cstime


def tree_cpu() -> float:
    """CPU seconds of this process, its reaped children and every live process under it."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    return total + sum(_live_cpu(pid) for pid in _descendants(os.getpid()))


class SuiteCpu:
    def __init__(self, folder: Path):
        self.folder = folder
        self.rows: list[tuple[str, float, float]] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        cpu, wall = tree_cpu(), time.monotonic()
        try:
            return (yield)
        finally:
            self.rows.append((item.nodeid, tree_cpu() - cpu, time.monotonic() - wall))

    def pytest_sessionfinish(self, session):
        if not self.rows:  # xdist's controller: its workers ran the tests
            return
        worker = os.environ.get("PYTEST_XDIST_WORKER", "serial")
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [f"{nodeid}\t{cpu:.2f}\t{wall:.2f}\n" for nodeid, cpu, wall in self.rows]
        (self.folder / f"cpu-{worker}.tsv").write_text("".join(lines))


def pytest_configure(config):
    folder = os.environ.get("SUITE_CPU_OUT")
    if folder:
        config.pluginmanager.register(SuiteCpu(Path(folder)), "suite-cpu-recorder")


def summary(folder: Path) -> str:
    """A Markdown table of CPU and wall seconds by test file, largest CPU first."""
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for table in sorted(folder.glob("cpu-*.tsv")):
        for line in table.read_text().splitlines():
            nodeid, cpu, wall = line.split("\t")
            row = by_file[nodeid.split("::")[0]]
            row[0] += float(cpu)
            row[1] += float(wall)
            row[2] += 1
    total = sum(row[0] for row in by_file.values())
    lines = ["| file | tests | CPU s | share | wall s |", "|---|---|---|---|---|"]
    for name, (cpu, wall, count) in sorted(by_file.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {name} | {count} | {cpu:,.1f} | {cpu / total:.1%} | {wall:,.1f} |")
    lines.append(f"| all | {sum(r[2] for r in by_file.values())} | {total:,.1f} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
