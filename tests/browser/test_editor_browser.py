"""An editor's day in Chromium: sign in, fix a postcode, mark three checked, retire one, watch
the freshness counts change, download the call sheet."""

import csv
import io
import re

import pytest
from streamlit_waits import rerun_by, wait_idle

from kindred_map import stewardship, store

pytestmark = pytest.mark.browser

STEP_TIMEOUT_MS = 60_000


COUNT_JS = """(label) => {
    // The freshness counts: a list of "Never checked: 416" items in the editor's view.
    const item = Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"] li'))
        .find((li) => li.innerText.startsWith(label));
    return item ? Number(item.innerText.split(':').pop().replace(/[^0-9]/g, '')) : null;
}"""


def _count(page, label: str) -> int:
    return page.evaluate(COUNT_JS, label)


def _wait_for_count(page, label: str, value: int, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    page.wait_for_function(
        f"([label, value]) => ({COUNT_JS})(label) === value",
        arg=[label, value],
        timeout=timeout_ms,
    )


def _click(page, name: str) -> None:
    """Click the one button called ``name`` once the page is idle, and wait until the run the
    click starts has finished (a click during a run may be lost)."""
    button = page.get_by_role("button", name=name, exact=True)
    wait_idle(page, STEP_TIMEOUT_MS)
    button.wait_for(timeout=STEP_TIMEOUT_MS)  # one, drawn by the finished run
    rerun_by(page, button.click, STEP_TIMEOUT_MS)


def _done(page, text: str) -> None:
    page.get_by_text(re.compile(text)).first.wait_for(timeout=STEP_TIMEOUT_MS)


def _check_today(page, checked: int) -> None:
    """Click "Checked today"; the count of checked projects then reads ``checked``."""
    _click(page, "Checked today")
    _wait_for_count(page, "Checked in the last 12", checked)


def _picked(page) -> str:
    return page.evaluate(SHOWN_JS, "Project")


def _pick_next_project(page) -> None:
    """Move the project chooser to the next project (keyboard, as a user would), and wait until
    the editor shows it."""
    chooser = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text("Project", exact=True)
    )
    wait_idle(page, STEP_TIMEOUT_MS)
    before = _picked(page)
    chooser.click()
    page.keyboard.press("ArrowDown")
    rerun_by(page, lambda: page.keyboard.press("Enter"), STEP_TIMEOUT_MS)
    page.wait_for_function(
        "([js, before]) => { const now = eval(js)('Project'); return now && now !== before; }",
        arg=[SHOWN_JS, before],
        timeout=STEP_TIMEOUT_MS,
    )
    wait_idle(page, STEP_TIMEOUT_MS)


def test_an_editors_day(serve_dashboard, store_copy, page, screenshot, sign_in, tmp_path):
    target = store_copy("editor-day")
    url = serve_dashboard(target)
    page.goto(url)
    page.get_by_text(re.compile(r"^Showing \d")).wait_for(timeout=STEP_TIMEOUT_MS)
    assert page.get_by_role("button", name="Checked today").count() == 0  # a viewer
    assert page.get_by_text("Never checked").count() == 0  # the counts are the editor's
    sign_in(page)
    page.get_by_text("Never checked").first.wait_for(timeout=STEP_TIMEOUT_MS)
    never, checked = _count(page, "Never checked"), _count(page, "Checked in the last 12")
    assert checked == 0
    page.get_by_text("Keep the directory true").scroll_into_view_if_needed()
    screenshot(page, "editor_signed_in")

    first = store.read_projects(target)["id"].iloc[0]
    form = page.locator('[data-testid="stForm"]').filter(has_text="Save changes")
    form.get_by_label("Postcode").fill("L1 8JQ")
    wait_idle(page, STEP_TIMEOUT_MS)
    form.get_by_role("button", name="Save changes").click()
    _done(page, r"^Saved ")
    fixed = store.read_projects(target).set_index("id").loc[first]
    assert (fixed["postcode"], fixed["WD24NM"]) == ("L1 8JQ", "City Centre North")
    screenshot(page, "editor_fixed_postcode")

    for number in range(3):
        _check_today(page, number + 1)
        screenshot(page, f"editor_checked_{number + 1}")
        _pick_next_project(page)
    _wait_for_count(page, "Never checked", never - 3)

    page.get_by_label("Reason for retiring").fill("closed in March")
    _click(page, "Retire")
    _done(page, r"^Retired ")
    _wait_for_count(page, "Never checked", never - 4)
    assert _count(page, "Checked in the last 12") == 3
    screenshot(page, "editor_checked_and_retired")

    page.get_by_role("tab", name="Needs checking").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the call sheet (CSV)").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == never - 4
    screenshot(page, "editor_needs_checking")

    events = stewardship.read_history(target)
    changed = events[events["action"] != "baseline"]
    assert changed["action"].iloc[[0, -1]].tolist() == ["edit", "retire"]
    verified = changed[changed["action"] == "verify"]
    assert verified["project_id"].nunique() == 3
    assert set(changed["who"]) == {"Ann Editor"}
    homes = store.read_projects(target).query("location_precision == 'ward_only'")
    for home in homes.itertuples():
        assert not any(home.postcode and row["postcode"] == home.postcode for row in rows)


@pytest.fixture(scope="module")
def ids_store(store_copy):
    return store_copy("editor-ids")


