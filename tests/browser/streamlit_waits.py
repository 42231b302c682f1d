"""Waits on the page's state, never on the clock: Streamlit's runs, its idle state, a settled map.

`conftest.page` installs COUNT_RUNS in every page, so a test can tell that the run its click
asked for has started and finished (a click can land a moment before its run starts, when the
page still looks idle)."""

STEP_TIMEOUT_MS = 60_000

COUNT_RUNS = """(() => {
    // Counts Streamlit's script runs: stApp's data-test-script-state turning to "running".
    if (window.__kmRuns !== undefined) return;
    window.__kmRuns = 0;
    new MutationObserver((changes) => {
        for (const change of changes) {
            if (change.target.getAttribute('data-test-script-state') === 'running'
                && change.oldValue !== 'running') window.__kmRuns += 1;
        }
    }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                          attributeFilter: ['data-test-script-state']});
})();"""

IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED';
}"""
"""True when Streamlit is connected and not running the script."""


PAGE_WIDGETS_JS = """() => !!document.getElementById('find')
    && document.querySelectorAll('[data-testid="stTextInput"] input').length >= 2
    && !!document.querySelector('[data-testid="stSidebar"] [data-testid="stMultiSelect"]')"""


def wait_page_complete(page, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Until the map page is whole and the run that brought it has ended. A new session's
    first run sends the header and the map only, the rest comes on the run the map starts
    when drawn; the searches' heading (``#find``) comes before the searches' own inputs and
    the sidebar's filters, whose code the browser fetches as they arrive (a keyboard walk
    that starts at the heading alone passes a page without them)."""
    page.wait_for_function(f"() => ({PAGE_WIDGETS_JS})() && ({IDLE_JS})()", timeout=timeout_ms)


def runs(page) -> int:
    """How many script runs the page has seen start (COUNT_RUNS)."""
    return page.evaluate("() => window.__kmRuns")


def wait_idle(page, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def wait_for_run_after(page, seen: int, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Until a run has started since ``runs(page)`` was ``seen``, and the page is idle again."""
    page.wait_for_function(
        f"(seen) => window.__kmRuns > seen && ({IDLE_JS})()", arg=seen, timeout=timeout_ms
    )


def rerun_by(page, action, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Do ``action`` (a click, a key press) once the page is idle, then wait until the run it
    starts has finished."""
    wait_idle(page, timeout_ms)
    seen = runs(page)
    action()
    wait_for_run_after(page, seen, timeout_ms)


STILL_JS = """([js, arg]) => {
    // True once ``js(arg)`` is not null and gives the same answer on two polls in a row.
    const now = JSON.stringify(eval(js)(arg));
    const same = now !== 'null' && window.__kmStill === now;
    window.__kmStill = now;
    return same;
}"""


def wait_until_still(page, js: str, arg, timeout_ms: int = STEP_TIMEOUT_MS, every_ms=250):
    """Until the value ``js`` (a JS function of ``arg``) gives stops changing (a map that has
    finished moving, markers placed), polled every ``every_ms``."""
    page.evaluate("() => { window.__kmStill = undefined; }")
    page.wait_for_function(STILL_JS, arg=[js, arg], polling=every_ms, timeout=timeout_ms)
