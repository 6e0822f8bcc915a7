"""API keys: constant-time checks, where a request carries its key, and masking for logs.

A request's key is read from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
media URLs that a browser loads by itself (``<img src>``) and the WebSocket may also pass
``?key=``. Keys never reach a log: :func:`mask` and :class:`MaskKeysFilter` hide them.

:class:`AuthMiddleware` checks the key before the app reads any of the body (a request with no
or a wrong key costs no parsing), and limits wrong keys per client address: after too many in
a minute every request from that address gets ``429`` until its bucket refills, whether its
key is right or not (otherwise a right guess would still answer 200 and guessing would go on).
The client address is the TCP peer; ``X-Forwarded-For`` counts only when the peer is a
configured trusted proxy.

Usage::

    keys = KeyRing(["...long random key..."])
    keys.valid(candidate)               # compares against every key, in constant time
    app.add_middleware(AuthMiddleware, keys=keys, failures=RateLimiter(10), trusted=parse_networks([]))
    app.get("/x", dependencies=[Depends(require_key)])   # documents the schemes in OpenAPI
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

if TYPE_CHECKING:
    from .ratelimit import RateLimiter

log = logging.getLogger(__name__)
QUERY_KEY_PATHS = ("/frame.jpg", "/mjpeg", "/ws")  # the only URLs that accept ?key=
MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
INVALID_KEY = "invalid API key"
WS_REFUSED = "invalid API key"  # the close reason of a WebSocket refused for its key (ws.py)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Declared for OpenAPI only (auto_error=False): require_key decides, with its own messages.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearerKey", description="Authorization: Bearer <API key>")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader", description="the API key")


class KeyRing:
    """The accepted keys. ``valid`` always compares against all of them, so timing tells nothing."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one API key is needed")
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @staticmethod
    def generate() -> str:
        return secrets.token_urlsafe(32)

    def valid(self, candidate: str | None) -> bool:
        digest = hashlib.sha256((candidate or "").encode()).digest()
        ok = False
        for d in self._digests:  # no early exit: same work for a hit on the first or no key
            ok |= hmac.compare_digest(digest, d)
        return ok and bool(candidate)


def mask(key: str | None) -> str:
    """``abcd…`` for logs: enough to tell keys apart, useless to an attacker."""
    return f"{key[:4]}…" if key else "-"


def client_id(key: str | None) -> str:
    """A stable, non-secret id of a presented key (for rate limiting and metrics)."""
    return hashlib.sha256((key or "").encode()).hexdigest()[:12] if key else "-"


def presented_key(headers, path: str, query: dict[str, str]) -> str | None:
    """The key a request carries, or None: Bearer token, X-API-Key, or ?key= on media/ws URLs."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers.get("x-api-key").strip()
    if path.endswith(QUERY_KEY_PATHS) and query.get("key"):
        return query["key"]
    return None


def require_key(
    request: Request,
    _bearer: HTTPAuthorizationCredentials | None = Depends(BEARER),
    _header: str | None = Depends(API_KEY_HEADER),
) -> str:
    """FastAPI dependency: 401 unless the request carries a valid key; returns the key's id.

    :class:`AuthMiddleware` already refused bad keys before the body was read; this is the
    second lock (and what declares the security schemes in OpenAPI)."""
    key = presented_key(request.headers, request.url.path, dict(request.query_params))
    if key is None:
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})
    if not request.app.state.keys.valid(key):
        log.warning("refused API key %s from %s", mask(key), request.client.host if request.client else "-")
        raise HTTPException(401, INVALID_KEY, headers={"WWW-Authenticate": "Bearer"})
    return client_id(key)


def parse_networks(items: list[str]) -> tuple[Network, ...]:
    """``["10.0.0.1", "10.1.0.0/16"]`` -> networks; ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy (entries further left are
    whatever the client wrote, so they never count)."""
    peer = (scope.get("client") or ("-", 0))[0]
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _guesser(address: str) -> str:
    """Whose wrong keys these are: the address, or its /64 for IPv6 (one host is given a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else address


class AuthMiddleware:
    """401 before the body is read, and 429 for an address that sent too many wrong keys.

    Covers HTTP requests under ``prefixes`` except ``OPTIONS``. WebSocket handshakes
    authenticate themselves (possibly by their first message); a wrong key in their URL,
    headers or first message counts as a failure, and a blocked address cannot open one."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyRing,
        failures: RateLimiter,
        trusted: tuple[Network, ...] = (),
        prefixes: tuple[str, ...] = ("/api/", "/metrics"),
    ):
        self.app, self.keys, self.failures, self.trusted, self.prefixes = app, keys, failures, trusted, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or not scope["path"].startswith(self.prefixes)
            or scope.get("method") == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        ip = client_address(scope, self.trusted)
        bucket = (_guesser(ip), "wrong keys")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        key = presented_key(Headers(scope=scope), scope["path"], query)
        wait = self.failures.peek(bucket) if self.failures.per_minute else 0.0
        if wait > 0:
            await self._refuse(scope, receive, send, wait)
            return
        valid = self.keys.valid(key)
        if key is not None and not valid and self.failures.per_minute:
            self.failures.take(bucket)
        if scope["type"] == "websocket" and key is None and self.failures.per_minute:
            await self.app(scope, receive, self._count_refusal(send, bucket))  # the key may come as a message
            return
        if scope["type"] == "websocket" or valid:
            await self.app(scope, receive, send)
            return
        if key is not None:
            log.warning("refused API key %s from %s", mask(key), ip)
        await JSONResponse(
            {"error": MISSING_KEY if key is None else INVALID_KEY},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )(scope, receive, send)

    def _count_refusal(self, send: Send, bucket: tuple[str, str]) -> Send:
        """``send`` that counts a failure when the WebSocket closes for a wrong key (sent as its first message)."""

        async def counting(message: Message) -> None:
            if message["type"] == "websocket.close" and message.get("reason") == WS_REFUSED:
                self.failures.take(bucket)
            await send(message)

        return counting

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        message = (
            f"too many wrong API keys from this address ({self.failures.per_minute} a minute); retry in {seconds} s"
        )
        if scope["type"] == "websocket":
            await WebSocketClose(code=1008, reason=message)(scope, receive, send)
        else:
            await JSONResponse({"error": message}, status_code=429, headers={"Retry-After": str(seconds)})(
                scope, receive, send
            )


class MaskKeysFilter(logging.Filter):
    """Rewrites ``key=...`` in log records (uvicorn's access log prints query strings)."""

    _pattern = re.compile(r"((?:^|[?&])(?:key|api_key|token)=)[^&\s\"]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._pattern.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = self._pattern.sub(r"\1***", record.msg)
        return True


def install_log_masking() -> None:
    """Attach :class:`MaskKeysFilter` to uvicorn's access and error loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskKeysFilter) for f in logger.filters):
            logger.addFilter(MaskKeysFilter())
