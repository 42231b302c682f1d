"""The ``kindred-map`` command line: every dashboard operation, scriptable."""

import argparse
import sys
from pathlib import Path

from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR, DEFAULT_STORE


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


def cmd_gaps(args: argparse.Namespace) -> int:
    from kindred_map import coverage, export, store

    projects = store.read_projects(Path(args.store))
    result = coverage.assess(projects, args.types, args.distance)
    parameters = {"types": args.types or "all", "distance_m": args.distance, "by": args.by}
    print(result.headline_text())
    ranked = result.gaps(args.by)
    print(coverage.gaps_text(ranked, args.by, args.top))
    if args.out:
        out = Path(args.out)
        table = ranked if out.suffix.lower() == ".csv" else coverage.area_layer(ranked, args.by)
        export.write_table(table, out, f"gaps_{args.by}", projects, parameters)
        print(f"wrote {len(ranked)} {args.by} rows to {out}")
    return 0


def cmd_clusters(args: argparse.Namespace) -> int:
    from kindred_map import clusters, export, store

    projects = store.read_projects(Path(args.store))
    parameters = {
        "types": args.types or "all",
        "eps_m": args.eps,
        "min_samples": args.min_samples,
        "permutations": args.permutations,
        "seed": args.seed,
        "alpha": args.alpha,
    }
    hulls = clusters.point_clusters(projects, args.types, args.eps, args.min_samples)
    spots = clusters.hot_spots(projects, args.types, args.permutations, args.seed, args.alpha)
    print(clusters.summary_text(hulls, spots))
    if args.out:
        export.write_table(hulls, Path(args.out), "clusters", projects, parameters)
        print(f"wrote {len(hulls)} cluster hull(s) to {args.out}")
    if args.hot_spots:
        export.write_table(spots, Path(args.hot_spots), "hot_spots", projects, parameters)
        print(f"wrote {len(spots)} wards to {args.hot_spots}")
    return 0


def _add_reading_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help="read a record field from a named column (repeatable), e.g. name='Project title'",
    )
    command.add_argument("--sheet", help="XLSX sheet or GeoPackage layer (default: the first)")


def _print_report(report, csv_path: str | None) -> None:
    from kindred_map import report as reports

    print(reports.to_text(report))
    if csv_path:
        Path(csv_path).write_bytes(reports.to_csv_bytes(report))
        print(f"report written to {csv_path}")


def cmd_import(args: argparse.Namespace) -> int:
    from kindred_map import store

    mapping = _parse_mapping(args.map)
    report = store.import_file(Path(args.file), Path(args.store), mapping, args.sheet)
    _print_report(report, args.report_csv)
    if report.imported == 0 or (args.strict and report.rejected):
        return 1
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from kindred_map import join

    projects, report = join.join_file(Path(args.file), _parse_mapping(args.map), args.sheet)
    _print_report(report, args.report_csv)
    if projects.empty:
        print("nothing written: no row could be placed", file=sys.stderr)
        return 1
    written = join.write_joined(projects, Path(args.out))
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


def cmd_export(args: argparse.Namespace) -> int:
    from kindred_map import export, filters, store

    chosen = {
        "types": args.types,
        "boroughs": _joined(args.borough),
        "deaneries": _joined(args.deanery),
        "wards": _joined(args.ward),
        "imd_deciles": args.imd_decile,
        "include_synthetic": not args.no_synthetic,
    }
    everything = store.read_projects(Path(args.store))
    projects = filters.filter_projects(everything, **chosen)
    described = filters.describe_filters(**chosen) or {"Filters": "none (every project)"}
    parameters = {"Project store": Path(args.store).name, **described}
    figures = None
    if args.distance is not None:
        reachable = filters.filter_projects(
            everything, types=args.types, include_synthetic=not args.no_synthetic
        )
        figures = export.coverage_figures(reachable, args.types, args.distance)
        parameters["Reach distance"] = (
            f"{args.distance:g} m, straight line, from every project of the chosen types "
            "(area filters do not apply: people near a border may be reached from across it; "
            "home-run projects count at their ward's centre)"
        )
    what = args.what or ("all" if args.format in ("gpkg", "pack") else "projects")
    written = export.write_export(
        Path(args.out),
        projects,
        args.format,
        what,
        coverage=figures,
        area_filters=chosen,
        parameters=parameters,
    )
    if projects.empty:
        print("warning: no project matches the filters", file=sys.stderr)
    print(f"exported {len(projects)} of {len(everything)} projects ({what}, {args.format})")
    for path in written:
        print(f"written to {path}")
    return 0


def cmd_nearest(args: argparse.Namespace) -> int:
    from kindred_map import search, store
    from kindred_map import view as views

    view = views.View(types=tuple(views.split_types(args.types)))
    shown = views.shown_projects(store.read_projects(Path(args.store)), view)
    point = search.find_postcode(args.postcode)
    nearest = search.nearest_projects(shown, point, args.distance)
    print(search.nearest_text(point, nearest, args.distance, args.limit))
    return 0


