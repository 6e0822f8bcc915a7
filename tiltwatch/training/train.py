"""``tiltwatch train``: fit an emotion model from a YAML config, with checkpoints and resume.

Any dataset kind of ``datasets.load_dataset`` (``data: rafdb:PATH``; a plain path is a FER+
root). Soft-label cross-entropy on the FER+ votes, optional class re-weighting, batched
augmentation, cosine learning rate, fixed seeds, bfloat16 autocast where the hardware has it
(CUDA, or a CPU with AVX512-BF16: 2.4x faster than float32 on this project's 2-core machine).
``aux_head: fer2013`` trains a second head on the same FER+ images' original FER2013 labels.
``init`` starts from another run's weights. ``teacher`` distils one or more trained checkpoints
(their mean logits, on the same augmented batches) into the model; ``teacher_logits`` distils
logits computed once per face by ``tiltwatch teach`` (a teacher too slow to run every batch).
The validation split alone picks the best checkpoint; test splits are never read here.
``train_on_valid: true`` trains on train and valid together for a fixed schedule instead:
nothing is picked, the result is the last epoch (``last.pt``).
Progress goes to the ``tiltwatch.training`` logger at INFO (each epoch's metrics as one JSON line,
as ``metrics.csv`` holds them); ``tiltwatch train`` prints those lines on stdout.

Usage::

    tiltwatch train --config configs/ferplus_vgg_small.yaml
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..errors import ConfigError, InputError
from ..vision.preprocess import to_model_input
from .augment import AugmentConfig, augment
from .checkpoints import load_checkpoints, read_checkpoint
from .datasets import (
    DATASET_KINDS,
    FaceSet,
    MissingSplitError,
    dataset_splits,
    ferplus_fer2013_labels,
    holdout,
    load_dataset,
    parse_spec,
)
from .logit_adjustment import accuracies
from .models import create_model
from .packed import packed_fer2013_labels
from .teacher import load_teacher

#: progress: INFO lines (each epoch's metrics as one JSON line, resume and schedule notes); see log_progress_to_stdout
log = logging.getLogger("tiltwatch.training")


class _ProgressToStdout(logging.StreamHandler):
    """The training log's INFO lines as plain lines on stdout (the per-epoch JSON rows scripts
    read from ``tiltwatch train``'s output); warnings and errors go on up the loggers, as any do."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            super().emit(record)
        elif log.parent is not None:
            log.parent.handle(record)


def log_progress_to_stdout() -> None:
    """Print training progress as ``tiltwatch train`` does: INFO lines to stdout (once per process)."""
    if not any(isinstance(h, _ProgressToStdout) for h in log.handlers):
        log.addHandler(_ProgressToStdout())
    log.setLevel(logging.INFO)
    log.propagate = False  # (INFO lines once, on stdout; warnings are handed up by the handler)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str  # KIND:PATH (see datasets.load_dataset), or a plain FER+ root (the folder holding FER2013Train/ ...)
    # hold out this seeded, per-class fraction of train as validation (for datasets with no valid split)
    valid_fraction: float | None = Field(None, gt=0, lt=1)
    out: str = "runs/emotion"
    model: str = "vgg_small"
    input_size: int = 48
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    class_weighting: Literal["none", "sqrt_inverse"] = "none"
    soft_labels: bool = True
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None  # stop cleanly (resumable) after this long
    # fit the schedule to a time budget: after the first epoch, epochs (then a cap) becomes as many
    # as fit in this many minutes at that epoch's pace; the run's config.json and checkpoints record it
    fit_minutes: float | None = Field(None, gt=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast where the hardware has it
    init: str | None = None  # start from this checkpoint's weights (heads it lacks start fresh)
    # a second head on FER2013's original labels of the same images (ferplus data only)
    aux_head: Literal["none", "fer2013"] = "none"
    aux_weight: float = Field(0.5, ge=0)
    # knowledge distillation: checkpoints whose mean logits (every head) the model also learns from
    teacher: list[str] = []
    # offline distillation instead: a tiltwatch-teach .npz of logits for every training face
    teacher_logits: str | None = None
    distill_weight: float = Field(0.5, ge=0, le=1)  # share of the loss that follows the teacher
    distill_temperature: float = Field(2.0, gt=0)
    # exponential moving average of the weights (and BatchNorm statistics), e.g. 0.999: validated,
    # kept and exported instead of the raw weights; smooths the noise of FER's labels out of the pick
    ema: float | None = Field(None, gt=0, lt=1)
    augment: AugmentConfig = AugmentConfig()
    # the valid split joins training (FER+: 12% more faces). Its scores are then no estimate, so
    # nothing is picked on them: the result is the last epoch of the fixed schedule (last.pt), and
    # the per-epoch valid scores are only a check that training runs
    train_on_valid: bool = False

    @model_validator(mode="after")
    def _valid_is_a_split(self) -> TrainConfig:
        if self.train_on_valid and self.valid_fraction is not None:
            raise ValueError(
                "train_on_valid joins the dataset's own valid split to training; "
                "it makes no sense with valid_fraction (drop one of the two)"
            )
        if self.fit_minutes and self.warmup_epochs < 1:
            raise ValueError(
                "fit_minutes fits the schedule after the first epoch, so that epoch must be all "
                "warm-up: set warmup_epochs to 1 or more"
            )
        if self.teacher and self.teacher_logits:
            raise ValueError(
                "teacher (run on every batch) and teacher_logits (computed once) are two ways to distil; set one"
            )
        return self


def load_config(path: str | Path, **overrides) -> TrainConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**raw)
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: {errs}") from None


