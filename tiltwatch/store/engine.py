"""Opening a database from a URL: driver defaults, SQLite pragmas, secrets kept out of messages.

Usage::

    url = parse_url("sqlite:///data/tiltwatch.db")   # ConfigError if malformed
    engine = make_engine(url)
    print(masked(url))                                # the password, if any, shown as ***
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

from tiltwatch.errors import ConfigError

# The default PostgreSQL driver of SQLAlchemy is psycopg2; tiltwatch installs psycopg 3.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg"}
CONNECT_TIMEOUT_S = 10  # an unreachable server fails the open instead of hanging a camera process
WAL_SWITCH_S = 10  # how long a connection retries switching a new SQLite file to WAL


def masked(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***`` (works on malformed URLs too)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def parse_url(url: str) -> URL:
    """Parse and normalise a database URL; a malformed one raises :class:`ConfigError`."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"not a database URL: {masked(url)} (expected e.g. sqlite:///tiltwatch.db "
            "or postgresql://user:password@host/db)"
        ) from None
    return parsed.set(drivername=DEFAULT_DRIVERS.get(parsed.drivername, parsed.drivername))


def is_sqlite_file(url: URL) -> bool:
    return (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not url.database.startswith("file:")
    )


def make_engine(url: URL) -> Engine:
    """An engine for ``url``; raises :class:`ConfigError` for an unknown dialect or a missing driver.

    SQLite files get their folder created and WAL journaling with ``synchronous=NORMAL``: readers
    never block the writer, and a killed process loses at most the transaction in flight.
    """
    kwargs: dict[str, Any] = {"json_serializer": to_json}
    backend = url.get_backend_name()
    if backend == "sqlite":
        if is_sqlite_file(url):
            folder = Path(url.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ConfigError(f"cannot create the folder of {masked(url)}: {e.strerror}") from None
    else:
        kwargs["pool_pre_ping"] = True  # a long run survives a database restart
        if backend == "postgresql" and "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise ConfigError(f"cannot use database URL {masked(url)}: {one_line(e, url)}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Turning a new file to WAL needs it alone for a moment, and SQLite answers "locked" at once
    # (no busy wait) to a second connection doing the same: stores opening one database together
    # (one per camera) failed 10 times in 150. Retry for up to WAL_SWITCH_S instead.
    deadline = time.monotonic() + WAL_SWITCH_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # in-memory databases answer "memory": fine
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def one_line(error: BaseException, url: URL | None = None) -> str:
    """The first line of a driver error, without SQLAlchemy's statement dump or any password."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    if url is not None and url.password:
        text = text.replace(str(url.password), "***")
    return text


def plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values: database drivers and ``json`` reject numpy types."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def to_json(value: Any) -> str:
    """JSON for the JSON columns, numpy values included."""

    def default(obj: Any) -> Any:
        if callable(getattr(obj, "tolist", None)):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.dumps(value, default=default, allow_nan=False)  # PostgreSQL's JSON has no NaN
