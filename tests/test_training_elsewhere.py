"""Training on another machine (a GPU box): one packed data file, a schedule fitted to the time
there, teachers made of checkpoints and earlier teachers, and a training side that imports
without the live pipeline's libraries."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiltwatch import ConfigError, InputError  # noqa: E402
from tiltwatch.training.datasets import MissingSplitError, load_dataset, load_ferplus  # noqa: E402
from tiltwatch.training.export import export  # noqa: E402
from tiltwatch.training.teacher import save_teacher, teacher_logits  # noqa: E402
from tiltwatch.training.train import fer2013_aux_labels, load_config, train  # noqa: E402

from .conftest import tiltwatch  # noqa: E402
from .test_training import make_ferplus, write_fer2013_labels  # noqa: E402


def test_a_packed_dataset_holds_its_source_and_trains_both_heads(tmp_path):
    make_ferplus(tmp_path / "data")
    write_fer2013_labels(tmp_path / "data")
    res = tiltwatch("pack", f"ferplus:{tmp_path / 'data'}", "--out", tmp_path / "p.npz")
    assert res.returncode == 0 and "train, valid" in res.stdout, res.stderr
    spec = f"packed:{tmp_path / 'p.npz'}"
    for split in ("train", "valid"):
        packed, source = load_dataset(spec, split), load_ferplus(tmp_path / "data", split, cache_dir=None)
        assert packed.names == source.names and np.array_equal(packed.images, source.images)
        assert np.array_equal(packed.targets, source.targets) and np.array_equal(packed.labels, source.labels)
    names = load_ferplus(tmp_path / "data", "train", cache_dir=None).names
    assert np.array_equal(fer2013_aux_labels(spec, names), fer2013_aux_labels(f"ferplus:{tmp_path / 'data'}", names))
    assert load_dataset(spec, "valid", size=32).images.shape == (48, 32, 32)

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {spec}\nout: {tmp_path / 'run'}\nepochs: 3\nbatch_size: 16\nlr: 0.005\n"
        "aux_head: fer2013\naux_weight: 1.0\n"
    )
    card = export(train(load_config(cfg)), tmp_path / "m.onnx")
    assert card["training"]["valid_accuracy"] > 0.9 and list(card["heads"]) == ["logits", "fer2013_logits"]

    with pytest.raises(MissingSplitError, match="holds no 'test' split"):
        load_dataset(spec, "test")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InputError, match="not a dataset written by tiltwatch pack"):
        load_dataset(f"packed:{tmp_path / 'other.npz'}", "train")
    (tmp_path / "data" / "fer2013_labels.csv").unlink()  # packed without FER2013's labels: no second head
    assert tiltwatch("pack", f"ferplus:{tmp_path / 'data'}", "--out", tmp_path / "q.npz").returncode == 0
    with pytest.raises(InputError, match="packed without FER2013's labels"):
        train(load_config(cfg, data=f"packed:{tmp_path / 'q.npz'}", out=str(tmp_path / "r2")))
    res = tiltwatch("pack", f"ferplus:{tmp_path / 'missing'}", "--out", tmp_path / "x.npz")
    assert res.returncode == 2 and "not a FER+ folder" in res.stderr and not (tmp_path / "x.npz").exists()


def test_a_schedule_fitted_to_the_time_stays_within_its_cap_and_is_recorded(tmp_path):
    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {tmp_path / 'data'}\nout: {tmp_path / 'short'}\nepochs: 40\nbatch_size: 16\nfit_minutes: 0.0001\n"
    )
    last = train(load_config(cfg, train_on_valid=True))  # no time for more than the first epoch
    assert torch.load(last, weights_only=False)["config"]["epochs"] == 1
    assert len((tmp_path / "short" / "metrics.csv").read_text().splitlines()) == 2  # a header and one epoch
    assert '"epochs": 1' in (tmp_path / "short" / "config.json").read_text()
    train(load_config(cfg, train_on_valid=True))  # run again: it resumes into the fitted schedule, already done
    assert len((tmp_path / "short" / "metrics.csv").read_text().splitlines()) == 2
    assert '"epochs": 1' in (tmp_path / "short" / "config.json").read_text()  # (rounds.py reads it: finished)
    assert torch.load(last, weights_only=False)["config"]["epochs"] == 1
    # time for hours: the config's epochs are a cap
    train(load_config(cfg, out=str(tmp_path / "long"), epochs=2, fit_minutes=600))
    assert len((tmp_path / "long" / "metrics.csv").read_text().splitlines()) == 3
    with pytest.raises(ConfigError, match="warmup_epochs to 1 or more"):
        load_config(cfg, warmup_epochs=0.5)


def test_a_teacher_joins_a_checkpoint_and_an_earlier_teachers_logits(tmp_path):
    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 2\nbatch_size: 16\n")
    best = train(load_config(cfg))
    export(best, tmp_path / "t.onnx")
    faces = load_ferplus(tmp_path / "data", "train", cache_dir=None)
    from_graph = teacher_logits([str(tmp_path / "t.onnx")], faces)["logits"]
    from_checkpoint = teacher_logits([str(best)], faces)["logits"]  # torch, both views, as the graph
    assert np.allclose(from_checkpoint, from_graph, atol=1e-3)

    earlier = np.random.default_rng(0).normal(size=from_graph.shape).astype(np.float32)
    save_teacher(tmp_path / "earlier.npz", faces.names[::-1], {"logits": earlier[::-1]}, ["earlier"])
    joined = teacher_logits([str(best), str(tmp_path / "earlier.npz")], faces)["logits"]
    assert np.allclose(joined, (from_checkpoint + earlier) / 2, atol=1e-5)  # matched by face name, not row
    save_teacher(tmp_path / "part.npz", faces.names[:5], {"logits": earlier[:5]}, ["part"])
    with pytest.raises(InputError, match="no logits for 43 of the 48"):
        teacher_logits([str(tmp_path / "part.npz")], faces)
    res = tiltwatch(
        "teach",
        best,
        tmp_path / "earlier.npz",
        "--data",
        f"ferplus:{tmp_path / 'data'}",
        "--out",
        tmp_path / "joined.npz",
        "--split",
        "train",
    )
    assert res.returncode == 0 and "48 faces" in res.stdout, res.stderr


def test_the_training_side_imports_without_the_live_pipeline():
    code = (
        "import sys, tiltwatch.training.train, tiltwatch.training.teacher, tiltwatch.training.export, "
        "tiltwatch.training.evaluate, tiltwatch.training.packed, tiltwatch.training.quantize, "
        "tiltwatch.pipeline.bench, tiltwatch.cli\n"
        "print(sorted({'mediapipe', 'av', 'supervision', 'fastapi', 'sqlalchemy'} & set(sys.modules)))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_checkpoints_are_timed_in_torch_where_onnxruntime_has_no_gpu(tmp_path):
    from tiltwatch.pipeline.bench import torch_emotion_throughput

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 16\n")
    best = str(train(load_config(cfg)))
    r = torch_emotion_throughput([best, best], batches=(1, 8), seconds=0.2, bf16=False)
    assert r["model"] == "vgg_small + vgg_small" and "float32" in r["provider"]
    assert set(r["faces_per_s"]) == {1, 8} and all(v > 0 for v in r["faces_per_s"].values())
    res = tiltwatch("bench", "--emotion-only", "--checkpoint", tmp_path / "missing.pt")
    assert res.returncode == 2 and "no such checkpoint" in res.stderr
