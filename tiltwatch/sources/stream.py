"""Webcams and network streams (RTSP/HTTP) through OpenCV, kept live and reconnected.

A reader thread always holds only the newest frame: when analysis is slower than the
camera, older frames are dropped (and counted) instead of piling up. When the stream
drops, it reconnects with exponential backoff and gives up after ``max_retries``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import cv2

from ..errors import InputError
from .base import Frame, FrameSource

log = logging.getLogger(__name__)


MAX_CAMERA_INDEX = 9999  # beyond any real device's index; OpenCV overflows on a 20-digit one (a traceback)


def camera_index(spec: str) -> int | None:
    """``spec`` as a webcam index (ASCII digits, 0 to MAX_CAMERA_INDEX), None when it is not digits;
    InputError for digits beyond any camera's index."""
    if not (spec.isascii() and spec.isdigit()):  # (not str.isdigit alone: '²' is a digit too, int() refuses it)
        return None
    if len(spec) > len(str(MAX_CAMERA_INDEX)) or int(spec) > MAX_CAMERA_INDEX:
        raise InputError(f"{spec}: not a camera index (0 to {MAX_CAMERA_INDEX}) and no such file")
    return int(spec)


def open_capture(target: int | str) -> cv2.VideoCapture:
    """OpenCV's capture of a webcam or URL, with its FFmpeg backend quiet: it would print its own
    lines ("[tcp @ 0x...] Connection ... refused") before the one-line error that says why."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    return cv2.VideoCapture(target)


class StreamSource(FrameSource):
    live = True

    def __init__(self, target: int | str, max_retries: int = 5, backoff: float = 0.5, drop_frames: bool = True):
        self.target = target
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self.max_retries = max_retries
        self.backoff = backoff
        self.drop_frames = drop_frames
        self.total = None
        self.skipped: list[str] = []
        self.dropped = 0
        self.reconnects = 0
        self._cap = self._open()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._latest = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._t0 = time.monotonic()

    def _open(self) -> cv2.VideoCapture:
        cap = open_capture(self.target)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"{self.name}: cannot open stream")
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # a phone's stream with a display rotation, upright
        return cap

    def _reader(self) -> None:
        index, failures = 0, 0
        while not self._stop.is_set():
            ok, img = self._cap.read()
            if not ok or img is None:
                failures += 1
                if failures > self.max_retries:
                    self.skipped.append(f"{self.name}: stream dropped; gave up after {self.max_retries} reconnects")
                    break
                delay = self.backoff * 2 ** (failures - 1)
                log.warning(
                    "%s: stream dropped, reconnecting in %.1fs (%d/%d)", self.name, delay, failures, self.max_retries
                )
                self._cap.release()
                if self._stop.wait(delay):
                    break
                try:
                    self._cap = self._open()
                    self.reconnects += 1
                except InputError:
                    self._cap = cv2.VideoCapture()
                continue
            failures = 0
            frame = Frame(index=index, timestamp=time.monotonic() - self._t0, image=img)
            index += 1
            with self._cond:
                if self._latest is not None:
                    if not self.drop_frames:
                        self._cond.wait_for(lambda: self._latest is None or self._stop.is_set())
                    else:
                        self.dropped += 1
                self._latest = frame
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        thread = threading.Thread(target=self._reader, name=f"reader:{self.name}", daemon=True)
        thread.start()
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._latest is not None or self._done)
                    if self._latest is None:
                        return
                    frame, self._latest = self._latest, None
                    self._cond.notify_all()
                yield frame
        finally:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            thread.join(timeout=5)

    def close(self) -> None:
        self._stop.set()
        self._cap.release()
