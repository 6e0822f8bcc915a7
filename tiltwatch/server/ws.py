"""``WS /api/v1/ws``: live per-frame summaries and alerts from every running stream.

Authenticate with ``?key=...``, an ``Authorization`` / ``X-API-Key`` header, or as the first
message ``{"type": "auth", "key": "..."}`` within 5 s (keeps the key out of URLs and logs).
Then the server sends ``{"type": "hello", "streams": [...], "open_alerts": [...]}`` (alerts open
right now, as ``alert_open`` messages) and, as they happen,
``{"type": "frame", "stream", "frame", "timestamp", "faces": [{track_id, box, label, probs,
pose, valence, arousal, zone}], ...}``, ``{"type": "alert_open", ...}`` and
``{"type": "alert", ...}``. A client too slow to keep up loses its oldest messages.

Usage (browser)::

    const ws = new WebSocket(`ws://${location.host}/api/v1/ws`);
    ws.onopen = () => ws.send(JSON.stringify({type: "auth", key}));
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .auth import presented_key

router = APIRouter()
AUTH_TIMEOUT_S = 5.0
POLICY_VIOLATION = 1008


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    srv = websocket.app.state.server
    keys = websocket.app.state.keys
    key = presented_key(websocket.headers, websocket.url.path, dict(websocket.query_params))
    await websocket.accept()
    if not keys.valid(key):
        if key is None:
            key = await _first_message_key(websocket)
        if not keys.valid(key):
            await websocket.send_json({"type": "error", "error": "missing or invalid API key"})
            await websocket.close(code=POLICY_VIOLATION, reason="invalid API key")
            return
    streams = srv.streams.all() if srv.streams is not None else []
    await websocket.send_json(
        {
            "type": "hello",
            "streams": [s.status() for s in streams],
            "open_alerts": [a for s in streams for a in s.open_alerts()],
            "allow_frames": srv.settings.allow_frames,
        }
    )
    with srv.hub.subscribe() as queue:
        listener = asyncio.create_task(_until_closed(websocket))
        try:
            while not listener.done() and not srv.closing.is_set():
                try:
                    text = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            listener.cancel()
    if srv.closing.is_set():
        try:
            await websocket.close(code=1001, reason="server shutting down")
        except RuntimeError:
            pass


async def _first_message_key(websocket: WebSocket) -> str | None:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        message = json.loads(text)
    except (TimeoutError, WebSocketDisconnect, ValueError, KeyError, RuntimeError):
        return None
    if isinstance(message, dict) and message.get("type") == "auth" and isinstance(message.get("key"), str):
        return message["key"]
    return None


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
