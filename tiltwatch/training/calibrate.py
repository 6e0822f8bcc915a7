"""Logit adjustment for rare classes, tuned on the validation split only.

Training on FER+'s skewed classes (disgust and contempt under 1% of images) leaves the
model shy of predicting them. Subtracting ``tau * log(prior)`` from the logits (Menon et
al., "Long-tail learning via logit adjustment", 2021) trades a little accuracy for much
better recall of rare classes. ``tau`` is chosen on the validation split: the best balanced
accuracy whose accuracy stays within ``max_acc_drop`` of the unadjusted model.

Usage::

    bias, report = tune_logit_adjustment(valid_logits, valid_labels, train_labels)
"""

from __future__ import annotations

import numpy as np


def accuracies(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, balanced accuracy: mean recall over the classes present in ``labels``)."""
    pred = logits.argmax(1)
    acc = float((pred == labels).mean())
    recalls = [float((pred[labels == c] == c).mean()) for c in np.unique(labels)]
    return acc, float(np.mean(recalls))


def tune_logit_adjustment(logits: np.ndarray, labels: np.ndarray, train_labels: np.ndarray,
                          max_acc_drop: float = 0.01) -> tuple[np.ndarray, dict]:
    n = logits.shape[1]
    prior = np.bincount(train_labels, minlength=n).astype(np.float64) + 1.0
    log_prior = np.log(prior / prior.sum())
    base_acc, base_bal = accuracies(logits, labels)
    best = (0.0, base_acc, base_bal)
    for tau in np.arange(0.05, 2.01, 0.05):
        acc, bal = accuracies(logits - tau * log_prior, labels)
        if acc >= base_acc - max_acc_drop and bal > best[2]:
            best = (float(tau), acc, bal)
    tau = best[0]
    bias = (-tau * log_prior).astype(np.float32)
    bias -= bias.mean()  # only differences between classes matter
    return bias, {"tau": round(tau, 2), "valid_accuracy_before": round(base_acc, 4),
                  "valid_balanced_accuracy_before": round(base_bal, 4), "valid_accuracy_after": round(best[1], 4),
                  "valid_balanced_accuracy_after": round(best[2], 4), "max_accuracy_drop": max_acc_drop}
