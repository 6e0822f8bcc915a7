"""Probabilities that mean what they say: temperature scaling and the expected calibration error.

A model trained on FER+'s annotator votes learns their spread, not how often its top class is
right: the default's top probability averages 0.73 on FER+ test where it is right 85% of the
time (underconfident). One temperature ``T`` per head, fitted by minimum negative log-likelihood
on a validation split (Guo et al., "On calibration of modern neural networks", 2017), divides
the logits before the softmax: the ranking, hence every label and accuracy, is unchanged. The
card holds it (``calibration``); :class:`tiltwatch.vision.emotion.EmotionClassifier` applies it.

The expected calibration error (ECE) is the gap between confidence and accuracy, averaged over
15 equal-width confidence bins weighted by their share of the faces.

Usage::

    t = fit_temperature(valid_logits, valid_labels)
    ece = expected_calibration_error(softmax(test_logits / t), test_labels)
    plot_reliability(reliability_bins(probs, labels), Path("reliability.png"), title="model on FER+ test")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

BINS = 15
#: the search range of the temperature (log-spaced): far past any sensible value on both sides
T_RANGE = (0.05, 20.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature of least negative log-likelihood (golden-section search on log T; the
    likelihood is convex in 1/T, so the minimum is unique)."""
    if len(labels) < 2:
        raise InputError("fitting a temperature needs at least 2 labelled faces")
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = (negative_log_likelihood(logits, labels, float(np.exp(v))) for v in (a, b))
    for _ in range(60):  # the bracket shrinks to 1e-12 of its width
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = negative_log_likelihood(logits, labels, float(np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = negative_log_likelihood(logits, labels, float(np.exp(b)))
    return round(float(np.exp((lo + hi) / 2)), 4)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per confidence bin (equal width over [0, 1]): its range, face count, mean confidence, accuracy."""
    conf, right = probs.max(1), probs.argmax(1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)  # (lo, hi]; a confidence of 0 in the first
    out = []
    for b in range(bins):
        m = which == b
        out.append(
            {
                "lo": round(b / bins, 4),
                "hi": round((b + 1) / bins, 4),
                "count": int(m.sum()),
                "confidence": round(float(conf[m].mean()), 4) if m.any() else None,
                "accuracy": round(float(right[m].mean()), 4) if m.any() else None,
            }
        )
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Sum over bins of (share of faces) x |accuracy - mean confidence|."""
    n = len(labels)
    if not n:
        return 0.0
    gaps = (
        b["count"] / n * abs(b["accuracy"] - b["confidence"])
        for b in reliability_bins(probs, labels, bins)
        if b["count"]
    )
    return round(float(sum(gaps)), 4)


def plot_reliability(bins: list[dict], path: Path, title: str) -> None:
    """The reliability diagram: accuracy against confidence per bin (bars), the diagonal, face counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = [b for b in bins if b["count"]]
    fig, ax = plt.subplots(figsize=(5, 5))
    width = bins[0]["hi"] - bins[0]["lo"]
    ax.bar(
        [b["lo"] for b in full],
        [b["accuracy"] for b in full],
        width=width,
        align="edge",
        edgecolor="black",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(
        [b["confidence"] for b in full],
        [b["accuracy"] for b in full],
        "o",
        color="black",
        ms=3,
        label="mean confidence",
    )
    for b in full:
        ax.text(b["lo"] + width / 2, min(b["accuracy"] + 0.02, 0.97), str(b["count"]), ha="center", fontsize=6)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the reliability diagram ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


def calibrate_model(
    spec: str, model: str, head: str = "auto", write: bool = False, command: str | None = None, seen_factor: float = 1.0
) -> dict:
    """Fit ``model``'s temperature for one head on ``spec`` (a validation split, ``KIND-valid:PATH``)
    and, with ``write``, record it in the shipped model's card; returns the fit's report.

    ``seen_factor``: for a model trained on that split too. A fit on faces the model has seen
    comes out too sharp (it is more often right on them); the fitted temperature is multiplied by
    this factor, the ratio of the temperature fitted on unseen faces to that fitted on seen ones,
    measured on models of the same family that were not trained on the split.
    """
    from ..vision.card import Calibration, ModelCard
    from ..vision.emotion import EmotionClassifier, resolve_model
    from .evaluate import choose_head, load_eval_set, predict_probs

    if not spec.partition(":")[0].endswith("-valid"):
        raise InputError(f"{spec}: fit the temperature on a validation split (KIND-valid:PATH), never on a test split")
    clf = EmotionClassifier.load(model, head=choose_head(spec, model, head))
    if clf.card.outputs == "probs":
        raise InputError(
            f"{clf.card.name}: the model outputs probabilities, not logits; there is no temperature to fit"
        )
    ds = load_eval_set(spec)
    clf.temperature = 1.0
    logits = np.log(np.maximum(predict_probs(clf, np.asarray(ds.images), ds.classes, tta=False), 1e-12))
    fitted = fit_temperature(logits, ds.labels)
    t = round(fitted * seen_factor, 4)
    report = {
        "model": clf.card.name,
        "head": clf.head,
        "dataset": spec,
        "n": int(len(ds.labels)),
        "temperature": t,
        "fitted": fitted,
        "seen_factor": seen_factor,
        "ece_before": expected_calibration_error(softmax(logits), ds.labels),
        "ece_after": expected_calibration_error(softmax(logits / t), ds.labels),
        "nll_before": round(negative_log_likelihood(logits, ds.labels), 4),
        "nll_after": round(negative_log_likelihood(logits, ds.labels, t), 4),
    }
    if write:
        path = resolve_model(model)[0].with_suffix(".json")
        card = ModelCard.from_json(path)
        old = card.calibration
        temps = (old.temperature if old else {}) | {clf.head: t}
        prior = {h: dict(v) for h, v in (old.valid or {}).items()} if old else {}
        if old and old.command and len(prior) == 1:  # a card from before each head kept its command
            next(iter(prior.values())).setdefault("command", old.command)
        keys = ("dataset", "n", "fitted", "seen_factor", "ece_before", "ece_after", "nll_before", "nll_after")
        valid = prior | {clf.head: {k: report[k] for k in keys} | {"command": command}}
        heads = [h for h in card.heads if h in valid]  # each head keeps its own fit; the summary names all
        card.calibration = Calibration(
            temperature=temps,
            fitted_on="; ".join(dict.fromkeys(valid[h]["dataset"].partition(":")[0] for h in heads)),
            method="temperature scaling: one T per head, least negative log-likelihood on the validation split",
            valid=valid,
            command="; ".join(dict.fromkeys(valid[h]["command"] for h in heads if valid[h].get("command"))) or None,
        )
        report["card"] = str(card.write(path))
    return report
