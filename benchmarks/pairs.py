"""Interleaved timing of a product and its plain way in one run, with the machine's load."""

import os
import platform
import statistics
import time


def interleaved(product, plain, pairs: int = 5) -> dict:
    """Seconds of ``pairs`` alternating runs of ``product`` and ``plain`` after one warm-up of
    each: median wall and CPU (this process) times, their ratios, and the load average before
    and after. On a machine shared with other work the CPU ratio is the steadier figure."""
    product()
    plain()
    load = os.getloadavg()[0]
    times = {"product": [], "plain": []}
    cpu = {"product": [], "plain": []}
    for _ in range(pairs):
        for name, function in (("product", product), ("plain", plain)):
            started, cpu_started = time.perf_counter(), time.process_time()
            function()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    cpu_medians = {name: statistics.median(runs) for name, runs in cpu.items()}
    ratios = [p / q for p, q in zip(times["product"], times["plain"], strict=True)]
    return {
        **medians,
        "ratio": medians["product"] / medians["plain"],
        "pair_ratios": ratios,
        "cpu_product": cpu_medians["product"],
        "cpu_plain": cpu_medians["plain"],
        "cpu_ratio": cpu_medians["product"] / cpu_medians["plain"],
        "load": (load, os.getloadavg()[0]),
    }


def result_cells(label: str, result: dict, pairs: int) -> list[str]:
    """An `interleaved` result as table cells: label, pairs, product and plain seconds, wall
    ratio, product and plain CPU seconds, CPU ratio, load before / after."""
    return [
        label,
        str(pairs),
        f"{result['product']:.2f}",
        f"{result['plain']:.2f}",
        f"{result['ratio']:.2f}x",
        f"{result['cpu_product']:.2f}",
        f"{result['cpu_plain']:.2f}",
        f"{result['cpu_ratio']:.2f}x",
        f"{result['load'][0]:.1f} / {result['load'][1]:.1f}",
    ]


def machine_line(command: str, result: dict | None = None) -> str:
    """The machine, Python, the load average seen and how to run the benchmark."""
    load = f"; 1-minute load average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after"
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other engineers' "
        f"work{load if result else ''}; Python {platform.python_version()}. `{command}`."
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
