"""The printable map (`kindred-map map`): one-page A4/A3 PDF and PNG of a page's view, with the
title, every legend entry, the attribution and the notes; home-run projects at their ward's
centre; the page's link read strictly."""

import io
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from PIL import Image

from kindred_map import boundaries, cli, export, figures, printmap, privacy, search, store
from kindred_map.classing import colour_classes, type_legend
from kindred_map.view import View, shown_projects

GENERATED = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} (poppler-utils) is required when CI=true")
        pytest.skip(f"{name} not installed (apt-get install poppler-utils)")
    return path


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return done.stdout


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def shipped():
    return store.read_projects()


@pytest.fixture(scope="module")
def gap_map(tmp_path_factory):
    """`kindred-map map --shade ward --by gap_score` on the shipped store, as PDF and PNG."""
    folder = tmp_path_factory.mktemp("printmap")
    pdf, png = folder / "gaps.pdf", folder / "gaps.png"
    argv = ["map", "--shade", "ward", "--by", "gap_score", "-o", str(pdf), "-o", str(png)]
    assert cli.main(argv) == 0
    return pdf, png


def test_gap_map_is_one_a4_landscape_page_with_title_legend_and_attribution(gap_map, shipped):
    pdf, png = gap_map
    info = _run(_tool("pdfinfo"), str(pdf))
    assert "Pages:           1" in info
    assert "841.89 x 595.276 pts (A4)" in info  # landscape
    text = _words(_run(_tool("pdftotext"), str(pdf), "-"))
    view = View(layer="ward", measure="gap_score")
    assert "Kindred Map: Wards shaded by gap score (need-weighted people beyond reach)" in text
    shown = shown_projects(shipped, view)
    summary = figures.coverage_summary(shipped, (), view.distance)
    table = figures.area_figures("ward", shown, summary["areas"]["ward"])
    _, classes = colour_classes(table["gap_score"], "gap_score")
    assert len(classes) >= 3
    for entry in classes:
        assert entry["label"] in text
    for entry in type_legend(shown):
        assert f"{entry['label']} ({entry['count']:,})" in text
    for line in export.attribution(shown):
        assert _words(line) in text, line
    assert "Licences:" in text and "shared/" not in text  # no internal path, in a key either
    assert re.search(r"\b0 \d+ km\b|\b\d+ km\b", text)  # the scale bar
    assert "Deanery boundaries are approximate" not in text  # wards: no deanery shows
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = (int.from_bytes(png.read_bytes()[16 + 4 * i : 20 + 4 * i]) for i in (0, 1))
    assert abs(width - 1754) <= 1 and abs(height - 1240) <= 1  # A4 landscape at 150 dpi


def test_deanery_map_carries_the_approximate_note_and_a3_is_a3(tmp_path, shipped):
    view = printmap.view_from_link("layer=deanery&measure=imd_decile")
    payload = printmap.map_bytes(shipped, view, "pdf", paper="A3", generated=GENERATED)
    path = tmp_path / "deaneries.pdf"
    path.write_bytes(payload)
    assert "1190.55 x 841.89 pts (A3)" in _run(_tool("pdfinfo"), str(path))
    text = _words(_run(_tool("pdftotext"), str(path), "-"))
    assert _words(figures.DEANERY_NOTE) in text
    assert "9 March 2026" in text
    for decile in range(1, 11):
        assert f" {decile} " in f" {text} "


def test_home_run_projects_are_drawn_at_their_ward_centre_only(store_file):
    projects = store.read_projects(store_file)
    home = projects[privacy.is_ward_only(projects).to_numpy()]
    assert len(home) == 1
    secret = home.to_crs(boundaries.BNG).geometry.iloc[0]
    public = privacy.public_records(home).to_crs(boundaries.BNG).geometry.iloc[0]
    assert secret.distance(public) > 50  # the fixture's home is away from its ward's centre
    fig = printmap.figure(projects, View(examples=True), generated=GENERATED)
    drawn = np.vstack(
        [
            artist.get_offsets()
            for artist in fig.axes[0].collections
            if isinstance(artist, PathCollection) and len(artist.get_offsets())
        ]
    )
    assert np.min(np.hypot(*(drawn - [secret.x, secret.y]).T)) > 1
    assert np.min(np.hypot(*(drawn - [public.x, public.y]).T)) < 1


