"""Training side, end to end on a tiny FER+-layout folder: train, resume, export, load in the pipeline."""

import csv
import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from tiltwatch import ConfigError  # noqa: E402
from tiltwatch.training.augment import AugmentConfig, augment  # noqa: E402
from tiltwatch.training.checkpoints import load_checkpoint  # noqa: E402
from tiltwatch.training.datasets import load_ferplus  # noqa: E402
from tiltwatch.training.export import export  # noqa: E402
from tiltwatch.training.models import architectures, create_model  # noqa: E402
from tiltwatch.training.train import load_config, train  # noqa: E402
from tiltwatch.vision.emotion import EmotionClassifier  # noqa: E402


def make_ferplus(root, n=48, swap=False):
    """FER+ official layout with real 10-vote rows: two classes told apart by brightness
    (``swap``: the votes call the bright images neutral and the dark ones happy)."""
    rng = np.random.default_rng(0)
    for split in ("FER2013Train", "FER2013Valid"):
        d = root / split
        d.mkdir(parents=True)
        with open(d / "label.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            for i in range(n):
                cls = i % 2  # 0 neutral (dark), 1 happiness (bright)
                img = rng.integers(0, 80, (48, 48)) + 150 * cls
                cv2.imwrite(str(d / f"fer{i:07d}.png"), img.astype(np.uint8))
                votes = [0] * 10
                votes[1 - cls if swap else cls] = 8
                votes[2] = 2
                w.writerow([f"fer{i:07d}.png", "(0, 0, 48, 48)", *votes])
    # one image whose top vote is "not a face": must be left out
    with open(root / "FER2013Train" / "label.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(["fer9999999.png", "(0, 0, 48, 48)", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])


def test_ferplus_loader_soft_labels(tmp_path):
    make_ferplus(tmp_path)
    fs = load_ferplus(tmp_path, "train", cache_dir=None)
    assert len(fs) == 48 and fs.images.shape == (48, 48, 48)
    assert np.allclose(fs.targets.sum(1), 1) and fs.targets[1, 1] == pytest.approx(0.8)
    assert list(fs.labels[:4]) == [0, 1, 0, 1]


def test_ferplus_loader_errors(tmp_path):
    from tiltwatch import InputError

    with pytest.raises(InputError, match="not a FER\\+ folder"):
        load_ferplus(tmp_path, "train")
    with pytest.raises(InputError, match="split must be one of"):
        load_ferplus(tmp_path, "nope")


def test_augment_keeps_shape_and_changes_pixels():
    x = torch.rand(8, 1, 48, 48) * 2 - 1
    y = augment(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(x, y)


def test_camera_degradations_do_what_they_say_and_are_off_by_default():
    from tiltwatch.training.augment import camera_degrade

    # a sharp face-sized pattern: stripes, so detail and darkness are easy to measure
    x = (torch.arange(48).float().remainder(4) < 2).float().mul(1.6).sub(0.8).expand(6, 1, 48, 48).contiguous()

    def rand_from(seed):
        gen = torch.Generator().manual_seed(seed)
        return lambda *shape: torch.rand(*shape, generator=gen)

    def detail(t):  # mean absolute difference between neighbouring pixels
        return (t[..., 1:] - t[..., :-1]).abs().mean().item()

    assert camera_degrade(x, AugmentConfig(), rand_from(0)) is x  # every existing config trains as before
    for seed in range(3):
        off = AugmentConfig(flip=0, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, blur=0, occlude=0)
        small = camera_degrade(x, AugmentConfig(downscale=1.0, downscale_min=8), rand_from(seed))
        dark = camera_degrade(x, AugmentConfig(dark=1.0), rand_from(seed))
        noisy = camera_degrade(x, AugmentConfig(noise=1.0), rand_from(seed))
        jpeg = camera_degrade(x, AugmentConfig(jpeg=1.0, jpeg_quality=(10, 20)), rand_from(seed))
        assert detail(small) < detail(x) and dark.mean() < x.mean() - 0.1
        assert (noisy - x).std() > 0.05 and (jpeg - x).abs().mean() > 0.01
        # through augment() with the geometry off, the same seed gives the same batch
        a, b = (
            augment(x, off.__class__(**{**off.__dict__, "noise": 1.0}), torch.Generator().manual_seed(seed))
            for _ in range(2)
        )
        assert torch.equal(a, b)


def test_registry_and_config_errors(tmp_path):
    assert {"vgg_small", "vgg_deep", "res_deep", "vgg_medium"} <= set(architectures())
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("resnet9000")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: x\nepohcs: 3\n")
    with pytest.raises(ConfigError, match="epohcs"):
        load_config(cfg)


def test_train_resume_export_and_use_in_pipeline(tmp_path):
    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 2\nbatch_size: 16\nlr: 0.005\n")
    conf = load_config(cfg)
    conf.epochs = 1
    train(conf)
    conf.epochs = 2
    best = train(conf)  # resumes at epoch 2 from last.pt
    metrics = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in metrics] == [1, 2]
    assert 0 < float(metrics[0]["minutes"]) < float(metrics[1]["minutes"])  # the run's time adds up over resumes
    assert (tmp_path / "run" / "metrics.png").stat().st_size > 0
    card = export(best, tmp_path / "m.onnx")
    assert card["parity"]["max_abs_prob_diff"] < 1e-4 and card["parity"]["top1_agreement"] == 1.0
    assert json.loads((tmp_path / "m.json").read_text())["classes"][1] == "happiness"
    clf = EmotionClassifier.load(str(tmp_path / "m.onnx"))
    bright = np.full((1, 48, 48), 220, np.uint8)
    assert clf.predict(bright).shape == (1, 8)


def write_fer2013_labels(root, n=48):
    """FER2013's original labels for make_ferplus's images, deliberately another convention:
    dark images 'sad' (4), bright ones 'surprise' (5); the last row conflicts with a duplicate."""
    with open(root / "fer2013_labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "usage", "fer2013_emotion", "dup_conflict"])
        for i in range(n):
            w.writerow([f"fer{i:07d}.png", "Training", 4 + i % 2, int(i == n - 1)])


def test_fer2013_labels_of_ferplus_images(tmp_path):
    from tiltwatch import InputError
    from tiltwatch.emotions import EMOTIONS
    from tiltwatch.training.datasets import ferplus_fer2013_labels

    with pytest.raises(InputError, match="fer2013_labels.csv"):
        ferplus_fer2013_labels(tmp_path, ["fer0000000.png"])
    write_fer2013_labels(tmp_path)
    got = ferplus_fer2013_labels(tmp_path, ["fer0000000.png", "fer0000001.png", "fer0000047.png", "unknown.png"])
    assert [EMOTIONS[i] for i in got[:2]] == ["sadness", "surprise"]
    assert list(got[2:]) == [-1, -1]  # a conflicting duplicate and an unlisted image carry no label


def test_second_head_learns_fer2013_labels_and_eval_picks_it(tmp_path):
    from tiltwatch import InputError, ModelError
    from tiltwatch.emotions import EMOTIONS
    from tiltwatch.training.evaluate import choose_head

    make_ferplus(tmp_path / "data")
    write_fer2013_labels(tmp_path / "data")
    first = tmp_path / "first"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {first}\nepochs: 1\nbatch_size: 16\nlr: 0.005\n")
    train(load_config(cfg))
    # second run: starts from the first run's weights, adds the FER2013 head
    conf = load_config(
        cfg, out=str(tmp_path / "two"), init=str(first / "best.pt"), aux_head="fer2013", aux_weight=1.0, epochs=4
    )
    card = export(train(conf), tmp_path / "two.onnx")
    assert list(card["heads"]) == ["logits", "fer2013_logits"]
    assert card["parity"]["top1_agreement"] == 1.0 and "valid_accuracy_fer2013_head" in card["training"]
    bright = np.full((1, 48, 48), 220, np.uint8)
    main = EmotionClassifier.load(str(tmp_path / "two.onnx"))
    fer2013 = EmotionClassifier.load(str(tmp_path / "two.onnx"), head="fer2013_logits")
    assert EMOTIONS[main.predict(bright).argmax()] == "happiness"
    assert EMOTIONS[fer2013.predict(bright).argmax()] == "surprise"
    # an ensemble of the two-headed run with itself: one graph, both heads, the same answers
    pair = export(
        [tmp_path / "two" / "best.pt", tmp_path / "two" / "best.pt"],
        tmp_path / "pair.onnx",
        balance_data=str(tmp_path / "data"),
    )  # the logit adjustment goes on the first head only
    assert pair["architecture"] == "ensemble: vgg_small + vgg_small" and len(pair["training"]["members"]) == 2
    assert pair["logit_adjustment"]["tuned_on"] == "FER+ validation split"
    first_acc = export(first / "best.pt", tmp_path / "acc.onnx", balance_data=str(tmp_path / "data"), min_balanced=0.0)[
        "logit_adjustment"
    ]  # no floor: the most accurate tau, 0 included
    assert first_acc["rule"] == "accuracy first" and "mirror images" in first_acc["tuned_on"]
    assert first_acc["valid_accuracy_after"] >= first_acc["valid_accuracy_before"]
    both = EmotionClassifier.load(str(tmp_path / "pair.onnx"), head="fer2013_logits")
    assert np.allclose(both.predict(bright), fer2013.predict(bright), atol=1e-5)
    with pytest.raises(InputError, match="same input size and heads"):
        export([tmp_path / "two" / "best.pt", first / "best.pt"], tmp_path / "mixed.onnx")
    with pytest.raises(ModelError, match="no head 'nope'"):
        EmotionClassifier.load(str(tmp_path / "two.onnx"), head="nope")
    # eval reads the FER2013 head for FER2013's kinds only, and only where the model has one
    assert choose_head("fer2013-folders:x", str(tmp_path / "two.onnx")) == "fer2013_logits"
    assert choose_head("ferplus:x", str(tmp_path / "two.onnx")) is None
    assert choose_head("fer2013:x.csv", str(tmp_path / "two.onnx"), head="logits") == "logits"


def test_bootstrap_interval_brackets_the_score_and_narrows_with_more_faces():
    from tiltwatch.training.evaluate import bootstrap_ci

    rng = np.random.default_rng(1)
    widths = []
    for n in (500, 5000):
        labels = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.8, labels, (labels + 1) % 4)  # 80% right
        (lo, hi), (blo, bhi) = bootstrap_ci(labels, pred)
        acc = float((labels == pred).mean())
        assert lo < acc < hi and blo < acc < bhi  # classes equally common: balanced ~ plain accuracy
        widths.append(hi - lo)
    # the binomial interval: 2 x 1.96 x sqrt(0.8 x 0.2 / n)
    assert widths[0] == pytest.approx(0.070, abs=0.01) and widths[1] == pytest.approx(0.022, abs=0.004)


def test_second_head_and_init_config_errors(tmp_path):
    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: folder:{tmp_path / 'data'}\nvalid_fraction: 0.2\naux_head: fer2013\nout: {tmp_path / 'r'}\n")
    with pytest.raises(ConfigError, match="aux_head: fer2013 needs FER\\+ data"):
        train(load_config(cfg))
    cfg.write_text(f"data: {tmp_path / 'data'}\ninit: {tmp_path / 'missing.pt'}\nout: {tmp_path / 'r'}\n")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        train(load_config(cfg))
    small = create_model("vgg_medium")
    torch.save({"model": small.state_dict()}, tmp_path / "other.pt")
    cfg.write_text(f"data: {tmp_path / 'data'}\ninit: {tmp_path / 'other.pt'}\nout: {tmp_path / 'r'}\n")
    with pytest.raises(ConfigError, match="not a VGGNet of this shape"):
        train(load_config(cfg))


def test_export_and_eval_commands_record_themselves_in_the_card(tmp_path):
    from .conftest import tiltwatch

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 16\n")
    res = tiltwatch("train", "--config", cfg)
    assert res.returncode == 0
    epochs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]  # one JSON line an epoch
    assert [r["epoch"] for r in epochs] == [1] and set(epochs[0]) >= {"train_loss", "valid_acc", "lr", "minutes"}
    onnx = tmp_path / "m.onnx"
    res = tiltwatch("export", tmp_path / "run" / "best.pt", "--out", onnx)
    assert res.returncode == 0 and "ms/face" in res.stdout, res.stderr
    res = tiltwatch("eval", "--dataset", f"ferplus-valid:{tmp_path / 'data'}", "--model", onnx, "--card", "valid")
    assert res.returncode == 0 and "accuracy" in res.stdout, res.stderr
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert card["export_command"] == f"tiltwatch export {tmp_path / 'run' / 'best.pt'} --out {onnx}"
    m = card["metrics"]["valid"]
    assert (
        m["n"] == 48 and 0 <= m["accuracy"] <= 1 and m["command"].startswith("tiltwatch eval --dataset ferplus-valid:")
    )
    assert m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1] and "95% CI" in res.stdout
    assert "--card" not in m["command"]
    # no face in these synthetic squares: a clear error, not NaN figures
    res = tiltwatch("eval", "--dataset", f"ferplus-valid:{tmp_path / 'data'}", "--model", onnx, "--agreement", "5")
    assert res.returncode != 0 and "found no face" in res.stderr and "Traceback" not in res.stderr


