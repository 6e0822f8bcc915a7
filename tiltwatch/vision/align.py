"""Warp each face so its eyes and mouth land where FER+ crops have them.

The template was measured on FER+ training crops with the face mesh
(``python scripts/fit_align_template.py DATA/ferplus``: medians 15.19,18.96 / 32.72,18.66 /
24.28,36.90 on 48x48), then made left-right symmetric. Live crops are therefore framed
like the crops the emotion model was trained on.

Usage::

    crops = align_faces(frame_bgr, faces, size=48)   # (N, size, size, 3) uint8
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import FaceResult
from .mesh import eye_mouth_points

#: Right-eye centre, left-eye centre, mouth centre in a 48x48 FER-style crop.
FER_TEMPLATE_48 = np.array([[15.18, 18.8], [32.72, 18.8], [23.95, 36.9]], np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping src -> dst, as 2x3."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    a = (s * d).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()
    den = (s**2).sum()
    if den < 1e-9:
        raise ValueError("alignment points coincide")
    ca, sa = a / den, b / den
    m = np.array([[ca, -sa], [sa, ca]], np.float32)
    return np.hstack([m, (mu_d - m @ mu_s)[:, None]]).astype(np.float32)


def face_points(face: FaceResult) -> np.ndarray:
    """Eye and mouth centres from the mesh, else from the detector's keypoints."""
    if face.landmarks is not None:
        return eye_mouth_points(face.landmarks)
    if face.keypoints is None:
        raise ValueError("face has neither mesh landmarks nor detector keypoints")
    # BlazeFace keypoints: right eye, left eye, nose tip, mouth centre, right ear, left ear
    return face.keypoints[[0, 1, 3]].astype(np.float32)


def align_faces(image: np.ndarray, faces: list[FaceResult], size: int = 48) -> np.ndarray:
    """(N, size, size, C) aligned crops, one per face, in the order of ``faces``."""
    dst = FER_TEMPLATE_48 * (size / 48.0)
    out = np.empty((len(faces), size, size) + image.shape[2:], image.dtype)
    for i, face in enumerate(faces):
        m = similarity(face_points(face), dst)
        out[i] = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out
