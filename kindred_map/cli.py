"""The ``kindred-map`` command line: every dashboard operation, scriptable."""

import argparse
import sys
from pathlib import Path

from kindred_map.paths import BOUNDARIES_DIR, DEFAULT_RAW_DIR


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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a ValueError becomes a one-line message and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as error:
        print(f"kindred-map {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