def cmd_area(args: argparse.Namespace) -> int:
    from kindred_map import figures, store, tables
    from kindred_map import view as views

    view = views.View(types=tuple(views.split_types(args.types)))
    projects = store.read_projects(Path(args.store))
    shown = views.shown_projects(projects, view)
    code = figures.resolve_area(args.level, args.area)
    gaps = None
    if args.distance is not None:
        gaps = figures.coverage_summary(projects, view.types, args.distance)["areas"]
    numbers = figures.area_figures(args.level, shown, gaps[args.level] if gaps else None)
    print(tables.area_panel_text(tables.area_panel(args.level, code, shown, numbers)))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Streamlit in this process, after the imports and layer loads the first page needs.

    streamlit_folium is left for app.py to import: a component declared before Streamlit's
    runtime starts is not registered, and its frame would not load."""
    from streamlit.web import cli as streamlit_cli

    from kindred_map import mapview
    from kindred_map.paths import PROJECT_ROOT

    mapview.warm_up()
    command = ["run", str(PROJECT_ROOT / "app.py"), *args.streamlit_options]
    return streamlit_cli.main(command, standalone_mode=False) or 0


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
    gaps.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    gaps.add_argument("--distance", type=float, default=800.0, help="reach in metres (800)")
    gaps.add_argument("--by", choices=["ward", "deanery", "borough"], default="ward")
    gaps.add_argument("--top", type=int, default=10, help="gaps to print (10)")
    gaps.add_argument("-o", "--out", help="write the ranked table (.geojson, .gpkg, .csv)")
    gaps.add_argument("--store", default=str(DEFAULT_STORE), help="project store")
    gaps.set_defaults(func=cmd_gaps)

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
    cluster.add_argument("--store", default=str(DEFAULT_STORE), help="project store")
    cluster.set_defaults(func=cmd_clusters)
    importer = commands.add_parser(
        "import",
        help="import a project spreadsheet into the store",
        description="Read a CSV, XLSX, GeoJSON or GeoPackage of projects, place each one "
        "offline, join it to ward, deanery, borough and LSOA, and upsert it into the store "
        "(by id; re-importing the same file changes nothing). Prints the import report. "
        "Exit code 0: imported (rejected rows are listed); 1: no row could be imported, or "
        "--strict and a row was rejected; 2: the file or store could not be used.",
    )
    importer.add_argument("file", help="the project file")
    importer.add_argument("--store", default=str(DEFAULT_STORE), help="project store (GeoPackage)")
    _add_reading_options(importer)
    importer.add_argument("--report-csv", metavar="PATH", help="also write the report as CSV")
    importer.add_argument("--strict", action="store_true", help="fail if any row is rejected")
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
        "a one-file offline HTML map, or a council pack (.zip of all of them with a README). "
        "Home-run (ward_only) projects leave only at their ward's centre.",
    )
    exporter.add_argument(
        "--format", required=True, choices=["geojson", "gpkg", "csv", "html", "pack"]
    )
    exporter.add_argument(
        "--what",
        choices=["projects", "ward", "deanery", "borough", "all"],
        help="what to export (default: projects; all layers for gpkg and pack)",
    )
    exporter.add_argument("--types", help="TYPE[,TYPE] (default: every type)")
    exporter.add_argument("--borough", action="append", help="borough name or code (repeatable)")
    exporter.add_argument("--deanery", action="append", help="deanery name or id (repeatable)")
    exporter.add_argument("--ward", action="append", help="ward name or code (repeatable)")
    exporter.add_argument("--imd-decile", help="IMD 2025 decile(s) of the project's LSOA, e.g. 1,2")
    exporter.add_argument(
        "--no-synthetic", action="store_true", help="leave out illustrative (synthetic) records"
    )
    exporter.add_argument(
        "--distance", type=float, help="add coverage and gap figures for this reach in metres"
    )
    exporter.add_argument("--store", default=str(DEFAULT_STORE), help="project store")
    exporter.add_argument("-o", "--out", required=True, help="output file")
    exporter.set_defaults(func=cmd_export)

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
    nearest.add_argument("--store", default=str(DEFAULT_STORE), help="project store")
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
    area.add_argument("--store", default=str(DEFAULT_STORE), help="project store")
    area.set_defaults(func=cmd_area)
    board = commands.add_parser(
        "dashboard",
        help="start the dashboard (what make run does)",
        description="Start the Streamlit dashboard with the heavy imports and boundary layers "
        "loaded before the first visitor. Options after it go to `streamlit run`, e.g. "
        "kindred-map dashboard --server.port 8502.",
    )
    board.set_defaults(func=cmd_dashboard, streamlit_options=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a ValueError becomes a one-line message and exit code 2."""
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if args.command == "dashboard":
        args.streamlit_options = passed_on
    elif passed_on:
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    try:
        return args.func(args)
    except ValueError as error:
        print(f"kindred-map {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
