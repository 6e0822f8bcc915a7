"""A built-in sample clip that needs no camera and no download.

Three copies of a real face (scikit-image's ``astronaut``, a NASA portrait in the public
domain) on a card-table background: one drifts across, one is mirrored and tilts its
head, a small one arrives later. It exercises detection, pose, tracking and new ids.

Usage::

    for frame in SampleSource(): ...
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from .base import Frame, FrameSource


def astronaut_face() -> np.ndarray:
    """The 240x240 head-and-shoulders patch of skimage's astronaut, BGR."""
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return img[0:240, 105:345].copy()


class SampleSource(FrameSource):
    live = False

    def __init__(self, seconds: float = 8.0, fps: float = 15.0, size: tuple[int, int] = (960, 540), stride: int = 1):
        self.name = "sample"
        self.fps = fps
        self.stride = max(1, stride)
        self.n = int(seconds * fps)
        self.total = -(-self.n // self.stride)
        self.size = size
        self.skipped: list[str] = []
        self._face = astronaut_face()
        h, w = self._face.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        mask = 1 - np.clip((((xx - w / 2) / (w * 0.46)) ** 2 + ((yy - h / 2) / (h * 0.5)) ** 2 - 0.75) / 0.25, 0, 1)
        self._mask = mask.astype(np.float32)[..., None]
        self._bg = self._background()

    def _background(self) -> np.ndarray:
        w, h = self.size
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        bg = (np.array([20, 60, 25], np.float32) * (0.6 + 0.6 * yy)).repeat(w, 1)
        cv2.ellipse(bg, (w // 2, int(h * 1.05)), (int(w * 0.45), int(h * 0.3)), 0, 180, 360, (30, 110, 40), -1)
        return bg.astype(np.uint8)

    def _paste(self, canvas: np.ndarray, face: np.ndarray, cx: float, cy: float, scale: float, angle: float) -> None:
        h, w = face.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        m[:, 2] += (cx - w / 2, cy - h / 2)
        size = (canvas.shape[1], canvas.shape[0])
        # warp over the whole frame (cheap, and the warp's rounding depends on the origin), but blend
        # in float only inside the rectangle the face covers: that blend was the cost of a frame
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
        x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, size)
        if x1 <= x0 or y1 <= y0:
            return
        warped = cv2.warpAffine(face, m, size)[y0:y1, x0:x1].astype(np.float32)
        alpha = cv2.warpAffine(self._mask, m, size)[y0:y1, x0:x1, None]
        roi = canvas[y0:y1, x0:x1]
        roi[:] = (roi * (1 - alpha) + warped * alpha).astype(np.uint8)

    def render(self, i: int) -> np.ndarray:
        t = i / self.fps
        w, h = self.size
        canvas = self._bg.copy()
        self._paste(canvas, self._face, w * (0.2 + 0.12 * math.sin(t * 0.8)), h * 0.42, 1.1, 0.0)
        self._paste(canvas, self._face[:, ::-1].copy(), w * 0.72, h * 0.45, 0.85, 15 * math.sin(t * 1.3))
        if t >= 3.0:
            self._paste(canvas, self._face, w * 0.47, h * 0.3, 0.85, -5.0)
        return canvas

    def __iter__(self) -> Iterator[Frame]:
        for i in range(0, self.n, self.stride):
            yield Frame(index=i, timestamp=i / self.fps, image=self.render(i))
