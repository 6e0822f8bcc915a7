"""Logit adjustment for rare classes, tuned on the validation split only.

Training on FER+'s skewed classes (disgust and contempt under 1% of images) leaves the
model shy of predicting them. Subtracting ``tau * log(prior)`` from the logits (Menon et
al., "Long-tail learning via logit adjustment", 2021) trades a little accuracy for much
better recall of rare classes. ``tau`` (0 to 2 in steps of 0.05) is chosen on the
validation split by one of two rules:

- balance first (default): the best balanced accuracy whose accuracy stays within
  ``max_acc_drop`` of the unadjusted model;
- accuracy first (``min_balanced``): the best accuracy whose balanced accuracy is at least
  ``min_balanced`` (a target plus a margin); if no tau reaches it, the best balanced one.

Ties go to the smaller tau. ``adjustment_bias`` gives the bias of a fixed tau, for models
trained on the validation split, on which nothing can then be tuned.

Usage::

    bias, report = tune_logit_adjustment(valid_logits, valid_labels, train_labels)
    bias = adjustment_bias(0.1, train_labels, 8)
"""

from __future__ import annotations

import numpy as np

TAUS = np.round(np.arange(0.0, 2.001, 0.05), 2)


def accuracies(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, balanced accuracy: mean recall over the classes present in ``labels``)."""
    pred = logits.argmax(1)
    acc = float((pred == labels).mean())
    recalls = [float((pred[labels == c] == c).mean()) for c in np.unique(labels)]
    return acc, float(np.mean(recalls))


def _log_prior(train_labels: np.ndarray, n: int) -> np.ndarray:
    prior = np.bincount(train_labels, minlength=n).astype(np.float64) + 1.0
    return np.log(prior / prior.sum())


def adjustment_bias(tau: float, train_labels: np.ndarray, n: int) -> np.ndarray:
    """``-tau * log(prior)`` over ``n`` classes, centred (only differences between classes matter)."""
    bias = (-tau * _log_prior(train_labels, n)).astype(np.float32)
    return bias - bias.mean()


def tune_logit_adjustment(
    logits: np.ndarray,
    labels: np.ndarray,
    train_labels: np.ndarray,
    max_acc_drop: float = 0.01,
    min_balanced: float | None = None,
) -> tuple[np.ndarray, dict]:
    log_prior = _log_prior(train_labels, logits.shape[1])
    scores = [(float(t), *accuracies(logits - t * log_prior, labels)) for t in TAUS]  # (tau, acc, balanced)
    base = scores[0]
    if min_balanced is None:
        rule = {"rule": "balance first", "max_accuracy_drop": max_acc_drop}
        best = max((s for s in scores if s[1] >= base[1] - max_acc_drop), key=lambda s: s[2])
    else:
        rule = {"rule": "accuracy first", "min_balanced_accuracy": min_balanced}
        reaching = [s for s in scores if s[2] >= min_balanced]
        best = max(reaching, key=lambda s: s[1]) if reaching else max(scores, key=lambda s: s[2])
    return adjustment_bias(best[0], train_labels, logits.shape[1]), {
        "tau": round(best[0], 2),
        "valid_accuracy_before": round(base[1], 4),
        "valid_balanced_accuracy_before": round(base[2], 4),
        "valid_accuracy_after": round(best[1], 4),
        "valid_balanced_accuracy_after": round(best[2], 4),
    } | rule
