"""Image folders whose sub-folder names are emotions (FER2013 Kaggle layout, RAF-DB-style exports, your own).

Accepts the usual synonyms (angry/anger, happy/happiness, ...). ``name_filter`` keeps files
whose name contains it, e.g. ``PrivateTest`` in FER2013's ``test/`` folder.

Usage::

    images, labels, classes = load_class_folders("fer2013/test", name_filter="PrivateTest")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..emotions import EMOTIONS, SYNONYMS
from ..errors import InputError
from ..sources.images import IMAGE_EXTS, read_image


def class_subfolders(root: str | Path, aliases: Mapping[str, str] | None = None) -> list[tuple[Path, int]]:
    """The class sub-folders of ``root`` with their index into EMOTIONS.

    ``aliases`` adds folder names to :data:`SYNONYMS` (e.g. AffectNet's numbered folders).

    Usage::

        for folder, cls in class_subfolders("fer2013/train"): ...
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected {root}/<emotion>/image.png)")
    names = {**SYNONYMS, **(aliases or {})}
    # hidden folders (.ipynb_checkpoints, .DS_Store's kin) are never classes
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise InputError(f"{root}: no class sub-folders (expected {root}/<emotion>/image.png)")
    unknown = [p.name for p in subdirs if p.name.lower() not in names]
    if unknown:
        raise InputError(f"{root}: unknown emotion folder(s) {unknown}; accepted names: {', '.join(sorted(names))}")
    return [(d, EMOTIONS.index(names[d.name.lower()])) for d in subdirs]


def list_class_folders(
    root: str | Path, name_filter: str | None = None, aliases: Mapping[str, str] | None = None
) -> tuple[list[Path], np.ndarray]:
    """-> (image files, their labels as indices into EMOTIONS), sorted by folder then name.

    Usage::

        paths, labels = list_class_folders("fer2013/test", name_filter="PublicTest")
    """
    paths, labels = [], []
    for folder, cls in class_subfolders(root, aliases):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS and (not name_filter or name_filter in f.name):
                paths.append(f)
                labels.append(cls)
    if not paths:
        raise InputError(
            f"{root}: no images found"
            + (f" matching {name_filter!r}" if name_filter else "")
            + f" (extensions {', '.join(sorted(IMAGE_EXTS))})"
        )
    return paths, np.array(labels, np.int64)


def read_images(paths: Sequence[Path], size: int | None = 48, grey: bool = True) -> list[np.ndarray] | np.ndarray:
    """Read image files (an unreadable one raises InputError naming it), grey and resized to ``size``.

    ``size=None`` keeps each image's own size and returns a list.
    """
    images = []
    for f in paths:
        img = read_image(f)
        if grey:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if size is not None and img.shape[:2] != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        images.append(img)
    return np.stack(images) if size is not None else images


def present_classes(labels: np.ndarray) -> tuple[str, ...]:
    """The classes that occur in ``labels``, in EMOTIONS order (what a dataset is scored over)."""
    seen = set(np.unique(labels).tolist())
    return tuple(c for i, c in enumerate(EMOTIONS) if i in seen)


def load_class_folders(
    root: str | Path,
    name_filter: str | None = None,
    size: int | None = 48,
    grey: bool = True,
    aliases: Mapping[str, str] | None = None,
) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray, tuple[str, ...]]:
    """-> (images, labels as indices into EMOTIONS, the classes present, in EMOTIONS order)."""
    paths, labels = list_class_folders(root, name_filter, aliases)
    return read_images(paths, size, grey), labels, present_classes(labels)
