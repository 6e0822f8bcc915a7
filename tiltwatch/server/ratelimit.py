"""Rate limiting per client (IP address + API key): a token bucket, as pure ASGI middleware.

Each client may burst up to ``per_minute`` requests and then gets ``per_minute / 60`` more
per second. Over the limit the answer is ``429`` with ``Retry-After`` (whole seconds).
HTTP requests with no or a wrong key never get here (:class:`~.auth.AuthMiddleware` answers
them and limits wrong keys per address). WebSocket handshakes count as requests; one over
the limit is refused with close code 1008. The IP is the TCP peer unless that is a trusted
proxy (see :func:`~.auth.client_address`).

Usage::

    app.add_middleware(RateLimitMiddleware, limiter=RateLimiter(per_minute=120), trusted=())
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .auth import Network, client_address, client_id, presented_key


class RateLimiter:
    """Token buckets keyed by client; thread-safe; idle full buckets are forgotten."""

    def __init__(self, per_minute: int, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.clock = clock  # replaceable: tests freeze time instead of racing it
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()
        self.limited = 0  # requests refused so far

    def take(self, client: tuple[str, str], now: float | None = None) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until a token is back."""
        now = self.clock() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._forget_idle(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            self.limited += 1
            return (1.0 - tokens) / self.rate

    def peek(self, client: tuple[str, str], now: float | None = None) -> float:
        """Like :meth:`take` but spends nothing: 0.0 if a token is there, else the seconds until one is."""
        now = self.clock() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        refill = self.capacity / self.rate
        self._buckets = {c: (t, last) for c, (t, last) in self._buckets.items() if now - last < refill}


class RateLimitMiddleware:
    """Applies ``limiter`` to HTTP requests and WebSocket handshakes whose path starts with one of ``prefixes``."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        trusted: tuple[Network, ...] = (),
        prefixes: tuple[str, ...] = ("/api/", "/metrics"),
    ):
        self.app = app
        self.limiter = limiter
        self.trusted = trusted
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or not scope["path"].startswith(self.prefixes)
            or self.limiter.per_minute == 0
        ):
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        key = presented_key(Headers(scope=scope), scope["path"], query)
        ip = client_address(scope, self.trusted)
        wait = self.limiter.take((ip, client_id(key)))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            if scope["type"] == "websocket":  # refuse the handshake (the client sees HTTP 403)
                await WebSocketClose(code=1008, reason=f"rate limit exceeded; retry in {seconds} s")(
                    scope, receive, send
                )
                return
            response = JSONResponse(
                {"error": f"rate limit exceeded ({self.limiter.per_minute} requests per minute); retry in {seconds} s"},
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
