"""Alembic environment of the store, shipped in the package and run by :class:`tiltwatch.store.Store`.

Usage (a new migration, from the repository root)::

    python -m tiltwatch.store.migrations "add a column"   # autogenerates versions/0002_add_a_column.py
"""
