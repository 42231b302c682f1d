"""Where the project store is: a GeoPackage path or a PostGIS DSN, resolved once (`resolve`)."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kindred_map.paths import DEFAULT_STORE

STORE_ENV = "KINDRED_MAP_STORE"
"""The environment variable naming the store (read by `resolve` when no setting is given)."""
DSN_PREFIXES = ("postgresql://", "postgres://")
"""A setting starting so names a PostGIS database (`kindred_map.storage.postgis`), not a file."""
MASK = "***"
_URL = re.compile(r"^(postgres(ql)?:|[A-Za-z][A-Za-z0-9+.-]*://)", re.IGNORECASE)
"""A setting that is meant as a URL: a DSN whose ``//`` a path folded, or another scheme."""
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:/*[^:@/?#]*):[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


@dataclass(frozen=True)
class StoreLocation:
    """A store setting, resolved: ``path`` of a GeoPackage or ``dsn`` of a PostGIS database.

    ``str()`` names it for people (messages, reports, logs): the path, or the DSN with its
    password masked; the DSN itself (``.dsn``) goes to the database driver only."""

    path: Path | None = None
    dsn: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.dsn is None):
            raise ValueError("a store location is one GeoPackage path or one PostGIS DSN")

    @property
    def is_postgis(self) -> bool:
        return self.dsn is not None

    @property
    def name(self) -> str:
        """How reports name the store: a GeoPackage's file name, a DSN without password."""
        return str(self) if self.is_postgis else self.path.name

    def hide(self, text: object) -> str:
        """``text`` (e.g. a driver's error message) on one line, this DSN's password masked."""
        text = " ".join(str(text).split())
        if not self.is_postgis:
            return text
        text = text.replace(self.dsn, str(self))
        password = _password(self.dsn)
        if len(password) >= 4:  # a shorter one would mask ordinary letters of the message
            text = text.replace(password, MASK)
        return text

    def __str__(self) -> str:
        return masked(self.dsn) if self.is_postgis else str(self.path)

    def __repr__(self) -> str:
        return f"StoreLocation({str(self)!r})"


Setting = StoreLocation | str | os.PathLike | None
"""What store functions take: a resolved location, or a setting `resolve` turns into one."""


def masked(dsn: str) -> str:
    """A DSN with its password (``user:password@`` and ``?password=``) replaced by MASK."""
    dsn = _USERINFO_PASSWORD.sub(rf"\1:{MASK}@", dsn)
    return _QUERY_PASSWORD.sub(rf"\1{MASK}", dsn)


def _password(dsn: str) -> str:
    """The password libpq reads from a DSN ("" when none, or the DSN does not parse)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        return str(conninfo_to_dict(dsn).get("password") or "")
    except Exception:  # psycopg.ProgrammingError: a malformed DSN has no password to find
        return ""


def _checked_dsn(dsn: str) -> str:
    """The DSN when libpq can parse it; else a ValueError naming it (password masked)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        options = conninfo_to_dict(dsn)
    except psycopg.Error as error:
        reason = " ".join(str(error).split()).replace(dsn, masked(dsn))
        raise ValueError(f"malformed PostGIS DSN {masked(dsn)}: {reason}") from None
    for port in str(options.get("port") or "").split(","):
        if port and not port.isdigit():
            raise ValueError(f"malformed PostGIS DSN {masked(dsn)}: port {port!r} is not a number")
    return dsn


def resolve(setting: Setting = None) -> StoreLocation:
    """The store a setting names (``--store``, ``KINDRED_MAP_STORE``, a path or a DSN given to
    a function): a ``postgresql://`` or ``postgres://`` DSN names a PostGIS database, anything
    else a GeoPackage file. ``None``: ``KINDRED_MAP_STORE`` as it is now (read at each call, not
    at import), else the shipped ``data/projects.gpkg``.

    A malformed DSN, a DSN whose ``//`` was folded into a path (``postgresql:/...``) and any
    other URL are a ValueError naming the setting with its password masked: never read as a
    file name. Every command and page resolves its setting once, here."""
    if isinstance(setting, StoreLocation):
        return setting
    if setting is None:
        setting = os.environ.get(STORE_ENV, "").strip() or DEFAULT_STORE
    text = os.fspath(setting) if isinstance(setting, os.PathLike) else str(setting).strip()
    if not text:
        raise ValueError("no project store given: a GeoPackage path or a postgresql:// DSN")
    if text.startswith(DSN_PREFIXES):
        return StoreLocation(dsn=_checked_dsn(text))
    if _URL.match(text):
        raise ValueError(
            f"{masked(text)} is neither a GeoPackage path nor a PostGIS DSN "
            "(postgresql://user@host/database)"
        )
    return StoreLocation(path=Path(text))
