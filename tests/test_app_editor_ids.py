"""Every editor action lands on the project the editor picked (AppTest, random action sequences).

Issue 20: after a Save that changed a project's postcode, "Checked today" and Retire acted on the
first project of the list. In the browser a selectbox sends back the *label* it shows, and the
label carried the postcode; AppTest instead always sends the current label of the current
value, which hides the fault. `Browser` below sends what the browser sends: the label it was
last given (by the editor's pick, or by the server setting the value)."""

import pytest
from app_runs import first_page
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from kindred_map import auth, importing, location, store
from kindred_map import stewardship as steward
from kindred_map.paths import PROJECT_ROOT
from kindred_map.text import md_escape

APP = PROJECT_ROOT / "app.py"
FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "dashboard_projects.csv"
PICKER = "edit_pick"
ACTIONS = ("pick", "save", "verify", "retire or restore")


class Browser:
    """The dashboard in one browser tab, as far as the project picker goes."""

    def __init__(self, user: auth.User):
        self.app = AppTest.from_file(str(APP), default_timeout=120)
        self.app.session_state["signed_in_user"] = user
        first_page(self.app)
        self.held = None
        self._learn()

    def picker(self):
        return self.app.selectbox(key=PICKER)

    def _learn(self) -> None:
        """The label the browser shows after a run: the server's, when it set one."""
        proto = self.picker().proto
        if proto.set_value:
            self.held = proto.raw_value
        elif self.held is None:
            self.held = proto.options[proto.default]

    def pick(self, pid: str) -> None:
        """The editor chooses a project: the browser now holds that option's label."""
        (self.held,) = [o for o in self.picker().options if f"({pid})" in o]
        self.run()

    def run(self) -> None:
        """Rerun with the widgets' states, the picker's as the browser sends it (its label)."""
        states = self.app._tree.get_widget_states()
        picker_id = self.picker().id
        for state in states.widgets:
            if state.id == picker_id:
                state.string_value = self.held
        self.app._run(states)
        assert not self.app.exception, [e.message for e in self.app.exception]
        self._learn()

    def click(self, label: str) -> None:
        (button,) = [b for b in self.app.button if b.label == label]
        button.click()
        self.run()

    def type_into(self, key_start: str, text: str) -> None:
        """Type into the one text box whose key starts so (the edit form's, not the add's)."""
        (box,) = [t for t in self.app.text_input if (t.key or "").startswith(key_start)]
        box.input(text)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The dashboard fixture's 12 projects in a store of their own, and postcodes to move to."""
    path = tmp_path_factory.mktemp("editor-ids") / "projects.gpkg"
    importing.import_file(FIXTURE, path)
    postcodes = sorted(set(store.read_projects(path)["postcode"]) - {""})
    return path, postcodes


def _new_events(path, after: int):
    events = steward.read_history(path)
    return events[events["event_id"] > after]


COVERING_STEPS = [
    ("verify", 0),
    ("save", 1),
    ("retire or restore", 2),
    ("retire or restore", 3),
    ("save", 4),
    ("pick", 5),
    ("save", 6),
]
"""One sequence in which Checked today, Retire, a pick and another Save each follow a Save that
changed the picked project's label (issue 20's fault), a Restore follows a Retire and a Save a
Restore: cases that five random sequences (a Browser each) covered only by chance. It runs
with one random sequence besides: 12.4-16.2 -> 6.3 CPU s in the serial suite."""


@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=st.integers(1, 10_000),
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 10_000)), min_size=2, max_size=4
    ),
)
@example(first=3, steps=COVERING_STEPS)
def test_each_editor_action_lands_on_the_picked_project(
    served, monkeypatch, sign_in_as, first, steps
):
    path, postcodes = served
    monkeypatch.setenv(location.STORE_ENV, str(path))
    monkeypatch.setenv("KINDRED_MAP_BASEMAP", "none")
    browser = Browser(sign_in_as("ann", "Ann Editor"))
    chosen = browser.picker().value
    # Each sequence starts on a project other than the list's first (the one the old picker
    # fell back to) and changes its postcode (which changes its label); random actions follow.
    for action, number in [("pick", None), ("save", 0), *steps]:
        projects = store.read_projects(path, include_retired=True).set_index("id")  # as listed
        if action == "pick":
            if number is None:
                number = 1 + first % (len(projects) - 1)
            chosen = projects.index[number % len(projects)]
            browser.pick(chosen)
            assert browser.picker().value == chosen
            continue
        last = int(steward.read_history(path)["event_id"].max())
        record = projects.loc[chosen]
        if action == "save":
            others = [p for p in postcodes if p != record["postcode"]]
            browser.type_into("edit_postcode_", others[number % len(others)])
            browser.click("Save changes")
            expected = "edit"
        elif action == "verify":
            browser.click("Checked today")
            expected = "verify"
        elif record["retired_at"]:
            browser.click("Restore")
            expected = "restore"
        else:
            browser.type_into("retire_reason_", f"closed ({number})")
            browser.click("Retire")
            expected = "retire"
        events = _new_events(path, last)
        assert events[["project_id", "action"]].values.tolist() == [[chosen, expected]], (
            action,
            chosen,
        )
        # The confirmation names the project's id (Markdown-escaped, as all partner text is).
        assert md_escape(f"({chosen})") in browser.app.success[0].value
        assert browser.picker().value == chosen  # and the project stays picked
