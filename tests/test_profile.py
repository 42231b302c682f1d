"""Area profiles: a PDF for one ward of each borough, at most two A4 pages, rendered to PNG, with
every figure equal to `kindred-map area` and the coverage API; text shown as typed."""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from PIL import ImageFont

from kindred_map import boundaries, cli, coverage, privacy, profile, store

DISTANCE = 800
TYPES = "pantry,food_bank,warm_space"
POPPLER = {name: shutil.which(name) for name in ("pdftoppm", "pdftotext", "pdfinfo")}


def _poppler(name: str) -> str:
    if POPPLER[name] is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} (poppler-utils) is required when CI=true")
        pytest.skip(f"{name} not installed (apt-get install poppler-utils)")
    return POPPLER[name]


@pytest.fixture(scope="module")
def shipped() -> gpd.GeoDataFrame:
    return store.read_projects()


@pytest.fixture(scope="module")
def ctx(shipped) -> profile.Context:
    return profile.context(shipped, TYPES, DISTANCE)


def _one_ward_per_borough() -> list[tuple[str, str]]:
    """(borough, ward code): each borough's most populous ward, so every profile has people."""
    wards = boundaries.load("ward").sort_values(["LAD24NM", "population"], ascending=[True, False])
    first = wards.groupby("LAD24NM", sort=True).head(1)
    return list(zip(first["LAD24NM"], first["WD24CD"], strict=True))


WARDS = _one_ward_per_borough()


