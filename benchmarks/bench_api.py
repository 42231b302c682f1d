"""Load test of `kindred-map api`: 20 concurrent clients for 60 s over a mix of Open Referral UK
and OGC API - Features requests, against a plain static file served by the same stack
(uvicorn + Starlette) in the same run.

The service runs as its own process on the shipped sample store (a copy), exactly as
`kindred-map api` starts; the baseline is a Starlette app serving one file with StaticFiles
under uvicorn (the file: the service's own /oruk/services page of 50, so both move similar
bytes). Clients: 2 processes x 10 threads, each thread with one keep-alive connection, each
request timed from send to the last byte. Every answer must be 200 (anything else, or a
broken connection, is an error). The server's memory (VmRSS) is sampled every 0.5 s.
With --postgis DSN the mix runs again on a PostGIS copy of the store (DSN of an empty
database you may fill), and the database's committed transactions during the run are
counted (pg_stat_database): the version checks the requests share.

Writes benchmarks/results/api.md.
Run: PYTHONPATH=. python benchmarks/bench_api.py [--seconds 60] [--clients 20] [--postgis DSN]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from kindred_map import geocode, store
from kindred_map import stewardship as st
from kindred_map.location import resolve
from kindred_map.paths import DEFAULT_STORE
from kindred_map.storage import postgis

RESULTS = Path(__file__).parent / "results" / "api.md"
PROCESSES = 2
SEED = 25
STATIC_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
app = Starlette(routes=[Mount("/", StaticFiles(directory=sys.argv[1]))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")
"""
"""The baseline: one folder of files, Starlette's StaticFiles under uvicorn (nothing else
imported)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(command: list[str], probe: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} stopped:\n{log.read_text()}")
        try:
            _get(probe)
            return process
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not answer:\n{log.read_text()}") from None
            time.sleep(0.25)


def _get(url: str) -> bytes:
    host, _, path = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(host, timeout=60)
    try:
        connection.request("GET", f"/{path}")
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise OSError(f"{url}: HTTP {answer.status}")
        return body
    finally:
        connection.close()


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def mix(base: str) -> list[tuple[str, str]]:
    """(endpoint name, path) of the requests the clients draw from, equally often per name."""
    rng = random.Random(SEED)
    services = json.loads(_get(f"{base}/oruk/services?per_page=1000"))
    ids = [item["id"] for item in services["contents"]]
    pages = max(1, services["total_pages"])
    wards = json.loads(
        _get(f"{base}/ogc/collections/ward_summary/items?limit=300&skipGeometry=true")
    )
    codes = [f["id"] for f in wards["features"]]
    index = geocode.postcode_index()
    live = index[index["status"] == "live"]["postcode"].tolist()
    postcodes = rng.sample(live, 200)
    items = []
    for _ in range(200):
        lon, lat = rng.uniform(-3.1, -2.6), rng.uniform(53.3, 53.6)
        bbox = f"{lon:.4f},{lat:.4f},{lon + 0.05:.4f},{lat + 0.03:.4f}"
        params = {"page": rng.randint(1, pages), "per_page": 20}
        items += [
            ("oruk /services page", f"/oruk/services?{urlencode(params)}"),
            ("oruk /services/{id}", f"/oruk/services/{rng.choice(ids)}"),
            (
                "oruk /service_at_locations postcode+proximity",
                f"/oruk/service_at_locations?postcode={quote(rng.choice(postcodes))}"
                "&proximity=1000",
            ),
            ("oruk /services search", f"/oruk/services?search={rng.choice(['food', 'warm'])}"),
            ("oruk /taxonomy_terms", "/oruk/taxonomy_terms"),
            ("ogc projects bbox", f"/ogc/collections/projects/items?bbox={bbox}&limit=100"),
            (
                "ogc projects page",
                f"/ogc/collections/projects/items?limit=50&offset={rng.randint(0, 350)}",
            ),
            ("ogc ward item", f"/ogc/collections/ward_summary/items/{rng.choice(codes)}"),
            ("ogc boroughs (9 polygons)", "/ogc/collections/borough_summary/items"),
            ("ogc collections", "/ogc/collections"),
        ]
    rng.shuffle(items)
    return items


def _client(
    host: str, port: int, requests: list, seconds: float, first: int, threads: int, stride: int, out
) -> None:
    """One client process: ``threads`` keep-alive connections for ``seconds``; client number
    ``first + i`` sends requests ``first + i``, then every ``stride``-th after it."""
    results = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(offset: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        found = []
        n = first + offset
        while time.monotonic() < stop:
            name, path = requests[n % len(requests)]
            n += stride
            began = time.perf_counter()
            try:
                connection.request("GET", path)
                answer = connection.getresponse()
                body = answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=60)
                body, ok = b"", False
            found.append((name, time.perf_counter() - began, ok, len(body)))
        connection.close()
        with lock:
            results.extend(found)

    workers = [threading.Thread(target=run, args=(offset,)) for offset in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.send(results)
    out.close()


def load(port: int, requests: list, seconds: float, clients: int, pid: int) -> dict:
    """Run the clients against one server; latencies, errors and the server's memory."""
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    first = 0
    for number in range(PROCESSES):
        share = clients // PROCESSES + (number < clients % PROCESSES)
        here, there = context.Pipe(duplex=False)
        process = context.Process(
            target=_client,
            args=("127.0.0.1", port, requests, seconds, first, share, clients, there),
        )
        first += share
        process.start()
        pipes.append(here)
        processes.append(process)
    before = _memory(pid)
    samples = []
    while any(p.is_alive() for p in processes) and not all(p.poll() for p in pipes):
        samples.append(_memory(pid)["VmRSS"])
        time.sleep(0.5)
    results = [row for pipe in pipes for row in pipe.recv()]
    for process in processes:
        process.join()
    after = _memory(pid)
    return {
        "results": results,
        "seconds": seconds,
        "rss_before_mb": before["VmRSS"] / 1024,
        "rss_max_mb": max(samples + [after["VmRSS"]]) / 1024,
        "rss_after_mb": after["VmRSS"] / 1024,
        "hwm_mb": after["VmHWM"] / 1024,
    }


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(run: dict) -> dict:
    rows = run["results"]
    times = [t for _, t, _, _ in rows]
    return {
        "requests": len(rows),
        "rps": len(rows) / run["seconds"],
        "p50": _ms(times, 0.50),
        "p95": _ms(times, 0.95),
        "p99": _ms(times, 0.99),
        "errors": sum(not ok for _, _, ok, _ in rows),
        "bytes": statistics.mean(size for *_, size in rows),
    }


