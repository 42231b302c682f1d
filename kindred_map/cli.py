"""The ``kindred-map`` command line: every dashboard operation, scriptable."""

import argparse
import os
import sys
from pathlib import Path

from kindred_map.location import resolve
from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR, DEFAULT_STORE

ARROW_POOL = ("ARROW_DEFAULT_MEMORY_POOL", "system")
"""Arrow's allocator for a command that runs and ends (not ``dashboard`` or ``api``, which
serve): the C library's, not Arrow's bundled mimalloc. On this 2-core Debian machine, 8 of 40
fresh processes reading the postcode layer spent 0.2-0.4 s more system CPU with mimalloc, and
none of 40 with the system allocator; ``nearest`` took 1.00 s of CPU on average over 12
runs against 0.80 s (`benchmarks/results/cli.md`). A value the user sets wins; it takes
effect only before pyarrow is first imported, where `main` sets it."""
SERVERS = ("dashboard", "api")

STORE_HELP = (
    "project store: a GeoPackage path or a postgresql:// DSN (default: $KINDRED_MAP_STORE, "
    "else data/projects.gpkg)"
)


def _parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["WD24CD=wd25cd", ...]`` -> ``{"WD24CD": "wd25cd"}``."""
    mapping = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target or not source:
            raise ValueError(f"--field takes OURS=THEIRS, got {pair!r}")
        mapping[target.strip()] = source.strip()
    return mapping


def cmd_build_boundaries(args: argparse.Namespace) -> int:
    from kindred_map import build

    counts = build.build_all(Path(args.raw), Path(args.out))
    print(build.main_summary(counts))
    print(f"written to {args.out}")
    return 0


def cmd_replace_layer(args: argparse.Namespace) -> int:
    from kindred_map import boundaries

    overrides = {
        "source": args.source,
        "vintage": args.vintage,
        "licence": args.licence,
        "attribution": args.attribution,
        "accuracy": args.accuracy,
    }
    meta = boundaries.replace_layer(
        args.layer,
        Path(args.path),
        _parse_mapping(args.field),
        Path(args.boundaries),
        **overrides,
    )
    print(f"installed {args.layer}: {meta['features']} features from {meta['source']}")
    return 0


def _stored(args: argparse.Namespace):
    """The store's open projects, as of --as-of (from its history) when given."""
    from kindred_map import store

    as_of = getattr(args, "as_of", None)
    if as_of:
        return store.read_projects(args.store, as_of=as_of)
    return store.read_projects(args.store)


def _read_projects(args: argparse.Namespace):
    """The store's projects; illustrative (synthetic) ones only with --include-synthetic.
    (`filters`, not the `export` package with every writer: a command that writes no file
    imports none of them.)"""
    from kindred_map import filters

    return filters.real_projects(_stored(args), args.include_synthetic)


def _synthetic_words(args: argparse.Namespace) -> dict[str, str]:
    state = "INCLUDED (not real projects)" if args.include_synthetic else "left out"
    return {"Illustrative (synthetic) records": state}


def cmd_gaps(args: argparse.Namespace) -> int:
    from kindred_map import coverage

    projects = _read_projects(args)
    result = coverage.assess(
        projects,
        args.types,
        args.distance,
        include_synthetic=args.include_synthetic,
        open_at=args.open,
        include_outside=not args.inside_only,
    )
    parameters = {"types": args.types or "all", "distance_m": args.distance, "by": args.by}
    parameters |= _synthetic_words(args) | _outside_words(args)
    if args.open:
        parameters["open"] = result.open_at
    print(result.headline_text())
    ranked = result.gaps(args.by)
    print(coverage.gaps_text(ranked, args.by, args.top))
    if args.out:
        out = Path(args.out)
        table = ranked if out.suffix.lower() == ".csv" else coverage.area_layer(ranked, args.by)
        from kindred_map import export  # only when a file is written

        export.write_table(table, out, f"gaps_{args.by}", projects, parameters)
        print(f"wrote {len(ranked)} {args.by} rows to {out}")
    return 0


def cmd_need(args: argparse.Namespace) -> int:
    from kindred_map import change, coverage, export, need

    projects = _read_projects(args)
    options = {"include_synthetic": args.include_synthetic, "include_outside": not args.inside_only}
    now = coverage.assess(projects, args.types, args.distance, **options).by_area(args.by)
    before, reach = None, "coverage now below the region's (no earlier date given)"
    if args.reach_from:
        then, since, note = change.projects_then(
            args.store, args.reach_from, args.include_synthetic
        )
        if note:
            print(f"note: {note}", file=sys.stderr)
        before = coverage.assess(then, args.types, args.distance, **options).by_area(args.by)
        reach = f"coverage now not above coverage on {since} (from the history)"
    table = need.need_and_reach(need.need_by_area(args.by), now, before)
    parameters = {"types": args.types or "all", "distance_m": args.distance, "by": args.by}
    parameters |= _synthetic_words(args) | _outside_words(args) | {"reach did not": reach}
    print(need.summary_text(table, args.by, args.top))
    if args.out:
        out = Path(args.out)
        shown = table if out.suffix.lower() == ".csv" else coverage.area_layer(table, args.by)
        export.write_table(shown, out, f"need_{args.by}", projects, parameters, need.ATTRIBUTION)
        print(f"wrote {len(table)} {args.by} rows to {out}")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    from kindred_map import clusters, export

    projects = _read_projects(args)
    parameters = _synthetic_words(args) | {
        "types": args.types or "all",
        "eps_m": args.eps,
        "min_samples": args.min_samples,
        "permutations": args.permutations,
        "seed": args.seed,
        "alpha": args.alpha,
    }
    synthetic = {"include_synthetic": args.include_synthetic}
    hulls = clusters.point_clusters(projects, args.types, args.eps, args.min_samples, **synthetic)
    spots = clusters.hot_spots(
        projects, args.types, args.permutations, args.seed, args.alpha, **synthetic
    )
    print(clusters.summary_text(hulls, spots))
    if args.out:
        export.write_table(hulls, Path(args.out), "clusters", projects, parameters)
        print(f"wrote {len(hulls)} cluster hull(s) to {args.out}")
    if args.hot_spots:
        export.write_table(spots, Path(args.hot_spots), "hot_spots", projects, parameters)
        print(f"wrote {len(spots)} wards to {args.hot_spots}")
    return 0


