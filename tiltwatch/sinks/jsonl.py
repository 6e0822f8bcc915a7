"""``results.jsonl``: one JSON object per processed frame, written as it goes (a crash loses nothing
written), and only whole lines: a write that fails part-way (a full disk) is cut back to the last
complete frame, so every line of the file parses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..sources.base import Frame
from ..types import FrameResult
from .base import Sink


class JsonlSink(Sink):
    def __init__(self, path: str | Path, with_landmarks: bool = False):
        self.path = Path(path)
        self.with_landmarks = with_landmarks
        self._fh = open(self.path, "wb", buffering=0)  # unbuffered: one write() a frame, nothing held back
        self._whole = 0  # bytes up to the end of the last complete line

    def write(self, frame: Frame, result: FrameResult) -> None:
        line = (json.dumps(result.to_dict(self.with_landmarks), separators=(",", ":")) + "\n").encode()
        try:
            view = memoryview(line)
            while view:  # (a short write: the disk filled up part-way; the next one says why)
                view = view[self._fh.write(view) :]
        except OSError as exc:
            try:
                os.ftruncate(self._fh.fileno(), self._whole)  # no half a frame: the file stays whole lines
            except OSError:
                pass  # (not a regular file: a pipe, a device)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._whole += len(line)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
