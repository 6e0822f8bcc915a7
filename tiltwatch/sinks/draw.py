"""Drawing results onto frames: boxes, track ids, emotion labels, head-pose axes, optional blur."""

from __future__ import annotations

import cv2
import numpy as np

from ..types import FaceResult, FrameResult, Pose
from ..vision.mesh import NOSE_TIP
from ..vision.pose import rotation_from_pose

# a fixed colour per emotion, BGR
COLOURS = {
    "neutral": (200, 200, 200),
    "happiness": (60, 200, 60),
    "surprise": (0, 200, 255),
    "sadness": (200, 120, 40),
    "anger": (40, 40, 230),
    "disgust": (40, 140, 100),
    "fear": (180, 60, 180),
    "contempt": (120, 80, 160),
}


def blur_faces(image: np.ndarray, faces: list[FaceResult]) -> None:
    """Pixelate every face box in place (privacy): coarse enough that no face can be recognised."""
    h, w = image.shape[:2]
    for f in faces:
        x1, y1, x2, y2 = f.box
        pad = 0.15 * (x2 - x1)
        x1, y1 = int(max(x1 - pad, 0)), int(max(y1 - pad, 0))
        x2, y2 = int(min(x2 + pad, w)), int(min(y2 + pad, h))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        roi = image[y1:y2, x1:x2]
        small = cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA)
        image[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)


def draw_pose_axes(image: np.ndarray, centre: tuple[float, float], pose: Pose, length: float) -> None:
    """Head axes: red = face's right-to-left (x), green = down (y), blue = where the face points."""
    r = rotation_from_pose(pose)
    cx, cy = centre
    for axis, colour in (
        (np.array([1, 0, 0]), (0, 0, 255)),
        (np.array([0, 1, 0]), (0, 255, 0)),
        (np.array([0, 0, -1]), (255, 0, 0)),
    ):
        v = r @ axis * length
        cv2.line(image, (int(cx), int(cy)), (int(cx + v[0]), int(cy + v[1])), colour, 2, cv2.LINE_AA)


def annotate(image: np.ndarray, result: FrameResult, blur: bool = False) -> np.ndarray:
    """A copy of ``image`` with every face of ``result`` drawn on it."""
    out = image.copy()
    if blur:
        blur_faces(out, result.faces)
    scale = max(out.shape[:2]) / 1000
    for f in result.faces:
        emo = f.smoothed.emotion or f.emotion
        colour = COLOURS.get(emo.label, (255, 255, 255)) if emo else (255, 255, 255)
        x1, y1, x2, y2 = (int(v) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, max(1, int(2 * scale)))
        text = f"#{f.track_id}" if f.track_id is not None else "#?"
        if emo:
            text += f" {emo.label} {emo.confidence:.0%}"
        fs = max(0.4, 0.55 * scale)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        cv2.rectangle(out, (x1, max(y1 - th - 6, 0)), (x1 + tw + 4, max(y1, th + 6)), colour, -1)
        cv2.putText(out, text, (x1 + 2, max(y1 - 4, th + 2)), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), 1, cv2.LINE_AA)
        pose = f.smoothed.pose or f.pose
        nose = None  # where the axes start: the mesh's nose tip, else the detector's
        if f.landmarks is not None:
            nose = f.landmarks[NOSE_TIP, :2]
        elif f.keypoints is not None:
            nose = f.keypoints[2]  # BlazeFace order: right eye, left eye, nose tip, ...
        if pose is not None and nose is not None:
            draw_pose_axes(out, (float(nose[0]), float(nose[1])), pose, 0.45 * (x2 - x1))
    return out
