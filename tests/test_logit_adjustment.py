"""Logit adjustment: each rule picks the tau it promises, and the bias it returns does what it reports."""

import numpy as np
import pytest

from tiltwatch.training.logit_adjustment import accuracies, tune_logit_adjustment

# Two classes, 900 : 100 in training, so the adjustment raises the rare class's margin by
# tau * ln(901 / 101) = 2.19 tau. Validation: 80 common faces far from the boundary (-1.0),
# 10 common faces near it (-0.3: lost from tau 0.15), 5 rare faces at -0.5 (won from tau
# 0.25) and 5 rare faces already right (+0.5). So: tau 0 scores accuracy .95, balanced .75;
# tau 0.25 scores .90, balanced .944; no tau does better on both.
TRAIN = np.array([0] * 900 + [1] * 100)
MARGINS = np.array([-1.0] * 80 + [-0.3] * 10 + [-0.5] * 5 + [0.5] * 5)
LABELS = np.array([0] * 90 + [1] * 10)
LOGITS = np.stack([np.zeros_like(MARGINS), MARGINS], 1)


def tau(**rule) -> float:
    bias, report = tune_logit_adjustment(LOGITS, LABELS, TRAIN, **rule)
    after = accuracies(LOGITS + bias, LABELS)  # the bias as shipped gives the figures the card reports
    assert after == pytest.approx((report["valid_accuracy_after"], report["valid_balanced_accuracy_after"]), abs=1e-4)
    assert (report["valid_accuracy_before"], report["valid_balanced_accuracy_before"]) == (0.95, 0.75)
    return report["tau"]


def test_balance_first_spends_at_most_the_allowed_accuracy():
    assert tau(max_acc_drop=0.01) == 0.0  # tau 0.25's balanced accuracy costs 5 points: too dear
    assert tau(max_acc_drop=0.05) == 0.25  # allowed: the smallest tau with the best balanced accuracy


def test_accuracy_first_keeps_accuracy_while_balanced_accuracy_clears_the_floor():
    assert tau(min_balanced=0.70) == 0.0  # tau 0 already clears 0.70 and is the most accurate
    assert tau(min_balanced=0.90) == 0.25  # only taus 0.25 to 0.45 clear 0.90: the smallest of the most accurate
    assert tau(min_balanced=0.99) == 0.25  # none clears it: the best balanced accuracy instead


def test_report_names_the_rule():
    _, first = tune_logit_adjustment(LOGITS, LABELS, TRAIN, min_balanced=0.7)
    _, default = tune_logit_adjustment(LOGITS, LABELS, TRAIN)
    assert first["rule"] == "accuracy first" and first["min_balanced_accuracy"] == 0.7
    assert default["rule"] == "balance first" and default["max_accuracy_drop"] == 0.01


def test_a_fixed_tau_is_the_bias_the_tuner_ships_for_that_tau():
    from tiltwatch.training.logit_adjustment import adjustment_bias

    bias = adjustment_bias(0.25, TRAIN, 2)
    assert bias[1] - bias[0] == pytest.approx(0.25 * np.log(901 / 101), abs=1e-5)  # the rare class's margin grows
    assert bias.sum() == pytest.approx(0, abs=1e-6)
    tuned, report = tune_logit_adjustment(LOGITS, LABELS, TRAIN, max_acc_drop=0.05)
    assert report["tau"] == 0.25 and np.array_equal(tuned, bias)
