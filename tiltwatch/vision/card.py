"""The emotion model card: one typed record of ``<model>.json``, read and written here only.

Every key a shipped card has is a field (``tiltwatch export`` writes them, ``tiltwatch eval
--card`` adds ``metrics``); keys this module does not know are kept as they are, so a card read
and written back loses nothing. A card written back holds the keys it was read with (or built
with), in the order below.

Usage::

    card = ModelCard.from_json(Path("tiltwatch/models/ferplus_fer2013_vgg_small.json"))
    card.input_size, card.heads, card.licence, card.training_data.datasets
    card.write(path)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..emotions import EMOTIONS
from ..errors import ModelError
from .preprocess import MEAN, STD

#: what every card of a model trained on FER+ says of its data (``training_data``)
FER_TRAINING_DATA = {
    "datasets": ["FER2013", "FER+"],
    "terms": "FER2013's images come from a research dataset (the ICML 2013 representation learning challenge; "
    "faces found by web image search); FER+ is Microsoft's relabelling of the same images (10 annotator "
    "votes each). Their terms are the datasets' own, not this project's licence: a deployer must check "
    "them before using a model trained on them",
}


class _Part(BaseModel):
    # a key this module does not know is kept (and written back), not refused
    model_config = ConfigDict(extra="allow")


class CardInput(_Part):
    size: int
    channels: int
    colour: str | None = None
    dtype: str | None = None
    layout: str | None = None
    scale: str | None = None
    mean: float
    std: float
    crop: str | None = None


class TrainingInfo(_Part):
    """What the model learnt from and how its checkpoint was picked (one net, or ``members``)."""

    data: str | None = None
    selection: str | None = None
    epoch: int | None = None
    selected: str | None = None
    valid_accuracy: float | None = None
    valid_accuracy_fer2013_head: float | None = None
    config: dict[str, Any] | None = None
    command: str | None = None
    members: list[dict[str, Any]] | None = None


class TrainingData(_Part):
    """The datasets behind the weights, and what a deployer must check about them."""

    datasets: list[str]
    terms: str


class Parity(_Part):
    max_abs_prob_diff: float
    top1_agreement: float
    inputs: str | None = None


class Quantization(_Part):
    format: str | None = None
    calibration: str | None = None


class LogitAdjustment(_Part):
    """A rare-class logit adjustment export folded into the first head (``bias``, one per class)."""

    tau: float | None = None
    rule: str | None = None
    prior: str | None = None
    valid_accuracy_before: float | None = None
    valid_balanced_accuracy_before: float | None = None
    valid_accuracy_after: float | None = None
    valid_balanced_accuracy_after: float | None = None
    max_accuracy_drop: float | None = None
    bias: list[float] | None = None
    tuned_on: str | None = None


class Calibration(_Part):
    """Temperature scaling (``tiltwatch calibrate``): each head's logits are divided by its
    temperature before the softmax, so that a top probability of 0.8 is right 80% of the time."""

    temperature: dict[str, float]  # by head name; a head not named keeps 1
    fitted_on: str | None = None
    method: str | None = None
    valid: dict[str, Any] | None = None  # the fit's split: ECE and NLL before and after, per head
    command: str | None = None


class ModelCard(_Part):
    """An emotion model's card. ``heads`` is the ONNX output names (the default first); their
    descriptions, as the JSON holds them, are ``head_notes``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    task: str | None = None
    classes: tuple[str, ...]
    input: CardInput
    outputs: str = "logits"  # or "probs"
    head_notes: dict[str, str] = Field(default_factory=lambda: {"logits": ""}, alias="heads")
    architecture: str | None = None
    parameters: int | None = None
    training: TrainingInfo | None = None
    training_data: TrainingData | None = None
    licence: str | None = None  # of the weights: the project's own (MIT) for the shipped models
    file_size_bytes: int | None = None
    parity: Parity | None = None
    quantization: Quantization | None = None
    logit_adjustment: LogitAdjustment | None = None
    calibration: Calibration | None = None
    cpu_latency_ms_batch1_2threads: float | None = None
    cpu_latency_ms_rounds: list[float] | None = None
    metrics: dict[str, dict[str, Any]] = Field(default_factory=dict)  # by key, as ``tiltwatch eval --card`` wrote
    export_command: str | None = None

    def temperature(self, head: str) -> float:
        """The calibrated temperature of ``head`` (1: uncalibrated)."""
        return self.calibration.temperature.get(head, 1.0) if self.calibration else 1.0

    @classmethod
    def default(cls, name: str) -> ModelCard:
        """The card of an .onnx file that has none beside it: the FER+ defaults (8 classes, 48x48 grey)."""
        return cls(name=name, classes=EMOTIONS, input=CardInput(size=48, channels=1, mean=MEAN, std=STD))

    @classmethod
    def from_json(cls, path: Path) -> ModelCard:
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ModelError(f"{path}: not a valid model card ({errs})") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a valid model card ({exc})") from None

    def to_dict(self) -> dict:
        """The card as its JSON holds it: the keys it was read or built with, nothing added."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @property
    def heads(self) -> tuple[str, ...]:
        return tuple(self.head_notes)

    @property
    def input_size(self) -> int:
        return self.input.size

    @property
    def channels(self) -> int:
        return self.input.channels

    @property
    def mean(self) -> float:
        return self.input.mean

    @property
    def std(self) -> float:
        return self.input.std

    @property
    def logit_bias(self) -> tuple[float, ...] | None:
        """The logit adjustment export folded into the first head, or None."""
        bias = self.logit_adjustment.bias if self.logit_adjustment is not None else None
        return None if bias is None else tuple(float(b) for b in bias)
