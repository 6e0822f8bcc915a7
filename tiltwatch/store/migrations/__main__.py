"""Autogenerate the next numbered migration from changes to ``schema.py``.

Usage::

    python -m tiltwatch.store.migrations "add a column"   # writes versions/0002_add_a_column.py
"""

import sys

from tiltwatch.store.migrate import revision

if len(sys.argv) != 2:
    sys.exit('usage: python -m tiltwatch.store.migrations "what the revision changes"')
revision(sys.argv[1])