def _outside_words(args: argparse.Namespace) -> dict[str, str]:
    return {"Projects outside the region": OUTSIDE_WORDS[bool(args.inside_only)]}


OUTSIDE_WORDS = {
    False: "counted for the region's residents within reach of them (never in an area's projects)",
    True: "left out (--inside-only: only projects inside the region reach anyone)",
}


def _add_inside_only_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--inside-only",
        action="store_true",
        help="count only projects inside the region for reach, for comparison (default: a "
        "project just outside counts for the residents within reach of it)",
    )


def _add_reach_options(command: argparse.ArgumentParser) -> None:
    """--types, --distance and --by: the projects, reach and areas of a coverage figure."""
    command.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    command.add_argument("--distance", type=float, default=800.0, help="reach in metres (800)")
    command.add_argument("--by", choices=["ward", "deanery", "borough"], default="ward")


def _add_synthetic_option(command: argparse.ArgumentParser, as_of: bool = False) -> None:
    """--include-synthetic, and with ``as_of`` --as-of (the store replayed to a date)."""
    command.add_argument(
        "--include-synthetic",
        action="store_true",
        help="count illustrative (synthetic) records, which are NOT real projects (default: "
        "left out of every figure and file); every output then says so",
    )
    if as_of:
        command.add_argument(
            "--as-of",
            metavar="DATE",
            help="the store as it was at the end of DATE (YYYY-MM-DD, UTC), from its history: "
            "the projects open then, with their values then",
        )


def _add_reading_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="read a record field from a named column (repeatable), e.g. name='Project title'",
    )
    command.add_argument("--sheet", help="XLSX sheet or GeoPackage layer (default: the first)")
    command.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="one value for every row of a field the file has no column for (repeatable), "
        "e.g. type=pantry; fields: type, organisation, sector, parish, opening_hours, website, "
        "last_checked, location_precision, source",
    )


def _print_report(report, csv_path: str | None) -> None:
    from kindred_map import report as reports

    print(reports.to_text(report))
    if csv_path:
        Path(csv_path).write_bytes(reports.to_csv_bytes(report))
        print(f"report written to {csv_path}")


def cmd_import(args: argparse.Namespace) -> int:
    from kindred_map import importing, stewardship

    mapping = _parse_mapping(args.map)
    report = importing.import_file(
        Path(args.file),
        args.store,
        mapping,
        args.sheet,
        source=args.source,
        who=args.who or stewardship.default_who(),
        constants=_pairs(args.set or []),
    )
    _print_report(report, args.report_csv)
    if report.import_id:
        print(f"import {report.import_id} (undo with: kindred-map undo-import {report.import_id})")
    if report.imported == 0 or (args.strict and report.rejected):
        return 1
    return 0


