"""Editor controls in the dashboard (AppTest): viewers see none, editors change the store."""

import logging
import shutil
from pathlib import Path

import pytest
from app_runs import first_page
from streamlit.testing.v1 import AppTest

from kindred_map import auth, importing, location, store
from kindred_map import stewardship as st
from kindred_map import view as views
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT
from kindred_map.text import md_escape

APP = PROJECT_ROOT / "app.py"
TIMEOUT_S = 120
EDITOR_KEYS = ("upload", "edit_pick", "verify_today", "retire", "undo_import", "add_name")


def _served(where, tmp_path, monkeypatch):
    """The sample store at ``where`` plus one partner import (so there is one to undo),
    served by the app."""
    partner = tmp_path / "partner.csv"
    partner.write_text("id,name,postcode\na,Aardvark Pantry,L1 8JQ\n", encoding="utf-8")
    importing.import_file(partner, where, who="importer")
    for name, value in (
        (location.STORE_ENV, where),
        ("KINDRED_MAP_BASEMAP", "none"),
        (auth.USERS_ENV, tmp_path / "users.json"),
    ):
        monkeypatch.setenv(name, str(value))
    return where


@pytest.fixture
def store_file(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped sample store plus one partner import."""
    path = tmp_path / "projects.gpkg"
    shutil.copy(DEFAULT_STORE, path)
    return _served(path, tmp_path, monkeypatch)


@pytest.fixture(params=["gpkg", "postgis"])
def any_store(request, tmp_path, monkeypatch):
    """The same on each backend (PostGIS: the sample copied in with `store.copy`)."""
    if request.param == "gpkg":
        return request.getfixturevalue("store_file")
    return _served(request.getfixturevalue("pg_sample"), tmp_path, monkeypatch)


def _keys(app: AppTest) -> set[str]:
    found = set()
    for kind in ("button", "selectbox", "file_uploader", "text_input"):
        try:
            found |= {w.key for w in getattr(app, kind) if w.key}
        except AttributeError:
            continue
    return found


def _no_exception(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def _run(user: auth.User | None = None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    if user is not None:
        app.session_state["signed_in_user"] = user
    return first_page(app)


def test_without_users_the_page_is_read_only_and_says_how_to_enable_editing(store_file):
    app = _run()
    _no_exception(app)
    assert any("kindred-map users add NAME" in i.value for i in app.info)
    assert not set(EDITOR_KEYS) & _keys(app)
    assert "sign_in_user" not in _keys(app)


def test_a_visitor_sees_the_sign_in_form_but_no_editor_controls(store_file):
    auth.add_user("ann", "a long password", name="Ann Editor")
    written = store_file.read_bytes()
    app = _run()
    _no_exception(app)
    assert "sign_in_user" in _keys(app)
    assert not set(EDITOR_KEYS) & _keys(app)
    # Issue 23: the freshness counts are the editor's; a visitor gets one line on currency.
    assert not any("never checked: **" in m.value.casefold() for m in app.markdown)
    assert any(c.value.startswith("Checked by staff in the last 12") for c in app.caption)
    app.text_input(key="sign_in_user").input("ann")
    app.text_input(key="sign_in_password").input("wrong password!")
    app.button[[b.label for b in app.button].index("Sign in")].click().run()
    assert not set(EDITOR_KEYS) & _keys(app)
    assert store_file.read_bytes() == written


def test_an_editor_signs_in_edits_checks_retires_and_undoes(any_store, caplog):
    store_file = any_store
    caplog.set_level(logging.INFO, logger="kindred_map")
    auth.add_user("ann", "a long password", name="Ann Editor")
    app = _run()
    app.text_input(key="sign_in_user").input("ann")
    app.text_input(key="sign_in_password").input("a long password")
    app.button[[b.label for b in app.button].index("Sign in")].click().run()
    _no_exception(app)
    assert set(EDITOR_KEYS) <= _keys(app)
    pid = "partner:a"
    app.selectbox(key="edit_pick").set_value(pid).run()
    app.text_input(key=f"edit_postcode_{pid}_1").input("L20 4RW")
    app.button[[b.label for b in app.button].index("Save changes")].click().run()
    _no_exception(app)
    assert "Saved" in app.success[0].value
    record = store.read_projects(store_file).set_index("id").loc[pid]
    assert (record["postcode"], record["LAD25NM"], record["version"]) == ("L20 4RW", "Sefton", 2)
    app.button(key="verify_today").click().run()
    app.text_input(key=f"retire_reason_{pid}").input("closed in March")
    app.button(key="retire").click().run()
    _no_exception(app)
    assert pid not in set(store.read_projects(store_file)["id"])
    events = st.read_history(store_file, pid)
    assert events["action"].tolist() == ["import", "edit", "verify", "retire"]
    assert set(events["who"].iloc[1:]) == {"Ann Editor"}
    app.button(key="undo_import").click().run()
    _no_exception(app)
    assert "left alone" in app.success[0].value  # the edited project keeps its edits
    # The server's log says who signed in and every write, naming the project.
    logged = [r.getMessage() for r in caplog.records if r.name == "kindred_map.app"]
    assert "signed in with a password: 'ann' as editor" in logged
    # Four writes: the edit, the check, the retirement and the undo.
    writes = [line for line in logged if line.startswith("write by 'ann': ")]
    assert len(writes) == 4 and all(pid in line for line in writes), writes


def test_an_editors_page_reads_the_store_and_a_history_once_per_version(
    store_file, sign_in_as, monkeypatch
):
    """A run of an editor's page that changes nothing reads no project and no history again
    (`common.load_all_projects`, `editor.history_table`); a save changes the store's signature,
    and the next run reads both and shows the saved value."""
    reads = {"projects": 0, "history": 0}

    def counted(kind, read):
        def call(*args, **kwargs):
            reads[kind] += 1
            return read(*args, **kwargs)

        return call

    monkeypatch.setattr(store, "read_projects", counted("projects", store.read_projects))
    monkeypatch.setattr(st, "read_history", counted("history", st.read_history))
    app = _run(sign_in_as("ann", "Ann Editor"))
    _no_exception(app)
    pid = app.selectbox(key="edit_pick").value
    before = dict(reads)
    assert before["history"] >= 1
    app.run()
    app.run()
    _no_exception(app)
    assert reads == before
    app.text_input(key=f"edit_postcode_{pid}_1").input("L20 4RW")
    app.button[[b.label for b in app.button].index("Save changes")].click().run()
    _no_exception(app)
    assert reads["projects"] > before["projects"] and reads["history"] > before["history"]
    assert app.text_input(key=f"edit_postcode_{pid}_2").value == "L20 4RW"
    history = next(f.value for f in app.dataframe if "changes" in f.value.columns)
    assert history["action"].tolist()[0] == "edit"


@pytest.mark.parametrize("change", ["removed", "new password"])
def test_a_session_writes_nothing_once_its_user_is_removed_or_repassworded(
    store_file, sign_in_as, change, caplog
):
    """The session signed in before the change; its next click writes no event and signs it
    out, saying why (in the server's log too)."""
    caplog.set_level(logging.INFO, logger="kindred_map")
    app = _run(sign_in_as("bob", "Bob"))
    pid = app.selectbox(key="edit_pick").value
    if change == "removed":
        auth.remove_user("bob")
    else:
        auth.add_user("bob", "another long password", name="Bob")
    app.button(key="verify_today").click().run()
    _no_exception(app)
    assert "verify" not in set(st.read_history(store_file, pid)["action"])
    assert not set(EDITOR_KEYS) & _keys(app)
    assert any("signed out" in w.value for w in app.warning)
    assert any(r.getMessage().startswith("session of 'bob' ended") for r in caplog.records)


def test_a_stale_form_is_refused_with_who_changed_it(store_file, sign_in_as):
    editor = sign_in_as("bob", "Bob")
    app = _run(editor)
    pid = app.selectbox(key="edit_pick").value
    st.edit_project(store_file, pid, {"website": "https://other.example"}, 1, "Cat")
    app.text_input(key=f"edit_name_{pid}_1").input("Bob's new name")
    app.button[[b.label for b in app.button].index("Save changes")].click().run()
    _no_exception(app)
    assert any("changed by Cat" in e.value for e in app.error)
    assert store.read_projects(store_file).set_index("id").loc[pid, "website"] == (
        "https://other.example"
    )


def test_an_upload_lists_likely_duplicates_and_saves_the_editors_choice(store_file, sign_in_as):
    editor = sign_in_as("bob", "Bob")
    app = _run(editor)
    text = "Project,Postcode\nAardvark pantry,L1 8JQ\nZebra club,L20 4RW\n"
    app.file_uploader(key="upload").set_value(("again.csv", text.encode(), "text/csv")).run()
    _no_exception(app)
    (radio,) = app.radio
    assert radio.key.endswith("_2") and radio.value == "merge:partner:a"  # a strong match
    assert "Save will make: 1 new, 1 merged" in app.info[0].value
    radio.set_value("skip").run()
    assert "Save will make: 1 new, 0 merged into the stored project each duplicates, 1 skipped" in (
        app.info[0].value
    )
    app.button(key="confirm_upload").click().run()
    _no_exception(app)
    assert "Saved: 1 new, 0 merged into the stored project each duplicates, 1 skipped" in (
        app.success[0].value
    )
    names = set(store.read_projects(store_file)["name"])
    assert "Zebra club" in names and "Aardvark pantry" not in names
    assert store.read_imports(store_file)["who"].iloc[-1] == "Bob"


def test_the_freshness_filter_and_counts_follow_a_check(store_file, sign_in_as):
    pid = store.read_projects(store_file)["id"].iloc[0]
    st.verify_project(store_file, pid, "Ann")
    visitor = _run()
    _no_exception(visitor)
    # A visitor gets one line on the data's currency; the counts by status are the editor's.
    assert not any("Never checked" in m.value for m in visitor.markdown)
    line = "Checked by staff in the last 12 months: 1 of"
    assert any(c.value.startswith(line) for c in visitor.caption)
    app = _run(sign_in_as("bob", "Bob"))
    app.multiselect(key="fresh").set_value(["checked"]).run()
    _no_exception(app)
    counts = next(m.value for m in app.markdown if "in the last 12 months" in m.value)
    # The counts are of the projects shown (issue 20: not the store's 416 beside a map of 1).
    assert counts.splitlines()[0] == "Of the 1 projects shown:"
    assert "- Checked in the last 12 months: **1**" in counts.splitlines()
    assert "- Never checked: **0**" in counts.splitlines()
    assert app.query_params["fresh"] == "checked"  # the link keeps it
    shown = views.shown_projects(store.read_projects(store_file), views.View(fresh=("checked",)))
    assert shown["id"].tolist() == [pid]


def test_the_plan_follows_the_store_getting_its_id_key(tmp_path, monkeypatch, sign_in_as):
    """A store's first import gives it the secret that derived ids are made with: an upload
    prepared before must be prepared again, or its plan (and duplicates) would be of other ids."""
    path = tmp_path / "projects.gpkg"
    shutil.copy(DEFAULT_STORE, path)
    assert store.read_secret(path) is None  # the shipped store has none yet
    monkeypatch.setenv(location.STORE_ENV, str(path))
    monkeypatch.setenv("KINDRED_MAP_BASEMAP", "none")
    bob = sign_in_as("bob", "Bob")
    app = _run(bob)
    text = "Project,Postcode\nAardvark Test Larder,L1 8JQ\nZebra Test Room,L20 4RW\n"
    app.file_uploader(key="upload").set_value(("again.csv", text.encode(), "text/csv")).run()
    assert "Save will make: 2 new" in app.info[0].value
    app.button(key="confirm_upload").click().run()
    assert "Saved: 2 new" in app.success[0].value
    assert store.read_secret(path) is not None
    app = _run(bob)  # the same file again, in a new session
    app.file_uploader(key="upload").set_value(("again.csv", text.encode(), "text/csv")).run()
    _no_exception(app)
    assert not app.radio  # its rows are the stored projects themselves: no likely duplicates
    assert "Save will make: 0 new" in app.info[0].value
    app.button(key="confirm_upload").click().run()
    saved = app.success[0].value
    assert "Saved: 0 new" in saved and "unchanged: 2" in saved and "changed since" not in saved
    newest = int(store.read_imports(path)["import_id"].max())
    assert app.selectbox(key="undo_pick").value == newest  # the undo list offers it first


def test_a_new_project_is_picked_and_a_removed_one_is_said_to_be_gone(store_file, sign_in_as):
    app = _run(sign_in_as("bob", "Bob"))
    app.text_input(key="add_name").input("Hope Test Larder")
    app.text_input(key="add_postcode").input("L8 7SQ")
    app.button[[b.label for b in app.button].index("Add project")].click().run()
    _no_exception(app)
    added = store.read_projects(store_file).set_index("name").loc["Hope Test Larder", "id"]
    assert app.selectbox(key="edit_pick").value == added  # the editor goes on with it
    app.selectbox(key="edit_pick").set_value("partner:a").run()
    app.button(key="undo_import").click().run()  # the partner import, which made partner:a
    _no_exception(app)
    assert "partner:a" not in set(store.read_projects(store_file, include_retired=True)["id"])
    gone = md_escape("Project partner:a is no longer in the store")
    assert any(gone in i.value for i in app.info)
    assert app.selectbox(key="edit_pick").value != "partner:a"


def test_duplicate_answers_show_partner_text_as_typed(store_file, sign_in_as):
    """Radio labels and options are Markdown: names from files are escaped in both."""
    partner = Path(store_file).parent / "stars.csv"
    partner.write_text("id,name,postcode\ns,*Star* [Pantry](x),L1 8JQ\n", encoding="utf-8")
    importing.import_file(partner, store_file)
    app = _run(sign_in_as("bob", "Bob"))
    text = "Project,Postcode\n*Star* [Pantry](x) annexe,L1 8JQ\n"
    app.file_uploader(key="upload").set_value(("again.csv", text.encode(), "text/csv")).run()
    _no_exception(app)
    (radio,) = app.radio
    assert md_escape("*Star* [Pantry](x) annexe") in radio.label
    assert any(md_escape("merge into *Star* [Pantry](x)") in o for o in radio.options)
    assert radio.value is None  # a weak match (one name contains the other): asked
