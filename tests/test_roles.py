"""Sign-in through the organisation's provider: roles by e-mail or domain, the audit table, CLI."""

import io
import stat

import pytest

from kindred_map import auth, cli, people, roles


@pytest.fixture
def files(tmp_path, monkeypatch):
    """(users file, roles file), both in a temporary config folder."""
    users = tmp_path / "config" / "users.json"
    monkeypatch.setenv(auth.USERS_ENV, str(users))
    monkeypatch.delenv(roles.ROLES_ENV, raising=False)
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)
    return users, users.with_name("roles.json")


def test_the_roles_file_sits_beside_the_users_file_and_is_private(files):
    users, rules_file = files
    assert roles.roles_path() == rules_file
    people.grant("ann@charity.org.uk", "admin", "test")
    assert stat.S_IMODE(rules_file.stat().st_mode) == 0o600


def test_a_persons_entry_wins_over_their_domains_and_the_map_setting_decides_the_rest(files):
    people.grant("Raj@Charity.org.uk", "editor", "test")
    people.grant("charity.org.uk", "viewer", "test")
    rules = roles.read_rules()
    assert roles.role_for("raj@charity.org.uk", rules) == "editor"
    assert roles.role_for("RAJ@charity.org.uk", rules) == "editor"
    assert roles.role_for("mo@charity.org.uk", rules) == "viewer"
    assert roles.role_for("mo@sub.charity.org.uk", rules) == "viewer"  # public map: anyone
    assert roles.role_for("eve@elsewhere.org", rules) == "viewer"
    people.set_public(False, "test")
    rules = roles.read_rules()
    assert roles.role_for("mo@charity.org.uk", rules) == "viewer"
    assert roles.role_for("mo@sub.charity.org.uk", rules) is None  # exact domains only
    assert roles.role_for("eve@elsewhere.org", rules) is None
    assert roles.role_for("not an address", rules) is None


def test_no_roles_file_means_a_public_map_where_nobody_edits(files):
    assert roles.read_rules() == {"public": True, "people": {}, "domains": {}}
    assert roles.person({"email": "anyone@example.org"}).role == "viewer"


def test_the_person_is_their_verified_e_mail_address(files):
    people.grant("raj@charity.org.uk", "editor", "test")
    person = roles.person({"email": "Raj@charity.org.uk", "name": "Raj Patel"})
    assert (person.username, person.name, person.role, person.provider) == (
        "raj@charity.org.uk",
        "raj@charity.org.uk",
        "editor",
        "oidc",
    )
    assert person.can("edit") and not person.can("users")
    # Entra work accounts without a mailbox: the sign-in name is an address
    assert roles.person({"preferred_username": "raj@charity.org.uk"}).role == "editor"
    assert roles.person({"email": "raj@charity.org.uk", "email_verified": False}) is None
    assert roles.person({"sub": "12345"}) is None
    viewer = roles.person({"email": "mo@charity.org.uk"})
    assert not viewer.can("edit")


def test_a_removed_or_demoted_person_loses_the_role_on_the_next_read(files):
    people.grant("raj@charity.org.uk", "editor", "test")
    people.set_public(False, "test")
    assert roles.person({"email": "raj@charity.org.uk"}).can("edit")
    people.grant("raj@charity.org.uk", "viewer", "ann@charity.org.uk")
    assert not roles.person({"email": "raj@charity.org.uk"}).can("edit")
    people.revoke("raj@charity.org.uk", "ann@charity.org.uk")
    assert roles.person({"email": "raj@charity.org.uk"}) is None  # private, no domain entry


def test_every_change_is_audited_with_who_what_and_the_roles(files):
    people.grant("raj@charity.org.uk", "editor", "ann@charity.org.uk")
    people.grant("raj@charity.org.uk", "editor", "ann@charity.org.uk")  # no change: no row
    people.grant("raj@charity.org.uk", "admin", "ann@charity.org.uk")
    people.revoke("raj@charity.org.uk", "ann@charity.org.uk")
    people.add_account("bob", "a long password", "editor", "Bob", "ann@charity.org.uk")
    people.set_account_role("bob", "admin", "ann@charity.org.uk")
    people.remove_account("bob", "ann@charity.org.uk")
    people.set_public(False, "ann@charity.org.uk")
    log = people.audit_log()
    assert [(r["action"], r["subject"], r["role_before"], r["role_after"]) for r in log] == [
        ("map", "*", "public", "private"),
        ("remove account", "bob", "admin", ""),
        ("account role", "bob", "editor", "admin"),
        ("add account", "bob", "", "editor"),
        ("revoke", "raj@charity.org.uk", "admin", ""),
        ("grant", "raj@charity.org.uk", "editor", "admin"),
        ("grant", "raj@charity.org.uk", "", "editor"),
    ]
    assert {r["who"] for r in log} == {"ann@charity.org.uk"}
    assert people.audit_path() == files[1].with_name("roles.audit.sqlite")


