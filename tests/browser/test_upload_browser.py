"""A page import in Chromium that is safe by default: a partner file whose rows are mostly
projects already stored adds none of the strong duplicates, "apply to all" and a type for every
row work, and the count shown before Save is what Save does (issue 20)."""

import csv
import re

import pytest
from streamlit_waits import IDLE_JS, rerun_by, wait_idle

from kindred_map import duplicates, store

pytestmark = pytest.mark.browser

STEP_TIMEOUT_MS = 90_000
COUNTS = re.compile(
    r"(?:Save will make|Saved): ([\d,]+) new, ([\d,]+) merged .*?, ([\d,]+) skipped\. "
    r"Stored projects updated: ([\d,]+), unchanged: ([\d,]+) .*?rows rejected: ([\d,]+)"
)
NAMES = ("new", "merged", "skipped", "updated", "unchanged", "rejected")
NEW_ROWS = [("Aardvark Test Larder", "L1 8JQ"), ("Bob?s Zebra Warm Room", "L20 4RW")]


def _partner_file(stored, path):
    """Eight stored warm spaces as a partner sends them (name and postcode only: strong
    duplicates), two with a word added (weak: one name contains the other), two new projects.
    Stored projects chosen so that no other stored project shares the name or the postcode, and
    inside the region: a postcode outside the postcode areas the lookup holds (BL, CW...) cannot
    be placed from a file, so those stored projects could not be duplicates here."""
    key = duplicates.name_key(stored["name"])
    alone = (
        stored["type"].eq("warm_space")
        & stored["in_region"].astype(bool)  # outside ones may have postcodes no layer holds
        & stored["postcode"].ne("")
        & stored["location_precision"].ne("ward_only")
        & ~stored["postcode"].duplicated(keep=False)
        & ~stored.assign(key=key)["key"].duplicated(keep=False)
    )
    chosen = stored[alone].head(10)
    strong = [(r.name, r.postcode) for r in chosen.iloc[:8].itertuples()]
    weak = [(f"{r.name} Annexe", r.postcode) for r in chosen.iloc[8:].itertuples()]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Project", "Postcode"])
        writer.writerows([*strong, *weak, *NEW_ROWS])
    return strong, weak


def _counts(page, lead: str) -> dict[str, int]:
    text = page.get_by_text(re.compile(f"^{lead}")).inner_text()
    numbers = [int(n.replace(",", "")) for n in COUNTS.search(text).groups()]
    return dict(zip(NAMES, numbers, strict=True))


PLAN_JS = """([pattern, names, expected]) => {
    // The pre-save counts read as COUNTS reads them, once they are ``expected`` and the page
    // has finished its run.
    const found = new RegExp(pattern).exec(document.body.innerText);
    if (!found || !(IDLE_JS)()) return false;
    return Object.entries(expected).every(
        ([name, value]) => Number(found[names.indexOf(name) + 1].replace(/,/g, '')) === value);
}""".replace("IDLE_JS", IDLE_JS)


