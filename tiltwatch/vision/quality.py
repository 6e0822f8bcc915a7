"""How far a face can be trusted: one score in [0, 1] from what makes emotion and pose unreliable.

Each part is in [0, 1] (1: no doubt from it), from the face's own pixels and results:

- ``size``: the box's shorter side, 16 px -> 0, 64 px and more -> 1 (the models see 48 px);
- ``blur``: the grey crop's Laplacian variance over its own variance (contrast-free), on a log
  scale, 0.01 -> 0, 0.1 -> 1 (measured: a sharp face ~0.3; Gaussian blur sigma 2 at 512 px ~0.02);
- ``exposure``: contrast (grey std, 25 and more -> 1) times the distance of the mean from black
  and white (40 grey levels and more -> 1);
- ``pose``: |yaw| up to 30 and |pitch| up to 25 degrees -> 1, falling to 0 at 75 and 60;
- ``mesh``: 1 with the 468-point mesh, 0.7 without (alignment and pose from 6 keypoints);
- ``confidence``: the model's top probability, 0.25 -> 0, 0.75 and more -> 1.

The score is their weighted geometric mean (weights 1, 1, 1, 1, 0.5, 0.5): one bad part pulls it
down, as it should, since any of them alone can make the reading wrong. A face whose score is
below the analyzer's ``min_quality`` is reported with ``"abstained": true`` and moves no
smoothing, visit or alert.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..types import FaceResult

WEIGHTS = {"size": 1.0, "blur": 1.0, "exposure": 1.0, "pose": 1.0, "mesh": 0.5, "confidence": 0.5}


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def quality_parts(image: np.ndarray, face: FaceResult) -> dict[str, float]:
    x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    parts = {"size": _ramp(min(x2 - x1, y2 - y1), 16, 64)}
    if x2 - x1 >= 4 and y2 - y1 >= 4:
        parts |= pixel_parts(cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY))
    else:
        parts["blur"] = parts["exposure"] = 0.0
    if face.pose is not None:
        parts["pose"] = _ramp(75 - abs(face.pose.yaw), 0, 45) * _ramp(60 - abs(face.pose.pitch), 0, 35)
    parts["mesh"] = 1.0 if face.landmarks is not None else 0.7
    if face.emotion is not None:
        parts["confidence"] = confidence_part(face.emotion.confidence)
    return {k: round(v, 3) for k, v in parts.items()}


def pixel_parts(grey: np.ndarray) -> dict[str, float]:
    """``blur`` and ``exposure`` of a grey face crop (any size; read at 64x64)."""
    grey = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    spread = float(grey.std())
    sharp = cv2.Laplacian(grey, cv2.CV_32F).var() / max(spread**2, 1e-6)
    mean = float(grey.mean())
    return {
        "blur": _ramp(math.log10(max(sharp, 1e-6)), -2.0, -1.0),
        "exposure": _ramp(spread, 0, 25) * _ramp(min(mean, 255 - mean), 0, 40),
    }


def confidence_part(top_probability: float) -> float:
    return _ramp(top_probability, 0.25, 0.75)


def crop_quality(grey: np.ndarray, face_px: float, top_probability: float) -> float:
    """The score of a ready face crop (an evaluation set's) standing for a face ``face_px`` tall:
    size, blur, exposure and confidence; no pose or mesh to judge."""
    parts = {"size": _ramp(face_px, 16, 64)} | pixel_parts(grey) | {"confidence": confidence_part(top_probability)}
    return quality_score({k: round(v, 3) for k, v in parts.items()})


def quality_score(parts: dict[str, float]) -> float:
    """The weighted geometric mean of ``parts`` (each floored at 0.01, so one zero is not -inf)."""
    total = sum(WEIGHTS[k] for k in parts)
    return round(math.exp(sum(WEIGHTS[k] * math.log(max(v, 0.01)) for k, v in parts.items()) / total), 3)