def trained_teacher(tmp_path, precision):
    """A teacher fully trained (its last epoch: "best" would be the first epoch that scores 1.0) on the
    swapped votes, so that it says bright = neutral, dark = happiness; and the config it was trained by."""
    make_ferplus(tmp_path / "data")
    make_ferplus(tmp_path / "swapped", swap=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {tmp_path / 'swapped'}\nout: {tmp_path / 'teacher'}\nepochs: 6\nbatch_size: 16\n"
        f"lr: 0.005\nprecision: {precision}\n"
    )
    train(load_config(cfg))
    return tmp_path / "teacher" / "last.pt", cfg


def answers(model, tmp_path, faces):
    """The exported model's top class for each of ``faces``."""
    export(model, tmp_path / f"{model.parent.name}.onnx")
    return EmotionClassifier.load(str(tmp_path / f"{model.parent.name}.onnx")).predict(faces.images).argmax(1)


# Both precisions on every machine: bfloat16 is what a CPU with AVX-512 BF16 (or a GPU) trains in,
# float32 what every other CPU trains in. The student is judged by its last epoch: "best" is picked
# on the votes of its own data, which the teacher contradicts here on purpose.
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_distillation_follows_the_teacher_and_checks_its_heads(tmp_path, precision):
    teacher, cfg = trained_teacher(tmp_path, precision)
    valid = load_ferplus(tmp_path / "data", "valid", cache_dir=None)
    # all the loss on the teacher: the student takes the teacher's answers over its own data's votes
    train(
        load_config(
            cfg,
            data=str(tmp_path / "data"),
            out=str(tmp_path / "student"),
            teacher=[str(teacher), str(teacher)],
            distill_weight=1.0,
            epochs=4,
            seed=5,
        )
    )
    t, s = answers(teacher, tmp_path, valid), answers(tmp_path / "student" / "last.pt", tmp_path, valid)
    assert (t == 1 - valid.labels).mean() >= 0.9  # the teacher learnt the swapped votes
    assert (s == t).mean() >= 0.9 and (s == valid.labels).mean() <= 0.1
    with pytest.raises(ConfigError, match="same heads"):
        train(load_config(cfg, out=str(tmp_path / "x"), teacher=[str(teacher)], aux_head="fer2013"))
    with pytest.raises(ConfigError, match="teacher: .*no such checkpoint"):
        train(load_config(cfg, out=str(tmp_path / "y"), teacher=[str(tmp_path / "none.pt")]))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_offline_distillation_learns_the_teachers_saved_logits(tmp_path, precision):
    from tiltwatch.training.teacher import save_teacher, teacher_logits

    from .conftest import tiltwatch

    teacher, cfg = trained_teacher(tmp_path, precision)
    export(teacher, tmp_path / "t.onnx")
    res = tiltwatch("teach", tmp_path / "t.onnx", "--data", f"ferplus:{tmp_path / 'data'}", "--out", tmp_path / "t.npz")
    assert res.returncode == 0 and "96 faces" in res.stdout, res.stderr  # train and valid, 48 each
    # all the loss on the saved logits: the student answers as the teacher, not as its data's votes
    train(
        load_config(
            cfg,
            data=str(tmp_path / "data"),
            out=str(tmp_path / "student"),
            teacher_logits=str(tmp_path / "t.npz"),
            distill_weight=1.0,
            epochs=4,
            seed=5,
        )
    )
    valid = load_ferplus(tmp_path / "data", "valid", cache_dir=None)
    s = answers(tmp_path / "student" / "last.pt", tmp_path, valid)
    assert (s == 1 - valid.labels).mean() >= 0.9

    # logits of the faces missing from the file, or both ways of distilling at once: config errors
    faces = load_ferplus(tmp_path / "data", "train", cache_dir=None)
    save_teacher(
        tmp_path / "part.npz",
        faces.names[:10],
        teacher_logits([str(tmp_path / "t.onnx")], faces.subset(np.arange(10))),
        ["t.onnx"],
    )
    with pytest.raises(ConfigError, match="no logits for 38 of the 48"):
        train(
            load_config(
                cfg, data=str(tmp_path / "data"), out=str(tmp_path / "x"), teacher_logits=str(tmp_path / "part.npz")
            )
        )
    with pytest.raises(ConfigError, match="set one"):
        load_config(cfg, teacher=["a.pt"], teacher_logits="t.npz")
    res = tiltwatch(
        "teach", tmp_path / "t.onnx", "--data", f"ferplus:{tmp_path / 'data'}", "--out", "x.npz", "--split", "test"
    )
    assert res.returncode == 2 and "never run on a test split" in res.stderr


