"""Admins' changes to who may sign in and with what role, each kept in an audit table.

Every change, from the page or the command line, goes through here: to the roles file
(`roles`, people signed in through the identity provider) or the users file (`auth`, password
accounts), and one row in a SQLite table beside the roles file (roles.audit.sqlite) saying
when, by whom, what and the role before and after. The table's write lock is held around the
file's read and rewrite, so two admins changing people at once cannot lose either change.
A change takes effect on the person's next click: their role is read on every run.
"""

from datetime import UTC, datetime
from pathlib import Path

from kindred_map import auth, private, roles

AUDIT_SUFFIX = ".audit.sqlite"
"""The audit table lives beside the roles file: roles.json -> roles.audit.sqlite."""
AUDIT_COLUMNS = ("at", "who", "action", "subject", "role_before", "role_after")


def audit_path(roles_file: Path | None = None) -> Path:
    """The audit table's file, beside the roles file."""
    path = Path(roles_file) if roles_file is not None else roles.roles_path()
    return path.with_name(path.stem + AUDIT_SUFFIX)


def _audit(roles_file: Path | None):
    """The audit table in one immediate (write-locked) transaction across processes."""
    return private.locked(
        audit_path(roles_file),
        "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT "
        "NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, role_before TEXT NOT NULL, "
        "role_after TEXT NOT NULL)",
    )


def _record(db, by: str, action: str, subject: str, before: str, after: str) -> None:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    db.execute(
        f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
        (at, str(by), action, subject, before, after),
    )


def _not_yourself(subject: str, by: str) -> None:
    """An admin may not demote or remove themselves: the page would lock its last admin out."""
    if subject == str(by).strip().lower():
        raise ValueError("you cannot change or remove your own role; ask another admin")


def grant(subject: str, role: str, by: str, roles_file: Path | None = None) -> str:
    """Give an e-mail address or a whole domain a role (viewer, editor or admin) for sign-in
    through the identity provider, replacing any it had; returns the subject as stored."""
    subject = roles.check_subject(subject)
    role = roles.check_role(role)
    _not_yourself(subject, by)
    table = "people" if "@" in subject else "domains"
    with _audit(roles_file) as db:
        rules = roles.read_rules(roles_file)
        before = rules[table].get(subject, "")
        if before == role:
            return subject
        rules[table][subject] = role
        roles.write_rules(rules, roles_file)
        _record(db, by, "grant", subject, before, role)
    return subject


def revoke(subject: str, by: str, roles_file: Path | None = None) -> None:
    """Remove an e-mail address's or domain's entry: they fall back to their domain's role, or
    to the map's default (viewer on a public map, refused on a private one)."""
    subject = roles.check_subject(subject)
    _not_yourself(subject, by)
    table = "people" if "@" in subject else "domains"
    with _audit(roles_file) as db:
        rules = roles.read_rules(roles_file)
        if subject not in rules[table]:
            raise ValueError(f"{subject} has no entry in the roles file")
        before = rules[table].pop(subject)
        roles.write_rules(rules, roles_file)
        _record(db, by, "revoke", subject, before, "")


def set_public(public: bool, by: str, roles_file: Path | None = None) -> None:
    """Make the map public (anyone may view, without signing in) or private (viewers must sign
    in and be allowed by the roles file)."""
    with _audit(roles_file) as db:
        rules = roles.read_rules(roles_file)
        before = "public" if rules["public"] else "private"
        rules["public"] = bool(public)
        roles.write_rules(rules, roles_file)
        _record(db, by, "map", "*", before, "public" if public else "private")


def add_account(
    username: str,
    password: str,
    role: str,
    name: str,
    by: str,
    users_file: Path | None = None,
    roles_file: Path | None = None,
) -> auth.User:
    """Add a password account, or reset its password, role and name (`auth.add_user`)."""
    with _audit(roles_file) as db:
        before = auth.read_users(users_file).get(auth.check_username(username), {})
        user = auth.add_user(username, password, role, name, users_file)
        action = "reset password" if before else "add account"
        _record(db, by, action, user.username, before.get("role", ""), role)
    return user


def set_account_role(
    username: str,
    role: str,
    by: str,
    users_file: Path | None = None,
    roles_file: Path | None = None,
) -> None:
    """Change a password account's role; its open sessions end (`auth.set_role`)."""
    username = auth.check_username(username)
    _not_yourself(username, by)
    with _audit(roles_file) as db:
        before = auth.read_users(users_file).get(username, {}).get("role", "")
        auth.set_role(username, role, users_file)
        _record(db, by, "account role", username, before, role)


def remove_account(
    username: str, by: str, users_file: Path | None = None, roles_file: Path | None = None
) -> None:
    """Remove a password account; its open sessions end at their next click."""
    username = auth.check_username(username)
    _not_yourself(username, by)
    with _audit(roles_file) as db:
        before = auth.read_users(users_file).get(username, {}).get("role", "")
        auth.remove_user(username, users_file)
        _record(db, by, "remove account", username, before, "")


def audit_log(roles_file: Path | None = None, limit: int = 500) -> list[dict]:
    """The newest ``limit`` changes, newest first, as dicts of AUDIT_COLUMNS."""
    if not audit_path(roles_file).exists():
        return []
    with _audit(roles_file) as db:
        rows = db.execute(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in rows]
