"""The map page as issue 23 asks, in Chromium at 1440x1000 and 390x844: the map first and
large, the region filling it with no control over it, place labels that never collide,
tooltips inside the map, no serious or critical axe-core violation on any page or inside the
map's frame, and every option of the map view drawn without an error."""

import itertools
import re
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from streamlit_waits import rerun_by, wait_page_complete

from kindred_map import figures
from kindred_map import view as views
from kindred_map.schema import project_types

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 120_000
STEP_TIMEOUT_MS = 60_000
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
BLOCKING = {"serious", "critical"}

APPLIED_JS = """(s) => { const f = document.querySelector(s); const km = f && f.contentWindow.KM;
    return Boolean(km && km.current && km.current.applied && km.current.labelRuns); }"""

SETTLED_JS = """([s, zoom]) => {
    // The map at ``zoom`` (any when null) with its clusters and labels placed.
    const f = document.querySelector(s); const km = f && f.contentWindow.KM;
    if (!km || !km.current || !km.current.applied) return false;
    const state = km.current, map = f.contentWindow.map;
    if (zoom !== null && Math.abs(map.getZoom() - zoom) > 1e-6) return false;
    return !state.projectLayer._inZoomAnimation && !state.clustering && !state.labelsQueued
        && !map._animatingZoom;
}"""

IDLE_JS = """() => !document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]')
    && document.querySelectorAll('[data-stale="true"]').length === 0"""


