"""Frames for a live stream, read on their own thread, newest frame only.

* cameras and ``rtsp://`` / ``http://`` URLs (OpenCV): when the stream drops or cannot be
  opened, it is retried with exponential backoff (0.5 s doubling up to 30 s) for as long
  as the stream runs; ``problem`` says why meanwhile (the stream shows ``degraded``).
  With ``stall_s``, a **no-frame watchdog**: a connection that opens or reads nothing for
  that long (a camera that hangs without closing: OpenCV's read would block for its own
  30 s or more) is given up and a new one opened, through the same backoff; ``stalls``
  counts them. Each connection reads on its own thread, so a read that never returns
  holds up nothing: its thread ends when the read does, its frames no longer used;
* a video file or ``sample``, *played as a live stream*: paced to its own frame rate
  (the reader sleeps between frames) and, with ``loop``, started again at the end.

Either way the consumer gets only the newest frame; a frame it had no time for is dropped
and counted in ``dropped``. ``reconnects`` counts reconnection attempts.

Usage::

    reader = LiveReader("rtsp://cam-7/stream", stall_s=10); reader.start()
    item = reader.get(timeout=0.5)      # (index, seconds since start, BGR image) or None
    for frame in reader.frames(stop):   # or: Frame objects until `stop` is set or the reader ends
        ...
    reader.stop()
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, first_line
from ..sources import STREAM_SCHEMES, SampleSource, VideoFileSource
from ..sources.base import Frame
from ..sources.stream import camera_index, open_capture

log = logging.getLogger(__name__)
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


def masked_source(source: str) -> str:
    """A source as it may be shown: ``rtsp://user:***@host/...`` (passwords hidden); a file by its name
    only (the server's folders are nobody's business)."""
    if source_kind(source) == "file":
        return Path(source).name
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", source)


def source_kind(source: str) -> str:
    """'sample', 'camera' (ASCII digits), 'url' (a stream scheme) or 'file' (anything else), by its text alone."""
    if source == "sample":
        return "sample"
    if source.isascii() and source.isdigit():  # not str.isdigit alone: '²' is a digit too, int() refuses it
        return "camera"
    if source.lower().startswith(STREAM_SCHEMES):
        return "url"
    return "file"


def check_source(source: str) -> str:
    """The kind of ``source`` ('sample', 'camera', 'url', 'file'); InputError for a file that is not there."""
    kind = source_kind(source)
    if kind == "camera":
        camera_index(source)  # (digits beyond any camera's index: one line, not OpenCV's overflow)
    if kind != "file" or Path(source).is_file():
        return kind
    raise InputError(f"{source}: no such file (nor 'sample', a camera index or a stream URL)")


class LiveReader:
    """``stall_s``: the no-frame watchdog of cameras and URLs (None: off; files and the sample are
    paced here, they never stall)."""

    def __init__(self, source: str, loop: bool = False, stall_s: float | None = None):
        if stall_s is not None and stall_s <= 0:
            raise InputError(f"the no-frame watchdog needs a time above 0 s, got {stall_s}")
        self.source = source
        self.stall_s = stall_s
        self.kind = check_source(source)
        self.loop = loop
        self.name = masked_source(source)
        self._sample = SampleSource() if self.kind == "sample" else None
        self.fps: float | None = self._sample.fps if self._sample is not None else None
        self.dropped = 0
        self.reconnects = 0
        self.stalls = 0  # connections the watchdog gave up
        self.problem: str | None = None  # why no frames come right now (the stream is degraded)
        self.finished = False  # a file or the sample ended (no loop), or the reader gave up
        self._latest: tuple[int, float, np.ndarray] | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._t0 = time.monotonic()

    # --- consumer side ------------------------------------------------------------------------

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"read:{self.name}"[:40], daemon=True)
        self._thread.start()

    def get(self, timeout: float) -> tuple[int, float, np.ndarray] | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self.finished, timeout)
            item, self._latest = self._latest, None
            return item

    def frames(self, stop: threading.Event, wait: float = 0.5) -> Iterator[Frame]:
        """The frames as they come (newest only), until ``stop`` is set or the reader has finished."""
        while not stop.is_set():
            item = self.get(timeout=wait)
            if item is None:
                if self.finished:
                    return
                continue
            index, t, image = item
            yield Frame(index=index, timestamp=t, image=image)

    @property
    def depth(self) -> int:
        """Frames waiting for the consumer (0 or 1: older ones are dropped)."""
        return int(self._latest is not None)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- producer side ------------------------------------------------------------------------

    def _offer(self, image: np.ndarray) -> None:
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = (self._index, time.monotonic() - self._t0, image)
            self._index += 1
            self.problem = None
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            if self.kind in ("camera", "url"):
                self._capture(int(self.source) if self.kind == "camera" else self.source)
            else:
                self._play()
        except Exception as exc:  # noqa: BLE001 - any failure ends the reader with a reason
            why = first_line(exc)
            self.problem = why.replace(self.source, self.name) if self.kind == "file" else why  # no server path
            log.error("%s: %s", self.name, self.problem)
        finally:
            with self._cond:
                self.finished = True
                self._cond.notify_all()

    def _wait_backoff(self, failures: int, why: str) -> bool:
        """Note the problem and sleep the backoff; False when asked to stop meanwhile."""
        delay = min(BACKOFF_START_S * 2 ** (failures - 1), BACKOFF_MAX_S)
        self.problem = f"{why}; reconnecting in {delay:.1f} s (attempt {failures})"
        log.warning("%s: %s", self.name, self.problem)
        self.reconnects += 1
        return not self._stop.wait(delay)

    def _capture(self, target: int | str) -> None:
        failures = 0
        while not self._stop.is_set():
            conn = _Connection(self, target)
            conn.start()
            stalled = self._watch(conn)
            if self._stop.is_set():
                return
            if stalled:
                self.stalls += 1
                why = f"no frame for {self.stall_s:g} s (watchdog)"
            else:
                why = "the stream dropped" if conn.opened else "cannot open the stream"
            failures = 1 if conn.got else failures + 1
            if not self._wait_backoff(failures, why):
                return

    def _watch(self, conn: _Connection) -> bool:
        """Wait for the connection to end; True when the watchdog gave it up (nothing for ``stall_s``)."""
        while conn.is_alive():
            conn.join(0.25)
            if self._stop.is_set():
                conn.abandoned = True
                return False
            if self.stall_s is not None and conn.is_alive() and time.monotonic() - conn.last_at > self.stall_s:
                conn.abandoned = True  # (its thread ends when its read returns; its frames are not used)
                log.warning("%s: no frame for %g s; reconnecting", self.name, self.stall_s)
                return True
        return False

    def _frames(self) -> Iterator[np.ndarray]:
        """One pass over the file or the sample."""
        if self._sample is not None:
            for i in range(self._sample.n):
                yield self._sample.render(i)
            return
        video = VideoFileSource(self.source)
        self.fps = self.fps or video.fps or 25.0
        try:
            for frame in video:
                yield frame.image
        finally:
            video.close()

    def _play(self) -> None:
        """Paced playback: frame n is offered at start + n / fps; a reader more than 1 s behind re-anchors."""
        start, n = time.monotonic(), 0
        while not self._stop.is_set():
            played = 0
            for image in self._frames():
                fps = self.fps or 25.0
                delay = start + n / fps - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                if delay < -1.0:
                    start = time.monotonic() - n / fps
                if self._stop.is_set():
                    return
                self._offer(image)
                n += 1
                played += 1
            if not self.loop or played == 0:
                if played == 0:
                    raise InputError(f"{self.name}: no frame could be read")
                return


class _Connection(threading.Thread):
    """One connection to a camera or URL: open it, then read until it ends, handing frames to the reader
    while it is not ``abandoned``. ``last_at``: when it started, opened or last read a frame."""

    def __init__(self, reader: LiveReader, target: int | str):
        super().__init__(name=f"conn:{reader.name}"[:40], daemon=True)
        self.reader, self.target = reader, target
        self.opened = self.got = self.abandoned = False
        self.last_at = time.monotonic()

    def run(self) -> None:
        reader = self.reader
        cap = open_capture(self.target)
        try:
            if not cap.isOpened() or self.abandoned:
                return
            self.opened, self.last_at = True, time.monotonic()
            if reader.fps is None:
                fps = cap.get(cv2.CAP_PROP_FPS)
                reader.fps = float(fps) if fps and 0 < fps < 240 else None
            while not (reader._stop.is_set() or self.abandoned):
                ok, image = cap.read()
                if not ok or image is None or self.abandoned:
                    return
                self.got, self.last_at = True, time.monotonic()
                reader._offer(image)
        finally:
            cap.release()
