"""Sign-in for editors and admins: bcrypt-hashed credentials in a file outside the repository.

Viewers need no sign-in. Editors may upload, add, edit, verify and retire projects; admins may
also manage users. With no credentials file (or an empty one) nobody can sign in and the
dashboard is read-only.

Why bcrypt in a local file rather than streamlit-authenticator or ``st.login``: ``st.login``
needs an OpenID Connect provider on the network, which a small network's laptop server and this
offline build do not have; streamlit-authenticator keeps its session in a browser cookie through
a custom JavaScript component that Streamlit's test harness cannot drive, and needs a cookie
signing secret to manage. bcrypt (the hashing streamlit-authenticator itself uses) with a plain
Streamlit form gives the same protection, testable end to end, and the session lives only in
the server's session state.
"""

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

USERS_ENV = "KINDRED_MAP_USERS"
DEFAULT_USERS_FILE = Path.home() / ".config" / "kindred-map" / "users.json"
"""Outside the repository, so that credentials are never committed or shipped."""
ROLES = ("editor", "admin")
"""Viewer is not a role: viewers do not sign in."""
PERMISSIONS = {
    "editor": frozenset({"upload", "add", "edit", "verify", "retire", "restore", "undo"}),
    "admin": frozenset({"upload", "add", "edit", "verify", "retire", "restore", "undo", "users"}),
}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 10
BCRYPT_ROUNDS = 12
MAX_FAILURES = 5
"""Failed sign-ins allowed per user name within LOCKOUT_S before further tries are refused."""
LOCKOUT_S = 15 * 60
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))
"""Checked against for unknown user names, so that timing does not tell which names exist."""
_failures: dict[str, list[float]] = {}
_failures_lock = threading.Lock()


@dataclass(frozen=True)
class User:
    """A signed-in person: their user name, display name and role."""

    username: str
    name: str
    role: str

    def can(self, action: str) -> bool:
        """Whether this user's role allows ``action`` (upload, add, edit, verify, ...)."""
        return action in PERMISSIONS.get(self.role, frozenset())


def users_path() -> Path:
    """The credentials file: env KINDRED_MAP_USERS, else ~/.config/kindred-map/users.json."""
    configured = os.environ.get(USERS_ENV, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_USERS_FILE


def read_users(path: Path | None = None) -> dict[str, dict]:
    """``{username: {"name", "role", "password_hash"}}``; a missing file reads as no users."""
    path = Path(path) if path is not None else users_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the users file {path}: {error}") from error
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ValueError(f"the users file {path} has no 'users' table")
    return {
        name: entry
        for name, entry in users.items()
        if isinstance(entry, dict) and entry.get("role") in ROLES and entry.get("password_hash")
    }


def editing_enabled(path: Path | None = None) -> bool:
    """True when at least one editor or admin can sign in."""
    try:
        return bool(read_users(path))
    except ValueError:
        return False


def _write_users(users: dict[str, dict], path: Path) -> None:
    """Write the users file atomically, readable by its owner only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"users": users}, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_username(username: str) -> str:
    """The user name in lower case, or a ValueError saying what a user name may be."""
    name = str(username).strip().lower()
    if not USERNAME.fullmatch(name):
        raise ValueError(
            f"invalid user name {username!r}: 2-32 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def add_user(
    username: str, password: str, role: str = "editor", name: str = "", path: Path | None = None
) -> User:
    """Add a user, or replace the password, role and name of an existing one."""
    path = Path(path) if path is not None else users_path()
    username = check_username(username)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    users = read_users(path)
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS))
    users[username] = {
        "name": name.strip() or username,
        "role": role,
        "password_hash": hashed.decode("ascii"),
    }
    _write_users(users, path)
    return User(username, users[username]["name"], role)


def remove_user(username: str, path: Path | None = None) -> None:
    """Remove a user; a ValueError if there is no such user."""
    path = Path(path) if path is not None else users_path()
    username = check_username(username)
    users = read_users(path)
    if username not in users:
        raise ValueError(f"no user {username!r} in {path}")
    del users[username]
    _write_users(users, path)


def list_users(path: Path | None = None) -> list[User]:
    """Every user who can sign in, by user name (no password hashes)."""
    users = read_users(path)
    return [
        User(name, users[name].get("name", name), users[name]["role"]) for name in sorted(users)
    ]


def _locked_out(username: str, now: float) -> bool:
    with _failures_lock:
        recent = [t for t in _failures.get(username, []) if now - t < LOCKOUT_S]
        _failures[username] = recent
        return len(recent) >= MAX_FAILURES


def _record_failure(username: str, now: float) -> None:
    with _failures_lock:
        _failures.setdefault(username, []).append(now)


def sign_in(username: str, password: str, path: Path | None = None) -> User:
    """The user whose credentials these are, or a ValueError that does not say which part was
    wrong. After MAX_FAILURES failures within LOCKOUT_S a user name is refused for a while."""
    now = time.monotonic()
    key = str(username).strip().lower()
    if _locked_out(key, now):
        raise ValueError("too many failed sign-ins for this user name: try again in 15 minutes")
    users = read_users(path)
    entry = users.get(key)
    stored = entry["password_hash"].encode("ascii") if entry else _DUMMY_HASH
    try:
        matched = bcrypt.checkpw(str(password).encode("utf-8"), stored)
    except ValueError:  # a corrupt hash in the file
        matched = False
    if not (entry and matched):
        _record_failure(key, now)
        raise ValueError("user name or password not recognised")
    with _failures_lock:
        _failures.pop(key, None)
    return User(key, entry.get("name", key), entry["role"])