GEOMETRY_JS = """(s) => {
    // Boxes in the map frame's pixels: visible labels, cluster badges and markers, controls;
    // the region's box at this view; and the controls that lie over a shaded area or outline.
    const win = document.querySelector(s).contentWindow, doc = win.document, map = win.map;
    const box = (node) => { const r = node.getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom]; };
    const visible = (b) => b[2] > b[0] && b[3] > b[1];
    const all = (css) => Array.from(doc.querySelectorAll(css)).map(box).filter(visible);
    const labels = Array.from(doc.querySelectorAll('.km-place'))
        .filter((n) => n.style.display !== 'none')
        .map((n) => ({name: n.textContent, box: box(n)}));
    const b = win.KM.current.opts.bounds;
    const sw = map.latLngToContainerPoint(b[0]), ne = map.latLngToContainerPoint(b[1]);
    const size = map.getSize();
    const over = [];
    for (const control of doc.querySelectorAll('.leaflet-control-layers, .km-legend')) {
        const [x0, y0, x1, y1] = box(control);
        let hit = false;
        for (let y = y0 + 1; y < y1 && !hit; y += 4) {
            for (let x = x0 + 1; x < x1 && !hit; x += 4) {
                hit = doc.elementsFromPoint(x, y).some(
                    (e) => e.tagName === 'path' && e.closest('.leaflet-overlay-pane'));
            }
        }
        if (hit) over.push(control.className);
    }
    return {
        labels: labels,
        clusters: all('.km-cluster'),
        markers: all('.leaflet-kmProjects-pane path'),
        controls: all('.leaflet-control'),
        map: box(doc.querySelector('.leaflet-container')),
        fill: [Math.abs(ne.x - sw.x) / size.x, Math.abs(sw.y - ne.y) / size.y],
        over: over,
        zoom: map.getZoom(),
    };
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture(scope="module")
def map_url(viewer_url) -> str:
    return viewer_url


@pytest.fixture
def new_visitor(browser, network):
    """new_visitor(viewport) -> a page in a fresh context: no cache, as a first visit has (every
    request routed, so recorded in `network` and any to another host aborted)."""
    contexts = []

    def make(size: dict):
        context = browser.new_context(viewport=size)
        context.route("**/*", network.route)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _settle(page, zoom: float | None = None) -> None:
    """Wait for the map at ``zoom`` with its clusters and labels placed, and for the page's
    rerun that a move of the map starts (it hands the map its view again) to end."""
    page.wait_for_function(SETTLED_JS, arg=[MAP_FRAME, zoom], timeout=STEP_TIMEOUT_MS)
    page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
    page.wait_for_function(SETTLED_JS, arg=[MAP_FRAME, zoom], timeout=STEP_TIMEOUT_MS)


def _open_map(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(APPLIED_JS, arg=MAP_FRAME, timeout=LOAD_TIMEOUT_MS)
    wait_page_complete(page, LOAD_TIMEOUT_MS)
    _settle(page)


def _geometry(page) -> dict:
    return page.evaluate(GEOMETRY_JS, MAP_FRAME)


FIRST_DRAWN_JS = """(s) => {
    // At the first poll that finds the map drawn: the page's widgets then, and a mark on the
    // map's frame and its state (a frame made again, or a map set up again, loses it).
    const f = document.querySelector(s); const km = f && f.contentWindow.KM;
    if (!km || !km.current || !km.current.applied) return null;
    km.current.firstMark = true; window.__kmFrame = f;
    return {widgets: document.querySelectorAll(
        '[data-testid="stMultiSelect"], [data-testid="stTextInput"], [data-testid="stSelectbox"]'
    ).length};
}"""

SAME_MAP_JS = """(s) => { const f = document.querySelector(s);
    return f === window.__kmFrame && f.contentWindow.KM.current.firstMark === true; }"""


@SIZES
def test_a_new_visitor_gets_the_map_first_then_the_whole_page_by_itself(
    map_url, new_visitor, network, screenshot, size
):
    """The map is drawn before any widget arrives (their code would queue before the map's),
    from one script file (its layers and markers inside: no data request from the frame); then
    the rest of the page comes with no action, and the map is the same map (not drawn again)."""
    page = new_visitor(size)
    page.goto(map_url + "?" + urlencode({"layer": "borough"}))
    drawn = page.wait_for_function(FIRST_DRAWN_JS, arg=MAP_FRAME, timeout=LOAD_TIMEOUT_MS)
    first = screenshot(page, f"map_first_alone_{size['width']}")
    assert drawn.json_value() == {"widgets": 0}, first
    wait_page_complete(page, LOAD_TIMEOUT_MS)
    page.get_by_label("Find projects near a postcode", exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
    path = screenshot(page, f"map_first_complete_{size['width']}")
    assert page.evaluate(SAME_MAP_JS, MAP_FRAME), path
    data = [url for url in network.requests if "/static/data/" in url]
    assert len(data) == 1 and "/projectmap-" in data[0], data  # the map's one file
    layers = page.evaluate(
        "(s) => document.querySelector(s).contentWindow.KM.current.opts.layersUrl", MAP_FRAME
    )
    assert "/layers-borough-" in layers, "the link's level on the first run"


def test_the_page_completes_when_the_map_cannot_load(map_url, new_visitor, network, screenshot):
    """A map whose script never arrives leaves no page with nothing but a blank map: the
    rest comes within `REST_OF_PAGE_AFTER_S`."""
    page = new_visitor(DESKTOP)
    refused = []
    page.route("**/projectmap-*.js", lambda route: (refused.append(route), route.abort()))
    page.goto(map_url)
    wait_page_complete(page, LOAD_TIMEOUT_MS)
    page.get_by_label("Find projects near a postcode", exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
    screenshot(page, "map_first_without_map_script")
    assert refused, "the map's file was asked for (and refused)"


def test_desktop_map_is_most_of_the_page_and_the_region_fills_it(
    map_url, profile_pages, screenshot, subtests
):
    """The geometry, then axe-core on the same page (it only reads it): one page load."""
    page = profile_pages(DESKTOP)
    _open_map(page, map_url)
    with subtests.test("the map is most of the page and the region fills it"):
        _check_desktop_geometry(page, screenshot)
    with subtests.test("no serious accessibility violation on the map page [desktop]"):
        _check_map_axe(page, screenshot, DESKTOP)


def _check_desktop_geometry(page, screenshot) -> None:
    frame = page.locator(MAP_FRAME).bounding_box()
    shape = _geometry(page)
    path = screenshot(page, "map_first_1440x1000")
    assert frame["width"] >= 0.6 * DESKTOP["width"], (path, frame)
    assert frame["height"] >= 0.7 * DESKTOP["height"], (path, frame)
    assert frame["y"] + frame["height"] <= DESKTOP["height"], (path, frame)  # wholly in view
    assert max(shape["fill"]) >= 0.75, (path, shape["fill"])
    assert not shape["over"], (path, shape["over"])  # no legend or layer list over an area
    header = page.get_by_role("heading", name="Kindred Map").bounding_box()
    counts = page.get_by_text(re.compile(r"^Showing [\d,]+ of")).bounding_box()
    assert abs(header["y"] + header["height"] / 2 - (counts["y"] + counts["height"] / 2)) < 12
    # Visitors get one line on the data's currency; the counts by status are the editor's.
    assert page.get_by_text("Checked by staff in the last 12 months").count() == 1
    assert page.get_by_text("Never checked").count() == 0


def test_phone_map_starts_in_the_first_screen_and_the_controls_follow(
    map_url, profile_pages, screenshot, subtests
):
    """The layout, axe-core, then an area's tooltip near the map's edge, on one page (the
    first two only read it; the pointer moves last)."""
    page = profile_pages(PHONE)
    _open_map(page, map_url)
    with subtests.test("the map starts in the first screen and the controls follow"):
        _check_phone_layout(page, screenshot)
    with subtests.test("no serious accessibility violation on the map page [phone]"):
        _check_map_axe(page, screenshot, PHONE)
    with subtests.test("an area tooltip near the edge stays inside the phone map"):
        _check_edge_tooltip(page, screenshot)


def _check_phone_layout(page, screenshot) -> None:
    frame = page.locator(MAP_FRAME).bounding_box()
    shape = _geometry(page)
    path = screenshot(page, "map_first_390x844")
    assert frame["y"] <= 0.6 * PHONE["height"], (path, frame)
    postcode = page.get_by_label("Find projects near a postcode", exact=True).bounding_box()
    assert postcode["y"] >= frame["y"] + frame["height"], (path, postcode)
    assert max(shape["fill"]) >= 0.75, (path, shape["fill"])
    assert not shape["over"], (path, shape["over"])
    frame_doc = page.frame_locator(MAP_FRAME).first
    assert frame_doc.locator(".km-legend details").get_attribute("open") is None  # folded
    assert frame_doc.locator(".leaflet-control-layers-expanded").count() == 0


def _assert_labels_clear(shape: dict, path) -> None:
    labels = shape["labels"]
    inside = shape["map"]
    for label in labels:
        box = label["box"]
        assert inside[0] <= box[0] and box[2] <= inside[2], (path, label)
        assert inside[1] <= box[1] and box[3] <= inside[3], (path, label)
    for first, second in itertools.combinations(labels, 2):
        assert not _overlap(first["box"], second["box"]), (path, first, second)
    for label in labels:
        for other in shape["clusters"] + shape["markers"] + shape["controls"]:
            assert not _overlap(label["box"], other), (path, label, other)


@SIZES
def test_place_labels_never_overlap_at_the_first_view_and_a_zoom_in_and_out(
    map_url, profile_pages, screenshot, size
):
    page = profile_pages(size)
    _open_map(page, map_url)
    frame = page.frame_locator(MAP_FRAME).first
    first = _geometry(page)
    name = f"map_labels_{size['width']}x{size['height']}"
    path = screenshot(page.locator(MAP_FRAME), f"{name}_first")
    assert len(first["labels"]) >= 8, (path, first["labels"])  # dropped where they collide
    _assert_labels_clear(first, path)
    for button, step in ((".leaflet-control-zoom-in", 1), (".leaflet-control-zoom-out", -2)):
        target = _geometry(page)["zoom"] + step
        for _ in range(abs(step)):
            _settle(page)  # the last click's move and the rerun it started are over first
            frame.locator(button).click()
            page.wait_for_function(  # one click's zoom done before the next
                "(s) => !document.querySelector(s).contentWindow.map._animatingZoom",
                arg=MAP_FRAME,
                timeout=STEP_TIMEOUT_MS,
            )
        _settle(page, target)
        shape = _geometry(page)
        path = screenshot(page.locator(MAP_FRAME), f"{name}_zoom_{shape['zoom']}")
        assert shape["labels"], path  # towns show at every zoom from 8
        _assert_labels_clear(shape, path)


TOOLTIP_JS = """(s) => {
    // A point on a shaded area close to the map's left edge, in page pixels.
    const frame = document.querySelector(s), win = frame.contentWindow, doc = win.document;
    const origin = frame.getBoundingClientRect(), size = win.map.getSize();
    for (let x = 4; x < size.x / 3; x += 4) {
        for (let y = size.y / 3; y < size.y * 0.9; y += 8) {
            const hit = doc.elementFromPoint(x, y);
            if (hit && hit.tagName === 'path' && hit.closest('.leaflet-overlay-pane')
                && hit.getAttribute('fill') && hit.getAttribute('fill') !== 'none') {
                return {x: origin.left + x, y: origin.top + y};
            }
        }
    }
    return null;
}"""


def _check_edge_tooltip(page, screenshot) -> None:
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    point = page.evaluate(TOOLTIP_JS, MAP_FRAME)
    assert point, "no shaded area near the map's left edge"
    page.mouse.move(point["x"], point["y"])
    frame = page.frame_locator(MAP_FRAME).first
    tooltip = frame.locator(".leaflet-tooltip").first
    tooltip.wait_for(timeout=STEP_TIMEOUT_MS)
    page.mouse.move(point["x"] + 1, point["y"] + 1)  # a sticky tooltip moves with the pointer
    inner = page.evaluate(
        """(s) => { const d = document.querySelector(s).contentWindow.document;
            const t = d.querySelector('.leaflet-tooltip').getBoundingClientRect();
            const m = d.querySelector('.leaflet-container').getBoundingClientRect();
            return [t.left - m.left, t.top - m.top, m.right - t.right, m.bottom - t.bottom]; }""",
        MAP_FRAME,
    )
    path = screenshot(page.locator(MAP_FRAME), "map_tooltip_390x844")
    assert min(inner) >= 0, (path, inner)


# --- WCAG 2.2 AA: axe-core on every page and inside the map's frame ------------------------


def _axe_problems(page) -> list[str]:
    """Serious and critical axe-core violations in every frame of ``page`` (the map is in an
    iframe: axe runs in each frame on its own)."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    found = []
    for frame in page.frames:
        if frame.url in ("", "about:blank"):
            continue
        results = axe.run(frame, options={"resultTypes": ["violations"], "iframes": False})
        for violation in results.response["violations"]:
            if violation["impact"] in BLOCKING:
                targets = [node["target"] for node in violation["nodes"][:3]]
                found.append(f"{frame.url}: {violation['id']} ({violation['impact']}) {targets}")
    return found


def _check_map_axe(page, screenshot, size: dict) -> None:
    """No serious or critical axe-core violation on the map page or inside the map's frame
    (run by the desktop and phone layout tests on the page they opened)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
    path = screenshot(page, f"axe_map_{size['width']}x{size['height']}")
    problems = _axe_problems(page)
    assert not problems, (path, problems)
    assert any("st_folium" in frame.url for frame in page.frames)  # the map was checked


@SIZES
@pytest.mark.parametrize("where", ["change", "about"])
def test_no_serious_accessibility_violation(map_url, profile_pages, screenshot, size, where):
    """The other pages (the map page's check is in the layout tests, on their page)."""
    page = profile_pages(size)
    page.goto(f"{map_url}/{where}")
    page.locator("h1").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")
    page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
    path = screenshot(page, f"axe_{where}_{size['width']}x{size['height']}")
    problems = _axe_problems(page)
    assert not problems, (path, problems)


def test_no_serious_accessibility_violation_for_a_signed_in_editor(
    map_url, profile_pages, sign_in, screenshot
):
    page = profile_pages(DESKTOP)
    _open_map(page, map_url)
    sign_in(page)
    page.get_by_text(re.compile(r"^Of the [\d,]+ projects shown")).wait_for(  # theirs only
        timeout=STEP_TIMEOUT_MS
    )
    page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
    for size in (DESKTOP, PHONE):
        page.set_viewport_size(size)
        page.wait_for_function(
            f"() => window.innerWidth === {size['width']}", timeout=STEP_TIMEOUT_MS
        )
        page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
        path = screenshot(page, f"axe_editor_{size['width']}x{size['height']}")
        problems = _axe_problems(page)
        assert not problems, (path, problems)


def test_keyboard_reaches_the_map_controls_and_the_table(map_url, profile_pages):
    """Tab from the top reaches the map's zoom, layer list and legend, then the searches and
    the table's switch: the map's shapes never take focus (the area chooser is their route)."""
    page = profile_pages(DESKTOP)
    _open_map(page, map_url)
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                """(s) => { let e = document.activeElement;
                    if (e && e.tagName === 'IFRAME') {
                        const inner = e.contentWindow.document.activeElement;
                        return 'map:' + (inner.getAttribute('aria-label') || inner.title
                            || inner.className || inner.tagName); }
                    return (e.getAttribute('aria-label') || e.innerText || e.tagName)
                        .trim().slice(0, 40); }""",
                MAP_FRAME,
            )
        )
        if seen[-1].startswith("Show the table"):
            break
    walk = " > ".join(item.replace("\n", " ") for item in seen)  # whole in a failure message
    in_map = [item for item in seen if item.startswith("map:")]
    assert any("Zoom in" in item for item in in_map), walk
    assert any("Layers" in item or "layers" in item for item in in_map), walk
    assert any("summary" in item.lower() or "SUMMARY" in item for item in in_map), walk
    assert "Find projects near a postcode" in seen, walk
    assert seen[-1].startswith("Show the table"), walk


