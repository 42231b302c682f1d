"""Who may do what after signing in with the organisation's account: the roles file.

People sign in through an OpenID Connect provider (Microsoft Entra, Google; Streamlit's
``st.login``), which says only who they are (their e-mail address). What they may do is the
project's own decision, kept in a JSON file beside the users file (``roles.json``)::

    {"public": false,
     "people": {"ann@charity.org.uk": "admin", "raj@charity.org.uk": "editor"},
     "domains": {"charity.org.uk": "viewer"}}

A person's role is their own entry, else their e-mail domain's entry (exact domain: a
subdomain needs its own entry), else ``viewer`` on a public map and none (refused) on a private
one. ``public`` also decides whether visitors who have not signed in see the map: with no roles
file the map is public, as it was before sign-in through a provider existed.

The role is read from the file on every run of the page and before every write (`person`), so a
person removed or demoted loses their rights at their next click, like a password account whose
credential changed (`auth.confirm`).
"""

import json
import os
import re
from pathlib import Path

from kindred_map import auth, private

ROLES_ENV = "KINDRED_MAP_ROLES"
ROLES = ("viewer", "editor", "admin")
"""A person's role; viewers may look but not change anything."""
EMAIL = re.compile(r"^[a-z0-9._%+'-]+@([a-z0-9-]+(\.[a-z0-9-]+)+)$")
DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
MAX_SUBJECT_CHARS = 254
"""The longest e-mail address SMTP allows."""
NOT_ALLOWED = (
    "Your account ({email}) is not allowed to see this map. Ask the map's administrator to add "
    "you, or sign out and use another account."
)
ROLE_CHANGED = "An administrator has changed your role: you are now {role}."


def roles_path() -> Path:
    """The roles file: env KINDRED_MAP_ROLES, else roles.json beside the users file."""
    configured = os.environ.get(ROLES_ENV, "").strip()
    return (
        Path(configured).expanduser() if configured else auth.users_path().with_name("roles.json")
    )


def check_subject(subject: str) -> str:
    """An e-mail address or a domain in lower case, or a ValueError saying what is allowed."""
    text = str(subject).strip().lower()
    if len(text) > MAX_SUBJECT_CHARS or not (EMAIL.fullmatch(text) or DOMAIN.fullmatch(text)):
        raise ValueError(
            f"{str(subject)[:80]!r} is neither an e-mail address (name@charity.org.uk) nor a "
            "domain (charity.org.uk)"
        )
    return text


def check_role(role: str) -> str:
    """``role`` if it is one of ROLES, else a ValueError naming them."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def read_rules(path: Path | None = None) -> dict:
    """``{"public": bool, "people": {email: role}, "domains": {domain: role}}``; a missing file
    reads as a public map with no rules. Entries that are not valid are left out."""
    path = Path(path) if path is not None else roles_path()
    if not path.exists():
        return {"public": True, "people": {}, "domains": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the roles file {path}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"the roles file {path} does not hold a JSON object")
    rules = {"public": data.get("public", True) is True}
    for table, pattern in (("people", EMAIL), ("domains", DOMAIN)):
        entries = data.get(table) or {}
        if not isinstance(entries, dict):
            raise ValueError(f"the roles file {path}: {table!r} must be an object")
        rules[table] = {
            str(subject).lower(): role
            for subject, role in entries.items()
            if pattern.fullmatch(str(subject).lower()) and role in ROLES
        }
    return rules


def write_rules(rules: dict, path: Path | None = None) -> None:
    """Write the roles file atomically (readable by its owner only: it lists staff)."""
    private.write_json(rules, Path(path) if path is not None else roles_path())


def role_for(email: str, rules: dict) -> str | None:
    """The role of the person signed in as ``email`` under ``rules`` (`read_rules`): their own
    entry, else their domain's, else viewer on a public map; None means refused."""
    address = str(email).strip().lower()
    if not EMAIL.fullmatch(address):
        return None
    if address in rules["people"]:
        return rules["people"][address]
    domain = address.rsplit("@", 1)[1]
    if domain in rules["domains"]:
        return rules["domains"][domain]
    return "viewer" if rules["public"] else None


def email_of(claims: dict) -> str:
    """The e-mail address the provider vouches for, lower case, or "" when it gives none or says
    it is not verified. Entra gives ``email`` when the account has a mailbox, else its sign-in
    name (``preferred_username``, an address for work accounts); Google gives ``email`` with
    ``email_verified``."""
    if claims.get("email_verified") is False:
        return ""
    for claim in ("email", "preferred_username"):
        value = str(claims.get(claim) or "").strip().lower()
        if EMAIL.fullmatch(value):
            return value
    return ""


def person(claims: dict, path: Path | None = None) -> auth.User | None:
    """The signed-in person for a provider's claims (``st.user``), with their role read from the
    roles file now; None when the claims give no usable e-mail address or the rules refuse it.

    Their user name and the name history records are both their e-mail address: display names
    are not unique, addresses are."""
    email = email_of(claims)
    if not email:
        return None
    role = role_for(email, read_rules(path))
    if role is None:
        return None
    return auth.User(email, email, role, provider="oidc")


def providers(auth_section: dict) -> list[str]:
    """The identity providers set up in Streamlit's ``[auth]`` secrets: "" for one given in
    ``[auth]`` itself, and the name of each ``[auth.NAME]`` table; [] when none is set up."""
    named = [
        name
        for name, value in auth_section.items()
        if isinstance(value, dict) and value.get("client_id")
    ]
    return ([""] if auth_section.get("client_id") else []) + sorted(named)