def test_teacher_logits_average_the_mirror_and_take_the_folded_adjustment_out(tmp_path):
    import shutil

    from tiltwatch.training.teacher import teacher_logits

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 16\n")
    card = export(train(load_config(cfg)), tmp_path / "t.onnx")
    faces = load_ferplus(tmp_path / "data", "train", cache_dir=None)
    mirrored = faces.subset(np.arange(len(faces)))
    mirrored.images = np.ascontiguousarray(faces.images[:, :, ::-1])
    plain = teacher_logits([str(tmp_path / "t.onnx")], faces)["logits"]
    assert np.allclose(plain, teacher_logits([str(tmp_path / "t.onnx")], mirrored)["logits"], atol=1e-4)
    # the same graph whose card says export folded a bias into it: the teacher takes that bias out
    bias = np.linspace(-0.5, 0.5, 8).round(3)
    shutil.copy(tmp_path / "t.onnx", tmp_path / "adjusted.onnx")
    (tmp_path / "adjusted.json").write_text(json.dumps(card | {"logit_adjustment": {"bias": bias.tolist()}}))
    adjusted = teacher_logits([str(tmp_path / "adjusted.onnx")], faces)["logits"]
    assert np.allclose(adjusted, plain - bias, atol=1e-4)


def test_weight_average_is_what_is_kept_and_resumed(tmp_path):
    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 16\nlr: 0.005\nema: 0.9\n"
    )
    best = train(load_config(cfg))
    kept = torch.load(best, weights_only=False)["model"]
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    # best.pt holds the averaged weights (and BatchNorm statistics), not the raw ones it trained
    name = "features.0.0.weight"
    assert torch.equal(kept[name], last["ema"][f"module.{name}"])
    assert not torch.equal(kept[name], last["model"][name])
    assert torch.equal(kept["features.0.1.running_mean"], last["ema"]["module.features.0.1.running_mean"])
    best = train(load_config(cfg, epochs=3))  # resumes the average too
    assert [int(r["epoch"]) for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open())] == [1, 2, 3]
    export(best, tmp_path / "m.onnx")
    clf = EmotionClassifier.load(str(tmp_path / "m.onnx"))
    from tiltwatch.emotions import EMOTIONS

    assert EMOTIONS[clf.predict(np.full((1, 48, 48), 220, np.uint8)).argmax()] == "happiness"
    with pytest.raises(ConfigError, match="ema"):
        load_config(cfg, ema=1.5)
    # last.pt stands for the last epoch's averaged weights: a checkpoint picked by schedule, not on validation
    model, ck = load_checkpoint(tmp_path / "run" / "last.pt")
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert torch.equal(model.state_dict()[name], last["ema"][f"module.{name}"])
    logged = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))[-1]
    assert ck["epoch"] + 1 == 3 and ck["valid_acc"] == float(logged["valid_acc"])
    card = export(tmp_path / "run" / "last.pt", tmp_path / "last.onnx")
    assert card["training"]["selected"] == "last epoch" and card["training"]["epoch"] == 3


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    from .conftest import tiltwatch

    bad, listed = tmp_path / "bad.pt", tmp_path / "list.pt"
    bad.write_text("not a checkpoint")
    torch.save([1, 2, 3], listed)
    for path in (bad, listed):
        res = tiltwatch("export", path, "--out", tmp_path / "m.onnx")
        assert res.returncode != 0 and "not a tiltwatch training checkpoint" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and not (tmp_path / "m.onnx").exists()