# --- every option of the map view draws without an error ---------------------------------


SWEEP_LOADS_PER_LEVEL = 2
"""Links opened per area level; the level's other measures are chosen in the page (a rerun,
about 0.9 s, where a load costs about 2 s)."""


def _sweep_links() -> list[tuple[dict, list[str]]]:
    """Every area level with every measure (20 views) from 8 links and 12 changes of the "by"
    chooser on their pages: (link, measures chosen after it). Each measure opens from a link
    at some level; the project types one at a time (7 links) and all of them (1); the toggles
    (gaps, clusters, examples, inside only, an opening time) spread over the links, each then
    drawn with two or three measures."""
    types = list(project_types())
    toggles = [{"gaps": "1"}, {"clusters": "1"}, {"examples": "1"}, {"inside_only": "1"}]
    toggles.append({"open": "saturday"})
    measures = list(figures.MEASURES)
    links = []
    for index in range(len(figures.LEVELS) * SWEEP_LOADS_PER_LEVEL):
        level_index, half = index % len(figures.LEVELS), index // len(figures.LEVELS)
        # The level's five measures, starting at its own index: 3 after the first link, 2 after
        # the second.
        order = [measures[(level_index + step) % len(measures)] for step in range(len(measures))]
        mine = order[:3] if half == 0 else order[3:]
        query = {"layer": list(figures.LEVELS)[level_index], "measure": mine[0]}
        if index < len(types):
            query["types"] = types[index]
        query |= toggles[index % len(toggles)]
        links.append((query, mine[1:]))
    return links


