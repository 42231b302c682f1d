"""Where a whole command's CPU goes on this machine, by kind of process, and the wall-time floor
that CPU sets: run it around `make test`.

    python benchmarks/suite_by_process.py -- make test

Every 0.25 s it reads each process's user + system time from /proc (Chromium's renderers, the
Streamlit servers and PostgreSQL's backends included: they leave pytest's process tree or were
never in it) and, at the end, prints a Markdown table of CPU seconds by kind, the machine's busy
CPU seconds over the run (from /proc/stat: everything, the processes that lived under 0.25 s
too; "not seen by the sampler" is the difference), and the floor: busy CPU seconds / CPUs, the
shortest the same work could take on this machine if every CPU were busy all the time. Exits
with the command's status. Measures the whole machine, so run it on a quiet one."""

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
EVERY_S = 0.25


def kind(pid: str) -> str | None:
    """A process's kind from its command line (None once it has gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = raw.replace(b"\0", b" ").decode(errors="replace")
    first = command.split(" ", 1)[0]
    if "chromium" in first or "chrome" in first:
        for part in ("renderer", "gpu-process", "utility", "zygote"):
            if f"--type={part}" in command:
                return f"Chromium {part}"
        return "Chromium browser"
    if "streamlit run" in command or " dashboard" in command:
        return "Streamlit servers"
    if "postgres" in command:
        return "PostgreSQL"
    if "playwright" in command or first.endswith("/node"):
        return "Playwright driver"
    if "import sys;exec(eval(sys.stdin.readline()))" in command:
        return "xdist workers (and their forks)"
    if "pytest" in command:
        return "pytest (main)"
    if "python" in first:
        return "other Python"
    return "other"


def busy_and_total() -> tuple[float, float]:
    """The machine's (busy, total) CPU seconds since boot, over all CPUs."""
    first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    values = [int(value) for value in first_line.split()[1:9]]
    total = sum(values)
    return (total - values[3] - values[4]) / TICK, total / TICK


def sample(seen: dict) -> None:
    """Each live process's CPU seconds so far into ``seen``, keyed by (pid, start time)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        key, ticks = (pid, fields[19]), int(fields[11]) + int(fields[12])
        if key in seen:
            seen[key][1] = max(seen[key][1], ticks)
        elif (name := kind(pid)) is not None:
            seen[key] = [name, ticks, ticks]  # kind, latest, at first sight


def table(seen: dict, before: set, busy: float, cpus: int, wall: float) -> str:
    """The Markdown report: CPU seconds by kind, not sampled, busy, the floor."""
    seconds, processes = Counter(), Counter()
    for key, (name, latest, first) in seen.items():
        spent = latest - (first if key in before else 0)  # not what it spent before the run
        if spent > 0:
            seconds[name] += spent / TICK
            processes[name] += 1
    lines = ["| kind | processes | CPU s |", "|---|---|---|"]
    for name, cpu in seconds.most_common():
        lines.append(f"| {name} | {processes[name]:,} | {cpu:,.1f} |")
    unsampled = busy - sum(seconds.values())
    unseen = f"not seen by the sampler (short-lived processes; the last {EVERY_S} s of each)"
    lines.append(f"| {unseen} | | {unsampled:,.1f} |")
    lines.append(f"| **machine busy** | | **{busy:,.1f}** |")
    lines.append("")
    lines.append(
        f"Wall {wall:,.1f} s on {cpus} CPUs; floor (busy / CPUs) {busy / cpus:,.1f} s: "
        f"the CPUs were busy {busy / (cpus * wall):.0%} of the run."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --, e.g. -- make test")
    seen: dict = {}
    sample(seen)
    before = set(seen)
    busy0, _ = busy_and_total()
    start = time.monotonic()
    child = subprocess.Popen(command)
    while child.poll() is None:
        sample(seen)
        time.sleep(EVERY_S)
    wall = time.monotonic() - start
    busy1, _ = busy_and_total()
    print(table(seen, before, busy1 - busy0, os.cpu_count() or 1, wall), flush=True)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