def _wait_for_plan(page, **expected) -> dict[str, int]:
    """The pre-save count once it shows ``expected`` (it follows each answer after a run)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pattern = COUNTS.pattern.replace("(?:Save will make|Saved)", "Save will make")
    try:
        page.wait_for_function(
            PLAN_JS, arg=[pattern, list(NAMES), expected], timeout=STEP_TIMEOUT_MS
        )
    except PlaywrightTimeout:
        pytest.fail(f"the plan never showed {expected}: {_counts(page, 'Save will make')}")
    return _counts(page, "Save will make")


def _answer(page, row: int, text: str) -> None:
    radio = page.locator('[data-testid="stRadio"]').filter(has_text=f"Row {row}:")
    rerun_by(page, radio.get_by_text(text).click, STEP_TIMEOUT_MS)


def test_a_partner_file_of_known_projects_adds_none_of_the_strong_duplicates(
    serve_dashboard, store_copy, page, screenshot, sign_in, tmp_path
):
    target = store_copy("upload-duplicates")
    stored = store.read_projects(target, include_retired=True)
    partner = tmp_path / "partner.csv"
    strong, weak = _partner_file(stored, partner)
    url = serve_dashboard(target)
    page.goto(url)
    page.get_by_text(re.compile(r"^Showing \d")).wait_for(timeout=STEP_TIMEOUT_MS)
    sign_in(page)
    box = page.locator('[data-testid="stFileUploader"]')
    assert "100MB per file" in box.inner_text()  # the import's own limit (was "200MB")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(partner))

    # Defaults: strong matches merge, weak ones wait for an answer (Save is disabled).
    plan = _wait_for_plan(page, merged=len(strong))
    assert plan["new"] == len(weak) + len(NEW_ROWS)  # unanswered ones counted as new, said so
    page.get_by_text(f"Answer the {len(weak)} likely duplicate(s)").wait_for()
    save = page.get_by_role("button", name=re.compile(r"^Save [\d,]+ projects to the store$"))
    assert save.is_disabled()
    assert "likely a character lost" in page.locator('[data-testid="stCode"]').inner_text()
    screenshot(page.get_by_text(re.compile("look like projects already stored")), "upload_warning")

    # Apply to all: skip everything, keep everything, then merge the strong ones again.
    rerun_by(
        page,
        page.get_by_role("button", name="Skip every row that has a likely duplicate").click,
        STEP_TIMEOUT_MS,
    )
    _wait_for_plan(page, skipped=len(strong) + len(weak), merged=0, new=len(NEW_ROWS))
    rerun_by(
        page,
        page.get_by_role("button", name="Keep every row as a new project").click,
        STEP_TIMEOUT_MS,
    )
    _wait_for_plan(page, skipped=0, merged=0, new=len(strong) + len(weak) + len(NEW_ROWS))
    rerun_by(
        page, page.get_by_role("button", name="Merge every strong match").click, STEP_TIMEOUT_MS
    )
    _wait_for_plan(page, merged=len(strong), new=len(weak) + len(NEW_ROWS))
    first_weak = 2 + len(strong)  # file rows: header is row 1
    _answer(page, first_weak, "skip this row")
    _wait_for_plan(page, skipped=1, new=len(weak) - 1 + len(NEW_ROWS))

    # One type for every row: the file has no type column.
    chooser = page.locator('[data-testid="stSelectbox"]').filter(has_text="Type of every project")
    chooser.click()
    page.get_by_role("option", name="Warm space", exact=True).click()
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="stCode"]'))
            .some((code) => code.innerText.includes("type 'warm_space' for every row"))""",
        timeout=STEP_TIMEOUT_MS,
    )
    wait_idle(page, STEP_TIMEOUT_MS)
    planned = _counts(page, "Save will make")
    screenshot(page, "upload_plan_1400")
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_text(re.compile("^Save will make")).scroll_into_view_if_needed()
    screenshot(page, "upload_plan_1440x1000")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(  # a phone: Streamlit folds the sidebar away
        """() => document.querySelector('[data-testid="stSidebar"]')
            .getBoundingClientRect().right <= 1""",
        timeout=STEP_TIMEOUT_MS,
    )
    page.get_by_text(re.compile("^Save will make")).scroll_into_view_if_needed()
    screenshot(page, "upload_plan_390x844")

    save.click()
    page.get_by_text(re.compile("^Saved: ")).wait_for(timeout=STEP_TIMEOUT_MS)
    assert _counts(page, "Saved") == planned  # the count shown before Save is what Save did
    after = store.read_projects(target, include_retired=True)
    assert len(after) == len(stored) + planned["new"]
    for name, postcode in strong:  # none of the strong duplicates was added
        assert ((after["name"] == name) & (after["postcode"] == postcode)).sum() == 1, name
    added = after[~after["id"].isin(stored["id"])]
    assert sorted(added["name"]) == sorted([weak[1][0], *(name for name, _ in NEW_ROWS)])
    assert set(added["type"]) == {"warm_space"}  # the type set for every row, not 'other'
    assert weak[0][0] not in set(after["name"])  # skipped
