"""OpenCV's Haar cascade face detector (frontal faces), a second :class:`~tiltwatch.pipeline.stages.Detector`.

Older and weaker than BlazeFace (frontal faces only, no keypoints, no score), but it ships in
OpenCV and depends on nothing else: the detector of the ``fer`` package's pipeline, and a
stand-in that shows a stage can be swapped (``Analyzer(detector=HaarFaceDetector())``).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ModelError
from ..types import FaceResult


class HaarFaceDetector:
    def __init__(self, min_size: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ModelError(f"{path}: cannot load OpenCV's Haar cascade")
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors

    def detect(self, image: np.ndarray) -> list[FaceResult]:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        boxes = self._cascade.detectMultiScale(
            grey, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        return [FaceResult(box=np.array([x, y, x + w, y + h], np.float32), score=1.0) for x, y, w, h in boxes]

    def close(self) -> None:
        pass
