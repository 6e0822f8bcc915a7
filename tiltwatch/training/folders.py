"""Image folders whose sub-folder names are emotions (FER2013 Kaggle layout, RAF-DB-style exports, your own).

Accepts the usual synonyms (angry/anger, happy/happiness, ...). ``name_filter`` keeps files
whose name contains it, e.g. ``PrivateTest`` in FER2013's ``test/`` folder.

Usage::

    images, labels, classes = load_class_folders("fer2013/test", name_filter="PrivateTest")
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..emotions import EMOTIONS, SYNONYMS
from ..errors import InputError
from ..sources.images import IMAGE_EXTS, read_image


def load_class_folders(root: str | Path, name_filter: str | None = None, size: int | None = 48,
                       grey: bool = True) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray, tuple[str, ...]]:
    """-> (images, labels as indices into EMOTIONS, the classes present, in EMOTIONS order)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    unknown = [p.name for p in subdirs if p.name.lower() not in SYNONYMS]
    if unknown:
        raise InputError(f"{root}: unknown emotion folder(s) {unknown}; expected names like {sorted(set(SYNONYMS))}")
    if not subdirs:
        raise InputError(f"{root}: no class sub-folders (expected {root}/<emotion>/image.png)")
    images, labels = [], []
    for d in subdirs:
        cls = EMOTIONS.index(SYNONYMS[d.name.lower()])
        for f in sorted(d.iterdir()):
            if f.suffix.lower() not in IMAGE_EXTS or (name_filter and name_filter not in f.name):
                continue
            img = read_image(f)
            if grey:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            if size is not None and img.shape[:2] != (size, size):
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(cls)
    if not images:
        raise InputError(f"{root}: no images found" + (f" matching {name_filter!r}" if name_filter else ""))
    present = tuple(c for c in EMOTIONS if EMOTIONS.index(c) in set(labels))
    out = np.stack(images) if size is not None else images
    return out, np.array(labels, np.int64), present
