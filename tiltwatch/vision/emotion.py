"""Emotion classification with an ONNX model and its JSON model card; all faces in one call.

Models are found by name in ``tiltwatch/models`` (``<name>.onnx`` + ``<name>.json``) or by
path to any ``.onnx`` file (its card beside it, or the FER+ defaults: 8 classes, 48x48 grey).
The card is read as one typed record (``vision.card.ModelCard``).

Usage::

    clf = EmotionClassifier.load()              # the default model
    probs = clf.predict(aligned_crops)          # (N, 8) probabilities

A model may have more than one head (ONNX output) over the same classes, e.g. one trained on
the FER+ votes and one on FER2013's original labels; the card lists them, the first is the
default and the one the live pipeline reads.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..emotions import AUTO_MODEL, DEFAULT_MODEL, NO_VNNI_MODEL
from ..errors import ModelError
from .card import ModelCard
from .preprocess import MEAN, STD, to_model_input


def shipped_models() -> list[str]:
    """Names of the emotion models shipped in the package (their exported ONNX files)."""
    return sorted(p.name[:-5] for p in resources.files("tiltwatch.models").iterdir() if p.name.endswith(".onnx"))


def choose_model(flags: dict[str, bool] | None) -> tuple[str, str]:
    """What ``model: auto`` runs on a CPU with these instruction-set flags
    (:func:`tiltwatch.machine.describe_machine`): (shipped model name, why)."""
    if flags is None:
        return DEFAULT_MODEL, "the CPU's instruction sets could not be read"
    if flags.get("avx512_vnni") or flags.get("avx_vnni"):
        return DEFAULT_MODEL, "this CPU has int8 dot products (VNNI)"
    return NO_VNNI_MODEL, "this CPU has no int8 dot products (VNNI), where five int8 nets cost too much a face"


def auto_model() -> tuple[str, str]:
    """What ``model: auto`` runs on this machine's CPU: (shipped model name, why)."""
    from ..machine import describe_machine

    return choose_model(describe_machine()["flags"])


def model_name(name_or_path: str) -> str:
    """``auto`` as chosen for this machine's CPU; any other name or path as it is."""
    return auto_model()[0] if name_or_path == AUTO_MODEL else name_or_path


def resolve_model(name_or_path: str) -> tuple[Path, ModelCard]:
    """A shipped model's name, ``auto``, or a path to an .onnx file, -> (onnx path, card)."""
    name_or_path = model_name(name_or_path)
    p = Path(name_or_path)
    if p.suffix != ".onnx":
        shipped = resources.files("tiltwatch.models")
        p = Path(str(shipped.joinpath(f"{name_or_path}.onnx")))
        if not p.is_file():
            raise ModelError(
                f"unknown emotion model {name_or_path!r}; shipped: {', '.join(shipped_models()) or 'none'}"
            )
    elif not p.is_file():
        raise ModelError(f"{p}: model file not found")
    card_path = p.with_suffix(".json")
    card = ModelCard.from_json(card_path) if card_path.is_file() else ModelCard.default(p.stem)
    return p, card


class EmotionClassifier:
    """Batched ONNX inference: ``predict`` takes aligned crops, returns probabilities.

    ``head``: which of the model's outputs to read (see the card's ``heads``); the first by default.
    """

    def __init__(self, path: Path, card: ModelCard, threads: int | None = None, head: str | None = None):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            # idle workers must sleep, not spin: the pipeline's other threads need the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from None
        self.card = card
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or shape[1] != card.channels:
            raise ModelError(f"{path}: expected input (N, {card.channels}, H, W), model has {shape}")
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.head = head or self.session.get_outputs()[0].name
        if self.head not in outputs:
            raise ModelError(f"{path}: no head {self.head!r}; the model has {', '.join(outputs)}")
        #: the head's calibrated temperature (the card's ``calibration``); eval sets it to 1 to compare
        self.temperature = card.temperature(self.head)
        n_out = outputs[self.head].shape[-1]
        if isinstance(n_out, int) and n_out != len(card.classes):
            raise ModelError(f"{path}: model has {n_out} outputs but its card names {len(card.classes)} classes")

    @classmethod
    def load(
        cls, name_or_path: str = DEFAULT_MODEL, threads: int | None = None, head: str | None = None
    ) -> EmotionClassifier:
        return cls(*resolve_model(name_or_path), threads=threads, head=head)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def predict(self, crops: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, H, W[, 3]) uint8 crops -> (N, C) probabilities, in one onnxruntime call.

        ``tta``: average over the crop, its mirror and one-pixel shifts (still one call).
        """
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        x = self.model_input(crops)
        if not tta:
            return self._probs(self.session.run([self.head], {self.input_name: x})[0])
        views = tta_views(x)
        probs = self._probs(self.session.run([self.head], {self.input_name: np.concatenate(views)})[0])
        return probs.reshape(len(views), len(x), -1).mean(0)

    def model_input(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W[, 3]) uint8 crops -> the (N, C, S, S) float32 input of this model (its card's size and scaling)."""
        x = to_model_input(crops, self.card.input_size)
        if self.card.mean != MEAN or self.card.std != STD:
            x = (x * STD + MEAN - self.card.mean) / self.card.std
        return x

    def _probs(self, out: np.ndarray) -> np.ndarray:
        if self.card.outputs == "probs":
            return out.astype(np.float32)
        out = out / self.temperature
        e = np.exp(out - out.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)


def tta_views(x: np.ndarray) -> list[np.ndarray]:
    """The input, its mirror, and shifts by one pixel each way (edges repeated)."""
    views = [x, x[..., ::-1]]
    for axis, step in ((-1, 1), (-1, -1), (-2, 1), (-2, -1)):
        shifted = np.roll(x, step, axis=axis)
        edge = 0 if step > 0 else -1
        idx = [slice(None)] * x.ndim
        idx[axis] = edge
        shifted[tuple(idx)] = x[tuple(idx)]  # the row that wrapped around: repeat the edge instead
        views.append(shifted)
    return [np.ascontiguousarray(v) for v in views]