def _pairs(pairs: list[str]) -> dict[str, str]:
    """``["name=Hope Pantry", "postcode=L8 7SQ"]`` -> a dict of field values."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"give changes as FIELD=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


def _print_saved(action: str, record: dict) -> None:
    print(f"{action} {record['id']} ({record['name']}): now version {record['version']}")


def cmd_add(args: argparse.Namespace) -> int:
    from kindred_map import stewardship

    record = stewardship.add_project(args.store, _pairs(args.values), args.who, "cli")
    _print_saved("added", record)
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from kindred_map import stewardship

    record = stewardship.edit_project(
        args.store, args.id, _pairs(args.values), args.expect_version, args.who, "cli"
    )
    _print_saved("edited", record)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from datetime import date

    from kindred_map import stewardship

    on = date.fromisoformat(args.on) if args.on else None
    record = stewardship.verify_project(
        args.store, args.id, args.who, args.expect_version, on, "cli"
    )
    _print_saved(f"checked on {record['last_checked']}:", record)
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    from kindred_map import stewardship

    record = stewardship.retire_project(
        args.store, args.id, args.reason, args.who, args.expect_version, "cli"
    )
    _print_saved("retired", record)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from kindred_map import stewardship

    record = stewardship.restore_project(args.store, args.id, args.who, args.expect_version, "cli")
    _print_saved("restored", record)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    import pandas as pd

    from kindred_map import stewardship

    events = stewardship.read_history(args.store, args.id)
    if events.empty:
        raise ValueError(f"no history for {args.id!r} in {args.store.name}")
    for event in events.itertuples():
        number = f" import {event.import_id}" if pd.notna(event.import_id) else ""
        print(
            f"v{event.version} {event.at} {event.action} by {event.who or '-'} "
            f"({event.source}{number})"
        )
        for line in stewardship.describe_change(event.before, event.after):
            print(f"    {line}")
    return 0


def cmd_undo_import(args: argparse.Namespace) -> int:
    from kindred_map import stewardship

    report = stewardship.undo_import(args.store, args.import_id, args.who)
    print(
        f"import {report.import_id} undone: {len(report.reverted)} project(s) put back, "
        f"{len(report.removed)} removed, {len(report.conflicts)} left alone"
    )
    for conflict in report.conflicts:
        print(f"  left alone (a later change is kept): {conflict}")
    return 0


def cmd_imports(args: argparse.Namespace) -> int:
    from kindred_map import store

    log = store.import_log(args.store)
    for entry in log.itertuples():
        print(
            f"{entry.import_id:>4}  {entry.imported_at or '(no date)'}  {entry.who or '-'}  "
            f"{entry.file}: {entry.new} new, {entry.updated} updated, {entry.unchanged} unchanged"
            + (f" ({entry.undone})" if entry.undone else "")
        )
    return 0


def cmd_freshness(args: argparse.Namespace) -> int:
    from kindred_map import downloads, freshness, store

    projects = store.read_projects(args.store)
    for name, count in freshness.counts(projects).items():
        print(f"{count:>6}  {freshness.FRESHNESS[name]}")
    if args.call_sheet:
        Path(args.call_sheet).write_bytes(downloads.call_sheet_csv(projects))
        print(
            f"call sheet ({len(freshness.needs_checking(projects))} to check) "
            f"written to {args.call_sheet}"
        )
    return 0


def _add_stewardship_commands(commands) -> None:
    """add, edit, verify, retire, restore, history, undo-import, freshness."""

    def command(name, help_text, func, with_id=True, versioned=True):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if with_id:
            sub.add_argument("id", help="the project's id (as stored, e.g. partner:17)")
        sub.add_argument("--store", help=STORE_HELP)
        sub.add_argument("--who", help="who (default: the OS user)")
        if versioned:
            sub.add_argument(
                "--expect-version",
                type=int,
                help="the version you read: refuse if someone changed it since",
            )
        sub.set_defaults(func=func)
        return sub

    adder = command("add", "add one project, checked like an import row", cmd_add, False, False)
    adder.add_argument("values", nargs="+", metavar="FIELD=VALUE", help="e.g. name='Hope Pantry'")
    editor = command("edit", "change fields of one project (postcode looked up again)", cmd_edit)
    editor.add_argument("values", nargs="+", metavar="FIELD=VALUE")
    verifier = command("verify", "mark a project checked (today, or --on DATE)", cmd_verify)
    verifier.add_argument("--on", help="check date YYYY-MM-DD (default today)")
    retirer = command("retire", "close a project: kept, hidden, restorable", cmd_retire)
    retirer.add_argument("--reason", required=True, help="why (e.g. 'closed in March')")
    command("restore", "reopen a retired project", cmd_restore)
    command("history", "every change to a project: who, when, what", cmd_history, True, False)
    undo = command(
        "undo-import", "revert one import batch (later changes kept)", cmd_undo_import, False, False
    )
    undo.add_argument("import_id", type=int, help="the import's number (kindred-map import says)")
    command("imports", "the import log: number, when, who, file, counts", cmd_imports, False, False)
    fresh = command(
        "freshness",
        "counts of checked, stale and never-checked projects",
        cmd_freshness,
        False,
        False,
    )
    fresh.add_argument("--call-sheet", help="write the 'needs checking' call sheet CSV here")


def cmd_join(args: argparse.Namespace) -> int:
    from kindred_map import export, join

    projects, report = join.join_file(
        Path(args.file), _parse_mapping(args.map), args.sheet, constants=_pairs(args.set or [])
    )
    _print_report(report, args.report_csv)
    if projects.empty:
        print("nothing written: no row could be placed", file=sys.stderr)
        return 1
    written = export.write_joined(projects, Path(args.out))
    hidden = int(projects["location_precision"].eq("ward_only").sum())
    if hidden:
        print(f"{hidden} ward_only project(s) written at their ward's centre, not their address")
    print(f"written to {written}")
    return 0


def cmd_build_sample_data(args: argparse.Namespace) -> int:
    from kindred_map import samples

    summary = samples.build_sample_store(Path(args.raw), Path(args.out))
    print(samples.summary_text(summary))
    print(f"written to {args.out}")
    return 0


def _joined(values: list[str] | None) -> str | None:
    """Repeated ``--borough A --borough B,C`` -> "A,B,C"."""
    return ",".join(values) if values else None


def _add_export_options(parser) -> None:
    """The options of export and pack (all but --format)."""
    parser.add_argument(
        "--what",
        choices=["projects", "ward", "deanery", "borough", "all"],
        help="what to export (default: projects; all layers for gpkg and pack)",
    )
    parser.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    parser.add_argument("--borough", action="append", help="borough name or code (repeatable)")
    parser.add_argument("--deanery", action="append", help="deanery name or id (repeatable)")
    parser.add_argument("--ward", action="append", help="ward name or code (repeatable)")
    parser.add_argument("--imd-decile", help="IMD 2025 decile(s) of the project's LSOA, e.g. 1,2")
    _add_synthetic_option(parser, as_of=True)
    parser.add_argument(
        "--contact",
        help='who to ask about the pack, e.g. "Jo Bloggs, jo@example.org" (beats --settings)',
    )
    parser.add_argument(
        "--settings",
        metavar="FILE",
        help="owner, contact and pack licence (TOML; default: $KINDRED_MAP_PACK_SETTINGS, "
        "else the shipped defaults)",
    )
    parser.add_argument(
        "--distance", type=float, help="add coverage and gap figures for this reach in metres"
    )
    _add_inside_only_option(parser)
    parser.add_argument("--store", help=STORE_HELP)
    parser.add_argument("-o", "--out", required=True, help="output file")
    parser.add_argument(
        "--change-from",
        metavar="DATE",
        help="gpkg and pack: add change_<level> tables from DATE to --as-of (else today), at "
        "--distance (else 800 m)",
    )


def cmd_export(args: argparse.Namespace) -> int:
    from kindred_map import export, filters

    chosen = {
        "types": args.types,
        "boroughs": _joined(args.borough),
        "deaneries": _joined(args.deanery),
        "wards": _joined(args.ward),
        "imd_deciles": args.imd_decile,
        "include_synthetic": args.include_synthetic,
    }
    everything = _stored(args)
    projects = filters.filter_projects(everything, **chosen)
    described = filters.describe_filters(**chosen)
    parameters = {"Project store": args.store.name, **described} | _as_of_words(args)
    figures = None
    if args.distance is not None:
        reachable = filters.filter_projects(
            everything, types=args.types, include_synthetic=args.include_synthetic
        )
        figures = export.coverage_figures(
            reachable,
            args.types,
            args.distance,
            include_synthetic=args.include_synthetic,
            include_outside=not args.inside_only,
        )
        parameters["Reach distance"] = (
            f"{args.distance:g} m, straight line, from every project of the chosen types "
            "(area filters do not apply: people near a border may be reached from across it; "
            "home-run projects count at their ward's centre)"
        )
        parameters |= _outside_words(args)
    changes = None
    if args.change_from:
        changes = _export_changes(args, parameters)
    what = args.what or ("all" if args.format in ("gpkg", "pack") else "projects")
    fmt = args.format
    settings = export.pack_settings(args.settings)
    if args.contact is not None:
        settings["contact"] = args.contact.strip()
    if not settings["contact"] and fmt == "pack":
        print(
            'warning: this pack names no contact; give one with --contact "Name, e-mail" '
            'or contact = "..." in the settings file (--settings FILE)',
            file=sys.stderr,
        )
    if fmt == "oruk" and Path(args.out).suffix.lower() == ".zip":
        fmt = "oruk-csv"
    written = export.write_export(
        Path(args.out),
        projects,
        fmt,
        what,
        coverage=figures,
        area_filters=chosen,
        parameters=parameters,
        settings=settings,
        include_synthetic=args.include_synthetic,
        change=changes,
    )
    if projects.empty:
        print("warning: no project matches the filters", file=sys.stderr)
    print(f"exported {len(projects)} of {len(everything)} projects ({what}, {fmt})")
    for path in written:
        print(f"written to {path}")
    return 0


def _as_of_words(args: argparse.Namespace) -> dict[str, str]:
    as_of = getattr(args, "as_of", None)
    return {"As of": f"{as_of} (the store replayed from its history)"} if as_of else {}


def _export_changes(args: argparse.Namespace, parameters: dict) -> dict:
    """The change tables of an export's --change-from (to --as-of, else today), per level."""
    from kindred_map import change

    if args.format not in ("gpkg", "pack"):
        raise ValueError("--change-from needs --format gpkg or pack")
    distance = args.distance if args.distance is not None else 800.0
    end = args.as_of or "today"
    tables = {
        level: change.change_between(
            args.store,
            args.change_from,
            end,
            level,
            args.types,
            distance,
            args.include_synthetic,
        )
        for level in change.LEVELS
    }
    first = next(iter(tables.values()))
    dates = f"{first['date_from'].iloc[0]} to {first['date_to'].iloc[0]}"
    parameters["Change"] = (
        f"{dates}, reach {distance:g} m, types {args.types or 'all'}: projects open at each "
        "date from the store's history, same Census 2021 residents"
    )
    parameters["History"] = first.attrs["history"]
    if first.attrs["note"]:
        parameters["Change dates"] = first.attrs["note"]
        print(f"note: {first.attrs['note']}", file=sys.stderr)
    return tables


