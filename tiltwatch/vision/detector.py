"""Face detection with mediapipe's BlazeFace (the full-range model by default).

Usage::

    faces = FaceDetector().detect(frame_bgr)   # list[FaceResult] with box, score, keypoints
"""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np

from ..types import FaceResult
from .native import quiet_native_stderr


class FaceDetector:
    """BlazeFace via ``mp.solutions.face_detection``; no cap on faces per frame.

    ``full_range=True`` (model 1) finds small and distant faces up to about 5 m;
    ``False`` uses the short-range model (faster, faces within about 2 m).
    """

    def __init__(self, min_score: float = 0.5, full_range: bool = True, min_size: int = 12, max_side: int | None = None):
        self.min_score = min_score
        self.min_size = min_size
        self.max_side = max_side
        with quiet_native_stderr():
            self._mp = mp.solutions.face_detection.FaceDetection(
                model_selection=1 if full_range else 0, min_detection_confidence=min_score
            )
            self._mp.process(np.zeros((64, 64, 3), np.uint8))  # first call logs start-up warnings

    def detect(self, image: np.ndarray) -> list[FaceResult]:
        h, w = image.shape[:2]
        if self.max_side and max(h, w) > self.max_side:  # outputs are relative: boxes map back for free
            f = self.max_side / max(h, w)
            image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        res = self._mp.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        faces = []
        for det in res.detections or []:
            rb = det.location_data.relative_bounding_box
            x1, y1 = max(rb.xmin * w, 0.0), max(rb.ymin * h, 0.0)
            x2, y2 = min((rb.xmin + rb.width) * w, w), min((rb.ymin + rb.height) * h, h)
            if x2 - x1 < self.min_size or y2 - y1 < self.min_size:
                continue
            kps = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], np.float32)
            faces.append(FaceResult(box=np.array([x1, y1, x2, y2], np.float32), score=float(det.score[0]), keypoints=kps))
        return faces

    def close(self) -> None:
        self._mp.close()
