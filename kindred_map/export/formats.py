"""One call per format: export_bytes, the GeoPackage, the council pack, files on disk."""

import io
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from kindred_map import (
    boundaries,
    files,
    oruk,
    privacy,
)
from kindred_map.export.htmlmap import html_map
from kindred_map.export.tables import (
    LEVELS,
    area_summary,
    project_table,
    public_project_table,
    reach_distance,
    real_projects,
)
from kindred_map.export.words import GPKG_NAME, about, pack_settings, readme_text
from kindred_map.export.writers import (
    _with_columns,
    about_text,
    csv_bytes,
    geojson_bytes,
    write_geopackage,
)

FORMATS = ("geojson", "gpkg", "csv", "html", "pack", "oruk", "oruk-csv")
"""``oruk``: Open Referral UK JSON; ``oruk-csv``: its zipped CSV package (`kindred_map.oruk`)."""
WHATS = ("projects", *LEVELS, "all")
"""What to export: projects, one area summary, or all of them (GeoPackage and pack only)."""


def _check_choice(fmt: str, what: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if what not in WHATS:
        raise ValueError(f"unknown export {what!r}; choose one of {', '.join(WHATS)}")
    if fmt in ("oruk", "oruk-csv") and what != "projects":
        raise ValueError(
            "Open Referral UK exports hold projects (as services): use --what projects"
        )
    if fmt == "html" and what not in ("projects", "all"):
        raise ValueError("the HTML map shows projects: use --what projects")
    if fmt in ("geojson", "csv") and what == "all":
        raise ValueError(f"a {fmt} file holds one table: choose --what projects, ward, ...")


def table_for(
    projects: gpd.GeoDataFrame,
    what: str,
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    include_synthetic: bool = False,
) -> gpd.GeoDataFrame:
    """The table an export of ``what`` writes: masked projects or an area summary."""
    if what == "projects":
        return project_table(projects, include_synthetic)
    figures = (coverage or {}).get(what)
    return area_summary(projects, what, figures, area_filters, include_synthetic)


def _layer_name(what: str) -> str:
    return "projects" if what == "projects" else f"{what}_summary"


def geopackage(
    projects: gpd.GeoDataFrame,
    layers=("projects", *LEVELS),
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """A GeoPackage (EPSG:27700) with the chosen layers: projects and ward/deanery/borough
    summaries (named ``<level>_summary``), an ``about`` table and ``gpkg_data_columns``;
    ``change`` (level -> `kindred_map.change` table with its areas) adds ``change_<level>``."""
    projects = real_projects(projects, include_synthetic)
    frames = {}
    for what in layers:
        if what not in ("projects", *LEVELS):
            raise ValueError(f"no GeoPackage layer {what!r}; choose from projects, {LEVELS}")
        frames[_layer_name(what)] = table_for(
            projects, what, coverage=coverage, area_filters=area_filters, include_synthetic=True
        )
    frames |= {f"change_{level}": frame for level, frame in (change or {}).items()}
    facts = about(projects, ", ".join(frames), parameters, generated, settings)
    return _geopackage_bytes(frames, facts)


def _geopackage_bytes(frames: Mapping[str, gpd.GeoDataFrame], facts: Mapping) -> bytes:
    """The GeoPackage of these layers (name -> table) and ``about`` facts, as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / GPKG_NAME
        write_geopackage(path, frames, facts)
        return path.read_bytes()


def export_bytes(
    projects: gpd.GeoDataFrame,
    fmt: str,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """The export file as bytes (for a download button).

    ``fmt``: one of FORMATS; ``what``: one of WHATS ("all" = projects and every summary, for
    a GeoPackage; a pack always holds everything; the HTML map always shows projects).
    ``projects`` are already filtered (`filters.filter_projects`); ``area_filters`` are the
    same boroughs/deaneries/wards, to keep the summaries to those areas. ``coverage`` maps a
    level to its per-area figures (`coverage_figures`). ``parameters`` (filters, distance, in
    words), ``generated`` (default now, UTC) and ``settings`` (owner, contact, pack licence:
    `pack_settings`) are written into the file's metadata. Synthetic records are left out
    unless ``include_synthetic``; then every file says so in its first lines. ``change``
    (level -> change table with areas, `kindred_map.change`) adds the change tables to a
    GeoPackage or pack; other formats refuse it."""
    _check_choice(fmt, what)
    if change and fmt not in ("gpkg", "pack"):
        raise ValueError(f"change tables go in a gpkg or pack export, not {fmt}")
    projects = real_projects(projects, include_synthetic)
    tables = {"coverage": coverage, "area_filters": area_filters}
    words = {"parameters": parameters, "generated": generated, "settings": settings}
    if fmt == "pack":
        return council_pack(projects, **tables, **words, include_synthetic=True, change=change)
    if fmt in ("oruk", "oruk-csv"):
        moment = generated or datetime.now(UTC)
        facts = about(projects, "Open Referral UK services", parameters, moment, settings)
        return oruk.export_bytes(project_table(projects, True), facts, fmt, moment)
    if fmt == "html":
        return html_map(projects, **tables, **words, include_synthetic=True)
    if fmt == "gpkg":
        layers = ("projects", *LEVELS) if what == "all" else (what,)
        return geopackage(
            projects, layers, **tables, **words, include_synthetic=True, change=change
        )
    table = table_for(projects, what, **tables, include_synthetic=True)
    if fmt == "csv":
        return csv_bytes(table)
    id_column = "id" if what == "projects" else boundaries.LAYERS[what]["key"]
    facts = about(projects, what, parameters, generated, settings)
    return geojson_bytes(table, id_column, _with_columns(facts, _layer_name(what), table))


def csv_about_text(
    projects: gpd.GeoDataFrame,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
) -> str:
    """The sidecar text for a CSV exported alone (the CSV itself stays clean for Excel): the
    README with the CSV's data dictionary."""
    projects = real_projects(projects, include_synthetic)
    table = table_for(
        projects, what, coverage=coverage, area_filters=area_filters, include_synthetic=True
    )
    summaries = {} if what == "projects" else {what: table}
    contents = {
        f"{what}.csv": f"{what} table, UTF-8 with BOM, one header row; text that a spreadsheet "
        "would run as a formula (starting = + - @) begins with '"
    }
    covered = tuple(level for level in summaries if (coverage or {}).get(level) is not None)
    return readme_text(
        projects,
        contents,
        parameters,
        generated,
        summaries,
        covered,
        settings,
        reach_distance(coverage),
        {what: table},
        coverage,
    )


def council_pack(
    projects: gpd.GeoDataFrame,
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> bytes:
    """A .zip for a council partner: projects and ward, deanery and borough summaries as
    GeoJSON and CSV, a GeoPackage of them all, the HTML map and a README (method, layers,
    owner, licences, attribution, data dictionary); with ``change``, the change tables too
    (``change_<level>.csv`` and layers of the GeoPackage).

    Every table is made once, from one public view of the projects (`privacy.public_records`),
    and the GeoPackage and the map are made of those same tables."""
    projects = real_projects(projects, include_synthetic)
    moment = generated or datetime.now(UTC)
    settings = pack_settings() if settings is None else settings
    words = {"parameters": parameters, "generated": moment, "settings": settings}
    public = privacy.public_records(projects)
    table = public_project_table(public)
    summaries = {
        level: area_summary(
            public,
            level,
            (coverage or {}).get(level),
            area_filters,
            include_synthetic=True,
            masked=True,
        )
        for level in LEVELS
    }
    facts = about(projects, "projects", parameters, moment, settings)
    parts = {
        "projects.geojson": (
            geojson_bytes(table, "id", _with_columns(facts, "projects", table)),
            f"{len(table)} projects, RFC 7946 GeoJSON (WGS84), for web maps and QGIS",
        ),
        "projects.csv": (csv_bytes(table), "the same projects as a spreadsheet (UTF-8)"),
    }
    covered = tuple(level for level in LEVELS if (coverage or {}).get(level) is not None)
    for level, frame in summaries.items():
        figures = "with coverage and gap figures" if level in covered else "without coverage"
        key = boundaries.LAYERS[level]["key"]
        level_facts = about(projects, f"{level} summary", parameters, moment, settings)
        parts[f"{level}.geojson"] = (
            geojson_bytes(frame, key, _with_columns(level_facts, _layer_name(level), frame)),
            f"{len(frame)} {level} areas with their summary figures ({figures}), RFC 7946 "
            "GeoJSON (WGS84), MultiPolygon",
        )
        parts[f"{level}_summary.csv"] = (
            csv_bytes(frame),
            f"the same {level} figures as a spreadsheet (no shapes)",
        )
    changes = {f"change_{level}": frame for level, frame in (change or {}).items()}
    for name, frame in changes.items():
        parts[f"{name}.csv"] = (
            csv_bytes(pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))),
            f"change between two dates per {name.removeprefix('change_')} "
            f"({frame.attrs.get('dates', 'see Parameters')}), as a spreadsheet",
        )
    layers = {"projects": table} | {_layer_name(lv): frame for lv, frame in summaries.items()}
    layers |= changes
    gpkg_layers = ", ".join(layers)
    parts[GPKG_NAME] = (
        _geopackage_bytes(layers, about(projects, gpkg_layers, parameters, moment, settings)),
        f"GeoPackage in British National Grid (EPSG:27700): layers {gpkg_layers} "
        "(MultiPolygon), an about table and column definitions (gpkg_data_columns); opens in "
        "QGIS and ArcGIS",
    )
    parts["map.html"] = (
        html_map(
            projects,
            **words,
            include_synthetic=True,
            coverage=coverage,
            summaries=summaries,
            table=table,
        ),
        "a one-file map: the wards, deaneries and boroughs shaded by the summaries' figures, "
        "with their names, a legend and the projects; open it in any browser, works offline",
    )
    contents = {"README.txt": "this file"} | {name: text for name, (_, text) in parts.items()}
    readme = readme_text(
        projects,
        contents,
        parameters,
        moment,
        summaries,
        covered,
        settings,
        reach_distance(coverage),
        {"projects": table} | summaries | changes,
        coverage,
    )
    members = {"README.txt": readme.encode("utf-8")} | {n: b for n, (b, _) in parts.items()}
    buffer = io.BytesIO()
    stamp = moment.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as pack:
        for name, payload in members.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100000 | files.file_mode()) << 16
            pack.writestr(info, payload, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


TABLE_SUFFIXES = (".geojson", ".gpkg", ".csv")


def write_table(
    frame: pd.DataFrame,
    path: Path,
    layer: str,
    projects: pd.DataFrame | None = None,
    parameters: Mapping[str, object] | None = None,
    attribution_lines: list[str] | None = None,
) -> Path:
    """Write one table by the path's extension, atomically (umask permissions), with the
    attribution every export carries: .geojson (RFC 7946), .gpkg (EPSG:27700, plus an ``about``
    table) or .csv (no geometry; UTF-8 with BOM). For the CLI's join, gaps and cluster outputs.
    ``projects`` (the records the table came from) adds their sources' attribution, and a
    warning first if they hold synthetic records; a CSV gets it all in a
    ``<name>_about.txt`` beside it. ``attribution_lines``: more lines the table's own sources
    need (e.g. IoD 2019). No masking or selection happens here: pass tables fit to leave the
    tool."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"output must end in .geojson, .gpkg or .csv, not {path.name!r}")
    has_geometry = isinstance(frame, gpd.GeoDataFrame)
    if suffix != ".csv" and not has_geometry:
        raise ValueError(f"{path.name}: this output has no geometry; write a .csv instead")
    if projects is None:
        projects = pd.DataFrame({"source": [], "location_precision": [], "synthetic": []})
    facts = about(projects, layer, parameters)
    extra = [line for line in attribution_lines or [] if line not in facts["attribution"]]
    facts["attribution"] = [*facts["attribution"], *extra]
    if suffix == ".csv":
        files.write_bytes(path, csv_bytes(frame))
        sidecar = path.with_name(f"{path.stem}_about.txt")
        files.write_bytes(sidecar, about_text(_with_columns(facts, layer, frame)).encode("utf-8"))
    elif suffix == ".geojson":
        files.write_bytes(path, geojson_bytes(frame, None, _with_columns(facts, layer, frame)))
    else:
        files.write_with(path, lambda temporary: write_geopackage(temporary, {layer: frame}, facts))
    return path


def write_export(
    path: Path,
    projects: gpd.GeoDataFrame,
    fmt: str,
    what: str = "projects",
    *,
    coverage: Mapping[str, pd.DataFrame] | None = None,
    area_filters: Mapping[str, object] | None = None,
    parameters: Mapping[str, object] | None = None,
    generated: datetime | None = None,
    settings: Mapping[str, str] | None = None,
    include_synthetic: bool = False,
    change: Mapping[str, gpd.GeoDataFrame] | None = None,
) -> list[Path]:
    """Write the export to ``path`` (atomically, with the umask's permissions); a CSV gets a
    ``<name>_about.txt`` beside it with the attribution, licences and column definitions.
    ``change``: see `export_bytes`. Returns the files written."""
    path = Path(path)
    if change and fmt not in ("gpkg", "pack"):
        raise ValueError(f"change tables go in a gpkg or pack export, not {fmt}")
    options = {
        "coverage": coverage,
        "area_filters": area_filters,
        "parameters": parameters,
        "generated": generated or datetime.now(UTC),
        "settings": pack_settings() if settings is None else settings,
        "include_synthetic": include_synthetic,
    }
    files.write_bytes(path, export_bytes(projects, fmt, what, **options, change=change))
    written = [path]
    if fmt == "csv":
        sidecar = path.with_name(f"{path.stem}_about.txt")
        files.write_bytes(sidecar, csv_about_text(projects, what, **options).encode("utf-8"))
        written.append(sidecar)
    return written


def write_joined(projects: gpd.GeoDataFrame, path: Path) -> Path:
    """Write joined projects as .geojson (RFC 7946), .gpkg (EPSG:27700) or .csv, attributed.

    ``ward_only`` projects go through `kindred_map.privacy.public_records`: they are written
    at their ward's centre, without address, coordinates, LSOA or full postcode. (Here, not in
    `join`: joining comes before the store, writing files after it.)
    """
    return write_table(privacy.public_records(projects), path, "projects", projects)