def cmd_change(args: argparse.Namespace) -> int:
    from kindred_map import change, export

    table = change.change_between(
        args.store,
        args.date_from,
        args.date_to,
        args.by,
        args.types,
        args.distance,
        args.include_synthetic,
    )
    parameters = {"types": args.types or "all", "distance_m": args.distance, "by": args.by}
    parameters |= {"from": table["date_from"].iloc[0], "to": table["date_to"].iloc[0]}
    parameters |= _synthetic_words(args) | {"history": table.attrs["history"]}
    if table.attrs["note"]:
        parameters["dates moved"] = table.attrs["note"]
        print(f"note: {table.attrs['note']}", file=sys.stderr)
    print(table.attrs["history"])
    print(change.summary_text(table, args.by, args.top))
    if args.timeline:
        series = change.timeline(
            args.store,
            args.by,
            args.timeline,
            args.date_from,
            args.date_to,
            args.types,
            args.distance,
            args.steps,
            args.include_synthetic,
        )
        print(f"{args.by} {args.timeline} over time:")
        print(series.to_string(index=False))
    if args.out:
        out = Path(args.out)
        shown = export.real_projects(_stored(args), args.include_synthetic)
        frame = table.drop(columns="geometry") if out.suffix.lower() == ".csv" else table
        export.write_table(frame, out, f"change_{args.by}", shown, parameters)
        print(f"wrote {len(table)} {args.by} rows to {out}")
    return 0


def _shown(args: argparse.Namespace):
    """The projects the dashboard would show for ``--types`` (home-run ones at their ward's
    centre); illustrative ones only with --include-synthetic."""
    from kindred_map import filters, privacy

    masked = privacy.public_records(_read_projects(args))
    return filters.filter_projects(
        masked, types=args.types, include_synthetic=args.include_synthetic
    )


def cmd_nearest(args: argparse.Namespace) -> int:
    from kindred_map import search

    shown = _shown(args)
    point = search.find_postcode(args.postcode)
    nearest = search.nearest_projects(shown, point, args.distance)
    print(search.nearest_text(point, nearest, args.distance, args.limit))
    return 0


def cmd_area(args: argparse.Namespace) -> int:
    from kindred_map import areapanel, coverage, figures

    shown = _shown(args)
    code = figures.resolve_area(args.level, args.area)
    gaps = None
    if args.distance is not None:
        result = coverage.assess(
            _read_projects(args), args.types, args.distance, include_synthetic=True
        )
        gaps = {level: result.by_area(level) for level in coverage.LEVELS}
    numbers = figures.area_figures(args.level, shown, gaps[args.level] if gaps else None)
    print(areapanel.area_panel_text(areapanel.area_panel(args.level, code, shown, numbers)))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from kindred_map import profile

    if args.all:
        if args.level not in (None, "ward") or args.area:
            raise ValueError("--all makes ward profiles: give no area with it")
    elif not args.level or not args.area:
        raise ValueError("give a level and an area (e.g. profile ward Anfield), or --all")
    ctx = profile.context(
        types=args.types,
        distance_m=args.distance,
        include_synthetic=args.include_synthetic,
        location=args.store,
    )
    if args.all:
        written = profile.write_all(Path(args.out), args.borough, ctx, args.format, args.workers)
        print(f"wrote {len(written)} ward profiles to {args.out}")
    else:
        print(f"written to {profile.write_profile(Path(args.out), args.level, args.area, ctx)}")
    return 0


MAP_OPTIONS = {
    "shade": "layer",
    "by": "measure",
    "types": "types",
    "borough": "boroughs",
    "deanery": "deaneries",
    "ward": "wards",
    "imd_decile": "imd",
    "distance": "distance",
    "open": "open",
    "area": "area",
    "postcode": "postcode",
}
"""The map command's options -> the page link's parameters (`kindred_map.view`)."""


def cmd_map(args: argparse.Namespace) -> int:
    from kindred_map import printmap

    overrides = {}
    for option, name in MAP_OPTIONS.items():
        value = getattr(args, option)
        if isinstance(value, list):
            value = _joined(value)
        if value is not None:
            overrides[name] = str(value)
    for flag, name in (
        ("gaps", "gaps"),
        ("clusters", "clusters"),
        ("include_synthetic", "examples"),
    ):
        if getattr(args, flag):
            overrides[name] = "1"
    view = printmap.view_from_link(args.link or "", overrides)
    written = printmap.write_maps(
        [Path(path) for path in args.out], _stored(args), view, paper=args.paper
    )
    for path in written:
        print(f"written to {path}")
    return 0