def test_the_link_is_read_strictly_and_options_beat_it():
    link = "http://localhost:8501/?layer=deanery&measure=per_10k&boroughs=Wigan&types=pantry"
    view = printmap.view_from_link(link, {"layer": "ward"})
    assert (view.layer, view.measure, view.types) == ("ward", "per_10k", ("pantry",))
    assert view.boroughs == ("E08000010",)
    assert printmap.view_from_link("?gaps=1").gaps
    with pytest.raises(ValueError, match="measure 'gap'"):
        printmap.view_from_link("measure=gap")
    with pytest.raises(ValueError, match="unknown borough 'Atlantis'"):
        printmap.view_from_link("", {"boroughs": "Atlantis"})


def test_cli_refuses_other_formats_and_writes_nothing(tmp_path, capsys):
    assert cli.main(["map", "-o", str(tmp_path / "map.svg")]) == 2
    assert ".pdf or .png" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_names_are_drawn_as_typed_not_as_math_text(shipped):
    view = View(layer="borough")
    fig = printmap.figure(shipped, view, generated=GENERATED)
    texts = [t for ax in fig.axes for t in ax.texts] + list(fig.texts)
    assert texts and all(not t.get_parse_math() for t in texts)


def _dark_share(image: np.ndarray, ax, centre, radius_m: float, scale: float) -> float:
    """The share of 90 points on a circle (EPSG:27700 metres around ``centre``) that are dark
    in the PNG ``image`` (drawn at ``scale`` pixels per display unit), each looked at with a
    2-pixel margin."""
    dark = 0
    for angle in np.radians(np.arange(0, 360, 4)):
        point = (centre[0] + radius_m * np.cos(angle), centre[1] + radius_m * np.sin(angle))
        x, y = ax.transData.transform(point) * scale
        row, column = int(round(image.shape[0] - y)), int(round(x))
        patch = image[row - 2 : row + 3, column - 2 : column + 3]
        dark += bool(patch.max(axis=2).min() < 90)
    return dark / 90


def test_postcode_search_is_drawn_as_its_circle_and_said_in_the_legend(tmp_path, shipped):
    pdf = tmp_path / "search.pdf"
    argv = ["map", "--postcode", "L1 8JQ", "--distance", "1000", "-o", str(pdf)]
    assert cli.main(argv) == 0
    text = _words(_run(_tool("pdftotext"), str(pdf), "-"))
    view = printmap.view_from_link("postcode=L1+8JQ&distance=1000")
    found = search.find_postcode("L1 8JQ")
    within = int((search.distances_m(shown_projects(shipped, view), found) <= 1000).sum())
    assert within > 0
    assert "Postcode search" in text
    assert f"Dashed circle: {within:,} project(s) within 1,000 m of L1 8JQ (straight line)" in text
    fig = printmap.figure(shipped, view, generated=GENERATED)
    image = np.asarray(Image.open(io.BytesIO(printmap.render(fig, "png"))).convert("RGB"))
    ax, scale = fig.axes[0], printmap.PNG_DPI / fig.dpi
    centre = (found["easting"], found["northing"])
    ring = _dark_share(image, ax, centre, 1000, scale)
    assert ring > 0.5, f"the reach circle is not drawn ({ring:.0%} of it dark)"
    for off in (850, 1150):  # off the ring: the areas' colours, not the dashed line
        assert _dark_share(image, ax, centre, off, scale) < ring - 0.3
    assert _dark_share(image, ax, centre, 1, scale) == 1.0  # the centre's dot
    west, south, east, north = ax.get_xlim() + ax.get_ylim()
    assert west < centre[0] - 1000 and east > centre[0] + 1000  # the map fits the circle
    missing = printmap.figure(shipped, printmap.view_from_link("postcode=ZZ9+9ZZ"))
    texts = _words(" ".join(t.get_text() for a in missing.axes for t in a.texts))
    assert "Postcode search 'ZZ9 9ZZ': not found, no circle drawn." in texts
