"""Overlap I/O with inference: read ahead on one thread, write behind on another.

PyAV decodes and encodes (and OpenCV draws) with the GIL released, so on two cores the
decoder and the H.264 encoder run beside detection and the face mesh.

Usage::

    for frame in prefetch(source, depth=4): ...
    with WriteBehind(sinks) as writer: writer.write(frame, result)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from ..sinks.base import Sink

T = TypeVar("T")
_END = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` on a background thread, at most ``depth`` ahead; errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # hand any error to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


class WriteBehind:
    """Feeds sinks from a background thread; ``close`` drains the queue and closes every sink."""

    def __init__(self, sinks: list[Sink], depth: int = 8):
        self.sinks = sinks
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._told = False  # the error was raised to the caller already
        self._thread = threading.Thread(target=self._drain, name="write-behind", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is not None:
                continue
            try:
                for sink in self.sinks:
                    sink.write(*item)
            except BaseException as exc:
                self._error = exc

    def write(self, frame, result) -> None:
        if self._error is not None:
            self._told = True
            raise self._error
        self._q.put((frame, result))

    def close(self) -> None:
        """Close every sink, even after one fails; raise the first failure not already raised by ``write``."""
        self._q.put(_END)
        self._thread.join()
        error = None if self._told else self._error
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - the other sinks must still be closed
                error = error or exc
        if error is not None:
            raise error
