"""Every dataset kind behind ``load_dataset``: tiny synthetic copies of each layout, built in tmp_path."""

import csv

import cv2
import numpy as np
import pytest

from tiltwatch import ConfigError, InputError
from tiltwatch.emotions import EMOTIONS
from tiltwatch.training.datasets import MissingSplitError, holdout, load_dataset
from tiltwatch.training.evaluate import load_eval_set

from .test_training import make_ferplus

FER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer2013 emotion 0..6
RAF_NAMES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
AFFECT_NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")  # AffectNet 0..7


def face(value: int, size: int = 48, colour: bool = False, seed: int = 0) -> np.ndarray:
    """A synthetic image whose brightness encodes its class, so a 1-epoch model has something to learn."""
    rng = np.random.default_rng(seed)
    img = np.clip(rng.integers(0, 40, (size, size)) + value, 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if colour else img


def make_fer2013_csv(path, per_class=3):
    """The original fer2013.csv: emotion,pixels,Usage with 2304 space-separated pixels per row."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage in ("Training", "PublicTest", "PrivateTest"):
            for emotion in range(7):
                for i in range(per_class):
                    w.writerow([emotion, " ".join(map(str, face(30 * emotion, seed=i).ravel())), usage])
    return path


def make_fer2013_folders(root, named=True):
    """Kaggle's layout: train/<class>/Training_*.png (48x48), test/<class>/{Public,Private}Test_*.jpg (40x40)."""
    for k, cls in enumerate(FER_NAMES):
        for split, prefixes, size in (("train", ["Training"] * 2, 48), ("test", ["PublicTest", "PrivateTest"], 40)):
            (root / split / cls).mkdir(parents=True)
            for i, prefix in enumerate(prefixes):
                name = f"{prefix}_{k}{i}.png" if named else f"{k}{i}.png"
                cv2.imwrite(str(root / split / cls / name), face(30 * k, size))
    return root


def make_rafdb(root, aligned=True):
    """RAF-DB basic: EmoLabel/list_patition_label.txt plus 100x100 colour JPEGs."""
    (root / "EmoLabel").mkdir(parents=True)
    images = root / "Image" / ("aligned" if aligned else "original")
    images.mkdir(parents=True)
    lines = []
    for split, count in (("train", 4), ("test", 1)):
        for label in RAF_NAMES:
            for i in range(count):
                name = f"{split}_{label}{i:04d}"
                lines.append(f"{name}.jpg {label}")
                cv2.imwrite(
                    str(images / f"{name}{'_aligned' if aligned else ''}.jpg"),
                    face(30 * label, 100, colour=True, seed=i),
                )
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def make_affectnet(root, numbered=False):
    """AffectNet folder release: {train,val}/<class>/ with 96x96 colour images, classes named or numbered 0..7."""
    for k, cls in enumerate(AFFECT_NAMES):
        for split, count in (("train", 2), ("val", 1)):
            d = root / split / (str(k) if numbered else cls)
            d.mkdir(parents=True)
            for i in range(count):
                cv2.imwrite(str(d / f"{i}.png"), face(25 * k, 96, colour=True, seed=i))
    return root


def check(fs, n, size=48):
    assert fs.images.shape == (n, size, size) and fs.images.dtype == np.uint8
    assert fs.targets.shape == (n, len(EMOTIONS)) and np.allclose(fs.targets.sum(1), 1)
    assert (fs.targets.argmax(1) == fs.labels).all() and len(fs.names) == n


def test_fer2013_csv_splits_labels_and_resize(tmp_path):
    spec = f"fer2013:{make_fer2013_csv(tmp_path / 'fer2013.csv')}"
    for split in ("train", "valid", "test"):
        check(load_dataset(spec, split), 21)
    fs = load_dataset(spec, "train", size=64)
    check(fs, 21, 64)
    assert [EMOTIONS[i] for i in fs.labels[::3]] == [
        "anger",
        "disgust",
        "fear",
        "happiness",
        "sadness",
        "surprise",
        "neutral",
    ]
    assert fs.targets[:, EMOTIONS.index("contempt")].sum() == 0  # FER2013 has no contempt


def test_fer2013_folders_public_and_private_test(tmp_path):
    spec = f"fer2013-folders:{make_fer2013_folders(tmp_path / 'fer')}"
    check(load_dataset(spec, "train"), 14)
    valid, test = load_dataset(spec, "valid"), load_dataset(spec, "test")
    check(valid, 7), check(test, 7)  # 40x40 files resized to 48
    assert all("PublicTest" in n for n in valid.names) and all("PrivateTest" in n for n in test.names)
    assert EMOTIONS[test.labels[test.names.index("test/happy/PrivateTest_31.png")]] == "happiness"

    plain = f"fer2013-folders:{make_fer2013_folders(tmp_path / 'plain', named=False)}"
    check(load_dataset(plain, "test"), 14)  # no PrivateTest names: all of test/
    with pytest.raises(MissingSplitError, match="no PublicTest"):
        load_dataset(plain, "valid")


@pytest.mark.parametrize("aligned", [True, False])
def test_rafdb_labels_and_splits(tmp_path, aligned):
    spec = f"rafdb:{make_rafdb(tmp_path / 'raf', aligned)}"
    train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
    check(train, 28), check(test, 7)
    by_raf = dict(zip(RAF_NAMES, (EMOTIONS[i] for i in test.labels)))
    assert by_raf == RAF_NAMES and by_raf[6] == "anger"
    assert test.names[0].startswith("Image/aligned/test_1" if aligned else "Image/original/test_1")
    with pytest.raises(InputError, match="RAF-DB has no 'valid' split.*hold out part of train"):
        load_dataset(spec, "valid")


@pytest.mark.parametrize("numbered", [False, True])
def test_affectnet_named_and_numbered(tmp_path, numbered):
    spec = f"affectnet:{make_affectnet(tmp_path / 'an', numbered)}"
    train, valid, test = (load_dataset(spec, s, size=32) for s in ("train", "valid", "test"))
    check(train, 16, 32), check(valid, 8, 32)
    assert test.names == valid.names  # val/ is both: AffectNet's test set is not public
    assert sorted(EMOTIONS[i] for i in valid.labels) == sorted(EMOTIONS)
    assert EMOTIONS[valid.labels[valid.names.index(f"val/{'7' if numbered else 'contempt'}/0.png")]] == "contempt"


def test_folder_any_split_and_synonyms(tmp_path):
    for name in ("Happy", "angry", "scared"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), face(100, 60))
    fs = load_dataset(f"folder:{tmp_path}", "whatever")
    check(fs, 3)
    assert [EMOTIONS[i] for i in fs.labels] == ["happiness", "anger", "fear"]  # sorted: Happy, angry, scared