def _add_map_command(commands) -> None:
    printer = commands.add_parser(
        "map",
        help="a printable map of a dashboard view (A4/A3 landscape PDF, or PNG)",
        description="The dashboard's map of one view for paper and slides: title, shaded "
        "areas, projects, legend, scale bar, north arrow, date, sources and licences; offline "
        "(no tiles). Give the page's link with --link (its address or query), and/or the "
        "view's parameters; an option beats the link. -o FILE.pdf (vector) and/or -o FILE.png.",
    )
    printer.add_argument(
        "-o", "--out", action="append", required=True, help="output .pdf or .png (repeatable)"
    )
    printer.add_argument("--link", help="the dashboard's link, or its query (layer=ward&...)")
    printer.add_argument("--shade", help="area level: ward, deanery, borough or lsoa")
    printer.add_argument(
        "--by", help="measure: projects, per_10k, imd_decile, gap_score or gap_per_1000"
    )
    printer.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    for option in ("borough", "deanery", "ward"):
        printer.add_argument(f"--{option}", action="append", help=f"{option} name or code")
    printer.add_argument("--imd-decile", help="IMD 2025 deciles, e.g. 1,2")
    printer.add_argument("--distance", type=int, help="reach in metres (800)")
    printer.add_argument("--open", help="count only projects open then, e.g. weekend")
    printer.add_argument("--area", help="the chosen area's code (outlined, and the map fits it)")
    printer.add_argument(
        "--postcode", help="a postcode search: its reach circle (--distance) and centre"
    )
    printer.add_argument("--gaps", action="store_true", help="veil where people are beyond reach")
    printer.add_argument("--clusters", action="store_true", help="outline clusters of projects")
    printer.add_argument(
        "--include-synthetic", action="store_true", help="show illustrative (not real) records"
    )
    printer.add_argument("--paper", choices=["A4", "A3"], default="A4", help="landscape (A4)")
    printer.add_argument("--store", help=STORE_HELP)
    printer.set_defaults(func=cmd_map)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Streamlit in this process, after the imports and layer loads the first page needs.

    streamlit_folium (and so `kindred_map.pages`) is left for app.py to import: a component
    declared before Streamlit's runtime starts is not registered, and its frame would not load."""
    from streamlit.web import cli as streamlit_cli

    from kindred_map import mapview
    from kindred_map.paths import PROJECT_ROOT

    mapview.warm_up()
    options = list(args.streamlit_options)
    if not any(o.startswith("--server.address") for o in options):
        options += ["--server.address", "localhost"]  # this machine only, unless told
    command = ["run", str(PROJECT_ROOT / "app.py"), *options]
    return streamlit_cli.main(command, standalone_mode=False) or 0


def cmd_api(args: argparse.Namespace) -> int:
    from kindred_map import api, export

    api.serve(
        args.store,
        host=args.host,
        port=args.port,
        url=args.url,
        include_synthetic=args.include_synthetic,
        settings=export.pack_settings(args.settings),
        access_log=args.access_log,
    )
    return 0


