"""The one conversion from face crops to emotion-model input, shared by training and inference.

Training feeds FER-style 48x48 grey crops through :func:`to_model_input`; the live
pipeline feeds its aligned crops (see :mod:`tiltwatch.vision.align`) through the same
function, so the two never drift apart.

Usage::

    x = to_model_input(crops)          # crops: (N, H, W) uint8 grey or (N, H, W, 3) BGR
"""

from __future__ import annotations

import cv2
import numpy as np

#: Normalisation applied after scaling to [0, 1]: ``(x - MEAN) / STD``.
MEAN = 0.5
STD = 0.5


def to_grey(crops: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) uint8/uint16 crops -> (N, H, W) uint8 grey."""
    crops = np.asarray(crops)
    if crops.ndim == 4:
        crops = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops])
    if crops.dtype != np.uint8:
        raise TypeError(f"face crops must be uint8, got {crops.dtype}")
    return crops


def resize_faces(grey: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) grey faces at ``size`` x ``size`` (area interpolation, as the datasets read them)."""
    if grey.shape[1:] == (size, size):
        return grey
    return np.stack([cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA) for g in grey])


def to_model_input(crops: np.ndarray, size: int | None = None) -> np.ndarray:
    """Face crops -> float32 (N, 1, S, S) tensor normalised as in training."""
    grey = to_grey(crops)
    if size is not None:
        grey = resize_faces(grey, size)
    x = grey.astype(np.float32) / 255.0
    return ((x - MEAN) / STD)[:, None]