def by_endpoint(run: dict) -> list[tuple]:
    names = sorted({name for name, *_ in run["results"]})
    table = []
    for name in names:
        rows = [r for r in run["results"] if r[0] == name]
        times = [t for _, t, _, _ in rows]
        errors = sum(not ok for _, _, ok, _ in rows)
        size = statistics.mean(r[3] for r in rows)
        table.append((name, len(rows), _ms(times, 0.5), _ms(times, 0.95), errors, size))
    return table


def _transactions(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()[0]


def run_api(location, folder: Path, seconds: float, clients: int) -> tuple:
    """The mix against `kindred-map api` on ``location``: (run, requests, page size, page)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "kindred_map.cli", "api", "--store", str(location)]
    command += ["--port", str(port)]
    server = _start(command, f"{base}/", folder / f"api-{port}.log")
    try:
        requests = mix(base)
        for _, path in dict(requests).items():  # one of each kind first: caches built
            _get(base + path)
        if resolve(location).is_postgis:
            time.sleep(1)  # let pg_stat_database catch up
            before = _transactions(str(location))
        run = load(port, requests, seconds, clients, server.pid)
        if resolve(location).is_postgis:
            time.sleep(1)
            run["transactions"] = _transactions(str(location)) - before - 1
        page = _get(f"{base}/oruk/services?per_page=50")
        run["after_edit"] = after_edit(base, location)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return run, requests, len(page), page


AFTER_EDIT = {
    "ORUK /services (every service exported)": "/oruk/services?per_page=1",
    **{
        f"OGC {name} items": f"/ogc/collections/{name}/items?limit=1"
        for name in ("projects", "ward_summary", "deanery_summary", "borough_summary")
    },
}


def after_edit(base: str, location) -> list[tuple[str, float, float]]:
    """Seconds of the first request of each kind after an edit (store read again, answers
    built again), and of the same request once more (cached)."""
    project = store.read_projects(location)["id"].iloc[0]
    website = f"https://example.org/bench/{time.time_ns()}"  # a change on every run
    st.edit_project(location, project, {"website": website}, None, "bench")
    timed = []
    for name, path in AFTER_EDIT.items():
        began = time.perf_counter()
        _get(base + path)
        first = time.perf_counter() - began
        began = time.perf_counter()
        _get(base + path)
        timed.append((name, first, time.perf_counter() - began))
    return timed


def run_static(page: bytes, folder: Path, seconds: float, clients: int) -> dict:
    files = folder / "static"
    files.mkdir(exist_ok=True)
    (files / "services.json").write_bytes(page)
    port = _free_port()
    command = [sys.executable, "-c", STATIC_SERVER, str(files), str(port)]
    server = _start(command, f"http://127.0.0.1:{port}/services.json", folder / "static.log")
    try:
        return load(port, [("static file", "/services.json")], seconds, clients, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)


def write(runs: dict[str, dict], page_bytes: int, args, loads: tuple, note: str) -> None:
    lines = [
        "# kindred-map api under load",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `benchmarks/bench_api.py` on "
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average before {loads[0]:.1f}, after {loads[1]:.1f}; the clients run on the "
        "same 2 cores as the server, and the machine was shared with other work, so the "
        "figures are indicative and the ratio to the static file, measured in the same run, is "
        "the figure to compare).",
        "",
        f"{args.clients} concurrent clients (2 processes x {args.clients // 2} threads, one "
        f"keep-alive connection each) for {args.seconds:g} s per row. The service: `kindred-map "
        "api` on a copy of the shipped sample store (416 real projects; illustrative ones left "
        "out), started as a process. The baseline: one static file (the service's own "
        f"/oruk/services page of 50, {page_bytes:,} bytes) served by Starlette's StaticFiles under "
        "uvicorn. Latency: from sending the request to the last byte of the answer.",
        "",
        "| | requests | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | mean answer "
        "(bytes) | server memory (MB): start / peak / end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    static = summary(runs["static file"])
    for name, run in runs.items():
        figures = summary(run)
        lines.append(
            f"| {name} | {figures['requests']:,} | {figures['rps']:,.0f} | {figures['p50']:.1f} | "
            f"{figures['p95']:.1f} | {figures['p99']:.1f} | {figures['errors']} | "
            f"{figures['bytes']:,.0f} | {run['rss_before_mb']:.0f} / {run['rss_max_mb']:.0f} / "
            f"{run['rss_after_mb']:.0f} |"
        )
    lines.append("")
    for name, run in runs.items():
        if name == "static file":
            continue
        figures = summary(run)
        lines.append(
            f"{name}: {figures['rps'] / static['rps']:.2f} x the static file's requests per "
            f"second; p50 {figures['p50'] / static['p50']:.1f} x and p95 "
            f"{figures['p95'] / static['p95']:.1f} x its latency."
        )
        if "transactions" in run:
            lines.append(
                f"PostGIS: {run['transactions']:,} database transactions for "
                f"{figures['requests']:,} requests "
                f"({run['transactions'] / figures['requests']:.2f} per request): each is one "
                "version check (row count and newest writing transaction) shared by the requests "
                "waiting for it; the store itself was read once, before the run."
            )
    lines += ["", note, ""]
    for name, run in runs.items():
        if name == "static file":
            continue
        lines += [
            f"## By endpoint: {name}",
            "",
            "| request | count | p50 (ms) | p95 (ms) | errors | mean answer (bytes) |",
            "|---|---|---|---|---|---|",
        ]
        for endpoint, count, p50, p95, errors, size in by_endpoint(run):
            lines.append(
                f"| {endpoint} | {count:,} | {p50:.1f} | {p95:.1f} | {errors} | {size:,.0f} |"
            )
        lines.append("")
    lines += [
        "## The first request after an edit",
        "",
        "After each run one project's website was edited in the store; then each request below "
        "was sent twice, one at a time: the first reads the store again and builds that answer "
        "(the edit is in it), the second is answered from the cache.",
        "",
        "| request | "
        + " | ".join(f"{name}: first / again (s)" for name in runs if "after_edit" in runs[name])
        + " |",
        "|---|" + "---|" * sum("after_edit" in run for run in runs.values()),
    ]
    timed = [run["after_edit"] for run in runs.values() if "after_edit" in run]
    for row in zip(*timed, strict=True):
        cells = " | ".join(f"{first:.2f} / {again:.3f}" for _, first, again in row)
        lines.append(f"| {row[0][0]} | {cells} |")
    lines.append("")
    RESULTS.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--postgis", metavar="DSN", help="also run on this (empty) database")
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        sample = folder / "projects.gpkg"
        shutil.copy(DEFAULT_STORE, sample)
        runs = {}
        api, requests, page_bytes, page = run_api(sample, folder, args.seconds, args.clients)
        runs["static file"] = run_static(page, folder, args.seconds, args.clients)
        runs["API mix, GeoPackage store"] = api
        if args.postgis:
            postgis.migrate(args.postgis)
            store.copy(sample, args.postgis)
            runs["API mix, PostGIS store"] = run_api(
                args.postgis, folder, args.seconds, args.clients
            )[0]
    loads.append(os.getloadavg()[0])
    kinds = sorted({name for name, _ in requests})
    note = (
        f"The mix: {len(kinds)} kinds of request drawn in turn from a shuffled list (seed {SEED}): "
        + "; ".join(kinds)
        + ". Every kind was requested once before the clocks started, so the answers were "
        "built; the store did not change during the run (for the first request after a "
        "change, see the last table)."
    )
    write(runs, page_bytes, args, tuple(loads), note)
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
