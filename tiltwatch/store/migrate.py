"""Alembic run from code: no ``alembic.ini``, the environment ships in ``migrations/``.

Usage::

    with engine.begin() as conn:
        upgrade(conn, url)                                   # what Store does on open
    python -m tiltwatch.store.migrations "add a column"     # new revision from schema.py changes
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, create_engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x7417  # PostgreSQL advisory lock held while migrating
_in_process = threading.Lock()  # Alembic's op/context are module globals: one migration per process at a time


def config(url: URL | str, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged environment, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # ConfigParser interpolates '%'
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, url: URL | str) -> None:
    """Bring the database behind ``connection`` to the newest revision (a no-op when already there).

    Runs inside the caller's transaction, so the caller's commit makes it final.
    """
    with _in_process:
        # Stores opening a new database at once (one per camera) must not all create the tables.
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading the revision
        command.upgrade(config(url, connection), "head")


def revision(message: str) -> None:
    """Autogenerate the next numbered revision from the difference between ``schema.py`` and head."""
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        cfg = config("sqlite://", conn)
        command.upgrade(cfg, "head")
        head = ScriptDirectory.from_config(cfg).get_current_head()
        command.revision(cfg, message, autogenerate=True, rev_id=f"{int(head or 0) + 1:04d}")
    engine.dispose()
