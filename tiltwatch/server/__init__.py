"""``tiltwatch serve``: the HTTP API (FastAPI) and the live dashboard.

Imports are lazy, so ``tiltwatch.server.cli`` loads without FastAPI until a server starts.

Usage::

    from tiltwatch.server import Settings, create_app
    app = create_app(Settings(site="site.yaml", allow_frames=True))
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "StreamSpec", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("Settings", "StreamSpec"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'tiltwatch.server' has no attribute {name!r}")