def test_int8_export_is_smaller_and_answers_like_float32(tmp_path):
    from tiltwatch import InputError

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 3\nbatch_size: 16\nlr: 0.005\n")
    best = train(load_config(cfg))
    fp32 = export(best, tmp_path / "fp32.onnx")
    int8 = export(best, tmp_path / "int8.onnx", int8_data=str(tmp_path / "data"))
    assert int8["quantization"]["calibration"].startswith("48 FER+ training images") and fp32["quantization"] is None
    assert int8["parity"]["inputs"] == "48 FER+ validation images" and int8["parity"]["top1_agreement"] >= 0.95
    assert int8["file_size_bytes"] < fp32["file_size_bytes"] / 3  # int8 weights: a quarter, plus scales
    assert not (tmp_path / "int8.fp32.onnx").exists()  # the float32 intermediate is not left behind
    faces = np.stack([np.full((48, 48), v, np.uint8) for v in (30, 60, 190, 220)])
    a, b = (EmotionClassifier.load(str(tmp_path / f)).predict(faces) for f in ("fp32.onnx", "int8.onnx"))
    assert (a.argmax(1) == b.argmax(1)).all() and np.abs(a - b).max() < 0.1
    # float heads: every convolution stays int8, each head's last layer (Gemm) reads float32 weights
    heads = export(best, tmp_path / "heads.onnx", int8_data=str(tmp_path / "data"), float_heads=True)
    graph = onnx.load(str(tmp_path / "heads.onnx")).graph
    made = {o: n for n in graph.node for o in n.output}
    weight_of = {n.name: made.get(n.input[1]) for n in graph.node if n.op_type in ("Conv", "Gemm")}
    assert {n for n, w in weight_of.items() if w is not None and w.op_type == "DequantizeLinear"} == {
        n.name for n in graph.node if n.op_type == "Conv"
    }
    assert "Gemm) in float32" in heads["quantization"]["format"] and heads["parity"]["top1_agreement"] >= 0.95
    with pytest.raises(InputError, match="not a FER\\+ folder"):
        export(best, tmp_path / "bad.onnx", int8_data=str(tmp_path))
    assert not (tmp_path / "bad.onnx").exists() and not (tmp_path / "bad.fp32.onnx").exists()


