"""Sign-in for editors and admins: bcrypt-hashed credentials in a file outside the repository.

Viewers need no sign-in on a public map (`roles`). Editors may upload, add, edit, verify and
retire projects; admins may also manage users. With no credentials file (or an empty one) and
no identity provider nobody can sign in and the dashboard is read-only.

Password accounts are for set-ups without an identity provider (a laptop server, an offline
network); where the organisation has one, staff sign in with its account through ``st.login``
and their role comes from the roles file (`roles`). Both can be on at once. Why bcrypt in a
local file rather than streamlit-authenticator: it keeps its session in a browser cookie
through a custom JavaScript component that Streamlit's test harness cannot drive, and needs a
cookie signing secret to manage. bcrypt (the hashing streamlit-authenticator itself uses) with
a plain Streamlit form gives the same protection, testable end to end, and the session lives
only in the server's session state.

A session holds the fingerprint of the credential it signed in with (`credential_of`) and is
checked against the file before every write (`confirm`): removing a user or changing their
password ends their sessions. Failed sign-ins are counted in a small SQLite table beside the
users file (`ATTEMPTS_SUFFIX`), shared by every session and process: an attempt is reserved
there before the password is checked, so 20 parallel guesses get at most MAX_FAILURES checks.
"""

import functools
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from kindred_map import private

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
MAX_USERNAME_CHARS = 64
"""A typed user name longer than this is refused before anything is checked or counted (real
ones have at most 32 characters): a visitor cannot make the server hold megabytes of names."""
MAX_TRACKED_ATTEMPTS = 10_000
"""Rows the failure table keeps (about 1 MB): past this the oldest are pruned. Pruning lets a
flood of other names age one name's count out early, but each row costs its sender a bcrypt
check (about 0.25 s of the server's CPU), and a table that only grew would fill the disk."""
ATTEMPTS_SUFFIX = ".attempts.sqlite"
"""The failure table lives beside the users file: users.json -> users.attempts.sqlite."""
SIGNED_OUT = (
    "You have been signed out: your account was removed or its password changed. Sign in again."
)


@dataclass(frozen=True)
class User:
    """A signed-in person: their user name, display name and role."""

    username: str
    name: str
    role: str
    credential: str = ""
    """`credential_of` the entry signed in with ("" for a User made by hand: never confirmed)."""
    provider: str = ""
    """"" for a password account of the users file; "oidc" for a person signed in through the
    organisation's identity provider, whose role comes from the roles file (`roles`)."""

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
    private.write_json({"users": users}, path)


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
    return User(username, users[username]["name"], role, credential_of(users[username]))


def remove_user(username: str, path: Path | None = None) -> None:
    """Remove a user; a ValueError if there is no such user."""
    path = Path(path) if path is not None else users_path()
    username = check_username(username)
    users = read_users(path)
    if username not in users:
        raise ValueError(f"no user {username!r} in {path}")
    del users[username]
    _write_users(users, path)


def set_role(username: str, role: str, path: Path | None = None) -> User:
    """Change a user's role, keeping their password; their open sessions end (the credential's
    fingerprint includes the role) and they sign in again with the new one."""
    path = Path(path) if path is not None else users_path()
    username = check_username(username)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    users = read_users(path)
    if username not in users:
        raise ValueError(f"no user {username!r} in {path}")
    users[username]["role"] = role
    _write_users(users, path)
    return User(username, users[username].get("name", username), role)


def list_users(path: Path | None = None) -> list[User]:
    """Every user who can sign in, by user name (no password hashes)."""
    users = read_users(path)
    return [
        User(name, users[name].get("name", name), users[name]["role"]) for name in sorted(users)
    ]


