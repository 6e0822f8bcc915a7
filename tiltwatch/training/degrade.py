"""Face crops made to look like what cameras produce: smaller, blurred, compressed, darker, noisier.

``tiltwatch eval --degrade`` scores a model on degraded copies of a test set next to the clean
one: how it holds up away from FER2013's look. Each degradation keeps the crop's size and is
deterministic (the noise draws from a fixed seed), so two runs score the same images.

=========== ========================================================================= ==========
name        what it does to a 48x48 crop                                              face px
=========== ========================================================================= ==========
shrink24    down to 24x24 (area) and back up (bilinear): a face 24 px tall            24
shrink16    down to 16x16 and back: the smallest faces the pipeline passes on         16
jpeg30      JPEG at quality 30 and decoded: a heavily compressed stream               48
blur        Gaussian blur, sigma 1.5 px: out of focus or moving                       48
dark        pixel values x 0.35: an under-exposed camera                              48
noise       Gaussian noise, sigma 12 grey levels: sensor noise in low light           48
=========== ========================================================================= ==========

"face px" is the size of the face the degraded crop stands for; the quality score reads it as
the face's size.

Usage::

    worse = degrade(crops, "shrink16")          # (N, H, W) uint8 -> the same shape
    for name in DEGRADATIONS: ...
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..errors import InputError


def _shrink(size: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    return f


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def f(img: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 else cv2.IMREAD_COLOR
        return cv2.imdecode(buf, flag)

    return f


def _blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def _dark(img: np.ndarray) -> np.ndarray:
    return np.round(img.astype(np.float32) * 0.35).astype(np.uint8)


#: name -> (function on one uint8 crop, the face size in px it stands for; None: the crop's own)
DEGRADATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray] | None, int | None]] = {
    "shrink24": (_shrink(24), 24),
    "shrink16": (_shrink(16), 16),
    "jpeg30": (_jpeg(30), None),
    "blur": (_blur, None),
    "dark": (_dark, None),
    "noise": (None, None),  # drawn for the whole batch at once (below)
}


def degrade(crops: np.ndarray, name: str) -> np.ndarray:
    """``crops`` (N, H, W[, 3]) uint8, degraded by ``name`` (see :data:`DEGRADATIONS`)."""
    if name not in DEGRADATIONS:
        raise InputError(f"unknown degradation {name!r}; use {', '.join(DEGRADATIONS)} or all")
    crops = np.asarray(crops)
    if name == "noise":
        rng = np.random.default_rng(0)
        return np.clip(crops + rng.normal(0, 12, crops.shape), 0, 255).round().astype(np.uint8)
    f = DEGRADATIONS[name][0]
    return np.stack([f(np.ascontiguousarray(c)) for c in crops]) if len(crops) else crops


def face_px(name: str | None, crop_size: int) -> int:
    """The face size a crop degraded by ``name`` (None: clean) stands for."""
    return (DEGRADATIONS[name][1] if name else None) or crop_size


def parse_degradations(spec: str) -> list[str]:
    """``"all"`` or a comma-separated list of names -> the names, checked."""
    names = list(DEGRADATIONS) if spec.strip() == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        if n not in DEGRADATIONS:
            raise InputError(f"unknown degradation {n!r}; use {', '.join(DEGRADATIONS)} or all")
    if not names:
        raise InputError("--degrade names no degradation; use all or a list such as shrink16,jpeg30")
    return names
