"""Sign-in with the organisation's account in the dashboard (AppTest, ``st.user`` seeded as the
provider would leave it): roles from the roles file, a private map, admins managing people."""

import shutil

import pytest
from app_runs import first_page
from streamlit.testing.v1 import AppTest

from kindred_map import auth, location, people, roles
from kindred_map import stewardship as st
from kindred_map.paths import DEFAULT_STORE, PROJECT_ROOT

APP = PROJECT_ROOT / "app.py"
TIMEOUT_S = 120
EDITOR_KEYS = ("upload", "edit_pick", "verify_today", "retire", "add_name")
RAJ = "raj@charity.org.uk"
ANN = "ann@charity.org.uk"


@pytest.fixture
def store_file(tmp_path, monkeypatch):
    path = tmp_path / "projects.gpkg"
    shutil.copy(DEFAULT_STORE, path)
    for name, value in (
        (location.STORE_ENV, path),
        ("KINDRED_MAP_BASEMAP", "none"),
        (auth.USERS_ENV, tmp_path / "users.json"),
    ):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv(roles.ROLES_ENV, raising=False)
    people.grant(RAJ, "editor", "test")
    people.grant(ANN, "admin", "test")
    people.grant("charity.org.uk", "viewer", "test")
    return path


def _keys(app: AppTest) -> set[str]:
    found = set()
    for kind in ("button", "selectbox", "file_uploader", "text_input"):
        found |= {w.key for w in getattr(app, kind) if w.key}
    return found


def _as(email: str | None) -> AppTest:
    """The page as the provider's sign-in leaves ``st.user`` for ``email`` (None: nobody)."""
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.user = {"is_logged_in": True, "email": email, "name": "Someone"} if email else {}
    return first_page(app)


def _fine(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def _texts(app: AppTest) -> str:
    """The page's messages as read (Markdown escapes and word joiners taken out)."""
    shown = " ".join(m.value for m in [*app.markdown, *app.warning, *app.error, *app.info])
    return shown.replace("\\", "").replace("\u2060", "")


def test_an_organisation_editor_edits_and_the_history_names_their_address(store_file):
    app = _as(RAJ)
    _fine(app)
    assert set(EDITOR_KEYS) <= _keys(app)
    assert f"Signed in as **{RAJ}** (editor)" in _texts(app)
    pid = app.selectbox(key="edit_pick").value
    app.button(key="verify_today").click().run()
    _fine(app)
    events = st.read_history(store_file, pid)
    assert events["action"].iloc[-1] == "verify"
    assert events["who"].iloc[-1] == RAJ
    assert "people_pick" not in _keys(app)  # editors do not manage people


def test_a_viewer_from_the_provider_cannot_edit(store_file):
    app = _as("mo@charity.org.uk")
    _fine(app)
    assert "Signed in as" in _texts(app)
    assert not set(EDITOR_KEYS) & _keys(app)


def test_a_private_map_shows_nothing_but_sign_in_to_visitors_and_refuses_other_domains(
    store_file,
):
    people.set_public(False, "test")
    visitor = _as(None)
    _fine(visitor)
    assert "sign in to see it" in _texts(visitor)
    assert not any("Showing " in m.value for m in visitor.markdown)
    outsider = _as("eve@elsewhere.org")
    _fine(outsider)
    assert "eve@elsewhere.org) is not allowed to see this map" in _texts(outsider)
    assert not any("Showing " in m.value for m in outsider.markdown)
    assert "gate_sign_out" in _keys(outsider)
    staff = _as("mo@charity.org.uk")
    _fine(staff)
    assert any("Showing " in m.value for m in staff.markdown)
    people.set_public(True, "test")
    assert any("Showing " in m.value for m in _as(None).markdown)  # public: everyone
    assert any("Showing " in m.value for m in _as("eve@elsewhere.org").markdown)


def test_an_admin_removes_an_editor_in_the_page_and_their_open_session_writes_nothing(
    store_file,
):
    editor = _as(RAJ)
    pid = editor.selectbox(key="edit_pick").value
    admin = _as(ANN)
    _fine(admin)
    admin.selectbox(key="people_pick").set_value(RAJ)
    admin.button(key="revoke_entry").click().run()
    _fine(admin)
    assert RAJ not in roles.read_rules()["people"]
    (row,) = [r for r in people.audit_log() if r["who"] == ANN]
    assert (row["action"], row["subject"], row["role_before"]) == ("revoke", RAJ, "editor")
    editor.button(key="verify_today").click().run()  # the removed editor's next click
    _fine(editor)
    assert "verify" not in set(st.read_history(store_file, pid)["action"])
    assert not set(EDITOR_KEYS) & _keys(editor)
    assert any("you are now viewer" in w.value for w in editor.warning)


def test_an_admin_adds_and_promotes_people_and_cannot_demote_themselves(store_file):
    admin = _as(ANN)
    admin.text_input(key="grant_subject").input("New.Person@charity.org.uk")
    admin.selectbox(key="grant_role").set_value("editor")
    admin.button[[b.label for b in admin.button].index("Add or change")].click().run()
    _fine(admin)
    assert roles.read_rules()["people"]["new.person@charity.org.uk"] == "editor"
    assert set(EDITOR_KEYS) <= _keys(_as("new.person@charity.org.uk"))
    admin.text_input(key="grant_subject").input(ANN)
    admin.selectbox(key="grant_role").set_value("viewer")
    admin.button[[b.label for b in admin.button].index("Add or change")].click().run()
    assert "your own role" in _texts(admin)
    assert roles.read_rules()["people"][ANN] == "admin"
    admin.text_input(key="grant_subject").input("not an address")
    admin.button[[b.label for b in admin.button].index("Add or change")].click().run()
    assert "neither an e-mail address" in _texts(admin)


def test_an_admin_changes_and_removes_password_accounts_in_the_page(store_file, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    auth.add_user("bob", "a long password", name="Bob")
    bob = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    bob.session_state["signed_in_user"] = auth.sign_in("bob", "a long password")
    first_page(bob)
    assert set(EDITOR_KEYS) <= _keys(bob)
    admin = _as(ANN)
    admin.selectbox(key="account_pick").set_value("bob")
    admin.button(key="account_remove").click().run()
    _fine(admin)
    assert auth.list_users() == []
    assert people.audit_log()[0]["action"] == "remove account"
    bob.button(key="verify_today").click().run()
    assert not set(EDITOR_KEYS) & _keys(bob)
    assert any("signed out" in w.value for w in bob.warning)


def test_the_sign_in_buttons_follow_the_auth_secrets(store_file):
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.secrets["auth"] = {
        "redirect_uri": "https://map.charity.org.uk/oauth2callback",
        "cookie_secret": "x" * 32,
        "microsoft": {"client_id": "a", "client_secret": "b", "server_metadata_url": "c"},
    }
    first_page(app)
    _fine(app)
    assert "Sign in with Microsoft" in [b.label for b in app.button]
    assert "sign_in_user" not in _keys(app)  # no password accounts: no password form
    assert not any("read-only" in i.value for i in app.info)
