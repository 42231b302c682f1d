"""Sign-in: bcrypt-hashed credentials outside the repository, roles, lockout, the users CLI."""

import io
import json
import multiprocessing
import stat

import bcrypt
import pytest

from kindred_map import auth, cli


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "users.json"
    monkeypatch.setenv(auth.USERS_ENV, str(path))
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 4)  # the cost is bcrypt's, not the behaviour's
    return path


def test_added_user_signs_in_with_their_password_only(users_file):
    auth.add_user("Alice", "correct horse battery", "editor", "Alice Smith")
    user = auth.sign_in("alice", "correct horse battery")
    assert (user.username, user.name, user.role) == ("alice", "Alice Smith", "editor")
    with pytest.raises(ValueError, match="not recognised"):
        auth.sign_in("alice", "wrong password here")
    with pytest.raises(ValueError, match="not recognised"):
        auth.sign_in("nobody", "correct horse battery")


def test_credentials_file_holds_hashes_only_and_is_private(users_file):
    auth.add_user("bob", "a long enough secret", "admin")
    text = users_file.read_text()
    assert "a long enough secret" not in text
    assert json.loads(text)["users"]["bob"]["password_hash"].startswith("$2")
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600


def test_roles_grant_what_the_issue_says():
    editor = auth.User("e", "E", "editor")
    admin = auth.User("a", "A", "admin")
    for action in ("upload", "add", "edit", "verify", "retire", "restore"):
        assert editor.can(action) and admin.can(action)
    assert admin.can("users") and not editor.can("users")
    assert not auth.User("v", "V", "viewer").can("edit")


def test_no_users_means_read_only(users_file):
    assert not auth.editing_enabled()
    auth.add_user("carol", "another long secret")
    assert auth.editing_enabled()
    auth.remove_user("carol")
    assert not auth.editing_enabled()
    with pytest.raises(ValueError, match="no user"):
        auth.remove_user("carol")


def test_bad_input_is_refused_with_a_reason(users_file):
    with pytest.raises(ValueError, match="at least 10"):
        auth.add_user("dave", "short")
    with pytest.raises(ValueError, match="invalid user name"):
        auth.add_user("<script>", "long enough password")
    with pytest.raises(ValueError, match="unknown role"):
        auth.add_user("dave", "long enough password", role="owner")
    users_file.parent.mkdir(parents=True)
    users_file.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the users file"):
        auth.read_users()
    assert not auth.editing_enabled()


def test_repeated_failures_lock_the_user_name_out(users_file):
    auth.add_user("erin", "the right password")
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(ValueError, match="not recognised"):
            auth.sign_in("erin", "a wrong password")
    with pytest.raises(ValueError, match="too many failed sign-ins"):
        auth.sign_in("erin", "the right password")


def test_a_session_ends_when_its_user_is_removed_or_their_password_changes(users_file):
    auth.add_user("gina", "the first password")
    user = auth.sign_in("gina", "the first password")
    assert auth.confirm(user) == user
    auth.add_user("gina", "the second password")  # `users add` again: a new password
    with pytest.raises(ValueError, match="signed out"):
        auth.confirm(user)
    again = auth.sign_in("gina", "the second password")
    assert auth.confirm(again) == again
    auth.remove_user("gina")
    with pytest.raises(ValueError, match="signed out"):
        auth.confirm(again)
    with pytest.raises(ValueError, match="signed out"):  # made by hand, never signed in
        auth.confirm(auth.User("gina", "Gina", "editor"))


def _try_once(path, barrier, password, results) -> None:
    barrier.wait()
    try:
        auth.sign_in("hana", password, path)
        results.put("signed in")
    except ValueError as error:
        results.put("checked" if "not recognised" in str(error) else "refused")


def test_parallel_guesses_are_counted_before_the_password_is_checked(users_file):
    """20 processes guess at once (wrong passwords): at most MAX_FAILURES are checked, the rest
    refused unchecked, and the right password is refused after them."""
    auth.add_user("hana", "the right password")
    fork = multiprocessing.get_context("fork")
    barrier, results = fork.Barrier(20), fork.Queue()
    workers = [
        fork.Process(target=_try_once, args=(users_file, barrier, f"guess {n:02d}", results))
        for n in range(20)
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes.count("checked") == auth.MAX_FAILURES
    assert outcomes.count("refused") == 20 - auth.MAX_FAILURES
    with pytest.raises(ValueError, match="too many failed sign-ins"):
        auth.sign_in("hana", "the right password")


def test_a_right_password_clears_the_names_failures(users_file):
    auth.add_user("ivan", "the right password")
    for _ in range(auth.MAX_FAILURES - 1):
        with pytest.raises(ValueError, match="not recognised"):
            auth.sign_in("ivan", "a wrong password")
    assert auth.sign_in("ivan", "the right password").username == "ivan"
    assert auth.tracked_attempts() == 0


def test_unknown_names_are_checked_at_the_cost_of_known_ones(users_file, monkeypatch):
    monkeypatch.setattr(auth, "BCRYPT_ROUNDS", 5)
    auth.add_user("jo", "the right password")
    checked = []
    real = bcrypt.checkpw
    monkeypatch.setattr(
        auth.bcrypt,
        "checkpw",
        lambda password, hashed: checked.append(hashed) or real(password, hashed),
    )
    for name in ("jo", "nobody-here"):
        with pytest.raises(ValueError, match="not recognised"):
            auth.sign_in(name, "a wrong password")
    assert [hashed.split(b"$")[2] for hashed in checked] == [b"05", b"05"]


def test_huge_names_are_refused_unstored_and_the_failure_table_is_bounded(users_file, monkeypatch):
    auth.add_user("kim", "the right password")
    with pytest.raises(ValueError, match=f"at most {auth.MAX_USERNAME_CHARS} characters"):
        auth.sign_in("x" * 20_000_000, "a wrong password")
    assert auth.tracked_attempts() == 0
    monkeypatch.setattr(auth, "MAX_TRACKED_ATTEMPTS", 10)
    for number in range(25):
        with pytest.raises(ValueError, match="not recognised"):
            auth.sign_in(f"name-{number}", "a wrong password")
    assert auth.tracked_attempts() == 10


def test_users_cli_adds_lists_and_removes(users_file, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a password typed once\n"))
    assert cli.main(["users", "add", "frank", "--role", "admin", "--password-stdin"]) == 0
    assert auth.sign_in("frank", "a password typed once").role == "admin"
    assert cli.main(["users", "list"]) == 0
    assert "frank\tadmin" in capsys.readouterr().out
    assert cli.main(["users", "remove", "frank"]) == 0
    assert cli.main(["users", "remove", "frank"]) == 2
    assert "no user" in capsys.readouterr().err
