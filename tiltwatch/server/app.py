"""The HTTP API and live dashboard of ``tiltwatch serve`` (FastAPI).

Everything under ``/api/v1`` and ``/metrics`` needs an API key (``Authorization: Bearer``
or ``X-API-Key``); ``/health``, ``OPTIONS`` and the dashboard page (``/``, which asks for the
key) do not. The key is checked before any of the body is read; JSON bodies are capped at
``max_json_bytes``. Errors are JSON with one line: ``{"error": "..."}``.

Usage::

    app = create_app(Settings(db="sqlite:///floor.db", site="site.yaml", allow_frames=True))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..analytics.site import load_site
from ..errors import BusyError, TiltwatchError, http_status
from . import routes_analyze, routes_data, routes_streams, ws
from .auth import AuthMiddleware, KeyRing, install_log_masking, parse_networks, require_key
from .hub import Hub
from .images import ImagePool
from .metrics import HttpMetricsMiddleware, Metrics
from .ratelimit import RateLimiter, RateLimitMiddleware
from .settings import Settings, error_responses, validation_message
from .state import Server
from .uploads import BodyLimitMiddleware

log = logging.getLogger(__name__)
STATIC = resources.files("tiltwatch.server") / "static"
PAGE_HEADERS = {  # the dashboard loads nothing from anywhere else
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(settings: Settings | None = None, cluster=None) -> FastAPI:
    """The app for ``settings``; raises ConfigError (one line) for a bad site config or key file.

    ``cluster``: a :class:`~tiltwatch.cluster.control.ClusterOptions`: the streams run as camera
    actors on that Ray cluster (the server is their control plane). With no API key configured
    anywhere, one is generated and printed once to stdout."""
    settings = settings or Settings()
    keys = settings.keys()
    if not keys:
        keys = [KeyRing.generate()]
        print(f"API key: {keys[0]}", flush=True)  # the only place a key is ever printed
    site = load_site(settings.site) if settings.site is not None else None
    srv = Server(settings=settings, site=site, hub=Hub(), cluster=cluster)
    srv.metrics = Metrics(srv)
    install_log_masking()

    # No /docs page: Swagger UI loads scripts from a CDN, which must not run on the dashboard's origin.
    app = FastAPI(
        title="tiltwatch",
        version=__version__,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        description="Faces on casino cameras: live streams, image and video analysis, visits, alerts.",
    )
    app.state.server = srv
    app.state.keys = KeyRing(keys)
    trusted = parse_networks(settings.trusted_proxies)

    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    app.state.auth_limiter = RateLimiter(settings.auth_failures)  # wrong keys per client address

    # Innermost first: body cap, rate limit (valid keys only), key check, OPTIONS, metrics, CORS.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_json_bytes, uploads=routes_analyze.UPLOAD_PATHS)
    app.add_middleware(RateLimitMiddleware, limiter=app.state.rate_limiter, trusted=trusted)
    app.add_middleware(AuthMiddleware, keys=app.state.keys, failures=app.state.auth_limiter, trusted=trusted)
    app.add_middleware(OptionsMiddleware, routes=app.router.routes)
    app.add_middleware(HttpMetricsMiddleware, metrics=srv.metrics)
    if settings.cors_origins:  # outermost: errors and 429s carry CORS headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    _error_handlers(app)

    api = [Depends(require_key)]
    common = error_responses(401, 422, 429, 503)  # what any keyed route may answer
    app.include_router(routes_analyze.router, prefix="/api/v1", dependencies=api, tags=["analysis"], responses=common)
    app.include_router(routes_streams.router, prefix="/api/v1", dependencies=api, tags=["streams"], responses=common)
    app.include_router(routes_data.router, prefix="/api/v1", dependencies=api, tags=["data"], responses=common)
    app.include_router(ws.router, prefix="/api/v1")  # authenticates itself (query, header or first message)
    app.add_api_route("/health", health, methods=["GET"], tags=["server"], summary="Liveness (no key needed)")
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["server"],
        dependencies=api,
        response_class=Response,
        summary="Prometheus metrics",
        responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 429)},
    )
    app.add_api_route("/", dashboard, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Startup: store, jobs, image pool, configured streams. Shutdown: stop streams and jobs, flush, close."""
    from ..store import Store
    from .jobs import JobManager
    from .streams import StreamManager

    srv: Server = app.state.server
    s = srv.settings
    srv.hub.bind(asyncio.get_running_loop())
    srv.closing.clear()
    store = await asyncio.to_thread(Store, s.db)
    if srv.cluster is not None:
        from ..cluster.control import ClusterManager

        manager = None
        try:
            manager = ClusterManager(srv.cluster, s.db, srv.site, srv.hub.publish, blur=s.blur_faces, config=s.analyzer)
            await asyncio.to_thread(manager.connect)  # adopts the camera actors already running
        except Exception:
            if manager is not None:
                await asyncio.to_thread(manager.stop_all)
            store.close()
            raise
        srv.streams = manager
    else:
        srv.streams = StreamManager(store, srv.site, srv.hub.publish, blur=s.blur_faces, config=s.analyzer)
    srv.jobs = JobManager(s.data_dir, store, srv.site, annotate=s.allow_frames, blur=s.blur_faces, config=s.analyzer)
    srv.images = ImagePool(s.image_workers, s.image_queue, config=s.analyzer)
    try:
        for spec in s.streams:
            if srv.cluster is not None and srv.streams.has(spec.id):
                continue  # its camera actor runs already (this server restarted): adopted as it is
            srv.streams.add(spec)
            srv.streams.start(spec.id)
        await asyncio.to_thread(_add_kept_streams, srv, store)
    except Exception:
        await asyncio.to_thread(_shutdown, srv, store)
        raise
    srv.store = store
    log.info("tiltwatch server ready: store %s, %d streams", store.url, len(s.streams))
    try:
        yield
    finally:
        srv.closing.set()
        srv.store = None  # new requests get 503 while shutting down
        await asyncio.to_thread(_shutdown, srv, store)


