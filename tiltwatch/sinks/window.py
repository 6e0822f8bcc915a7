"""``--show``: a live OpenCV window with the annotated frames; Esc or q stops the run."""

from __future__ import annotations

import cv2

from ..errors import InputError
from ..sources.base import Frame
from ..types import FrameResult
from .base import Sink
from .draw import annotate


class StopRequested(Exception):
    """The user closed the live window."""


class WindowSink(Sink):
    def __init__(self, title: str = "tiltwatch", blur: bool = False):
        self.title = title
        self.blur = blur
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise InputError("--show needs a display (none found: is DISPLAY set?)") from None

    def write(self, frame: Frame, result: FrameResult) -> None:
        cv2.imshow(self.title, annotate(frame.image, result, blur=self.blur))
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            raise StopRequested

    def close(self) -> None:
        cv2.destroyWindow(self.title)
