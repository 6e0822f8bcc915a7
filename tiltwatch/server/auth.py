"""API keys: constant-time checks, where a request carries its key, and masking for logs.

A request's key is read from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
media URLs that a browser loads by itself (``<img src>``) and the WebSocket may also pass
``?key=``. Keys never reach a log: :func:`mask` and :class:`MaskKeysFilter` hide them.

Usage::

    keys = KeyRing(["...long random key..."])
    keys.valid(candidate)               # compares against every key, in constant time
    app.get("/x", dependencies=[Depends(require_key)])
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from fastapi import HTTPException, Request

log = logging.getLogger(__name__)
QUERY_KEY_PATHS = ("/frame.jpg", "/mjpeg", "/ws")  # the only URLs that accept ?key=


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


def require_key(request: Request) -> str:
    """FastAPI dependency: 401 unless the request carries a valid key; returns the key's id."""
    key = presented_key(request.headers, request.url.path, dict(request.query_params))
    if key is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not request.app.state.keys.valid(key):
        log.warning("refused API key %s from %s", mask(key), request.client.host if request.client else "-")
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return client_id(key)


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
