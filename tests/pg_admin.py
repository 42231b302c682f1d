"""Administering the PostGIS test server: databases by name, statements outside a transaction."""

from urllib.parse import urlsplit

import psycopg


def database(dsn: str, name: str) -> str:
    """The DSN of database ``name`` on the same server."""
    return urlsplit(dsn)._replace(path=f"/{name}").geturl()


def admin(dsn: str, *statements: str) -> None:
    """Run ``statements`` outside a transaction, after closing the connections this process
    keeps open (`postgis.close_kept`): a database cannot be copied as a template while anyone
    is connected to it."""
    from kindred_map.storage import postgis

    postgis.close_kept()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