def credential_of(entry: dict) -> str:
    """A fingerprint of a user's stored credential (password hash and role): it changes when the
    password is reset, the role changes or the user is removed and added again (bcrypt salts
    every hash afresh), so a session signed in with the old one can tell."""
    text = json.dumps([entry.get("password_hash", ""), entry.get("role", "")])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def confirm(user: User, path: Path | None = None) -> User:
    """``user`` if their credential is still the one they signed in with, else a ValueError:
    a session ends when its user is removed or their password or role changes. Called before
    every write (and on every rerun of the page), not only at sign-in."""
    try:
        entry = read_users(path).get(user.username)
    except ValueError:
        entry = None
    if not entry or not user.credential or credential_of(entry) != user.credential:
        raise ValueError(SIGNED_OUT)
    return user


def _attempts_path(path: Path) -> Path:
    return path.with_name(path.stem + ATTEMPTS_SUFFIX)


def _attempts(path: Path):
    """The failure table, in one immediate (write-locked) transaction across processes."""
    return private.locked(
        _attempts_path(path),
        "CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY, username TEXT NOT NULL, "
        "at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS attempts_username ON attempts (username)",
    )


def _reserve_attempt(key: str, path: Path) -> bool:
    """Count this attempt as a failure before the password is checked (it is forgotten if the
    password is right); False, counting nothing, when the name already has MAX_FAILURES recent
    failures. Old rows are pruned, and the table never holds more than MAX_TRACKED_ATTEMPTS."""
    now = time.time()
    with _attempts(path) as db:
        db.execute("DELETE FROM attempts WHERE at < ?", (now - LOCKOUT_S,))
        count = "SELECT COUNT(*) FROM attempts"
        if db.execute(f"{count} WHERE username = ?", (key,)).fetchone()[0] >= MAX_FAILURES:
            return False
        excess = db.execute(count).fetchone()[0] - MAX_TRACKED_ATTEMPTS + 1
        if excess > 0:
            db.execute(
                "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts ORDER BY id LIMIT ?)",
                (excess,),
            )
        db.execute("INSERT INTO attempts (username, at) VALUES (?, ?)", (key, now))
    return True


def _forget_attempts(key: str, path: Path) -> None:
    with _attempts(path) as db:
        db.execute("DELETE FROM attempts WHERE username = ?", (key,))


def tracked_attempts(path: Path | None = None) -> int:
    """How many failed (or in-progress) sign-ins the failure table holds."""
    path = Path(path) if path is not None else users_path()
    with _attempts(path) as db:
        return db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]


@functools.cache
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost))


def _cost(password_hash: str) -> int:
    """The bcrypt cost of a stored hash ($2b$12$...), or BCRYPT_ROUNDS if it cannot be read."""
    parts = str(password_hash).split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else BCRYPT_ROUNDS


def sign_in(username: str, password: str, path: Path | None = None) -> User:
    """The user whose credentials these are, or a ValueError that does not say which part was
    wrong. After MAX_FAILURES failures within LOCKOUT_S a user name is refused for a while.

    The attempt is counted before the password is checked, atomically across sessions and
    processes. An unknown name is checked against a dummy hash of the same bcrypt cost as the
    stored ones, so it takes as long as a known name."""
    path = Path(path) if path is not None else users_path()
    typed = str(username)
    if len(typed) > MAX_USERNAME_CHARS:
        raise ValueError(f"user names have at most {MAX_USERNAME_CHARS} characters")
    key = typed.strip().lower()
    users = read_users(path)
    if not _reserve_attempt(key, path):
        raise ValueError("too many failed sign-ins for this user name: try again in 15 minutes")
    entry = users.get(key)
    cost = max((_cost(e["password_hash"]) for e in users.values()), default=BCRYPT_ROUNDS)
    stored = entry["password_hash"].encode("ascii") if entry else _dummy_hash(cost)
    try:
        matched = bcrypt.checkpw(str(password).encode("utf-8"), stored)
    except ValueError:  # a corrupt hash in the file
        matched = False
    if not (entry and matched):
        raise ValueError("user name or password not recognised")
    _forget_attempts(key, path)
    return User(key, entry.get("name", key), entry["role"], credential_of(entry))