def test_ferplus_through_load_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # FER+'s cache (.cache/) stays in tmp_path
    make_ferplus(tmp_path)
    fs = load_dataset(f"ferplus:{tmp_path}", "valid")
    check(fs, 48)
    assert fs.targets[1, 1] == pytest.approx(0.8)  # soft labels kept


def test_holdout_is_stratified_and_seeded(tmp_path):
    fs = load_dataset(f"rafdb:{make_rafdb(tmp_path)}", "train")
    rest, held = holdout(fs, 0.25, seed=3)
    assert len(held) == 7 and len(rest) == 21 and np.bincount(held.labels, minlength=8)[:7].tolist() == [1] * 7
    assert holdout(fs, 0.25, seed=3)[1].names == held.names and not set(held.names) & set(rest.names)


def _corrupt(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.png").write_bytes(b"not a png")
    return tmp_path


def _csv(tmp_path, text):
    (tmp_path / "f.csv").write_text(text)
    return f"fer2013:{tmp_path / 'f.csv'}"


def _raf_bad_label(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 9\n")
    return f"rafdb:{root}"


@pytest.mark.parametrize(
    "make_spec, split, message",
    [
        (lambda p: "nope:x", "train", r"unknown dataset kind 'nope'.*ferplus, fer2013"),
        (lambda p: "fer2013.csv", "train", "must be KIND:PATH"),
        (lambda p: f"ferplus:{p}", "nope", r"FER\+ has no 'nope' split"),
        (lambda p: f"fer2013-folders:{p}", "train", r"missing train/ \(expected FER2013's image folders"),
        (lambda p: f"rafdb:{p}", "train", r"missing EmoLabel/list_patition_label.txt"),
        (lambda p: f"affectnet:{p}", "test", r"missing val/ \(expected AffectNet's image folders"),
        (lambda p: f"fer2013:{p / 'missing.csv'}", "train", "no such file.*emotion,pixels,Usage"),
        (lambda p: _csv(p, "emotion,pixels\n3,1 2\n"), "train", "missing column.*Usage"),
        (lambda p: _csv(p, "emotion,pixels,Usage\n3,1 2 x,Training\n"), "train", "line 2: pixels must be 2304"),
        (lambda p: _csv(p, "emotion,pixels,Usage\n9," + "0 " * 2304 + ",Training\n"), "train", "emotion must be 0..6"),
        (lambda p: _csv(p, "emotion,pixels,Usage\n"), "test", "no rows with Usage=PrivateTest"),
        (_raf_bad_label, "train", "line 1: expected 'NAME LABEL' with LABEL 1..7"),
        (
            lambda p: (p / "happyy").mkdir() or (p / "sad").mkdir() or f"folder:{p}",
            "all",
            r"unknown emotion folder\(s\) \['happyy'\]; accepted names: .*happy",
        ),
        (lambda p: (p / "sad").mkdir() or f"folder:{p}", "all", "no images found"),
        (lambda p: f"folder:{_corrupt(p)}", "all", "broken.png: not an image or corrupt"),
    ],
)
def test_errors_are_one_line_input_errors(tmp_path, make_spec, split, message):
    with pytest.raises(InputError, match=message) as exc:
        load_dataset(make_spec(tmp_path), split)
    assert "\n" not in str(exc.value)


def test_eval_sets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # FER+'s cache (.cache/) stays in tmp_path
    fer = make_fer2013_folders(tmp_path / "fer")
    ds = load_eval_set(f"fer2013-folders:{fer}")  # FER2013 PrivateTest directly
    assert len(ds.labels) == 7 and ds.classes == tuple(e for e in EMOTIONS if e != "contempt")
    assert len(load_eval_set(f"folder:{fer / 'test'}", name_filter="PrivateTest").labels) == 7
    assert len(load_eval_set(f"fer2013-folders-valid:{fer}").labels) == 7
    photos = load_eval_set(f"rafdb:{make_rafdb(tmp_path / 'raf')}", whole_photos=True)
    assert photos.images[0].shape == (100, 100, 3)  # own size and colour, for --crop detect
    make_ferplus(tmp_path / "ferplus")
    assert load_eval_set(f"ferplus-valid:{tmp_path / 'ferplus'}").classes == EMOTIONS
    with pytest.raises(InputError, match="unknown dataset kind"):
        load_eval_set("imagenet:x")
    with pytest.raises(InputError, match="RAF-DB has no 'valid' split"):
        load_eval_set(f"rafdb-valid:{tmp_path / 'raf'}")


def _config(tmp_path, data, **extra):
    from tiltwatch.training.train import TrainConfig

    return TrainConfig(data=data, out=str(tmp_path / "run"), epochs=1, batch_size=16, lr=0.005, **extra)


def test_train_on_fer2013_csv(tmp_path):
    from tiltwatch.training.train import train

    best = train(_config(tmp_path, f"fer2013:{make_fer2013_csv(tmp_path / 'fer2013.csv')}"))
    assert best.is_file()


def test_train_on_rafdb_needs_valid_fraction(tmp_path):
    from tiltwatch.training.train import train

    spec = f"rafdb:{make_rafdb(tmp_path / 'raf')}"
    with pytest.raises(ConfigError, match="no validation split; set valid_fraction"):
        train(_config(tmp_path, spec))
    with pytest.raises(ConfigError, match="no validation split"):
        train(_config(tmp_path, f"folder:{tmp_path / 'raf' / 'Image'}"))
    with pytest.raises(ConfigError, match="unknown dataset kind 'rafbd'"):
        train(_config(tmp_path, f"rafbd:{tmp_path / 'raf'}"))
    assert train(_config(tmp_path, spec, valid_fraction=0.25)).is_file()
