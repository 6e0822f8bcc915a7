"""Models back from ``tiltwatch train`` checkpoints (``best.pt``): one, or several as an ensemble.

Usage::

    model, cks = load_checkpoints(["runs/a/best.pt", "runs/b/best.pt"])   # an Ensemble, eval mode
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..emotions import EMOTIONS
from ..errors import InputError
from .models import Ensemble, create_model


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    aux = cfg.get("aux_head", "none") != "none"
    model = create_model(cfg["model"], num_classes=len(EMOTIONS), aux_classes=len(EMOTIONS) if aux else 0)
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def load_checkpoints(paths: list[str | Path]) -> tuple[torch.nn.Module, list[dict]]:
    """One checkpoint -> its model; several (same input size and heads) -> their :class:`Ensemble`."""
    loaded = [load_checkpoint(p) for p in paths]
    cks = [ck for _, ck in loaded]
    shape = {(ck["config"]["input_size"], ck["config"].get("aux_head", "none")) for ck in cks}
    if len(shape) > 1:
        raise InputError(f"an ensemble needs members with the same input size and heads; got {sorted(shape)}")
    return (loaded[0][0] if len(loaded) == 1 else Ensemble([m for m, _ in loaded]).eval()), cks
