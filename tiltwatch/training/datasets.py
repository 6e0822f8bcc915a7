"""Facial-expression datasets as in-memory arrays, every kind behind one entry point.

Every loader returns a :class:`FaceSet`: grey uint8 crops resized to ``size``, soft targets
over the 8 :data:`tiltwatch.emotions.EMOTIONS` (rows sum to 1), the majority label of each
image and its name. :func:`load_dataset` takes a ``KIND:PATH`` spec:

========================  ===========================================================  ==================
spec                      layout                                                       splits
========================  ===========================================================  ==================
``ferplus:ROOT``          FER+ official: ``ROOT/FER2013{Train,Valid,Test}/label.csv``  train, valid, test
``fer2013:FILE.csv``      the original ``fer2013.csv`` (``emotion,pixels,Usage``)      train, valid, test
``fer2013-folders:ROOT``  Kaggle folders ``ROOT/{train,test}/<class>/*.png``           train, valid, test
``rafdb:ROOT``            RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + images  train, test
``affectnet:ROOT``        ``ROOT/{train,val}/<class or 0..7>/`` image folders          train, valid, test
``folder:ROOT``           ``ROOT/<emotion>/`` image folders, one split                 any name
``packed:FILE.npz``       any of the above packed into one file by ``tiltwatch pack``   those packed
========================  ===========================================================  ==================

Splits: ``fer2013`` train / valid / test are Usage Training / PublicTest / PrivateTest;
``fer2013-folders`` valid is the ``PublicTest*`` files of ``test/`` and test its
``PrivateTest*`` files (all of ``test/`` when none is named so); RAF-DB has no valid split
(training can hold out part of train, see :func:`holdout`); AffectNet's test set is not
public, so valid and test both read ``val/``; ``folder:`` reads every image whatever the
split name. Class folders accept :data:`tiltwatch.emotions.SYNONYMS` (AffectNet also 0..7).

Usage::

    train = load_dataset("fer2013:data/fer2013.csv", "train")
    test = load_dataset("rafdb:data/RAF-DB/basic", "test", size=64)
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..emotions import EMOTIONS
from ..errors import InputError
from .folders import list_class_folders, read_images

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

    def subset(self, idx: np.ndarray) -> FaceSet:
        """The images at ``idx`` (indices or a boolean mask) as a new FaceSet."""
        idx = np.flatnonzero(idx) if np.asarray(idx).dtype == bool else np.asarray(idx, np.int64)
        return FaceSet(self.images[idx], self.targets[idx], self.labels[idx], [self.names[i] for i in idx])

    def join(self, other: FaceSet) -> FaceSet:
        """This set followed by ``other`` (same image size and classes)."""
        if self.images.shape[1:] != other.images.shape[1:] or self.targets.shape[1] != other.targets.shape[1]:
            raise InputError("cannot join face sets of different image sizes or class counts")
        return FaceSet(
            np.concatenate([self.images, other.images]),
            np.concatenate([self.targets, other.targets]),
            np.concatenate([self.labels, other.labels]),
            self.names + other.names,
        )


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
            try:
                votes.append([float(v) for v in row[2:12]])
            except ValueError:
                raise InputError(f"{label_file}: non-numeric votes in row {row[:2]}") from None
            names.append(row[0])
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
    if not images:
        raise InputError(f"{label_file}: no image whose top vote is an emotion")
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


def ferplus_fer2013_labels(root: str | Path, names: list[str]) -> np.ndarray:
    """FER2013's original label (an :data:`EMOTIONS` index) of each named FER+ image, -1 where the
    image is not listed or its pixels occur elsewhere with another label (``dup_conflict``).

    Read from ``ROOT/fer2013_labels.csv`` (``image,usage,fer2013_emotion,dup_conflict``): the same
    images under their first, noisier labelling, for a second head that speaks FER2013's convention.
    """
    path = Path(root) / "fer2013_labels.csv"
    if not path.is_file():
        raise InputError(
            f"{root}: no fer2013_labels.csv (image,usage,fer2013_emotion,dup_conflict) beside the "
            "FER+ folders; it is needed for the FER2013 head"
        )
    by_name: dict[str, int] = {}
    with open(path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            try:
                conflict = row["dup_conflict"].strip() == "1"
                label = _fer2013_label(row["fer2013_emotion"], f"{path} line {i}")
            except (KeyError, AttributeError):
                raise InputError(f"{path}: expected columns image,usage,fer2013_emotion,dup_conflict") from None
            by_name[row["image"]] = -1 if conflict else label
    return np.array([by_name.get(n, -1) for n in names], np.int64)


def _cache_path(cache_dir, label_file: Path, size: int) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.sha1(f"{label_file.resolve()}:{label_file.stat().st_mtime}:{size}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"faceset-{key}.npz"


# ---------------------------------------------------------------------------------------------
# every dataset kind behind one entry point


class MissingSplitError(InputError):
    """The dataset has no such split (RAF-DB: no ``valid``); training can hold out part of train instead."""


Files = tuple[list[Path], np.ndarray]  # image files and their labels as indices into EMOTIONS


def _one_hot(labels: np.ndarray) -> np.ndarray:
    # single-label datasets: the majority label is the whole target
    return np.eye(len(EMOTIONS), dtype=np.float32)[labels]


def _from_files(paths: list[Path], labels: np.ndarray, root: Path, size: int) -> FaceSet:
    names = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in paths]
    return FaceSet(read_images(paths, size), _one_hot(labels), labels.astype(np.int64), names)


def _subdir(root: Path, name: str, layout: str) -> Path:
    """``root/name``, case-insensitively (releases differ: ``Train/`` or ``train/``)."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected {layout})")
    if (root / name).is_dir():
        return root / name
    for p in root.iterdir():
        if p.is_dir() and p.name.lower() == name:
            return p
    raise InputError(f"{root}: missing {name}/ (expected {layout})")