def test_a_password_accounts_role_change_ends_its_sessions(files):
    people.add_account("bob", "a long password", "editor", "Bob", "test")
    session = auth.sign_in("bob", "a long password")
    people.set_account_role("bob", "admin", "test")
    with pytest.raises(ValueError, match="signed out"):
        auth.confirm(session)
    assert auth.sign_in("bob", "a long password").role == "admin"


def test_bad_changes_are_refused_with_a_reason_and_change_nothing(files):
    people.grant("ann@charity.org.uk", "admin", "test")
    before = files[1].read_bytes()
    for subject, role, match in (
        ("ann", "editor", "neither an e-mail address"),
        ("ann@charity.org.uk", "owner", "unknown role"),
        ("<script>@x.org", "editor", "neither"),
        ("a" * 300 + "@charity.org.uk", "editor", "neither"),
    ):
        with pytest.raises(ValueError, match=match):
            people.grant(subject, role, "test")
    with pytest.raises(ValueError, match="your own role"):
        people.grant("ann@charity.org.uk", "viewer", "ann@charity.org.uk")
    with pytest.raises(ValueError, match="your own role"):
        people.revoke("Ann@charity.org.uk", "ann@charity.org.uk")
    with pytest.raises(ValueError, match="no entry"):
        people.revoke("nobody@charity.org.uk", "test")
    assert files[1].read_bytes() == before
    assert len(people.audit_log()) == 1


def test_a_hand_edited_roles_file_keeps_only_valid_entries(files):
    files[1].parent.mkdir(parents=True)
    files[1].write_text(
        '{"public": "yes", "people": {"raj@charity.org.uk": "editor", "x": "admin", '
        '"mo@charity.org.uk": "owner"}, "domains": {"charity.org.uk": "viewer"}}'
    )
    rules = roles.read_rules()
    assert rules == {  # "yes" is not true: a typo never opens a private map
        "public": False,
        "people": {"raj@charity.org.uk": "editor"},
        "domains": {"charity.org.uk": "viewer"},
    }
    files[1].write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the roles file"):
        roles.read_rules()


def test_providers_are_read_from_the_auth_secrets():
    assert roles.providers({}) == []
    assert roles.providers({"redirect_uri": "x", "cookie_secret": "y"}) == []
    assert roles.providers({"client_id": "a", "redirect_uri": "x"}) == [""]
    section = {
        "redirect_uri": "x",
        "microsoft": {"client_id": "a"},
        "google": {"client_id": "b"},
    }
    assert roles.providers(section) == ["google", "microsoft"]


def test_users_cli_grants_revokes_lists_and_audits(files, monkeypatch, capsys):
    assert cli.main(["users", "grant", "raj@charity.org.uk", "--role", "editor"]) == 0
    assert cli.main(["users", "grant", "charity.org.uk", "--role", "viewer"]) == 0
    assert cli.main(["users", "public", "no"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a password typed once\n"))
    assert cli.main(["users", "add", "bob", "--password-stdin"]) == 0
    assert cli.main(["users", "role", "bob", "admin"]) == 0
    capsys.readouterr()
    assert cli.main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "bob\tadmin" in out
    assert "raj@charity.org.uk\teditor\t(organisation account)" in out
    assert "charity.org.uk\tviewer" in out
    assert "private" in out
    assert cli.main(["users", "revoke", "raj@charity.org.uk"]) == 0
    assert cli.main(["users", "revoke", "raj@charity.org.uk"]) == 2
    assert "no entry" in capsys.readouterr().err
    assert cli.main(["users", "audit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[0].split("\t")[2:] == ["revoke", "raj@charity.org.uk", "editor", ""]
    assert lines[0].split("\t")[1].startswith("command line (")
