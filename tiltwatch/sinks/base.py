"""The sink interface: ``write`` each frame's result, ``close`` once (flushing everything)."""

from __future__ import annotations

from ..sources.base import Frame
from ..types import FrameResult


class Sink:
    def write(self, frame: Frame, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
