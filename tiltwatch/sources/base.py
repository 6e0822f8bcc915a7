"""What every source yields: :class:`Frame`, and the :class:`FrameSource` interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    index: int  # position in the source (counts skipped frames too)
    timestamp: float  # seconds from the start of the source
    image: np.ndarray  # uint8 BGR
    name: str = ""  # file name for image folders


class FrameSource:
    """Iterable of frames. ``skipped`` collects a one-line reason per frame that could not be read."""

    name: str = ""
    fps: float | None = None  # nominal frame rate, when known
    total: int | None = None  # number of frames to expect, when known
    live: bool = False  # cameras and streams: frames may be dropped to stay live
    skipped: list[str]

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
