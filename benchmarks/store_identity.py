"""Check that this checkout stores what another checkout (main) stores for the same imports.

Each checkout imports the same files, in turn, into a copy of one store (so both derive ids
with the same secret), in a process of its own (`PYTHONPATH=<checkout>`): the benchmark's
100,000-row file into a new store, then a 2,000-row file of which 1,000 rows update stored
projects. Compared: every stored project (all fields, retired too, point blobs byte for byte),
the spatial index's entries, the import log and the history as readers give it (events,
before/after JSON, undo's input), and, on PostGIS, the public rows; times of the write
(``created_at``, ``at``, the log's times) are left out. Also an undo of the second import.

Run: PYTHONPATH=. python benchmarks/store_identity.py /work/main [--postgis DSN]
"""

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import bench_import
import psycopg

from kindred_map import store

TIMES = ("created_at", "at", "imported_at", "finished_at", "started_at")

RUN = """
import json, sys
from pathlib import Path
from kindred_map import importing, stewardship, store
target = sys.argv[1] if sys.argv[1].startswith("postgresql") else Path(sys.argv[1])
for path in sys.argv[2:]:
    importing.import_file(Path(path), target)
stewardship.undo_import(target, len(store.read_imports(target)), "checker")
"""

DUMP = """
import json, sqlite3, sys
from pathlib import Path
import pandas as pd
import psycopg
from kindred_map import store, stewardship
target = sys.argv[1] if sys.argv[1].startswith("postgresql") else Path(sys.argv[1])
times = set(json.loads(sys.argv[2]))
projects = store.read_projects(target, include_retired=True)
out = {
    "projects": projects.drop(columns=["geometry", *times & set(projects)]).astype(str)
    .to_dict("split")["data"],
    "points": projects.geometry.to_wkb(hex=True).tolist(),
    "imports": store.read_imports(target).drop(columns=list(times), errors="ignore")
    .astype(str).to_dict("split")["data"],
}
events = stewardship.read_history(target)
for side in ("before", "after"):
    events[side] = events[side].str.replace(r'"created_at":"[^"]*"', "", regex=True)
out["history"] = events.drop(columns=["at"]).astype(str).to_dict("split")["data"]
if isinstance(target, Path):
    with sqlite3.connect(target) as conn:
        out["index"] = conn.execute("SELECT * FROM rtree_projects_geom ORDER BY id").fetchall()
        out["blobs"] = [r[0].hex() for r in conn.execute("SELECT geom FROM projects ORDER BY fid")]
else:
    with psycopg.connect(sys.argv[1]) as conn:
        rows = conn.execute("SELECT * FROM projects_public_rows ORDER BY store_id").fetchall()
        out["public"] = [[str(v) for v in row] for row in rows]
print(json.dumps(out))
"""


def run(checkout: Path, code: str, *arguments: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def compare(first: dict, second: dict) -> list[str]:
    """Names of the parts that differ."""
    return [name for name in sorted(first) if first[name] != second.get(name)]


def main(other: Path, postgis: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="store_identity_"))
    live = bench_import.live_postcodes()
    big, _ = bench_import.make_file(live, 100_000, folder)
    lines = big.read_text(encoding="utf-8").splitlines()
    (folder / "second").mkdir()
    small = folder / "second" / big.name  # same name, same id namespace: updates
    changed = [line.replace("Project", "Renamed project", 1) for line in lines[1:1001]]
    small.write_text("\n".join([lines[0], *changed, *lines[-1000:]]) + "\n", encoding="utf-8")
    seed = folder / "seed.gpkg"
    store.init(seed)
    failures = []
    for label, checkout in (("this", Path.cwd()), ("other", other)):
        target = folder / f"{label}.gpkg"
        shutil.copy(seed, target)
        run(checkout, RUN, str(target), str(big), str(small))
    dumps = [
        json.loads(run(Path.cwd(), DUMP, str(folder / f"{x}.gpkg"), json.dumps(TIMES)))
        for x in ("this", "other")
    ]
    failures += [f"GeoPackage {name}" for name in compare(*dumps)]
    print("GeoPackage compared:", {name: len(part) for name, part in dumps[0].items()})
    if postgis:
        base = postgis.rsplit("/", 1)[0]
        names = [f"km_identity_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        with psycopg.connect(postgis, autocommit=True) as conn:
            for name in names:
                conn.execute(f"CREATE DATABASE {name}")
        try:
            dsns = [f"{base}/{name}" for name in names]
            store.copy(seed, dsns[0])
            store.copy(seed, dsns[1])
            for dsn, checkout in zip(dsns, (Path.cwd(), other), strict=True):
                run(checkout, RUN, dsn, str(big), str(small))
            dumps = [json.loads(run(Path.cwd(), DUMP, dsn, json.dumps(TIMES))) for dsn in dsns]
            failures += [f"PostGIS {name}" for name in compare(*dumps)]
            print("PostGIS compared:", {name: len(part) for name, part in dumps[0].items()})
        finally:
            with psycopg.connect(postgis, autocommit=True) as conn:
                for name in names:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print("identical" if not failures else f"DIFFERENT: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    given = sys.argv[1:]
    dsn = given[given.index("--postgis") + 1] if "--postgis" in given else None
    main(Path(given[0]), dsn)