def _tensor(fs: FaceSet, size: int) -> torch.Tensor:
    return torch.from_numpy(to_model_input(fs.images, size))


@torch.no_grad()
def predict_heads(model: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, ...]:
    """Every head's logits of ``x`` (one pass in batches); a one-headed model gives a 1-tuple."""
    model.eval()
    dev = next(model.parameters()).device
    outs: list[tuple[torch.Tensor, ...]] = []
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch].to(dev))
        outs.append(tuple(o.float().cpu() for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(torch.cat(h) for h in zip(*outs))


def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """The first (main) head's logits of ``x``."""
    return predict_heads(model, x, batch)[0]


def use_bf16(precision: str, dev: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16"
    if dev.type == "cuda":
        return True
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, hence guarded
    return bool(check and check())


def data_spec(data: str) -> str:
    """``KIND:PATH`` as it is; a plain path is a FER+ root (configs written before other kinds)."""
    kind, sep, _ = data.partition(":")
    if sep and kind in DATASET_KINDS:
        return data
    if sep and len(kind) > 1 and not Path(data).exists():  # a mistyped kind, not a Windows drive letter
        raise ConfigError(
            f"data: unknown dataset kind {kind!r} in {data!r}; use one of {', '.join(DATASET_KINDS)} "
            "or a plain FER+ root"
        )
    return f"ferplus:{data}"


def load_train_valid(cfg: TrainConfig) -> tuple[FaceSet, FaceSet]:
    """The train split and the split that picks the checkpoint: the dataset's own ``valid``, or a
    held-out ``valid_fraction`` of train. Test splits are never read here."""
    spec = data_spec(cfg.data)
    if cfg.valid_fraction is not None:
        return holdout(load_dataset(spec, "train", cfg.input_size), cfg.valid_fraction, cfg.seed)
    no_valid = f"data: {spec} has no validation split; set valid_fraction (e.g. 0.1) to hold out part of train instead"
    if "valid" not in dataset_splits(spec):  # RAF-DB, or folder: whose one split is train itself
        raise ConfigError(no_valid)
    try:  # valid first: a missing one fails before the (larger) train split is read
        va = load_dataset(spec, "valid", cfg.input_size)
    except MissingSplitError as exc:  # e.g. FER2013 folders without PublicTest files
        raise ConfigError(f"{no_valid} ({exc})") from None
    return load_dataset(spec, "train", cfg.input_size), va


def _aux_spec(cfg: TrainConfig) -> str:
    spec = data_spec(cfg.data)
    if parse_spec(spec)[0] not in ("ferplus", "packed") or cfg.valid_fraction is not None:
        raise ConfigError(
            "aux_head: fer2013 needs FER+ data (its fer2013_labels.csv, or a file tiltwatch pack made "
            "of it) with its own valid split"
        )
    return spec


def fer2013_aux_labels(spec: str, names: list[str]) -> np.ndarray:
    """FER2013's original labels of the named FER+ faces (-1: none), from a FER+ root or a packed file."""
    kind, path = parse_spec(spec)
    return packed_fer2013_labels(path, names) if kind == "packed" else ferplus_fer2013_labels(path, names)


def _teacher(cfg: TrainConfig, dev: torch.device) -> torch.nn.Module | None:
    """The ``teacher`` checkpoints as one frozen model (an ensemble when several), or None."""
    if not cfg.teacher:
        return None
    try:
        model, cks = load_checkpoints(cfg.teacher)
    except InputError as exc:  # a missing file or one that is not a checkpoint: name the key that holds it
        raise ConfigError(f"teacher: {exc}") from exc
    if any(ck["config"].get("aux_head", "none") != cfg.aux_head for ck in cks):
        raise ConfigError(f"teacher: every teacher needs the same heads as this model (aux_head: {cfg.aux_head})")
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model.to(dev, memory_format=torch.channels_last).eval()


def _run_teacher(teacher: torch.nn.Module, x: torch.Tensor, amp: bool) -> tuple[torch.Tensor, ...]:
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        t = teacher(x)
    return t if isinstance(t, tuple) else (t,)


def _distill_loss(heads: tuple, t: tuple, temp: float) -> torch.Tensor:
    """KL divergence from the teacher's softened logits ``t`` to the model's, head by head (Hinton et al. 2015)."""
    return sum(
        F.kl_div(
            F.log_softmax(s.float() / temp, 1),
            F.log_softmax(tt.float() / temp, 1),
            log_target=True,
            reduction="batchmean",
        )
        * temp**2
        for s, tt in zip(heads, t)
    ) / len(heads)


def _init_from(model: torch.nn.Module, path: str) -> None:
    try:
        state = read_checkpoint(path)["model"]
    except InputError as exc:
        raise ConfigError(f"init: {exc}") from exc
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # same names, other sizes
        missing, unexpected = [str(exc).splitlines()[-1].strip()], []
    if unexpected or any(not k.startswith("aux_head.") for k in missing):
        raise ConfigError(
            f"init: {path} is not a {type(model).__name__} of this shape "
            f"(missing or different: {missing[:3]}, unexpected: {unexpected[:3]})"
        )
    log.info(f"initialised from {path}" + (f" (new: {', '.join(missing)})" if missing else ""))


@dataclass
class Schedule:
    """The run's length, read by the loop and the learning rate at every step. ``epochs`` changes
    at most once: ``fit_minutes`` fits it after the first epoch (and a resume reads the fitted one
    back), so the rest of the run, the cosine's end included, follows the fitted length."""

    epochs: int
    steps_per_epoch: int
    warm: int  # warm-up steps

    def lr_factor(self, step: int) -> float:
        """Linear warm-up, then a cosine down to 0 at the schedule's last step."""
        if step < self.warm:
            return (step + 1) / max(self.warm, 1)
        decay = max(self.epochs * self.steps_per_epoch - self.warm, 1)
        return 0.5 * (1 + math.cos(math.pi * (step - self.warm) / decay))


@dataclass
class _Data:
    """A run's tensors: the training faces (on the GPU where there is one), the valid faces and labels."""

    tr: FaceSet
    va: FaceSet
    xtr: torch.Tensor
    ytr: torch.Tensor  # soft (or one-hot) targets
    xva: torch.Tensor
    weights: torch.Tensor | None  # per-class loss weights
    aux: tuple[np.ndarray, np.ndarray] | None  # FER2013's labels of train and valid (-1: none), second head
    atr: torch.Tensor | None  # aux[0] as a tensor
    offline: list[torch.Tensor] | None  # a teacher's saved logits of every training face, head by head


@dataclass
class _Run:
    """Everything one training run holds, from the first epoch (or the resume) to the last."""

    cfg: TrainConfig
    out: Path
    dev: torch.device
    data: _Data
    teacher: torch.nn.Module | None
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    ema: AveragedModel | None
    amp: bool  # bfloat16 autocast
    schedule: Schedule
    start_epoch: int = 0
    best_acc: float = -1.0
    minutes_before: float = 0.0  # training time before a resume

    @property
    def kept(self) -> torch.nn.Module:
        """The weights validated, saved as best and exported: the average where there is one."""
        return self.ema.module if self.ema is not None else self.model

    def config_record(self) -> dict:
        """The config as the checkpoints record it: with the schedule's (maybe fitted) epochs."""
        return self.cfg.model_dump() | {"epochs": self.schedule.epochs}


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the best checkpoint (``last.pt`` with ``train_on_valid``)."""
    out, dev = _start(cfg)
    aux_spec = _aux_spec(cfg) if cfg.aux_head != "none" else None  # config errors before any image is read
    teacher = _teacher(cfg, dev)
    run = _prepare(cfg, out, dev, _prepare_data(cfg, aux_spec, dev), teacher)
    _resume(run)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + run.start_epoch)
    t0 = time.monotonic()
    epoch = run.start_epoch
    while epoch < run.schedule.epochs:  # (read each time: a fitted schedule ends sooner)
        loss, steps_s, t_steps = _train_epoch(run, epoch, gen)
        row, score = _validate(run, epoch, loss)
        if cfg.fit_minutes and epoch == 0:
            _fit_schedule(run.schedule, cfg, (steps_s + time.monotonic() - t_steps) / 60, out)
        row |= {"lr": run.sched.get_last_lr()[0], "minutes": run.minutes_before + (time.monotonic() - t0) / 60}
        _log(out / "metrics.csv", row)
        log.info(json.dumps(row))
        _save(run, epoch, row, score)
        if cfg.max_minutes and (time.monotonic() - t0) / 60 > cfg.max_minutes:
            log.info(f"stopping after {cfg.max_minutes} minutes; run again to resume")
            break
        epoch += 1
    return out / ("last.pt" if cfg.train_on_valid else "best.pt")


def _start(cfg: TrainConfig) -> tuple[Path, torch.device]:
    """The run folder (with the config it runs by), fixed seeds, threads; the device."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.model_dump_json(indent=2))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = (
        dev.type == "cuda"
    )  # few input shapes: each convolution's fastest kernel, found once
    return out, dev


def _prepare_data(cfg: TrainConfig, aux_spec: str | None, dev: torch.device) -> _Data:
    """The train and valid faces as tensors, their targets, class weights, the second head's labels
    and a teacher's saved logits."""
    tr, va = load_train_valid(cfg)
    if cfg.train_on_valid:
        tr = tr.join(va)
    offline = None
    if cfg.teacher_logits:
        offline = [
            torch.from_numpy(a)
            for a in load_teacher(
                cfg.teacher_logits, tr.names, ["logits", "fer2013_logits"] if aux_spec else ["logits"]
            )
        ]
    xtr, xva = _tensor(tr, cfg.input_size), _tensor(va, cfg.input_size)
    ytr = torch.from_numpy(tr.targets if cfg.soft_labels else np.eye(tr.targets.shape[1], dtype=np.float32)[tr.labels])
    weights = None
    if cfg.class_weighting == "sqrt_inverse":
        counts = np.bincount(tr.labels, minlength=tr.targets.shape[1]).astype(np.float64)
        w = 1 / np.sqrt(np.maximum(counts, 1))
        weights = torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32, device=dev)
    aux = (fer2013_aux_labels(aux_spec, tr.names), fer2013_aux_labels(aux_spec, va.names)) if aux_spec else None
    atr = torch.from_numpy(aux[0]) if aux else None
    if dev.type == "cuda":  # the whole training set fits on a GPU: copy it once, not a batch per step
        xtr, ytr = xtr.to(dev), ytr.to(dev)
        atr = atr.to(dev) if atr is not None else None
        offline = [o.to(dev) for o in offline] if offline is not None else None
    return _Data(tr, va, xtr, ytr, xva, weights, aux, atr, offline)


def _prepare(cfg: TrainConfig, out: Path, dev: torch.device, data: _Data, teacher: torch.nn.Module | None) -> _Run:
    """The model (from ``init``'s weights where given), its optimizer, schedule and weight average."""
    classes = data.tr.targets.shape[1]
    model = create_model(cfg.model, num_classes=classes, aux_classes=classes if data.aux else 0)
    if cfg.init:
        _init_from(model, cfg.init)
    model = model.to(dev, memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(data.tr) / cfg.batch_size)
    schedule = Schedule(cfg.epochs, steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: schedule.lr_factor(s))  # (a function: saved as none)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    amp = use_bf16(cfg.precision, dev)  # bfloat16 has float32's range: no loss scaling needed
    return _Run(cfg, out, dev, data, teacher, model, opt, sched, ema, amp, schedule)


def _resume(run: _Run) -> None:
    """Carry on from the run folder's ``last.pt`` where there is one: weights, optimizer, schedule
    (a fitted one keeps its fitted length), weight average, best score, time so far, RNG."""
    last = run.out / "last.pt"
    if not last.is_file():
        return
    ck = torch.load(last, map_location=run.dev, weights_only=False)
    run.model.load_state_dict(ck["model"]), run.opt.load_state_dict(ck["opt"]), run.sched.load_state_dict(ck["sched"])
    if run.ema is not None:
        run.ema.load_state_dict(ck["ema"])
    run.start_epoch, run.best_acc, run.minutes_before = ck["epoch"] + 1, ck["best_acc"], ck.get("minutes", 0.0)
    if run.cfg.fit_minutes:  # the schedule fitted in the first sitting; config.json says so again
        run.schedule.epochs = ck["config"]["epochs"]
        (run.out / "config.json").write_text(
            run.cfg.model_copy(update={"epochs": run.schedule.epochs}).model_dump_json(indent=2)
        )
    torch.set_rng_state(ck["rng"])
    log.info(
        f"resumed from {last} at epoch {run.start_epoch}"
        + ("" if run.cfg.train_on_valid else f" (best valid score {run.best_acc:.4f})")
    )


def _train_epoch(run: _Run, epoch: int, gen: torch.Generator) -> tuple[float, float, float]:
    """One pass over the training faces in shuffled batches. Returns the mean loss, the seconds
    its steps take at the pace after start-up, and when the steps ended (``time.monotonic``)."""
    cfg, d, dev, steps = run.cfg, run.data, run.dev, run.schedule.steps_per_epoch
    run.model.train()
    perm = torch.randperm(len(d.tr))
    run_loss, seen = torch.zeros((), dtype=torch.float64, device=dev), 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{run.schedule.epochs}", leave=False)
    # the first steps of a run pay for start-up (CUDA's kernel choices, caches), so a schedule
    # fitted to the time is fitted to the pace after them
    mark = min(20, steps // 4)
    for step in bar:
        if step == mark:
            t_mark = time.monotonic()
        idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        loss = _step(run, idx, gen)
        run_loss += loss.detach() * len(idx)
        seen += len(idx)
        if step % 25 == 0:  # (reading the loss waits for the GPU: not every step)
            bar.set_postfix(loss=f"{run_loss.item() / seen:.3f}")
    t_steps = time.monotonic()
    return run_loss.item() / seen, (t_steps - t_mark) * steps / (steps - mark), t_steps


def _step(run: _Run, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One optimizer step on the faces ``idx``: soft-label cross-entropy, the second head's, the teacher's share."""
    cfg, d, dev = run.cfg, run.data, run.dev
    x = augment(d.xtr[idx].to(dev), cfg.augment, gen).contiguous(memory_format=torch.channels_last)
    y = d.ytr[idx].to(dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=run.amp):
        outputs = run.model(x)
    heads = outputs if d.aux else (outputs,)
    logp = F.log_softmax(heads[0].float(), 1)
    loss = -(y * logp * (d.weights if d.weights is not None else 1)).sum(1).mean()
    if d.aux:  # the mean over the faces that have a FER2013 label; 0 where none has (no NaN, no wait)
        a = d.atr[idx].to(dev)
        loss = loss + cfg.aux_weight * F.cross_entropy(heads[1].float(), a, ignore_index=-1, reduction="sum") / (
            (a >= 0).sum().clamp(min=1)
        )
    if run.teacher is not None or d.offline is not None:
        t = (
            _run_teacher(run.teacher, x, run.amp)
            if run.teacher is not None
            else tuple(o[idx].to(dev) for o in d.offline)
        )
        loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * _distill_loss(heads, t, cfg.distill_temperature)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return loss


def _validate(run: _Run, epoch: int, train_loss: float) -> tuple[dict, float]:
    """The epoch's metrics row and the score that picks the best checkpoint."""
    d = run.data
    heads_va = predict_heads(run.kept, d.xva)
    acc, bal = accuracies(heads_va[0].numpy(), d.va.labels)
    row = {"epoch": epoch + 1, "train_loss": train_loss, "valid_acc": acc, "valid_balanced_acc": bal}
    score = acc
    if d.aux:  # the checkpoint must serve both labellings: pick on the sum of the two accuracies
        has = d.aux[1] >= 0
        row["valid_aux_acc"] = accuracies(heads_va[1][has].numpy(), d.aux[1][has])[0]
        score = acc + row["valid_aux_acc"]
    return row, score


def _save(run: _Run, epoch: int, row: dict, score: float) -> None:
    """``best.pt`` when the score is the best yet (never with ``train_on_valid``), ``last.pt`` (what
    a resume starts from) after every epoch, and the metrics plot."""
    cfg, out = run.cfg, run.out
    if score > run.best_acc and not cfg.train_on_valid:
        run.best_acc = score
        torch.save(
            {
                "model": run.kept.state_dict(),
                "config": run.config_record(),
                "epoch": epoch,
                "valid_acc": row["valid_acc"],
                "valid_aux_acc": row.get("valid_aux_acc"),
            },
            out / "best.pt",
        )
    torch.save(
        {
            "model": run.model.state_dict(),
            "opt": run.opt.state_dict(),
            "sched": run.sched.state_dict(),
            "epoch": epoch,
            "best_acc": run.best_acc,
            "rng": torch.get_rng_state(),
            "config": run.config_record(),
            "ema": run.ema.state_dict() if run.ema is not None else None,
            "minutes": row["minutes"],
        },
        out / "last.pt",
    )
    plot_metrics(
        out / "metrics.csv",
        out / "metrics.png",
        "valid split (trained on: a check only)" if cfg.train_on_valid else "validation",
    )


def _fit_schedule(schedule: Schedule, cfg: TrainConfig, first_epoch_minutes: float, out: Path) -> None:
    """Fit ``schedule`` to as many epochs as fit in ``fit_minutes`` at the first epoch's pace (at
    most the config's ``epochs``, at least the one done), recorded in the run's config.json."""
    fitted = max(1, min(cfg.epochs, int(cfg.fit_minutes / first_epoch_minutes)))
    log.info(
        f"schedule fitted to {cfg.fit_minutes} min: {fitted} epochs of at most {cfg.epochs} "
        f"({first_epoch_minutes:.2f} min an epoch)"
    )
    schedule.epochs = fitted
    (out / "config.json").write_text(cfg.model_copy(update={"epochs": fitted}).model_dump_json(indent=2))


def _log(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def plot_metrics(csv_path: Path, png_path: Path, valid_title: str = "validation") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    ep = [int(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [float(r["train_loss"]) for r in rows]), a.set(title="train loss", xlabel="epoch")
    b.plot(ep, [float(r["valid_acc"]) for r in rows], label="accuracy")
    b.plot(ep, [float(r["valid_balanced_acc"]) for r in rows], label="balanced accuracy")
    if rows and "valid_aux_acc" in rows[0]:
        b.plot(ep, [float(r["valid_aux_acc"]) for r in rows], label="second head (FER2013 labels)")
    b.set(title=valid_title, xlabel="epoch"), b.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
