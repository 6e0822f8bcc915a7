"""A colour signature of a face and what frames it (hair, collar), to tell two people apart.

Used only when a lost id would be given back: someone who sits down where a lost patron
was last seen, at the same size, must not inherit that patron's id (and visit). Hue and
saturation, not brightness, so a face that moved into shade still matches.

Measured on the group clip (8 people, one camera; faces of one track vs of other tracks,
0.4 to 2.4 s apart, Bhattacharyya distance): at the default gate of 0.4, 0.7% of same-person
pairs are refused and 77% of different-person pairs; a shot cut to someone else scored
0.45 to 0.70, and frame-to-frame change within a track stayed under 0.27 in six clips.

Usage::

    a, b = signature(frame, face.box), signature(later_frame, other.box)
    same_look = distance(a, b) <= 0.4
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = (16, 8)  # hue, saturation


def signature(image_bgr: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """L2-normalised hue-saturation histogram of the face box widened to hair and collar;
    None when the box lies outside the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = image_bgr.shape[:2]
    xa, xb = max(int(x1 - 0.2 * w), 0), min(int(x2 + 0.2 * w), width)
    ya, yb = max(int(y1 - 0.3 * h), 0), min(int(y2 + 0.8 * h), height)
    if xb - xa < 2 or yb - ya < 2:
        return None
    return hue_saturation(image_bgr[ya:yb, xa:xb])


def hue_saturation(image_bgr: np.ndarray) -> np.ndarray:
    """L2-normalised 16x8 hue-saturation histogram of a whole image, flattened."""
    hist = cv2.calcHist([cv2.cvtColor(image_bgr, cv2.COLOR_BGR2HSV)], [0, 1], None, list(BINS), [0, 180, 0, 256])
    return cv2.normalize(hist, None).flatten()


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance: 0 for the same colours, 1 for none in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))
