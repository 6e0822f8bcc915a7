"""The 468-point face mesh (mediapipe FaceMesh), run on a square crop around each detection.

Running the mesh per detected face (instead of on the whole frame) keeps small and
distant faces: the full-range detector finds them and the crop brings them to the
size the mesh model expects.

Usage::

    FaceMesher().refine(frame_bgr, faces)   # fills face.landmarks in place
"""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np

from ..types import FaceResult
from .native import quiet_native_stderr

# Named mesh points (mediapipe's 468-point topology). "right" = the person's right.
RIGHT_EYE = (33, 133)
LEFT_EYE = (362, 263)
MOUTH = (61, 291, 13, 14)
NOSE_TIP = 1


def eye_mouth_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2): right-eye centre, left-eye centre, mouth centre from mesh points."""
    return np.stack([landmarks[list(ix), :2].mean(0) for ix in (RIGHT_EYE, LEFT_EYE, MOUTH)]).astype(np.float32)


def square_crop(image: np.ndarray, box: np.ndarray, scale: float, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Square crop of side ``scale * max(w, h)`` centred on ``box``, resized to ``out``.

    Returns the crop and the 2x3 affine that maps crop pixels back to the image.
    """
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = scale * max(x2 - x1, y2 - y1)
    s = side / out
    back = np.array([[s, 0, cx - side / 2], [0, s, cy - side / 2]], np.float32)
    crop = cv2.warpAffine(image, back, (out, out), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, back


class FaceMesher:
    """Fills ``FaceResult.landmarks`` with (468, 3) points in image pixels."""

    def __init__(self, crop_scale: float = 1.5, crop_size: int = 192, min_score: float = 0.5):
        self.crop_scale = crop_scale
        self.crop_size = crop_size
        with quiet_native_stderr():
            self._mp = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=min_score
            )
            # the graph opens its calculators (and logs) on worker threads: wait for that here
            self._mp.process(np.zeros((64, 64, 3), np.uint8))
        self._first_face = True  # the first landmark run logs a native warning: keep it quiet

    def landmarks_in_crop(self, crop_bgr: np.ndarray) -> np.ndarray | None:
        """(468, 3) points in crop pixels, or None when no face is found."""
        rgb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
        if self._first_face:
            with quiet_native_stderr():
                res = self._mp.process(rgb)
            self._first_face = not res.multi_face_landmarks
        else:
            res = self._mp.process(rgb)
        if not res.multi_face_landmarks:
            return None
        n = crop_bgr.shape[1]
        lm = res.multi_face_landmarks[0].landmark
        return np.array([[p.x * n, p.y * crop_bgr.shape[0], p.z * n] for p in lm], np.float32)

    def refine(self, image: np.ndarray, faces: list[FaceResult]) -> None:
        for face in faces:
            crop, back = square_crop(image, face.box, self.crop_scale, self.crop_size)
            pts = self.landmarks_in_crop(crop)
            if pts is None:
                continue
            s = back[0, 0]
            xy = pts[:, :2] @ back[:, :2].T + back[:, 2]
            face.landmarks = np.column_stack([xy, pts[:, 2] * s]).astype(np.float32)

    def close(self) -> None:
        self._mp.close()
