"""Facial-expression datasets as in-memory arrays.

Every loader returns a :class:`FaceSet`: grey uint8 crops, soft targets over
:data:`tiltwatch.emotions.EMOTIONS` and the majority label of each image.

Usage::

    train = load_ferplus("data/ferplus", "train")
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..emotions import EMOTIONS
from ..errors import InputError

FERPLUS_SPLITS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}


@dataclass
class FaceSet:
    """Grey face crops with soft targets (rows sum to 1) and majority labels."""

    images: np.ndarray  # (N, H, W) uint8
    targets: np.ndarray  # (N, C) float32
    labels: np.ndarray  # (N,) int64
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def _read_grey(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError(f"{path}: cannot read this image")
    return img


def load_ferplus(root: str | Path, split: str, size: int = 48, cache_dir: str | Path | None = ".cache") -> FaceSet:
    """FER+ official layout: ``ROOT/FER2013{Train,Valid,Test}/label.csv`` plus PNGs.

    Keeps images whose top vote is an emotion (not "unknown" or "not a face"), as the
    FER+ test protocol does; a tie goes to the first class in FER+ order.
    """
    root = Path(root)
    if split not in FERPLUS_SPLITS:
        raise InputError(f"FER+ split must be one of {sorted(FERPLUS_SPLITS)}, got {split!r}")
    folder = root / FERPLUS_SPLITS[split]
    label_file = folder / "label.csv"
    if not label_file.is_file():
        raise InputError(f"{root}: not a FER+ folder (missing {FERPLUS_SPLITS[split]}/label.csv)")
    cache = _cache_path(cache_dir, label_file, size)
    if cache is not None and cache.is_file():
        data = np.load(cache, allow_pickle=False)
        return FaceSet(data["images"], data["targets"], data["labels"], list(data["names"]))

    names, votes = [], []
    with open(label_file, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 12:
                raise InputError(f"{label_file}: expected 12 columns, got {len(row)} in row {row[:2]}")
            names.append(row[0])
            votes.append([float(v) for v in row[2:12]])
    votes_arr = np.asarray(votes, np.float32)
    emo_votes = votes_arr[:, : len(EMOTIONS)]
    keep = (votes_arr.argmax(1) < len(EMOTIONS)) & (emo_votes.sum(1) > 0)
    images = []
    for name, k in zip(names, keep):
        if k:
            img = _read_grey(folder / name)
            if img.shape != (size, size):
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
    emo_votes = emo_votes[keep]
    fs = FaceSet(
        images=np.stack(images),
        targets=(emo_votes / emo_votes.sum(1, keepdims=True)).astype(np.float32),
        labels=emo_votes.argmax(1).astype(np.int64),
        names=[n for n, k in zip(names, keep) if k],
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=fs.images, targets=fs.targets, labels=fs.labels, names=np.array(fs.names))
    return fs


def _cache_path(cache_dir, label_file: Path, size: int) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha1(f"{label_file.resolve()}:{label_file.stat().st_mtime}:{size}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"faceset-{key}.npz"
