"""What a running server holds: settings, store, site, hub, streams, jobs, image pool, metrics.

Created empty by ``create_app`` and filled in by the app's lifespan (startup), emptied
again at shutdown. Route handlers reach it through the :func:`server` dependency.

Usage::

    @router.get("/x")
    def x(srv: Server = Depends(server)): srv.store.alerts()
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from ..analytics.site import SiteConfig
from .hub import Hub
from .settings import Settings


@dataclass
class Server:
    settings: Settings
    site: SiteConfig | None
    hub: Hub = field(default_factory=Hub)
    closing: threading.Event = field(default_factory=threading.Event)  # set first thing at shutdown
    store: Any = None  # tiltwatch.store.Store
    streams: Any = None  # StreamManager
    jobs: Any = None  # JobManager
    images: Any = None  # ImagePool
    metrics: Any = None  # Metrics
    cluster: Any = None  # tiltwatch.cluster.control.ClusterOptions: streams run as camera actors (None: here)


async def server(request: Request) -> Server:
    srv: Server = request.app.state.server
    if srv.store is None:
        raise HTTPException(503, "the server is starting or stopping")
    return srv
