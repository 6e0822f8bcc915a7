"""Models back from ``tiltwatch train`` checkpoints: one, or several as an ensemble.

``best.pt`` holds the epoch that scored best on validation; ``last.pt`` (the resume state) gives
the last epoch's weights (the moving average when the run keeps one, as ``best.pt`` does), for a
checkpoint chosen by a fixed schedule rather than on the validation split.

Usage::

    model, cks = load_checkpoints(["runs/a/best.pt", "runs/b/last.pt"])   # an Ensemble, eval mode
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from ..emotions import EMOTIONS
from ..errors import InputError
from .models import Ensemble, create_model


def read_checkpoint(path: str | Path) -> dict:
    """A ``best.pt`` or ``last.pt`` as ``{"model": weights, "config": ..., "epoch": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises pickle, zip and EOF errors alike for a file that is not its own
        raise InputError(f"{path}: not a tiltwatch training checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ck, dict) or "model" not in ck:
        raise InputError(f"{path}: not a tiltwatch training checkpoint (best.pt or last.pt)")
    if "opt" in ck:  # a resume state (last.pt)
        return _last_epoch(path, ck)
    # kept weights are float16 (save_weights); everything downstream computes in float32
    ck["model"] = {k: v.float() if v.dtype == torch.float16 else v for k, v in ck["model"].items()}
    return ck


def save_weights(path: str | Path, out: str | Path) -> Path:
    """Write a checkpoint's weights alone, in float16, as a ``best.pt``-shaped file an eighth of a
    ``last.pt``'s size (no optimizer or resume state): how a finished run is kept in git once
    ``runs/`` is gone. float16 moves a member's FER+ test probabilities by at most 0.003 (one
    label in 3,545 for round six's e, none for round five's a)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ck = read_checkpoint(path)
    ck["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    torch.save(ck, out)
    return out


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    ck = read_checkpoint(path)
    cfg = ck["config"]
    aux = cfg.get("aux_head", "none") != "none"
    model = create_model(cfg["model"], num_classes=len(EMOTIONS), aux_classes=len(EMOTIONS) if aux else 0)
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def _last_epoch(path: Path, state: dict) -> dict:
    """A ``last.pt`` resume state as a ``best.pt``-shaped checkpoint of that epoch: the moving
    average's weights when the run kept one (they are what was validated), else the model's."""
    config = path.parent / "config.json"
    if "config" not in state and not config.is_file():
        raise InputError(f"{path}: a resume state without its run's config.json beside it")
    weights = state["model"]
    if state.get("ema"):  # AveragedModel's state: the model's under "module.", plus a counter
        weights = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    cfg = state.get("config") or json.loads(config.read_text())
    # a run that trained on its valid split logged scores that estimate nothing: leave them out
    scores = {} if cfg.get("train_on_valid") else _logged_scores(path.parent / "metrics.csv", state["epoch"] + 1)
    return {
        "model": weights,
        "config": cfg,
        "epoch": state["epoch"],
        "valid_acc": scores.get("valid_acc"),
        "valid_aux_acc": scores.get("valid_aux_acc"),
        "selected": "last epoch",
    }


def _logged_scores(metrics: Path, epoch: int) -> dict:
    """That epoch's validation scores from the run's ``metrics.csv`` ({} when it is not there)."""
    if not metrics.is_file():
        return {}
    with metrics.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("epoch") == str(epoch)]
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("valid_") and v} if rows else {}


def load_checkpoints(paths: list[str | Path]) -> tuple[torch.nn.Module, list[dict]]:
    """One checkpoint -> its model; several (same input size and heads) -> their :class:`Ensemble`."""
    loaded = [load_checkpoint(p) for p in paths]
    cks = [ck for _, ck in loaded]
    shape = {(ck["config"]["input_size"], ck["config"].get("aux_head", "none")) for ck in cks}
    if len(shape) > 1:
        raise InputError(f"an ensemble needs members with the same input size and heads; got {sorted(shape)}")
    return (loaded[0][0] if len(loaded) == 1 else Ensemble([m for m, _ in loaded]).eval()), cks
