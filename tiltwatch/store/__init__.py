"""Persistent store of the analytics records (SQLite or PostgreSQL, migrated with Alembic).

Usage::

    from tiltwatch.store import Store
    with Store("sqlite:///data/tiltwatch.db") as store:
        store.add(observation)
"""

from .store import Store

__all__ = ["Store"]