def _keep(files: Files, mask: list[bool]) -> Files:
    paths, labels = files
    return [p for p, k in zip(paths, mask) if k], labels[np.asarray(mask, bool)]


# --- fer2013.csv ---------------------------------------------------------------------------

#: fer2013.csv's ``emotion`` column, 0..6, in tiltwatch's names (it has no contempt).
FER2013_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FER2013_USAGE = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}
FER2013_COLUMNS = ("emotion", "pixels", "Usage")


def load_fer2013_csv(path: str | Path, split: str, size: int = 48) -> FaceSet:
    """The original ``fer2013.csv``: rows ``emotion,pixels,Usage`` of 48x48 grey pixels.

    Splits: train = Training, valid = PublicTest, test = PrivateTest; one-hot targets.

    Usage::

        fs = load_fer2013_csv("data/fer2013.csv", "valid")
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected fer2013.csv with columns {','.join(FER2013_COLUMNS)})")
    usage = FER2013_USAGE[split]
    images, labels, names = [], [], []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in FER2013_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(
                    f"{path}: not a fer2013.csv (missing column(s) {', '.join(missing)}; "
                    f"expected {','.join(FER2013_COLUMNS)})"
                )
            for row in reader:
                if row["Usage"] != usage:
                    continue
                where = f"{path} line {reader.line_num}"
                # a short row leaves fields None: report it as the bad value it is
                labels.append(_fer2013_label(row["emotion"] or "", where))
                images.append(_fer2013_pixels(row["pixels"] or "", where, size))
                names.append(f"{path.name}:{reader.line_num}")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    if not images:
        raise InputError(f"{path}: no rows with Usage={usage} (the {split!r} split)")
    lab = np.array(labels, np.int64)
    return FaceSet(np.stack(images), _one_hot(lab), lab, names)


def _fer2013_label(text: str, where: str) -> int:
    if text.strip() not in {str(i) for i in range(len(FER2013_CLASSES))}:
        raise InputError(
            f"{where}: emotion must be 0..6 "
            f"({', '.join(f'{i} {c}' for i, c in enumerate(FER2013_CLASSES))}), got {text!r}"
        )
    return EMOTIONS.index(FER2013_CLASSES[int(text)])


def _fer2013_pixels(text: str, where: str, size: int) -> np.ndarray:
    with warnings.catch_warnings():
        # numpy warns (and will raise) when a value is not a number: that is a bad row
        warnings.simplefilter("error", DeprecationWarning)
        try:
            px = np.fromstring(text, dtype=np.int32, sep=" ")
        except (DeprecationWarning, ValueError):
            px = np.zeros(0, np.int32)
    if px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
        raise InputError(f"{where}: pixels must be 2304 (48x48) space-separated values 0..255")
    img = px.reshape(48, 48).astype(np.uint8)
    return img if size == 48 else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


# --- image-folder kinds -----------------------------------------------------------------------

_FER2013_LAYOUT = "FER2013's image folders ROOT/{train,test}/<class>/"


def fer2013_folder_files(root: str | Path, split: str) -> Files:
    """Kaggle's FER2013 folders ``ROOT/{train,test}/<class>/``.

    train = ``train/``; valid = the ``PublicTest*`` files of ``test/``; test = its
    ``PrivateTest*`` files, or all of ``test/`` when no file is named that way.
    """
    root = Path(root)
    if split == "train":
        return list_class_folders(_subdir(root, "train", _FER2013_LAYOUT))
    test = _subdir(root, "test", _FER2013_LAYOUT)
    files = list_class_folders(test)
    public = ["PublicTest" in p.name for p in files[0]]
    private = ["PrivateTest" in p.name for p in files[0]]
    if split == "valid":
        if not any(public):
            raise MissingSplitError(
                f"{test}: no PublicTest* files, so no 'valid' split (Kaggle's FER2013 test/ "
                "holds PublicTest_* and PrivateTest_* files)"
            )
        return _keep(files, public)
    return _keep(files, private) if any(private) else files


#: RAF-DB basic's labels 1..7 in tiltwatch's names.
RAFDB_CLASSES = {
    "1": "surprise",
    "2": "fear",
    "3": "disgust",
    "4": "happiness",
    "5": "sadness",
    "6": "anger",
    "7": "neutral",
}
RAFDB_LABEL_FILE = "EmoLabel/list_patition_label.txt"  # sic: RAF-DB's own spelling


def rafdb_files(root: str | Path, split: str) -> Files:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` lines ``train_00001.jpg 5``, images in
    ``Image/aligned/`` (``train_00001_aligned.jpg``, preferred) or ``Image/original/``."""
    root = Path(root)
    label_file = root / RAFDB_LABEL_FILE
    if not label_file.is_file():
        raise InputError(f"{root}: not a RAF-DB basic folder (missing {RAFDB_LABEL_FILE})")
    aligned = (root / "Image" / "aligned").is_dir()
    images = root / "Image" / ("aligned" if aligned else "original")
    if not images.is_dir():
        raise InputError(f"{root}: RAF-DB images not found (missing Image/aligned/ or Image/original/)")
    paths, labels = [], []
    for n, line in enumerate(label_file.read_text(encoding="utf-8-sig").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in RAFDB_CLASSES:
            raise InputError(
                f"{label_file} line {n}: expected 'NAME LABEL' with LABEL 1..7 "
                f"({', '.join(f'{k} {v}' for k, v in RAFDB_CLASSES.items())}), got {line.strip()!r}"
            )
        name = Path(parts[0])
        if name.name.startswith(f"{split}_"):
            paths.append(images / (f"{name.stem}_aligned{name.suffix}" if aligned else name.name))
            labels.append(EMOTIONS.index(RAFDB_CLASSES[parts[1]]))
    if not paths:
        raise InputError(f"{label_file}: no {split}_* lines (the {split!r} split is empty)")
    return paths, np.array(labels, np.int64)


#: AffectNet's numbered class folders 0..7 in tiltwatch's names.
_AFFECTNET_LAYOUT = "AffectNet's image folders ROOT/{train,val}/<class>/"
AFFECTNET_NUMBERS = {
    "0": "neutral",
    "1": "happiness",
    "2": "sadness",
    "3": "surprise",
    "4": "fear",
    "5": "disgust",
    "6": "anger",
    "7": "contempt",
}


def affectnet_files(root: str | Path, split: str) -> Files:
    """AffectNet folder release ``ROOT/{train,val}/<class>/``, classes named or numbered 0..7.

    AffectNet's test set is not public, so ``val/`` serves as both valid and test.
    """
    folder = _subdir(Path(root), "train" if split == "train" else "val", _AFFECTNET_LAYOUT)
    return list_class_folders(folder, aliases=AFFECTNET_NUMBERS)


def folder_files(root: str | Path, split: str) -> Files:
    """``ROOT/<emotion>/`` image folders (synonyms accepted): every image, whatever the split name."""
    return list_class_folders(root)


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetKind:
    """How one kind loads: its splits (empty: one split under any name) and its loader."""

    title: str
    splits: tuple[str, ...]
    load: Callable[[Path, str, int], FaceSet]
    files: Callable[[Path, str], Files] | None = None  # its image files, where it has them
    no_split_hint: str = ""


def _file_kind(title: str, splits: tuple[str, ...], files: Callable[[Path, str], Files], hint: str = "") -> DatasetKind:
    def load(root: Path, split: str, size: int) -> FaceSet:
        return _from_files(*files(root, split), root, size)

    return DatasetKind(title, splits, load, files, hint)


def _load_packed(path: Path, split: str, size: int) -> FaceSet:
    from .packed import load_packed  # (packed.py builds FaceSets: imported here, not at the top)

    return load_packed(path, split, size)


_SPLITS3 = ("train", "valid", "test")
DATASET_KINDS: Mapping[str, DatasetKind] = {
    "ferplus": DatasetKind("FER+", _SPLITS3, lambda root, split, size: load_ferplus(root, split, size)),
    "fer2013": DatasetKind("FER2013 CSV", _SPLITS3, load_fer2013_csv),
    "fer2013-folders": _file_kind("FER2013 folders", _SPLITS3, fer2013_folder_files),
    "rafdb": _file_kind(
        "RAF-DB",
        ("train", "test"),
        rafdb_files,
        "to validate, hold out part of train (valid_fraction: 0.1 in a training config)",
    ),
    "affectnet": _file_kind("AffectNet", _SPLITS3, affectnet_files),
    "folder": _file_kind("class folders", (), folder_files),
    "packed": DatasetKind("packed file", _SPLITS3, _load_packed),
}


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"rafdb:data/raf"`` -> ``("rafdb", Path("data/raf"))``; InputError for a bad spec or kind."""
    kind, sep, path = spec.partition(":")
    kinds = ", ".join(DATASET_KINDS)
    if not sep or not path:
        raise InputError(f"dataset must be KIND:PATH with KIND one of {kinds}, got {spec!r}")
    if kind not in DATASET_KINDS:
        raise InputError(f"unknown dataset kind {kind!r} in {spec!r}; use one of {kinds}")
    return kind, Path(path)


def dataset_splits(spec: str) -> tuple[str, ...]:
    """The splits a spec's kind has; empty for ``folder:`` (one split, any name)."""
    return DATASET_KINDS[parse_spec(spec)[0]].splits


def _kind_for(spec: str, split: str) -> tuple[DatasetKind, Path]:
    name, path = parse_spec(spec)
    kind = DATASET_KINDS[name]
    if kind.splits and split not in kind.splits:
        hint = f"; {kind.no_split_hint}" if kind.no_split_hint else ""
        raise MissingSplitError(f"{kind.title} has no {split!r} split (it has {', '.join(kind.splits)}){hint}")
    return kind, path


def load_dataset(spec: str, split: str, size: int = 48) -> FaceSet:
    """Any dataset kind as a FaceSet of ``size`` x ``size`` grey crops (see the table above).

    Usage::

        fs = load_dataset("affectnet:data/affectnet", "valid", size=64)
    """
    kind, path = _kind_for(spec, split)
    return kind.load(path, split, size)


def dataset_files(spec: str, split: str) -> Files:
    """The image files of a split and their labels, for kinds stored as image files (not FER+ or the CSV).

    Usage::

        paths, labels = dataset_files("rafdb:data/raf", "test")
    """
    kind, path = _kind_for(spec, split)
    if kind.files is None:
        raise InputError(f"{kind.title} is not stored as one image file per face")
    return kind.files(path, split)


def holdout(fs: FaceSet, fraction: float, seed: int = 0) -> tuple[FaceSet, FaceSet]:
    """-> (rest, held out): ``fraction`` of each class held out at random (seeded), at least one image
    of each class kept in the rest.

    Usage::

        train, valid = holdout(load_dataset("rafdb:data/raf", "train"), 0.1, seed=0)
    """
    rng = np.random.default_rng(seed)
    held = np.zeros(len(fs), bool)
    for c in np.unique(fs.labels):
        idx = rng.permutation(np.flatnonzero(fs.labels == c))
        held[idx[: min(int(round(fraction * len(idx))), len(idx) - 1)]] = True
    if not held.any():
        raise InputError(f"holding out {fraction} of {len(fs)} images leaves no validation image; raise the fraction")
    return fs.subset(~held), fs.subset(held)
