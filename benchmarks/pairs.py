"""Interleaved timing of a product and its plain way in one run, with the machine's load."""

import os
import platform
import statistics
import time


def interleaved(product, plain, pairs: int = 5) -> dict:
    """Wall seconds of ``pairs`` alternating runs of ``product`` and ``plain`` after one warm-up
    of each: the medians, their ratio, and the load average before and after."""
    product()
    plain()
    load = os.getloadavg()[0]
    times = {"product": [], "plain": []}
    for _ in range(pairs):
        for name, function in (("product", product), ("plain", plain)):
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    ratios = [p / q for p, q in zip(times["product"], times["plain"], strict=True)]
    return {
        **medians,
        "ratio": medians["product"] / medians["plain"],
        "pair_ratios": ratios,
        "load": (load, os.getloadavg()[0]),
    }


def machine_line(command: str, result: dict | None = None) -> str:
    """The machine, Python, the load average seen and how to run the benchmark."""
    load = f"; 1-minute load average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after"
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other engineers' "
        f"work{load if result else ''}; Python {platform.python_version()}. `{command}`."
    )
