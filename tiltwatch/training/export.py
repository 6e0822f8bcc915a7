"""``tiltwatch export``: a checkpoint -> ONNX + JSON model card, checked against torch.

The card (``vision.card.ModelCard``) records classes, input, normalisation, training config and
data, file size, measured CPU latency (batch 1, 2 threads) and the parity between torch and
onnxruntime outputs; a model exported into the package's ``tiltwatch/models/`` also records the
project's licence (MIT) as its weights'.
Evaluation metrics are added by ``tiltwatch eval --card``. ``--int8 ROOT`` writes the model
quantized to int8 instead (see quantize.py).

Usage::

    tiltwatch export runs/ferplus_vgg_small/best.pt --out tiltwatch/models/ferplus_vgg_small.onnx
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from ..emotions import EMOTIONS
from ..errors import InputError
from ..vision.card import FER_TRAINING_DATA, ModelCard, TrainingData
from ..vision.preprocess import MEAN, STD, to_model_input
from .checkpoints import load_checkpoints
from .datasets import load_ferplus
from .models import main_head_bias
from .quantize import calibration_set, quantize_int8


def cpu_latency_ms(onnx_path: Path, size: int, threads: int = 2, runs: int = 200, rounds: int = 5) -> list[float]:
    """Median milliseconds of one face at batch 1, in each of ``rounds`` rounds of ``runs`` calls.

    On a shared machine other work only ever adds time, so the lowest round is the model's own
    cost (the rule of Python's ``timeit``); the card keeps every round, so the spread shows too.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32)
    name = sess.get_inputs()[0].name
    for _ in range(20):
        sess.run(None, {name: x})
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            times.append(time.perf_counter() - t0)
        medians.append(round(float(np.median(times) * 1000), 3))
    return medians


def balance(
    model: torch.nn.Module,
    data_root: str,
    size: int,
    max_acc_drop: float,
    min_balanced: float | None = None,
    tau: float | None = None,
) -> dict:
    """Tune logit adjustment on FER+'s validation split and fold it into the last layer's bias.
    The accuracy-first rule (``min_balanced``) scores each tau on the faces and on their mirror
    images: a view that no checkpoint was picked on, so the pick leans less on one view's luck.
    A given ``tau`` is used as it is (for models trained on the validation split)."""
    from .logit_adjustment import adjustment_bias, tune_logit_adjustment
    from .train import predict_logits

    train = load_ferplus(data_root, "train", size)
    if tau is not None:
        bias = adjustment_bias(tau, train.labels, len(EMOTIONS))
        report = {"tau": tau, "rule": "fixed tau, nothing tuned", "prior": "FER+ training split's labels"}
    else:
        valid = load_ferplus(data_root, "valid", size)
        views = [valid.images] if min_balanced is None else [valid.images, valid.images[..., ::-1]]
        logits = np.concatenate(
            [
                predict_logits(model, torch.from_numpy(to_model_input(np.ascontiguousarray(v), size))).numpy()
                for v in views
            ]
        )
        labels = np.concatenate([valid.labels] * len(views))
        bias, report = tune_logit_adjustment(logits, labels, train.labels, max_acc_drop, min_balanced)
        report["tuned_on"] = "FER+ validation split" + (", faces and their mirror images" if len(views) > 1 else "")
    with torch.no_grad():
        main_head_bias(model).add_(torch.from_numpy(bias))  # the main head's (not a second head's)
    return report | {"bias": [round(float(b), 4) for b in bias]}


def _on_valid(cks: list[dict]) -> bool:
    return any(ck["config"].get("train_on_valid") for ck in cks)


def _selection(cks: list[dict], n_heads: int) -> str:
    if all(ck.get("selected") == "last epoch" for ck in cks):
        return "the last epoch of a fixed schedule" + (" (the valid split was trained on)" if _on_valid(cks) else "")
    return (
        "best validation-split accuracy"
        + (" (sum over both heads)" if n_heads > 1 else "")
        + ("" if all("selected" not in ck for ck in cks) else "; some members: their last epoch (see members)")
    )


def _training(ck: dict, heads: dict) -> dict:
    return (
        {"epoch": int(ck["epoch"]) + 1, "selected": ck.get("selected", "best on validation")}
        | ({"valid_accuracy": round(float(ck["valid_acc"]), 4)} if ck.get("valid_acc") is not None else {})
        | (
            {"valid_accuracy_fer2013_head": round(float(ck["valid_aux_acc"]), 4)}
            if len(heads) > 1 and ck.get("valid_aux_acc") is not None
            else {}
        )
        | {"config": ck["config"]}
    )


def _to_onnx(model: torch.nn.Module, path: Path, size: int, heads: list[str]) -> None:
    torch.onnx.export(
        model,
        torch.zeros(1, 1, size, size),
        str(path),
        input_names=["input"],
        output_names=heads,
        dynamic_axes={"input": {0: "batch"}} | {h: {0: "batch"} for h in heads},
        opset_version=17,
        dynamo=False,
    )


def _parity(model: torch.nn.Module, onnx_path: Path, x: torch.Tensor, inputs: str) -> dict:
    """The same batch through torch and onnxruntime: the worst probability gap and top-1 agreement over heads."""
    with torch.no_grad():
        ref = model(x)
    ref = [torch.softmax(r, 1).numpy() for r in (ref if isinstance(ref, tuple) else (ref,))]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = [np.exp(g - g.max(1, keepdims=True)) for g in sess.run(None, {"input": x.numpy()})]
    got = [g / g.sum(1, keepdims=True) for g in got]
    return {
        "max_abs_prob_diff": max(float(np.abs(r - g).max()) for r, g in zip(ref, got)),
        "top1_agreement": min(float((r.argmax(1) == g.argmax(1)).mean()) for r, g in zip(ref, got)),
        "inputs": inputs,
    }


def _parity_inputs(size: int, int8_data: str | None) -> tuple[torch.Tensor, str]:
    """Random inputs check a float32 graph; int8 ranges fit real faces, so real faces check it."""
    if int8_data is None:
        return torch.randn(64, 1, size, size, generator=torch.Generator().manual_seed(0)), "64 random inputs"
    valid = load_ferplus(int8_data, "valid", size).images[:512]
    return torch.from_numpy(to_model_input(valid, size)), f"{len(valid)} FER+ validation images"


def export(
    checkpoint: str | Path | list[str | Path],
    out: str | Path,
    name: str | None = None,
    balance_data: str | None = None,
    max_acc_drop: float = 0.01,
    command: str | None = None,
    int8_data: str | None = None,
    min_balanced: float | None = None,
    tau: float | None = None,
    float_heads: bool = False,
) -> dict:
    """``checkpoint``: one, or several for an ensemble (the mean of their logits, one ONNX graph).
    ``balance_data``: a FER+ root; tune logit adjustment on its validation split (see logit_adjustment.py):
    balance first within ``max_acc_drop``, or accuracy first above ``min_balanced`` when that is given,
    or a fixed ``tau`` (its prior from the training split; nothing tuned).
    ``int8_data``: a FER+ root; quantize to int8, calibrated on its training split (see quantize.py);
    ``float_heads``: each head's last layer stays float32 there."""
    model, cks = load_checkpoints(checkpoint if isinstance(checkpoint, list) else [checkpoint])
    cfg = cks[0]["config"]
    size = int(cfg["input_size"])
    # read first: a wrong folder must fail before minutes of tuning and export
    calibration = calibration_set(int8_data, size) if int8_data else None
    if tau is not None and not balance_data:
        raise InputError("a fixed tau needs the FER+ root (balance_data) whose training split gives the prior")
    if balance_data and tau is None and _on_valid(cks):
        raise InputError(
            "these checkpoints were trained on the valid split, so an adjustment tuned on it would "
            "flatter them; give a fixed tau (--tau) instead"
        )
    adjustment = balance(model, balance_data, size, max_acc_drop, min_balanced, tau) if balance_data else None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    heads = {"logits": "FER+ 10-annotator votes (the default head; the live pipeline reads it)"}
    if cfg.get("aux_head", "none") == "fer2013":
        heads["fer2013_logits"] = (
            "FER2013's original single labels of the same training images (7 classes; "
            "contempt never a target): for scoring against FER2013's own labels"
        )
    quantization = None
    if calibration is not None:  # float32 to a side file first, then int8 into ``out``
        fp32 = out.with_name(out.stem + ".fp32.onnx")
        try:
            _to_onnx(model, fp32, size, list(heads))
            quantization = quantize_int8(fp32, out, calibration, float_heads=float_heads)
        finally:
            fp32.unlink(missing_ok=True)
    else:
        _to_onnx(model, out, size, list(heads))
    card = _card(name or out.stem, out, model, cks, heads, size, int8_data, quantization, adjustment) | (
        {"export_command": command} if command else {}
    )
    typed = ModelCard.model_validate(card)
    typed.training_data = TrainingData(**FER_TRAINING_DATA)  # (the data ``training`` names above)
    if _shipped(out):  # a model written into the package ships under the project's licence
        typed.licence = "MIT"
    typed.write(out.with_suffix(".json"))
    return typed.to_dict()


def _card(name, out: Path, model, cks: list, heads: dict, size: int, int8_data, quantization, adjustment) -> dict:
    """The card's fields of an exported model: what it is, how it was trained and picked, what it measured."""
    latency = cpu_latency_ms(out, size)
    return {
        "name": name,
        "task": "facial expression, 8 FER+ classes",
        "classes": list(EMOTIONS),
        "input": {
            "size": size,
            "channels": 1,
            "colour": "grey",
            "dtype": "float32",
            "layout": "NCHW",
            "scale": "pixel / 255",
            "mean": MEAN,
            "std": STD,
            "crop": "face aligned by eyes and mouth to the FER+ template (tiltwatch.vision.align)",
        },
        "outputs": "logits",
        "heads": heads,
        "architecture": cks[0]["config"]["model"]
        if len(cks) == 1
        else "ensemble: " + " + ".join(c["config"]["model"] for c in cks),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training": {
            "data": "FER+ (FER2013 images, FER+ 10-annotator votes as soft labels), "
            + ("train and valid splits" if _on_valid(cks) else "train split")
            + ("; second head: the same images' original FER2013 labels" if len(heads) > 1 else ""),
            "selection": _selection(cks, len(heads)),
        }
        | (_training(cks[0], heads) if len(cks) == 1 else {"members": [_training(c, heads) for c in cks]}),
        "file_size_bytes": out.stat().st_size,
        "parity": _parity(model, out, *_parity_inputs(size, int8_data)),
        "quantization": quantization,
        "logit_adjustment": adjustment,
        "cpu_latency_ms_batch1_2threads": min(latency),
        "cpu_latency_ms_rounds": latency,
        "metrics": {},
    }


def _shipped(out: Path) -> bool:
    """Is ``out`` in the package's own models folder (``tiltwatch/models/``)?"""
    from importlib import resources

    return out.resolve().parent == Path(str(resources.files("tiltwatch.models"))).resolve()
