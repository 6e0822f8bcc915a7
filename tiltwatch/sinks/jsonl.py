"""``results.jsonl``: one JSON object per processed frame, flushed as it goes (a crash loses nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

from ..sources.base import Frame
from ..types import FrameResult
from .base import Sink


class JsonlSink(Sink):
    def __init__(self, path: str | Path, with_landmarks: bool = False):
        self.path = Path(path)
        self.with_landmarks = with_landmarks
        self._fh = open(self.path, "w", buffering=1)  # line-buffered: every frame reaches the file

    def write(self, frame: Frame, result: FrameResult) -> None:
        self._fh.write(json.dumps(result.to_dict(self.with_landmarks), separators=(",", ":")) + "\n")

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
