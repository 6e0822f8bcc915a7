"""``--show``: a live OpenCV window with the annotated frames; Esc or q stops the run."""

from __future__ import annotations

import os
import socket
import sys

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
        problem = display_problem()
        if problem is not None:
            raise InputError(problem)
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


def display_problem() -> str | None:
    """Why a live window cannot open here, or None. Checked before anything starts: on Linux,
    OpenCV's Qt has only the X11 (xcb) plugin and aborts the whole process when no X server
    answers, so an unset or unreachable ``DISPLAY`` (a Wayland-only session included) is caught here."""
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY", "")
    fix = "drop --show, or watch annotated.mp4 afterwards"
    if not display:
        wayland = " (a Wayland session needs XWayland's DISPLAY)" if os.environ.get("WAYLAND_DISPLAY") else ""
        return f"--show needs an X display and DISPLAY is not set{wayland}; {fix}"
    if not _x_server_answers(display):
        return f"--show: no X server answers at DISPLAY={display}; {fix}"
    return None


def _x_server_answers(display: str) -> bool:
    """Whether something listens where libxcb would connect for ``display`` ([host]:N[.screen])."""
    host, sep, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not sep or not number.isdigit() or host.startswith("/"):
        return True  # a form not understood here (a socket path): let OpenCV try
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        addresses = [(socket.AF_UNIX, "\0" + path), (socket.AF_UNIX, path)]  # abstract first, as libxcb
    else:
        addresses = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host.strip("[]"), 6000 + int(number)))]
    for family, address in addresses:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                s.connect(address)
                return True
        except OSError:
            continue
    return False
