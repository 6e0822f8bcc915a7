"""How much too sharp a temperature fitted on faces a model was trained on comes out.

For models trained on FER+ train only, fit the temperature on train (seen) and on valid
(unseen); the ratio unseen / seen is the ``--seen-factor`` that ``tiltwatch calibrate`` applies
to a model trained on valid too, whose valid split is then seen. Prints one line per model and
the mean ratio.

Usage::

    python scripts/seen_factor.py DATA/ferplus [MODEL ...]
"""

from __future__ import annotations

import sys

import numpy as np

from tiltwatch.emotions import EMOTIONS
from tiltwatch.training.calibration import fit_temperature
from tiltwatch.training.datasets import load_dataset
from tiltwatch.training.evaluate import predict_probs
from tiltwatch.vision.emotion import EmotionClassifier

#: the shipped models trained on FER+ train alone (their cards' ``training.data``)
TRAIN_ONLY = ("ferplus_fer2013_vgg_small", "ferplus_fer2013_vgg_deep", "ferplus_fer2013_vgg_deep_x4_int8")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("Usage::")[1].strip())
    root, models = sys.argv[1], sys.argv[2:] or TRAIN_ONLY
    splits = {s: load_dataset(f"ferplus:{root}", s) for s in ("train", "valid")}
    ratios = []
    for name in models:
        clf = EmotionClassifier.load(name)
        clf.temperature = 1.0
        t = {}
        for split, fs in splits.items():
            logits = np.log(np.maximum(predict_probs(clf, fs.images, EMOTIONS, tta=False), 1e-12))
            t[split] = fit_temperature(logits, fs.labels)
        ratios.append(t["valid"] / t["train"])
        print(f"{name}: T on train (seen) {t['train']:.4f}, on valid (unseen) {t['valid']:.4f}, ratio {ratios[-1]:.3f}")
    print(f"seen factor (mean ratio over {len(ratios)} models): {np.mean(ratios):.3f}")


if __name__ == "__main__":
    main()
