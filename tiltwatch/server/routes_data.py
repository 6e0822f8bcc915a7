"""``/api/v1/visits`` and ``/api/v1/alerts``: what the store holds, filtered.

``start`` / ``end`` take ISO 8601 (``2026-11-21T14:00:00Z``; no zone means UTC) or epoch
seconds; records overlapping ``[start, end)`` are returned, the ``limit`` most recent
ones, oldest first.

Usage::

    curl -H "Authorization: Bearer $KEY" "http://localhost:8000/api/v1/alerts?camera=cam-1&kind=tilt&start=2026-11-21"
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from ..timeparse import parse_time
from .state import Server, server

router = APIRouter()


def _window(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    # ISO 8601 or epoch seconds; ConfigError (422) with a one-line message otherwise
    t0, t1 = parse_time(start, "start", epoch_ok=True), parse_time(end, "end", epoch_ok=True)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise HTTPException(422, "end must be after start")
    return t0, t1


@router.get("/visits", summary="Visits overlapping [start, end)")
def visits(
    camera: str | None = None,
    zone: str | None = None,
    start: str | None = None,
    end: str | None = None,
    closed: bool | None = None,
    limit: int = Query(200, ge=1, le=5000),
    srv: Server = Depends(server),
) -> dict[str, Any]:
    t0, t1 = _window(start, end)
    rows = srv.store.visits(camera=camera, start=t0, end=t1, zone=zone, closed=closed)[-limit:]
    return {"visits": [asdict(v) for v in rows], "count": len(rows)}


@router.get("/alerts", summary="Alerts overlapping [start, end)")
def alerts(
    camera: str | None = None,
    zone: str | None = None,
    start: str | None = None,
    end: str | None = None,
    kind: str | None = None,
    limit: int = Query(200, ge=1, le=5000),
    srv: Server = Depends(server),
) -> dict[str, Any]:
    t0, t1 = _window(start, end)
    rows = srv.store.alerts(camera=camera, start=t0, end=t1, kind=kind, zone=zone)[-limit:]
    return {"alerts": [asdict(a) for a in rows], "count": len(rows)}