def test_the_sweep_covers_every_view_option():
    """The links and changes below draw every level x measure, every type alone and all
    together, and every toggle; each measure is also opened from a link."""
    links = _sweep_links()
    drawn = {(query["layer"], m) for query, more in links for m in [query["measure"], *more]}
    assert drawn == set(itertools.product(figures.LEVELS, figures.MEASURES))
    assert sum(1 + len(more) for _, more in links) == len(drawn)  # none drawn twice
    assert {query["measure"] for query, _ in links} == set(figures.MEASURES)
    assert {query.get("types") for query, _ in links} == {None, *project_types()}
    toggles = {"gaps", "clusters", "examples", "inside_only", "open"}
    assert toggles <= {name for query, _ in links for name in query}


def _check_drawn(page, view, errors, screenshot, what) -> None:
    """The map's legend names ``view``'s level and measure; no error on the page or in the
    browser's console."""
    legend = page.frame_locator(MAP_FRAME).first.locator(".km-legend summary").inner_text()
    assert legend.strip() == _legend_title(view.layer, view.measure), (what, legend)
    failed = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    assert failed.count() == 0, (what, screenshot(page, "sweep_failed"))
    assert not errors, (what, errors)


def _legend_title(level: str, measure: str) -> str:
    """The legend's title for ``level`` shaded by ``measure`` (mapview's)."""
    return f"{figures.LEVELS[level]['noun']}: {figures.MEASURES[measure]['label']}"


