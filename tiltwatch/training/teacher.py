"""Offline distillation: a teacher's logits for every training face, computed once and saved.

Eight nets run on every augmented batch would cost a CPU about three times the student's own
training step, so ``tiltwatch teach`` runs the teacher once on each face and on its mirror
image and saves the two views' mean logits, head by head; ``teacher_logits:`` in a training
config reads them back and the student learns them at the cost of plain training. The
teacher is one or more exported models (shipped names or ``.onnx`` files), each an equal
share of the mean; a logit adjustment folded into a model at export is taken back out first,
so the teacher speaks its nets' own logits. A member can also be a training checkpoint
(``best.pt``, run by torch, on the GPU where there is one) or an earlier teacher's ``.npz``
(its logits joined by face name), so that nets trained on a GPU join a teacher made before.

Usage::

    tiltwatch teach ferplus_fer2013_vgg_deep_x4_int8 ferplus_fer2013_vgg_deep_tv_x4_int8 \\
        --data ferplus:DATA/ferplus --out runs/teacher.npz
    tiltwatch teach runs/wide_a/best.pt runs/teacher.npz --data packed:faces.npz --out runs/teacher2.npz
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..vision.emotion import EmotionClassifier
from .datasets import FaceSet


def _raw_heads(clf: EmotionClassifier, x: np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
    """Every output of the model for ``x`` (model input), the logit adjustment its card says was folded in taken out."""
    names = [o.name for o in clf.session.get_outputs()]
    runs = [clf.session.run(names, {clf.input_name: x[i : i + batch]}) for i in range(0, len(x), batch)]
    heads = {n: np.concatenate([r[k] for r in runs]).astype(np.float32) for k, n in enumerate(names)}
    if clf.card.logit_bias is not None:  # export adds it to the first head only
        heads[names[0]] = heads[names[0]] - np.asarray(clf.card.logit_bias, np.float32)
    return heads


def _onnx_heads(name: str, faces: FaceSet, threads: int | None) -> dict[str, np.ndarray]:
    clf = EmotionClassifier.load(name, threads=threads)
    x = clf.model_input(faces.images)
    views = [_raw_heads(clf, v) for v in (x, np.ascontiguousarray(x[..., ::-1]))]
    return {h: (views[0][h] + views[1][h]) / 2 for h in views[0]}


def _checkpoint_heads(path: str, faces: FaceSet) -> dict[str, np.ndarray]:
    import torch

    from ..vision.preprocess import to_model_input
    from .checkpoints import load_checkpoint
    from .train import predict_heads

    model, ck = load_checkpoint(path)
    model = model.to("cuda" if torch.cuda.is_available() else "cpu")
    x = torch.from_numpy(to_model_input(faces.images, ck["config"]["input_size"]))
    views = [predict_heads(model, v) for v in (x, x.flip(-1))]
    names = ["logits", "fer2013_logits"][: len(views[0])]  # the exported graph's output names
    return {n: ((a + b) / 2).numpy() for n, a, b in zip(names, *views)}


def _npz_heads(path: str, faces: FaceSet) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            heads = [k.removeprefix("head_") for k in f.files if k.startswith("head_")]
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a file written by tiltwatch teach ({exc})") from None
    try:
        return dict(zip(heads, load_teacher(path, faces.names, heads)))
    except ConfigError as exc:  # (its message names a config key, which a teacher member is not)
        raise InputError(str(exc).removeprefix("teacher_logits: ")) from None


def teacher_logits(models: list[str], faces: FaceSet, threads: int | None = None) -> dict[str, np.ndarray]:
    """The mean logits of ``models`` over each face and its mirror image: ``{head: (N, C)}``.

    A member is an exported model (a shipped name or ``.onnx``), a training checkpoint (``.pt``)
    or an earlier teacher (``.npz``, already the mean over both views). Every member must have
    the same heads (e.g. ``logits`` and ``fer2013_logits``).
    """
    if not models:
        raise InputError("a teacher needs at least one model")
    total: dict[str, np.ndarray] | None = None
    for name in models:
        if name.endswith(".pt"):
            heads = _checkpoint_heads(name, faces)
        elif name.endswith(".npz"):
            heads = _npz_heads(name, faces)
        else:
            heads = _onnx_heads(name, faces, threads)
        if total is not None and set(heads) != set(total):
            raise InputError(f"{name}: heads {sorted(heads)} differ from the other teachers' {sorted(total)}")
        total = heads if total is None else {h: total[h] + heads[h] for h in total}
    return {h: v / len(models) for h, v in total.items()}


def save_teacher(path: str | Path, names: list[str], heads: dict[str, np.ndarray], models: list[str]) -> Path:
    """Write the face names, every head's logits and the teacher's models to one ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        names=np.asarray(names),
        models=np.asarray(json.dumps(models)),
        **{f"head_{h}": v for h, v in heads.items()},
    )
    return path


def load_teacher(path: str | Path, names: list[str], heads: list[str]) -> list[np.ndarray]:
    """The teacher logits of ``names``, in that order, one array per head of ``heads``.

    Raises ConfigError (the config names the file) when the file is not one ``tiltwatch teach``
    wrote, lacks a head, or has no logits for some of the faces.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = [str(n) for n in f["names"]]
            table = {k.removeprefix("head_"): f[k] for k in f.files if k.startswith("head_")}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"teacher_logits: {path}: not a file written by tiltwatch teach ({exc})") from None
    missing_heads = [h for h in heads if h not in table]
    if missing_heads:
        raise ConfigError(f"teacher_logits: {path} has no {missing_heads} head (it has {sorted(table)})")
    row = {n: i for i, n in enumerate(stored)}
    missing = [n for n in names if n not in row]
    if missing:
        raise ConfigError(
            f"teacher_logits: {path} has no logits for {len(missing)} of the {len(names)} training "
            f"faces (e.g. {missing[0]}); make it with tiltwatch teach on this config's data and splits"
        )
    idx = np.array([row[n] for n in names], np.int64)
    return [table[h][idx] for h in heads]