def test_nets_of_two_shapes_make_one_int8_ensemble_that_learnt(tmp_path):
    from tiltwatch.emotions import EMOTIONS

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nepochs: 3\nbatch_size: 16\nlr: 0.005\n")
    plain = train(load_config(cfg, out=str(tmp_path / "plain")))
    residual = train(load_config(cfg, out=str(tmp_path / "res"), model="res_deep"))
    card = export([plain, residual], tmp_path / "mixed.onnx", int8_data=str(tmp_path / "data"))
    assert card["architecture"] == "ensemble: vgg_small + res_deep"
    assert card["parity"]["top1_agreement"] >= 0.95
    faces = np.stack([np.full((48, 48), v, np.uint8) for v in (30, 220)])
    probs = EmotionClassifier.load(str(tmp_path / "mixed.onnx")).predict(faces)
    assert [EMOTIONS[i] for i in probs.argmax(1)] == ["neutral", "happiness"]


def test_training_on_the_valid_split_learns_it_and_picks_nothing_on_it(tmp_path):
    import shutil

    from tiltwatch.emotions import EMOTIONS

    make_ferplus(tmp_path / "data", n=16)
    make_ferplus(tmp_path / "swapped", n=96, swap=True)  # its valid split outvotes train: bright = neutral
    shutil.rmtree(tmp_path / "data" / "FER2013Valid")
    shutil.move(tmp_path / "swapped" / "FER2013Valid", tmp_path / "data" / "FER2013Valid")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {tmp_path / 'data'}\nout: {tmp_path / 'on'}\nepochs: 4\nbatch_size: 16\nlr: 0.005\n"
        "train_on_valid: true\n"
    )
    on = train(load_config(cfg))
    off = train(load_config(cfg, out=str(tmp_path / "off"), train_on_valid=False))
    assert on.name == "last.pt" and not (tmp_path / "on" / "best.pt").exists()  # the fixed schedule's last epoch
    bright = np.full((1, 48, 48), 220, np.uint8)
    for ck, label in ((on, "neutral"), (off, "happiness")):
        card = export(ck, ck.parent / "m.onnx")
        assert EMOTIONS[EmotionClassifier.load(str(ck.parent / "m.onnx")).predict(bright).argmax()] == label
    card = json.loads((tmp_path / "on" / "m.json").read_text())
    assert "train and valid splits" in card["training"]["data"] and "valid_accuracy" not in card["training"]
    # a finished run kept as its weights alone in float16 (runs/ need not outlive the machine): an
    # eighth of the size, and the same model within float16's rounding
    from tiltwatch.training.checkpoints import save_weights

    kept = save_weights(on, tmp_path / "kept" / "a.pt")
    assert kept.stat().st_size < on.stat().st_size / 4
    export(kept, tmp_path / "kept.onnx")
    faces = np.stack([np.full((48, 48), v, np.uint8) for v in (30, 120, 220)])
    a, b = (EmotionClassifier.load(str(f)).predict(faces) for f in (on.parent / "m.onnx", tmp_path / "kept.onnx"))
    assert np.allclose(a, b, atol=5e-3) and (a.argmax(1) == b.argmax(1)).all()
    assert json.loads((tmp_path / "kept.json").read_text())["training"] == card["training"]
    assert card["training"]["selection"].startswith("the last epoch of a fixed schedule")
    with pytest.raises(ConfigError, match="valid_fraction"):
        load_config(cfg, valid_fraction=0.2)
    from tiltwatch import InputError

    with pytest.raises(InputError, match="trained on the valid split.*--tau"):
        export(on, tmp_path / "tuned.onnx", balance_data=str(tmp_path / "data"))


def test_export_with_a_fixed_tau_tunes_nothing(tmp_path):
    from .conftest import tiltwatch

    make_ferplus(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {tmp_path / 'data'}\nout: {tmp_path / 'run'}\nepochs: 1\nbatch_size: 16\n")
    ck = train(load_config(cfg))
    plain, fixed = (
        export(ck, tmp_path / "a.onnx"),
        export(ck, tmp_path / "b.onnx", balance_data=str(tmp_path / "data"), tau=0.5),
    )
    assert plain["logit_adjustment"] is None
    adj = fixed["logit_adjustment"]
    assert adj["tau"] == 0.5 and adj["rule"].startswith("fixed tau") and "valid_accuracy_after" not in adj
    # 24 neutral, 24 happy training faces: equal priors, so the adjustment moves nothing between them
    assert adj["bias"][0] == pytest.approx(adj["bias"][1], abs=1e-4)
    res = tiltwatch("export", ck, "--out", tmp_path / "c.onnx", "--tau", "0.1")
    assert res.returncode != 0 and "fixed tau needs the FER+ root" in res.stderr and "Traceback" not in res.stderr