def _area_text(code: str, capsys) -> str:
    argv = ["area", "ward", code, "--distance", str(DISTANCE), "--types", TYPES]
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def _pdf_text(path: Path) -> str:
    run = subprocess.run(
        [_poppler("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _figure(text: str, label: str) -> float:
    found = re.search(rf"{re.escape(label)}\s+(-?[\d,.]+)", text)
    assert found, f"{label!r} not in the profile"
    return float(found.group(1).replace(",", ""))


def _domain_deciles(code: str) -> dict[str, int]:
    """Population-weighted median domain deciles of the ward's residents, from the population
    surface and the LSOA layer (independently of kindred_map.profile)."""
    people = coverage.population_points()
    people = people[people["WD24CD"] == code]
    lsoa = boundaries.load("lsoa").set_index("LSOA21CD")
    medians = {}
    for column, label in profile.DOMAINS.items():
        values = people["LSOA21CD"].map(lsoa[column]).to_numpy(dtype=float)
        weights = people["residents"].to_numpy()
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(weights[order])
        medians[label] = int(values[order][np.searchsorted(cumulative * 2, weights.sum())])
    return medians


@pytest.mark.parametrize(("borough", "code"), WARDS, ids=[b for b, _ in WARDS])
def test_ward_profile_pdf_agrees_with_kindred_map_area(
    borough, code, ctx, artifacts_dir, capsys, tmp_path
):
    path = profile.write_profile(artifacts_dir / f"profile_{code}.pdf", "ward", code, ctx)
    pages = subprocess.run(
        [_poppler("pdfinfo"), str(path)], capture_output=True, text=True, check=True
    ).stdout
    count = int(re.search(r"^Pages:\s+(\d+)", pages, flags=re.MULTILINE).group(1))
    assert 1 <= count <= 2
    prefix = artifacts_dir / f"profile_{code}"
    for old in artifacts_dir.glob(f"profile_{code}-*.png"):  # an earlier run's pages
        old.unlink()
    subprocess.run([_poppler("pdftoppm"), "-r", "50", "-png", str(path), str(prefix)], check=True)
    pngs = sorted(artifacts_dir.glob(f"profile_{code}-*.png"))
    assert len(pngs) == count and all(png.stat().st_size > 10_000 for png in pngs)

    text = _pdf_text(path)
    area = _area_text(code, capsys)
    assert f"[{code}]" in area and code in text and borough in " ".join(text.split())
    population = int(re.search(r"Population \(Census 2021\): ([\d,]+)", area)[1].replace(",", ""))
    assert _figure(text, "Population (Census 2021)") == population
    decile = int(re.search(r"IMD 2025 decile (\d+)", area)[1])
    assert _figure(text, "IMD 2025 decile (median)") == decile
    projects = int(re.search(r"^Projects: ([\d,]+)", area, flags=re.MULTILINE)[1])
    assert _figure(text, "Projects") == projects
    for label, number in re.findall(r"^  ([A-Z][^:\n]+): ([\d,]+)$", area, flags=re.MULTILINE):
        assert re.search(rf"(^|\s){re.escape(label)}\s+{number}(\s|$)", text, flags=re.MULTILINE)
    covered = re.search(
        r"Coverage: ([\d.]+)% of residents within reach; ([\d,]+) beyond reach; "
        r"gap score ([\d,]+) \(([\d,]+) per 1,000\)",
        area,
    )
    assert round(_figure(text, "Covered"), 1) == float(covered[1])
    assert _figure(text, "Beyond reach") == int(covered[2].replace(",", ""))
    assert round(_figure(text, "Gap score")) == int(covered[3].replace(",", ""))
    assert round(_figure(text, "Gap score per 1,000")) == int(covered[4].replace(",", ""))
    ranked = coverage.assess(store.read_projects(), TYPES, DISTANCE).gaps("ward")
    row = ranked.set_index("WD24CD").loc[code]
    assert _figure(text, "Gap rank") == row["gap_rank"]
    assert f"Gap rank {row['gap_rank']} of {len(ranked)}" in " ".join(text.split())
    assert _figure(text, "Within reach") == row["reached"]
    assert _figure(text, "Beyond reach, deciles 1-2") == row["beyond_reach_deciles_1_2"]
    assert _figure(text, "Median distance to nearest") == row["median_distance_m"]
    assert _figure(text, "Residents in deciles 1-2") == row["pct_deciles_1_2"]
    for label, value in _domain_deciles(code).items():
        assert re.search(rf"(^|\s){re.escape(label)}\s+{value}(\s|$)", text, flags=re.MULTILINE)


def test_nearest_projects_beyond_the_boundary_are_the_nearest(ctx):
    code = WARDS[0][1]
    data = profile.figures("ward", code, ctx)
    ward = boundaries.load("ward").to_crs(boundaries.BNG).set_index("WD24CD").geometry[code]
    others = ctx.projects[ctx.projects["WD24CD"].astype(str) != code]
    metres = shapely.distance(ward, others.geometry.to_crs(boundaries.BNG).to_numpy())
    listed = [row["metres"] for row in data["nearest"]]
    assert listed == sorted(listed) and len(listed) == profile.NEAREST_BEYOND
    assert listed[0] == round(float(np.min(metres)))


def test_profile_levels_and_batch(ctx, tmp_path):
    for level, name in (("deanery", "Wigan"), ("borough", "Knowsley")):
        page = profile.profile_html(level, name, ctx=ctx)
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "APPROXIMATE" in profile.profile_html("deanery", "Wigan", ctx=ctx)
    written = profile.write_all(tmp_path / "halton", "Halton", ctx, "html")
    wards = boundaries.load("ward")
    assert len(written) == int((wards["LAD24NM"] == "Halton").sum())
    assert all(path.suffix == ".html" and path.stat().st_size > 5_000 for path in written)


@pytest.mark.parametrize(
    ("level", "name", "message"),
    [("ward", "Nowhere", "no ward called"), ("lsoa", "x", "no profile for level")],
)
def test_bad_areas_are_named(level, name, message):
    with pytest.raises(ValueError, match=message):
        profile.resolve(level, name)


def test_shared_ward_names_ask_for_a_code():
    names = boundaries.load("ward")["WD24NM"]
    shared = names[names.duplicated()]
    if shared.empty:
        pytest.skip("no ward name is shared in the shipped layer")
    with pytest.raises(ValueError, match="give a code"):
        profile.resolve("ward", shared.iloc[0])


TRICKY = "{{7*7}} {#3} </script><b>bold</b> & ${x}"


def test_profile_prints_every_text_as_typed(shipped, tmp_path):
    # The ward with the fewest projects, so that the tricky one is within the listed 30.
    code = min((ward[1] for ward in WARDS), key=lambda c: int((shipped["WD24CD"] == c).sum()))
    tricky = shipped[shipped["location_precision"] == "exact"].head(1).copy()
    tricky["name"] = TRICKY
    tricky["organisation"] = "<img src=x onerror=alert(1)>"
    tricky["WD24CD"] = code
    tricky["synthetic"] = False
    projects = pd.concat([shipped, tricky], ignore_index=True)
    ctx = profile.context(gpd.GeoDataFrame(projects, crs=shipped.crs), None, DISTANCE)
    page = profile.profile_html("ward", code, ctx=ctx)
    assert "<b>bold</b>" not in page and "<img src=x" not in page
    assert "{{7*7}} {#3} &lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; ${x}" in page
    path = tmp_path / "tricky.pdf"
    path.write_bytes(profile.pdf_bytes(page))
    assert TRICKY in " ".join(_pdf_text(path).split())


def test_profile_leaves_synthetic_records_out_unless_asked_for(shipped):
    made_up = shipped[shipped["synthetic"].astype(bool)]
    assert len(made_up), "the sample store holds synthetic examples"
    code = str(made_up["WD24CD"].iloc[0])
    name = str(made_up["name"].iloc[0])
    default = profile.profile_html("ward", code, projects=shipped)
    included = profile.profile_html("ward", code, projects=shipped, include_synthetic=True)
    assert privacy.WARD_ONLY not in default
    assert name not in default and "ILLUSTRATIVE" not in default
    assert name in included and "ILLUSTRATIVE (synthetic)" in included


def _png(path: Path) -> bytes:
    prefix = path.with_suffix("")
    subprocess.run([_poppler("pdftoppm"), "-r", "60", "-png", str(path), str(prefix)], check=True)
    return b"".join(png.read_bytes() for png in sorted(path.parent.glob(f"{prefix.name}-*.png")))


def test_shared_printer_prints_what_weasyprint_prints_alone(every_type, tmp_path):
    """pdf_bytes keeps fonts and parsed stylesheets across pages and leaves out WeasyPrint's
    user-agent rules that a profile never uses: its pages are WeasyPrint's own, pixel for pixel,
    for a one-page and a two-page profile."""
    weasyprint = pytest.importorskip("weasyprint")
    counts = every_type.projects["WD24CD"].value_counts().drop("", errors="ignore")
    for code in (WARDS[0][1], counts.idxmax()):
        page = profile.profile_html("ward", code, ctx=every_type)
        ours, plain = tmp_path / f"ours_{code}.pdf", tmp_path / f"plain_{code}.pdf"
        profile.pdf_bytes(page)  # the shared state in use, as in a batch
        ours.write_bytes(profile.pdf_bytes(page))
        plain.write_bytes(weasyprint.HTML(string=page).write_pdf())
        assert _pages(ours) == _pages(plain) and _png(ours) == _png(plain), code


def test_profile_fetches_nothing():
    with pytest.raises(ValueError, match="fetch nothing"):
        profile.pdf_bytes('<img src="http://example.org/x.png">')


ONE_PAGE_PROJECTS = 8
"""A ward profile listing this many projects or fewer fits one page (measured on the shipped
store: all 219 wards with 0-8 projects do; before the tighter list, 5-7 took two pages, the
second holding only the method and sources)."""
DEJAVU_ASCENT, DEJAVU_DESCENT = 0.76, 0.24


@pytest.fixture(scope="module")
def every_type(shipped) -> profile.Context:
    return profile.context(shipped, None, DISTANCE)


def _pages(path: Path) -> int:
    info = subprocess.run(
        [_poppler("pdfinfo"), str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, flags=re.MULTILINE).group(1))


def _page_text(path: Path, page: int) -> str:
    return subprocess.run(
        [_poppler("pdftotext"), "-f", str(page), "-l", str(page), str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _flat(text: str) -> str:
    return " ".join(text.split())


def _check_pages(path: Path, listed: list[dict], where: str) -> None:
    """One page holding every listed project, the method and the sources when the list is up
    to ONE_PAGE_PROJECTS long; else two, the list running on to page 2, which holds the nearest
    projects, the method and the sources whole (so it is never a page of notes alone)."""
    pages = _pages(path)
    first = _flat(_page_text(path, 1))
    if len(listed) <= ONE_PAGE_PROJECTS:
        assert pages == 1, f"{where}: {len(listed)} projects took {pages} pages"
        assert "Method" in first and "Sources and attribution" in first, where
        for row in listed:
            assert _flat(row["name"]) in first, f"{where}: {row['name']!r} not on page 1"
        return
    assert pages == 2, f"{where}: {len(listed)} projects took {pages} pages"
    second = _flat(_page_text(path, 2))
    assert "Projects in this ward" in first and "Method" not in first, where
    assert _flat(listed[-1]["name"]) in second, f"{where}: the list does not run on to page 2"
    for heading in ("Nearest projects beyond the boundary", "Method", "Sources and attribution"):
        assert heading in second, f"{where}: {heading!r} not on page 2"


@pytest.mark.parametrize(("borough", "code"), WARDS)
def test_ward_profile_is_one_page_when_its_content_fits(borough, code, every_type, tmp_path):
    path = profile.write_profile(tmp_path / f"{code}.pdf", "ward", code, every_type)
    _check_pages(path, profile.figures("ward", code, every_type)["listed"], borough)


def test_pages_across_real_wards_by_number_of_projects(every_type, tmp_path):
    """Real wards of the shipped store with 0, 4, 5, 6, 7 and the most projects (every type),
    printed in one batch as `kindred-map profile --all` does (two worker processes)."""
    counts = every_type.projects["WD24CD"].value_counts()
    counts = counts[counts.index != ""]
    chosen = {n: sorted(counts.index[counts == n])[0] for n in (4, 5, 6, 7)}
    chosen[int(counts.max())] = counts.idxmax()
    projects_in = set(every_type.projects["WD24CD"])
    chosen[0] = sorted(set(boundaries.load("ward")["WD24CD"]) - projects_in)[0]
    codes = list(chosen.values())
    paths = profile.write_wards(tmp_path, codes, every_type, "pdf", workers=2)
    assert [path.name.rsplit("_", 1)[1] for path in paths] == [f"{code}.pdf" for code in codes]
    for (number, code), path in zip(chosen.items(), paths, strict=True):
        listed = profile.figures("ward", code, every_type)["listed"]
        assert len(listed) == number
        _check_pages(path, listed, f"{code} ({number} projects)")


def _text_box(span, size: float) -> tuple[float, float, float, float]:
    """A map text's box measured with the real font (Pillow, DejaVu Sans), from where its HTML
    box puts it: names centred in their box, the scale's words from its left plus a pixel; the
    baseline LABEL_BASELINE_EM below the box's top."""
    font = ImageFont.truetype("DejaVuSans.ttf", size)
    width = font.getlength(span.text or "")
    place = dict(part.split(":") for part in span.get("style").split(";"))
    left, top, wide = (float(place[key].removesuffix("px")) for key in ("left", "top", "width"))
    x = left + (wide - width) / 2 if span.get("class") == "nbl" else left + 1
    y = top + profile.LABEL_BASELINE_EM * size
    return x, y - DEJAVU_ASCENT * size, x + width, y + DEJAVU_DESCENT * size


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize(("borough", "code"), WARDS)
def test_locator_names_never_touch_the_scale_bar_or_leave_the_map(borough, code, every_type):
    locator = ET.fromstring(profile.figures("ward", code, every_type)["map"])
    svg = locator.find("{http://www.w3.org/2000/svg}svg")
    width = float(svg.get("width"))
    rect = svg.find(".//{http://www.w3.org/2000/svg}rect[@class='sb']")
    x, y = float(rect.get("x")), float(rect.get("y"))
    bar_box = (x, y, x + float(rect.get("width")), y + float(rect.get("height")))
    words_box = _text_box(locator.find("span[@class='sbw']"), profile.LABEL_PX)
    names = [_text_box(span, profile.LABEL_PX) for span in locator.findall("span[@class='nbl']")]
    assert names, f"{borough}: the locator names some neighbours"
    for name in names:
        assert not _overlap(name, bar_box) and not _overlap(name, words_box), borough
        assert name[0] >= 0 and name[2] <= width, f"{borough}: a name is cut at the map's edge"
    for i, first in enumerate(names):
        assert not any(_overlap(first, other) for other in names[i + 1 :]), borough


def test_no_project_wording_says_what_was_chosen(shipped):
    empty = min(WARDS, key=lambda ward: int((shipped["WD24CD"] == ward[1]).sum()))[1]
    every = profile.profile_html("ward", empty, projects=shipped.iloc[0:0])
    assert "No project is recorded here." in every and "chosen types" not in every
    some = profile.profile_html("ward", empty, projects=shipped.iloc[0:0], types="pantry")
    assert "No project of the chosen types (Food pantry) is recorded here." in some


def test_a_batch_needs_a_worker(every_type, tmp_path):
    with pytest.raises(ValueError, match="workers must be 1 or more"):
        profile.write_wards(tmp_path, [WARDS[0][1]], every_type, "pdf", workers=0)