def _new_password(from_stdin: bool) -> str:
    """A password from one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_store(args: argparse.Namespace) -> int:
    from kindred_map import store
    from kindred_map.storage import postgis

    if args.action in ("init", "migrate"):
        print(store.init(args.store, create=args.action == "init"))
    elif args.action == "grant-reader":
        if not args.store.is_postgis:
            raise ValueError("grant-reader needs a PostGIS store: --store postgresql://...")
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        postgis.grant_reader(args.store, args.name, password)
        print(f"{args.name} may read {', '.join(postgis.READER_VIEWS)} and nothing else")
    else:
        counts = store.copy(args.source, args.destination)
        print(
            f"copied {counts['projects']:,} projects, {counts['imports']:,} import log entries "
            f"and {counts['events']:,} history events to {args.destination}; "
            "read back, identical"
        )
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    import getpass

    from kindred_map import auth, people, roles

    path = Path(args.users_file) if args.users_file else auth.users_path()
    rules_file = Path(args.roles_file) if args.roles_file else roles.roles_path()
    by = f"command line ({getpass.getuser()})"
    if args.action == "add":
        password = _new_password(args.password_stdin)
        user = people.add_account(
            args.username, password, args.role, args.name or "", by, path, rules_file
        )
        print(f"{user.username} ({user.role}) can sign in; credentials in {path}")
    elif args.action == "remove":
        people.remove_account(args.username, by, path, rules_file)
        print(f"removed {args.username} from {path}")
    elif args.action == "role":
        people.set_account_role(args.username, args.role, by, path, rules_file)
        print(f"{args.username} is now {args.role}; their open sessions end")
    elif args.action == "grant":
        subject = people.grant(args.subject, args.role, by, rules_file)
        print(f"{subject} signs in with the organisation's account as {args.role}")
    elif args.action == "revoke":
        people.revoke(args.subject, by, rules_file)
        print(f"removed {args.subject} from {rules_file}")
    elif args.action == "public":
        people.set_public(args.setting == "yes", by, rules_file)
        print("the map is " + ("public" if args.setting == "yes" else "private"))
    elif args.action == "audit":
        for row in people.audit_log(rules_file):
            print("\t".join(row[column] for column in people.AUDIT_COLUMNS))
    else:
        _list_people(auth.list_users(path), roles.read_rules(rules_file), path)
    return 0


def _list_people(accounts: list, rules: dict, path: Path) -> None:
    """`users list`: password accounts, then the roles file's entries and the map's setting."""
    if not accounts:
        print(f"no password accounts in {path}")
    for user in accounts:
        print(f"{user.username}\t{user.role}\t{user.name}")
    for table in ("people", "domains"):
        for subject, role in sorted(rules[table].items()):
            print(f"{subject}\t{role}\t(organisation account)")
    print("the map is " + ("public" if rules["public"] else "private (viewers sign in)"))


def _add_api_command(commands) -> None:
    server = commands.add_parser(
        "api",
        help="serve the public data live: Open Referral UK (/oruk/) and OGC API - Features (/ogc/)",
        description="A read-only HTTP service for council directories and GIS teams: Open "
        "Referral UK services under /oruk/ (the same records as export --format oruk) and OGC "
        "API - Features under /ogc/ (projects and the ward, deanery and borough summaries of "
        "the council pack; QGIS and GDAL read it). Answers follow the store: an edit shows in "
        "the next request. Home-run projects only at their ward's centre.",
    )
    server.add_argument("--store", help=STORE_HELP)
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    server.add_argument("--port", type=int, default=8600, help="port to listen on (8600)")
    server.add_argument(
        "--url",
        help="the address clients use, e.g. https://maps.example.org/api behind a proxy "
        "(default http://HOST:PORT); links in answers are made from it",
    )
    server.add_argument(
        "--settings",
        metavar="FILE",
        help="owner, contact and licence (TOML, as for export; default: "
        "$KINDRED_MAP_PACK_SETTINGS, else the shipped defaults)",
    )
    server.add_argument("--access-log", action="store_true", help="log every request")
    _add_synthetic_option(server)
    server.set_defaults(func=cmd_api)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kindred-map",
        description="Map community social action in the Liverpool City Region.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build-boundaries",
        help="build boundaries/ from the raw open data",
        description="Build the shipped boundary and reference layers from the raw open data. "
        "Running it twice gives byte-identical files.",
    )
    build.add_argument("--raw", default=str(DEFAULT_RAW_DIR), help="raw data folder")
    build.add_argument("--out", default=str(BOUNDARIES_DIR), help="output folder")
    build.set_defaults(func=cmd_build_boundaries)

    replace = commands.add_parser(
        "replace-layer",
        help="install a better boundary layer",
        description="Validate a GeoJSON, GeoPackage or zipped Shapefile (any CRS) and install "
        "it in place of a shipped layer. A bad file leaves the current layer untouched.",
    )
    replace.add_argument("layer", choices=["borough", "ward", "lsoa", "deanery", "diocese"])
    replace.add_argument("path", help="the new layer's file")
    replace.add_argument(
        "--field",
        action="append",
        metavar="OURS=THEIRS",
        help="map one of our field names to the file's (repeatable), e.g. WD24CD=WD25CD",
    )
    replace.add_argument("--source", help="where the file comes from")
    replace.add_argument("--vintage", help="the boundaries' date")
    replace.add_argument("--licence", help="the file's licence")
    replace.add_argument("--attribution", help="the attribution line the licence requires")
    replace.add_argument("--accuracy", help="how accurate the boundaries are")
    replace.add_argument("--boundaries", default=str(BOUNDARIES_DIR), help="layers folder")
    replace.set_defaults(func=cmd_replace_layer)

    gaps = commands.add_parser(
        "gaps",
        help="who lives beyond reach of projects, and the biggest need-weighted gaps",
        description="Coverage of Census 2021 residents (spread over postcodes) by projects of "
        "the chosen types within a straight-line distance; prints headline figures and the "
        "areas ranked by gap score (people beyond reach weighted 2 in IMD deciles 1-2, 1.5 in "
        "3-4, 1 otherwise). Output by extension: .geojson, .gpkg (EPSG:27700) or .csv.",
    )
    _add_reach_options(gaps)
    gaps.add_argument(
        "--open",
        metavar="WHEN",
        help="count only projects open then: 'sat 10:00', 'saturday' (any time that day), "
        "'weekend' (any time Sat/Sun) or 'evening' (any time 17:00-21:00); unknown hours are "
        "counted apart, never as open",
    )
    _add_inside_only_option(gaps)
    gaps.add_argument("--top", type=int, default=10, help="gaps to print (10)")
    gaps.add_argument("-o", "--out", help="write the ranked table (.geojson, .gpkg, .csv)")
    gaps.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(gaps, as_of=True)
    gaps.set_defaults(func=cmd_gaps)

    changer = commands.add_parser(
        "change",
        help="what changed between two dates per area: projects, people within reach, gaps",
        description="Per ward, deanery or borough: projects of the types opened and closed "
        "between --from and --to (from the store's history), residents within --distance at "
        "each date, residents newly reached and newly beyond reach (all, and in IMD 2025 "
        "deciles 1-2), gap score and gap rank at each date. Ranked by the growth of the gap "
        "score. Output by extension: .gpkg (EPSG:27700), .geojson or .csv.",
    )
    changer.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
    changer.add_argument("--to", dest="date_to", default="today", help="YYYY-MM-DD or today")
    _add_reach_options(changer)
    changer.add_argument("--top", type=int, default=10, help="areas to print (10)")
    changer.add_argument(
        "--timeline",
        metavar="CODE",
        help="also print this area's projects and residents within reach over time",
    )
    changer.add_argument("--steps", type=int, default=12, help="dates on the timeline (12)")
    changer.add_argument("-o", "--out", help="write the table (.gpkg, .geojson, .csv)")
    changer.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(changer)
    changer.set_defaults(func=cmd_change)

    needs = commands.add_parser(
        "need",
        help="how need moved (IMD 2019 -> 2025) per area, and where need rose and reach did not",
        description="IMD 2019 -> 2025 per ward, deanery or borough (resident-weighted national "
        "percentile and median deciles of the IMD, income, employment, health, barriers and "
        "living environment; IoD 2019 moved onto LSOA 2021 with the ONS lookup), with coverage "
        "at --distance. Need rose: mean IMD percentile down by 1 point or more, or the median "
        "decile down. Reach did not: coverage not improved since --reach-from (from the "
        "history), else coverage now below the region's. "
        "Output by extension: .csv, .geojson or .gpkg.",
    )
    _add_reach_options(needs)
    needs.add_argument(
        "--reach-from",
        metavar="DATE",
        help="judge reach between DATE (the store as of then, from its history) and now, "
        "instead of by coverage now alone",
    )
    _add_inside_only_option(needs)
    needs.add_argument("--top", type=int, default=10, help="flagged areas to print (10)")
    needs.add_argument("-o", "--out", help="write the table (.csv, .geojson, .gpkg)")
    needs.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(needs)
    needs.set_defaults(func=cmd_need)

    cluster = commands.add_parser(
        "clusters",
        help="where projects bunch together: DBSCAN hulls and ward hot spots",
        description="DBSCAN clusters of projects (metres, EPSG:27700) as buffered hulls with "
        "counts by type, and exploratory Getis-Ord Gi* hot and cold spots of projects per "
        "10,000 residents by ward (permutation p-values, Benjamini-Hochberg FDR). Home-run "
        "projects are left out of the hulls.",
    )
    cluster.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    cluster.add_argument("--eps", type=float, default=500.0, help="DBSCAN radius, metres (500)")
    cluster.add_argument("--min-samples", type=int, default=3, help="DBSCAN min samples, >= 3")
    cluster.add_argument("--permutations", type=int, default=999, help="Gi* permutations")
    cluster.add_argument("--seed", type=int, default=2021, help="permutation seed")
    cluster.add_argument("--alpha", type=float, default=0.05, help="false-discovery rate")
    cluster.add_argument("-o", "--out", help="write the hulls (.geojson, .gpkg, .csv)")
    cluster.add_argument("--hot-spots", help="write the ward hot spots (.geojson, .gpkg, .csv)")
    cluster.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(cluster)
    cluster.set_defaults(func=cmd_clusters)
    importer = commands.add_parser(
        "import",
        help="import a project spreadsheet into the store",
        description="Read a CSV, XLSX, GeoJSON or GeoPackage of projects, place each one "
        "offline, join it to ward, deanery, borough and LSOA, and upsert it into the store "
        "(by id; re-importing the same file changes nothing). Ids the file gives are stored as "
        "SOURCE:ID, SOURCE being --source or the file's name without extension, so two "
        "partners' 'Ref 1' are two projects. Prints the import report. "
        "Exit code 0: imported (rejected rows are listed); 1: no row could be imported, or "
        "--strict and a row was rejected; 2: the file or store could not be used.",
    )
    importer.add_argument("file", help="the project file")
    importer.add_argument("--store", help=STORE_HELP)
    importer.add_argument(
        "--source",
        metavar="NAME",
        help="namespace of the file's ids (default: the file's name without extension); "
        "use the same NAME for every file from one partner",
    )
    _add_reading_options(importer)
    importer.add_argument("--report-csv", metavar="PATH", help="also write the report as CSV")
    importer.add_argument("--strict", action="store_true", help="fail if any row is rejected")
    importer.add_argument("--who", help="who imports, for the history (default: the OS user)")
    importer.set_defaults(func=cmd_import)

    joiner = commands.add_parser(
        "join",
        help="join a project file to areas without storing it",
        description="Read, check, place and join a project file to ward, deanery, borough and "
        "LSOA, and write the result (.geojson RFC 7946, .gpkg in EPSG:27700, or .csv). "
        "Projects marked ward_only are written at their ward's centre, without address, "
        "coordinates or full postcode.",
    )
    joiner.add_argument("file", help="the project file")
    joiner.add_argument("-o", "--out", required=True, help="output .geojson, .gpkg or .csv")
    _add_reading_options(joiner)
    joiner.add_argument("--report-csv", metavar="PATH", help="also write the report as CSV")
    joiner.set_defaults(func=cmd_join)

    samples = commands.add_parser(
        "build-sample-data",
        help="build the sample project store data/projects.gpkg",
        description="Build the sample store from the real records in the raw data (Give Food "
        "food banks, warm spaces), the projects named in the seeds, and a few clearly marked "
        "synthetic pantries and STOs. Running it twice gives byte-identical files.",
    )
    samples.add_argument("--raw", default=str(DEFAULT_RAW_DIR), help="raw data folder")
    samples.add_argument("--out", default=str(DEFAULT_STORE), help="store to write")
    samples.set_defaults(func=cmd_build_sample_data)
    exporter = commands.add_parser(
        "export",
        help="export projects or area summaries for council partners",
        description="Export the projects (filtered) or ward / deanery / borough summaries: "
        "RFC 7946 GeoJSON (WGS84), GeoPackage (EPSG:27700), CSV (with a _about.txt beside it), "
        "a one-file offline HTML map, a council pack (.zip of all of them with a README), or "
        "Open Referral UK services (oruk: JSON; oruk-csv, or oruk with -o NAME.zip: the CSV "
        "package). Home-run (ward_only) projects leave only at their ward's centre.",
    )
    exporter.add_argument(
        "--format",
        required=True,
        choices=["geojson", "gpkg", "csv", "html", "pack", "oruk", "oruk-csv"],
    )
    _add_export_options(exporter)
    exporter.set_defaults(func=cmd_export)
    packer = commands.add_parser(
        "pack",
        help="the council pack (.zip): export --format pack",
        description="The council pack: projects and ward, deanery and borough summaries "
        "(GeoJSON, CSV, GeoPackage), an offline HTML map and a README in plain words, as one "
        ".zip. Give the contact with --contact or in the settings file: a pack without one "
        "says so, here and in its README.",
    )
    _add_export_options(packer)
    packer.set_defaults(func=cmd_export, format="pack")

    nearest = commands.add_parser(
        "nearest",
        help="projects nearest a postcode, with straight-line distances",
        description="The projects nearest a region postcode (live or terminated), with "
        "straight-line distances in metres (British National Grid) and how many lie within "
        "--distance: what the dashboard's postcode search shows. Home-run projects are "
        "measured to their ward's centre.",
    )
    nearest.add_argument("postcode", help="a postcode of the region, e.g. 'L1 8JQ'")
    nearest.add_argument("--distance", type=float, default=800.0, help="reach in metres (800)")
    nearest.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    nearest.add_argument("--limit", type=int, default=10, help="projects to list (10)")
    nearest.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(nearest, as_of=True)
    nearest.set_defaults(func=cmd_nearest)

    area = commands.add_parser(
        "area",
        help="one area's figures and projects (the dashboard's area panel)",
        description="Name, population, IMD 2025 (population-weighted for wards, deaneries and "
        "boroughs), projects by type and the list of projects of one ward, deanery (approximate), "
        "borough or LSOA. With --distance, also its coverage and gap score.",
    )
    area.add_argument("level", choices=["ward", "deanery", "borough", "lsoa"])
    area.add_argument("area", help="the area's code (e.g. E05015289) or name")
    area.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    area.add_argument("--distance", type=float, help="add coverage at this reach (metres)")
    area.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(area, as_of=True)
    area.set_defaults(func=cmd_area)
    profiler = commands.add_parser(
        "profile",
        help="a printable A4 profile of a ward, deanery or borough (PDF or HTML)",
        description="One or two A4 pages about one area: locator map, population, IMD 2025 "
        "deciles, projects by type and their list, coverage and gap rank at --distance, the "
        "nearest projects beyond the boundary, method and attribution. -o FILE.pdf or "
        "FILE.html. With --all, one profile per ward of the region (or of --borough NAME) into "
        "the folder -o, printed by one worker process per core.",
    )
    profiler.add_argument("level", nargs="?", choices=["ward", "deanery", "borough"])
    profiler.add_argument("area", nargs="?", help="the area's code or name")
    profiler.add_argument("-o", "--out", required=True, help="output .pdf/.html, or a folder")
    profiler.add_argument("--all", action="store_true", help="every ward (of --borough)")
    profiler.add_argument("--borough", help="with --all: only this borough (name or code)")
    profiler.add_argument(
        "--workers", type=int, help="with --all: processes printing PDFs (default: one per core)"
    )
    profiler.add_argument(
        "--format", choices=["pdf", "html"], default="pdf", help="with --all: file format"
    )
    profiler.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    profiler.add_argument("--distance", type=float, default=800.0, help="reach in metres (800)")
    profiler.add_argument("--store", help=STORE_HELP)
    _add_synthetic_option(profiler)
    profiler.set_defaults(func=cmd_profile)
    _add_map_command(commands)
    board = commands.add_parser(
        "dashboard",
        help="start the dashboard (what make run does)",
        description="Start the Streamlit dashboard with the heavy imports and boundary layers "
        "loaded before the first visitor. Options after it go to `streamlit run`, e.g. "
        "kindred-map dashboard --server.port 8502.",
    )
    board.set_defaults(func=cmd_dashboard, streamlit_options=[])
    _add_api_command(commands)

    stores = commands.add_parser(
        "store",
        help="create, migrate or copy a project store; give partners read access (PostGIS)",
        description="A store is a GeoPackage path (the default) or a PostGIS database "
        "(postgresql://user@host/db). init creates it (PostGIS: tables, boundary layers, the "
        "partner views ward_summary, deanery_summary, borough_summary and projects_public, the "
        "kindred_reader role); migrate brings an older one up to date; grant-reader makes a "
        "login that can read those views only; copy moves every record, the import log and the "
        "secret between stores, either backend to either.",
    )
    store_actions = stores.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("init", "create a store"), ("migrate", "update an existing store")):
        step = store_actions.add_parser(action, help=text)
        step.add_argument("--store", help=STORE_HELP)
    reader = store_actions.add_parser(
        "grant-reader", help="a login with SELECT on the partner views only"
    )
    reader.add_argument("name", help="role name (letters, digits, _)")
    reader.add_argument("--store", help=STORE_HELP)
    reader.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    copier = store_actions.add_parser("copy", help="copy a store to a new one, losslessly")
    copier.add_argument("source", help="GeoPackage path or DSN")
    copier.add_argument("destination", help="GeoPackage path or DSN (must be empty)")
    stores.set_defaults(func=cmd_store)

    users = commands.add_parser(
        "users",
        help="who may sign in and with what role: password accounts and organisation accounts",
        description="Manage the dashboard's sign-in. Password accounts (bcrypt hashes) live in "
        "KINDRED_MAP_USERS, default ~/.config/kindred-map/users.json, outside the repository; "
        "failed sign-ins are counted beside it (users.attempts.sqlite). People who sign in "
        "with the organisation's account (an OpenID Connect provider, README) get their role "
        "from the roles file beside it (KINDRED_MAP_ROLES, default roles.json): by e-mail "
        "address or by domain. Every change is kept in roles.audit.sqlite. Removing someone or "
        "changing their role or password takes effect at their next click. On a public map "
        "(the default) viewers need no account.",
    )
    users.add_argument("--users-file", help="credentials file (default: KINDRED_MAP_USERS)")
    users.add_argument("--roles-file", help="roles file (default: KINDRED_MAP_ROLES)")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    adder = actions.add_parser("add", help="add a password account or reset its password")
    adder.add_argument("username")
    adder.add_argument("--role", choices=["editor", "admin"], default="editor")
    adder.add_argument("--name", help="the name shown in history (default: the user name)")
    adder.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    remover = actions.add_parser("remove", help="remove a password account")
    remover.add_argument("username")
    changer = actions.add_parser("role", help="change a password account's role")
    changer.add_argument("username")
    changer.add_argument("role", choices=["editor", "admin"])
    granter = actions.add_parser(
        "grant", help="give an e-mail address or a domain a role (organisation accounts)"
    )
    granter.add_argument("subject", help="name@charity.org.uk or charity.org.uk")
    granter.add_argument("--role", choices=["viewer", "editor", "admin"], default="editor")
    revoker = actions.add_parser("revoke", help="remove an e-mail address's or domain's entry")
    revoker.add_argument("subject")
    public = actions.add_parser(
        "public", help="yes: anyone may view the map; no: viewers must sign in and be allowed"
    )
    public.add_argument("setting", choices=["yes", "no"])
    actions.add_parser("audit", help="every change of people, newest first")
    actions.add_parser("list", help="list password accounts, roles file entries and the setting")
    users.set_defaults(func=cmd_users)
    _add_stewardship_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a ValueError (a bad setting, an unreachable store...) becomes a one-line
    message and exit code 2. Without ``argv`` (the ``kindred-map`` program: this process's
    own command line), a command that ends sets Arrow's allocator (`ARROW_POOL`) first; a
    caller passing ``argv`` keeps its process's settings."""
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if argv is None and args.command not in SERVERS:  # the process's own command line
        os.environ.setdefault(*ARROW_POOL)
    if args.command == "dashboard":
        args.streamlit_options = passed_on
    elif passed_on:
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    try:
        copying = ("source", "destination") if args.command == "store" else ()
        for name in ("store", *copying):  # every store setting, resolved once, here
            if name in vars(args):
                setattr(args, name, resolve(getattr(args, name)))
        if "who" in vars(args) and args.who is None:
            # Looked up here, not as the option's default, so that building the parser
            # (--help) does not import the stewardship module and geopandas with it.
            from kindred_map.stewardship import default_who

            args.who = default_who()
        return args.func(args)
    except ValueError as error:
        print(f"kindred-map {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
