"""``tiltwatch serve``: the HTTP API (FastAPI) and the live dashboard.

Imports are lazy, so ``tiltwatch.server.cli`` loads without FastAPI until a server starts.

Usage::

    from tiltwatch.server import Settings, create_app
    app = create_app(Settings(site="site.yaml", allow_frames=True))
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = ["Settings", "StreamSpec", "create_app"]


__getattr__ = lazy_exports(__name__, {"create_app": ".app", "Settings": ".settings", "StreamSpec": ".settings"})