def _success(page, pattern: str) -> str:
    """The confirmation matching ``pattern`` once it shows (a condition, not a pause)."""
    message = page.get_by_text(re.compile(pattern)).first
    message.wait_for(timeout=STEP_TIMEOUT_MS)
    return message.inner_text()


def _click_when_ready(page, name: str) -> None:
    """Click the one button called ``name`` once Streamlit has finished its run."""
    wait_idle(page, STEP_TIMEOUT_MS)
    button = page.get_by_role("button", name=name, exact=True)
    button.wait_for(timeout=STEP_TIMEOUT_MS)
    button.click()


SHOWN_JS = """(label) => {
    // What a selectbox shows: its value, else its placeholder (the input holds both).
    const input = Array.from(document.querySelectorAll('[data-testid="stSelectbox"] input'))
        .find((box) => (box.getAttribute('aria-label') || '').startsWith(label));
    return input ? (input.value || input.placeholder) : null;
}"""


def test_the_area_chooser_names_the_shaded_level(serve_dashboard, ids_store, page):
    page.goto(serve_dashboard(ids_store))
    shown = "([js, label, text]) => eval(js)(label) === text"
    page.wait_for_function(
        shown, arg=[SHOWN_JS, "Ward details", "Choose a ward"], timeout=STEP_TIMEOUT_MS
    )
    layer = page.locator('[data-testid="stSelectbox"]').filter(has_text="Shade areas")
    layer.click()
    page.get_by_role("option", name="Deaneries (approximate)").click()
    # The old chooser kept showing "Choose a ward" here (its "" option's label, held by the
    # browser); now nothing chosen is a placeholder that names the level.
    page.wait_for_function(
        shown, arg=[SHOWN_JS, "Deanery details", "Choose a deanery"], timeout=STEP_TIMEOUT_MS
    )


def test_every_action_lands_on_the_picked_project(
    serve_dashboard, ids_store, page, screenshot, sign_in
):
    target = ids_store
    projects = store.read_projects(target, include_retired=True)
    record = projects.iloc[len(projects) // 2]  # not the first: the old picker fell back to it
    pid, name = record["id"], record["name"]
    label = f"{name} - {record['postcode'] or record['LAD25NM']} ({pid})"
    postcode = next(p for p in projects["postcode"] if p and p != record["postcode"])
    last = int(stewardship.read_history(target)["event_id"].max())
    page.goto(serve_dashboard(target))
    page.get_by_text(re.compile(r"^Showing \d")).wait_for(timeout=STEP_TIMEOUT_MS)
    sign_in(page)

    picker = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text("Project", exact=True)
    )
    wait_idle(page, STEP_TIMEOUT_MS)
    picker.locator("input").click()  # by keyboard: type its label, the list narrows to it
    page.keyboard.press("Control+a")
    page.keyboard.type(label)
    page.get_by_role("option", name=label, exact=True).wait_for(timeout=STEP_TIMEOUT_MS)
    page.keyboard.press("Enter")
    page.get_by_text(f"Editing {name} ({pid})", exact=True).wait_for(timeout=STEP_TIMEOUT_MS)

    form = page.locator('[data-testid="stForm"]').filter(has_text="Save changes")
    box = form.get_by_label("Postcode")
    page.wait_for_function(
        "([selector, value]) => Array.from(document.querySelectorAll(selector))"
        ".filter((input) => input.getAttribute('aria-label') === 'Postcode'"
        " && input.closest('[data-testid=\"stForm\"]')?.innerText.includes('Save changes'))"
        ".map((input) => input.value).join('|') === value",
        arg=['[data-testid="stForm"] input', record["postcode"]],
        timeout=STEP_TIMEOUT_MS,
    )  # the picked project's form, and only it (no form of the previous pick left)
    box.fill(postcode)
    form.get_by_role("button", name="Save changes").click()
    escaped = re.escape(f"({pid})")
    _success(page, rf"^Saved .*{escaped}, now version 2\.$")
    _click_when_ready(page, "Checked today")
    assert name in _success(page, rf"^Marked checked today: .*{escaped}, now version 3\.$")
    page.get_by_label("Reason for retiring").fill("closed in March")
    _click_when_ready(page, "Retire")
    _success(page, rf"^Retired .*{escaped}, now version 4\.$")
    _click_when_ready(page, "Restore")
    _success(page, rf"^Restored .*{escaped}, now version 5\.$")
    page.get_by_text(f"Editing {name} ({pid})", exact=True).wait_for()  # still picked

    events = stewardship.read_history(target)
    events = events[events["event_id"] > last]
    assert events[["project_id", "action"]].values.tolist() == [
        [pid, "edit"],
        [pid, "verify"],
        [pid, "retire"],
        [pid, "restore"],
    ]
    assert store.read_projects(target).set_index("id").loc[pid, "postcode"] == postcode
    editor_heading = page.get_by_text("Keep the directory true")
    for width, height in ((1440, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        if width < 600:  # a phone: Streamlit folds the sidebar away; wait till it is out
            page.wait_for_function(
                """() => document.querySelector('[data-testid="stSidebar"]')
                    .getBoundingClientRect().right <= 1""",
                timeout=STEP_TIMEOUT_MS,
            )
        editor_heading.evaluate("e => e.scrollIntoView({block: 'start'})")
        screenshot(page, f"editor_{width}x{height}")
