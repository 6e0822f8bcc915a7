"""A broadcast hub: stream threads publish, every WebSocket client gets its own bounded queue.

``publish`` may be called from any thread: the message is serialised there (off the event
loop) and handed over with ``loop.call_soon_threadsafe``. A client whose queue is full
loses its oldest message (counted in ``dropped``): a slow client never blocks a stream.

Usage::

    hub = Hub(); hub.bind(asyncio.get_running_loop())          # at startup
    hub.publish({"type": "frame", ...})                        # from any thread
    with hub.subscribe() as queue: text = await queue.get()    # in a WebSocket handler
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Hub:
    def __init__(self, queue_size: int = 64):
        self.queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[str]] = set()
        self.published = 0
        self.dropped = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (the server's event loop)."""
        self._loop = loop

    @property
    def clients(self) -> int:
        return len(self._clients)

    def depth(self) -> int:
        """The fullest client queue (0 without clients)."""
        return max((q.qsize() for q in list(self._clients)), default=0)

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every client; safe from any thread, never blocks."""
        loop = self._loop
        if loop is None or not self._clients:
            return
        text = json.dumps(message, separators=(",", ":"), default=_plain)
        try:
            loop.call_soon_threadsafe(self._fanout, text)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _fanout(self, text: str) -> None:
        self.published += 1
        for q in list(self._clients):
            if q.full():
                q.get_nowait()  # drop the oldest: a live view wants the newest
                self.dropped += 1
            q.put_nowait(text)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str]]:
        """A queue of JSON texts for one client, removed again on exit (call on the event loop)."""
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=self.queue_size)
        self._clients.add(q)
        try:
            yield q
        finally:
            self._clients.discard(q)


def _plain(obj: Any) -> Any:
    if callable(getattr(obj, "tolist", None)):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
