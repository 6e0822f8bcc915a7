"""Lazy exports: a package's names load their module on first use, so that a light part of the
project (the CLI's start-up, the training side, the server's command line) imports without the
heavy stacks (mediapipe, PyAV, FastAPI) until they are needed.

Usage (in a package's ``__init__.py``)::

    __getattr__ = lazy_exports(__name__, {"Analyzer": ".pipeline.analyzer"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``table[name]`` (relative to ``package``) on first use."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