MEASURE_SHOWN_JS = """([s, title]) => {
    // The map applied with the legend titled ``title``.
    const f = document.querySelector(s); const km = f && f.contentWindow.KM;
    if (!km || !km.current || !km.current.applied) return false;
    const summary = f.contentWindow.document.querySelector('.km-legend summary');
    return !!summary && summary.innerText.trim() === title;
}"""


def _choose_measure(page, level: str, measure: str) -> None:
    """Choose ``measure`` in the sidebar's "by" chooser (typed, as a keyboard user would);
    until its run has ended and the map shows it."""
    label = figures.MEASURES[measure]["label"]
    page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
    page.get_by_role("combobox", name="by", exact=True).click()
    page.keyboard.type(label)
    rerun_by(page, lambda: page.keyboard.press("Enter"), STEP_TIMEOUT_MS)
    title = _legend_title(level, measure)
    page.wait_for_function(MEASURE_SHOWN_JS, arg=[MAP_FRAME, title], timeout=STEP_TIMEOUT_MS)
    _settle(page)


def test_every_view_option_draws_without_an_error(map_url, profile_pages, screenshot):
    page = profile_pages(DESKTOP)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    for query, measures in _sweep_links():
        view, problems = views.view_from_query(query)
        assert not problems, (query, problems)
        _open_map(page, f"{map_url}/?{urlencode(query)}")
        page.wait_for_function(IDLE_JS, timeout=STEP_TIMEOUT_MS)
        _check_drawn(page, view, errors, screenshot, query)
        for measure in measures:
            _choose_measure(page, view.layer, measure)
            view = replace(view, measure=measure)
            _check_drawn(page, view, errors, screenshot, (query, measure))
    page.get_by_text("Group nearby markers", exact=True).click()  # the session-only toggle
    page.wait_for_function(
        "(s) => { const km = document.querySelector(s).contentWindow.KM;"
        " return km && km.current && km.current.applied && !km.current.opts.grouped; }",
        arg=MAP_FRAME,
        timeout=STEP_TIMEOUT_MS,
    )
    assert not errors, errors