def _add_kept_streams(srv: Server, store: Any) -> None:
    """The streams added over the API before this start, again, started if they were running. One that
    is here already (a ``--stream``, or a camera actor adopted) is left as it is; one that can no longer
    be added (its file gone from the media folder, its camera from the site) is said once and kept."""
    from fastapi import HTTPException
    from pydantic import ValidationError

    from ..errors import TiltwatchError, first_line
    from .routes_streams import stream_spec
    from .settings import StreamRequest

    for request, running in store.kept_streams():
        name = request.get("id", "?")
        if srv.streams.has(name):
            continue
        try:
            srv.streams.add(stream_spec(StreamRequest.model_validate(request), srv.settings.media_dir))
            if running:
                srv.streams.start(name)
        except HTTPException as exc:
            log.error("kept stream %s not added again: %s", name, exc.detail)
        except (TiltwatchError, ValidationError) as exc:
            log.error("kept stream %s not added again: %s", name, first_line(exc))
        else:
            log.info("kept stream %s added again%s", name, " and started" if running else "")


def _shutdown(srv: Server, store: Any) -> None:
    srv.streams.stop_all()  # closes visits and alerts: they reach the store (camera actors go on)
    srv.jobs.close()
    srv.images.close()
    store.close()  # flushes what is buffered
    log.info("tiltwatch server stopped; store flushed and closed")


def allowed_methods(routes: list[BaseRoute], path: str) -> list[str]:
    """Every method some route serves at ``path`` (Starlette's own 405 names only the first route's).

    Asks the routes themselves (FastAPI nests included routers); mounts (static files) are left out."""
    methods = set()
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": [], "query_string": b""}
        if any(not isinstance(r, Mount) and r.matches(scope)[0] == Match.FULL for r in routes):
            methods.add(method)
    return sorted(methods | {"OPTIONS"}) if methods else []


class OptionsMiddleware:
    """``OPTIONS`` answers 204 with the path's real ``Allow`` (CORS preflights are answered further out)."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]):
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            allowed = allowed_methods(self.routes, scope["path"])
            if allowed:
                await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app.router.routes, request.url.path))
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(list(exc.errors()))}, status_code=422)

    @app.exception_handler(TiltwatchError)
    async def tiltwatch_error(request: Request, exc: TiltwatchError) -> JSONResponse:
        status = http_status(exc)  # by the error's type (errors.HTTP_STATUS); StreamError carries its own
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        headers = {"Retry-After": "1"} if isinstance(exc, BusyError) else None
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)


async def health(request: Request) -> dict[str, Any]:
    srv: Server = request.app.state.server
    ready = srv.store is not None
    status = "ok" if ready else ("stopping" if srv.closing.is_set() else "starting")
    return {
        "status": status,
        "version": __version__,
        "streams": srv.streams.summary() if srv.streams is not None else {"total": 0},
    }


async def metrics(request: Request) -> Response:
    text, content_type = request.app.state.server.metrics.render()
    return Response(text, media_type=content_type)


async def dashboard() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"), media_type="text/html", headers=PAGE_HEADERS)
