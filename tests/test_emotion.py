"""Emotion inference: the shipped model on a real face, batching, model loading errors."""

import json
import shutil

import numpy as np
import pytest

from tiltwatch import ModelError
from tiltwatch.emotions import DEFAULT_MODEL, NO_VNNI_MODEL
from tiltwatch.vision.align import FER_TEMPLATE_48, align_faces, face_points, similarity
from tiltwatch.vision.emotion import EmotionClassifier, choose_model, resolve_model, shipped_models

from .conftest import tiltwatch


@pytest.fixture(scope="module")
def clf():
    return EmotionClassifier.load()


def test_smiling_astronaut_reads_happiness(analyzer, astronaut):
    face = analyzer.analyze(astronaut).faces[0]
    assert face.emotion.label == "happiness"
    assert face.emotion.probs.sum() == pytest.approx(1.0, abs=1e-4)


def test_every_shipped_model_and_head_reads_the_smiling_astronaut(analyzer, astronaut):
    face = analyzer.analyze(astronaut).faces[0]
    crop = align_faces(astronaut, [face], 48)
    for name in shipped_models():
        for head in resolve_model(name)[1].heads:
            probs = EmotionClassifier.load(name, head=head).predict(crop)[0]
            assert EmotionClassifier.load(name).classes[probs.argmax()] == "happiness", (name, head)


def test_tta_option_scores_each_face_over_its_views(analyzer, astronaut):
    from tiltwatch import Analyzer

    face = Analyzer(track=False, smooth_tau=0, emotion_tta=True).analyze(astronaut).faces[0]
    crop = align_faces(astronaut, [face], 48)
    assert np.allclose(face.emotion.probs, analyzer.classifier.predict(crop, tta=True), atol=1e-5)
    # not the plain pass (compared as log-probabilities: a confident face moves its small ones most)
    assert np.abs(np.log(face.emotion.probs) - np.log(analyzer.classifier.predict(crop))).max() > 1e-2
    assert face.emotion.label == "happiness"


def test_alignment_puts_eyes_and_mouth_on_the_template(analyzer, astronaut):
    face = analyzer.analyze(astronaut).faces[0]
    m = similarity(face_points(face), FER_TEMPLATE_48)
    mapped = face_points(face) @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - FER_TEMPLATE_48).max() < 2.0  # within 2 px of the template on 48x48
    crop = align_faces(astronaut, [face], 48)
    assert crop.shape == (1, 48, 48, 3)


def test_one_batch_equals_face_by_face(clf, analyzer, astronaut):
    face = analyzer.analyze(astronaut).faces[0]
    crops = np.concatenate([align_faces(np.roll(astronaut, s, axis=1), [face], 48) for s in (0, 3, 6, 9)])
    batched = clf.predict(crops)
    single = np.concatenate([clf.predict(c[None]) for c in crops])
    assert np.allclose(batched, single, atol=1e-5)
    assert clf.predict(np.zeros((0, 48, 48, 3), np.uint8)).shape == (0, 8)


def test_models_by_name_and_by_path(tmp_path):
    assert {DEFAULT_MODEL, "ferplus_fer2013_vgg_small", "ferplus_fer2013_vgg_deep"} <= set(shipped_models())
    path, card = resolve_model(DEFAULT_MODEL)
    assert card.heads == ("logits", "fer2013_logits")  # FER+ votes first: the head the pipeline reads
    copy = tmp_path / "mine.onnx"
    shutil.copy(path, copy)
    clf = EmotionClassifier.load(str(copy))  # no card beside it: FER+ defaults
    assert clf.classes == card.classes


def test_bad_models_give_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="unknown emotion model"):
        EmotionClassifier.load("no_such_model")
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier.load(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        EmotionClassifier.load(str(junk))
    path, _ = resolve_model(DEFAULT_MODEL)
    shutil.copy(path, tmp_path / "three.onnx")
    (tmp_path / "three.json").write_text(
        json.dumps(
            {"name": "three", "classes": ["a", "b", "c"], "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.5}}
        )
    )
    with pytest.raises(ModelError, match="8 outputs but its card names 3 classes"):
        EmotionClassifier.load(str(tmp_path / "three.onnx"))


def test_every_shipped_card_reads_as_one_typed_card_and_writes_back_unchanged(tmp_path):
    from importlib import resources

    from tiltwatch.vision.card import ModelCard

    for name in shipped_models():
        path = resolve_model(name)[0].with_suffix(".json")
        card = ModelCard.from_json(path)
        assert card.to_dict() == json.loads(path.read_text())  # every key, none added
        assert card.write(tmp_path / "card.json").read_text() == path.read_text()
        assert card.licence == "MIT" and card.training_data.datasets == ["FER2013", "FER+"]
        assert "deployer must check" in card.training_data.terms
        assert card.input_size == 48 and card.heads[0] == "logits" and card.logit_bias is not None
    assert {
        p.name[:-5]
        for p in resources.files("tiltwatch.models").iterdir()
        if p.name.endswith(".json") and p.name.startswith("ferplus")
    } == set(shipped_models())
    (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "classes": ["a"], "input": {"size": 48}}))
    with pytest.raises(ModelError, match="not a valid model card .*input.channels"):
        ModelCard.from_json(tmp_path / "bad.json")


def test_auto_runs_the_five_nets_with_vnni_and_the_two_nets_without():
    # the choice a machine makes at load time, both branches: VNNI (AVX-512 or AVX) keeps the five
    # nets, an AVX2-only CPU gets the two (int8 costs about 2.5 times as much there), unknown the five
    avx2 = {"avx2": True, "fma": True, "avx512f": False, "avx512_vnni": False, "avx_vnni": False}
    assert choose_model(avx2)[0] == NO_VNNI_MODEL
    assert choose_model(avx2 | {"avx512f": True, "avx512_vnni": True})[0] == DEFAULT_MODEL
    assert choose_model(avx2 | {"avx_vnni": True})[0] == DEFAULT_MODEL
    assert choose_model(None)[0] == DEFAULT_MODEL
    # both are shipped, calibrated, and within 0.3 point of each other on FER+ test
    fast, best = resolve_model(NO_VNNI_MODEL)[1], resolve_model(DEFAULT_MODEL)[1]
    assert best.metrics["ferplus_test"]["accuracy"] - fast.metrics["ferplus_test"]["accuracy"] <= 0.003
    assert fast.metrics["ferplus_test"]["calibration"]["ece"] <= 0.03


def test_the_analyzer_runs_autos_choice_for_this_machine_and_says_so():
    from tiltwatch.config import AnalyzerConfig
    from tiltwatch.machine import describe_machine

    chosen = choose_model(describe_machine()["flags"])[0]
    assert AnalyzerConfig().model == "auto"
    assert resolve_model("auto")[1].name == chosen
    assert tiltwatch("models").stdout.startswith(f"auto (the analyzer's default model) runs {chosen} on this machine")
