"""Calibration: the temperature fit finds the true temperature, ECE measures what it says, the
shipped models apply their card's temperature, and eval / calibrate report it (with degraded copies)."""

import json
import shutil

import numpy as np

from tiltwatch.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax,
)
from tiltwatch.training.degrade import DEGRADATIONS, degrade, face_px
from tiltwatch.vision.emotion import EmotionClassifier, resolve_model

from .conftest import tiltwatch
from .test_training import make_ferplus


def two_class_faces(true_temperature: float, margin: float = 2.0, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """n faces whose logits favour class 0 by ``margin``, labelled so that class 0 is right exactly
    as often as softmax(logits / true_temperature) says: the likelihood is least at that temperature."""
    p_right = 1 / (1 + np.exp(-margin / true_temperature))
    right = int(round(p_right * n))
    logits = np.tile([margin, 0.0], (n, 1))
    labels = np.r_[np.zeros(right, int), np.ones(n - right, int)]
    return logits, labels


def test_the_fit_finds_the_temperature_the_labels_follow():
    for t in (0.5, 1.0, 2.5):
        logits, labels = two_class_faces(t)
        assert abs(fit_temperature(logits, labels) - t) < 0.02 * t
    # a scaled copy of the logits needs a scaled temperature, and the labels do not move
    logits, labels = two_class_faces(1.0)
    assert abs(fit_temperature(3 * logits, labels) - 3.0) < 0.06


def test_ece_is_zero_when_confidence_is_accuracy_and_the_gap_when_not():
    logits, labels = two_class_faces(1.0)
    p = softmax(logits)
    assert expected_calibration_error(p, labels) < 0.002
    sure_and_wrong = np.tile([0.99, 0.01], (50, 1))
    assert abs(expected_calibration_error(sure_and_wrong, np.ones(50, int)) - 0.99) < 1e-6
    bins = reliability_bins(p, labels)
    assert sum(b["count"] for b in bins) == len(labels) and len(bins) == 15


def test_the_shipped_default_applies_its_cards_temperature():
    clf = EmotionClassifier.load()
    card = resolve_model("ferplus_fer2013_kd_x5_int8")[1]
    assert card.calibration is not None and clf.temperature == card.temperature("logits") < 1
    crops = (np.add.outer(np.arange(48), np.arange(48)) * 2 % 256).astype(np.uint8)[None].repeat(3, 0)
    crops[1] = crops[1][:, ::-1]
    crops[2] = 255 - crops[2]
    calibrated = clf.predict(crops)
    clf.temperature = 1.0
    raw = clf.predict(crops)
    # the same logits sharpened: labels unchanged, each top class surer, exactly softmax(log p / T)
    assert (calibrated.argmax(1) == raw.argmax(1)).all() and (calibrated.max(1) > raw.max(1)).all()
    np.testing.assert_allclose(calibrated, softmax(np.log(raw) / card.temperature("logits")), atol=1e-5)


def test_degradations_keep_the_shape_and_change_the_pixels():
    crops = (np.add.outer(np.arange(48), np.arange(48)) * 2 % 256).astype(np.uint8)[None].repeat(2, 0)
    for name in DEGRADATIONS:
        worse = degrade(crops, name)
        assert worse.shape == crops.shape and worse.dtype == np.uint8 and (worse != crops).any(), name
        np.testing.assert_array_equal(worse, degrade(crops, name))  # the same copy every time
    assert face_px("shrink16", 48) == 16 and face_px("blur", 48) == 48 and face_px(None, 48) == 48


def copy_of_shipped_model(tmp_path):
    onnx, _ = resolve_model("ferplus_fer2013_vgg_small")
    shutil.copy(onnx, tmp_path / "m.onnx")
    card = json.loads(onnx.with_suffix(".json").read_text())
    card.pop("calibration", None)
    (tmp_path / "m.json").write_text(json.dumps(card))
    return tmp_path / "m.onnx"


def test_calibrate_writes_the_card_and_eval_reports_calibration_degraded_and_quality(tmp_path):
    make_ferplus(tmp_path / "data")
    model = copy_of_shipped_model(tmp_path)
    valid = f"ferplus-valid:{tmp_path / 'data'}"
    res = tiltwatch("calibrate", "--dataset", valid, "--model", model, "--write")
    assert res.returncode == 0 and "temperature" in res.stdout, res.stderr
    cal = json.loads(model.with_suffix(".json").read_text())["calibration"]
    t = cal["temperature"]["logits"]
    assert 0.05 <= t <= 20 and cal["fitted_on"] == "ferplus-valid" and cal["valid"]["logits"]["n"] == 48
    out = tmp_path / "m.json.out"
    res = tiltwatch(
        "eval", "--dataset", valid, "--model", model, "--degrade", "shrink16,jpeg30", "--json", out,
        "--reliability", tmp_path / "r.png",
    )  # fmt: skip
    assert res.returncode == 0 and "expected calibration error" in res.stdout, res.stderr
    m = json.loads(out.read_text())
    assert m["calibration"]["temperature"] == t and 0 <= m["calibration"]["ece"] <= 1
    assert set(m["degraded"]) == {"shrink16", "jpeg30"} and "ece_uncalibrated" in m["calibration"]
    assert sum(b["count"] for b in m["by_quality"]["bins"]) == 3 * 48  # clean + two copies
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_calibration_and_eval_mistakes_are_one_line_errors(tmp_path):
    make_ferplus(tmp_path / "data")
    model = copy_of_shipped_model(tmp_path)
    cases = [
        (("calibrate", "--dataset", f"ferplus:{tmp_path / 'data'}", "--model", model), "validation split"),
        (("eval", "--dataset", f"ferplus-valid:{tmp_path / 'data'}", "--model", model, "--degrade", "fog"), "fog"),
        (
            ("eval", "--dataset", f"ferplus-valid:{tmp_path / 'data'}", "--model", model, "--json", tmp_path),
            "cannot write",
        ),
    ]
    for args, words in cases:
        res = tiltwatch(*args)
        assert res.returncode != 0 and words in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
