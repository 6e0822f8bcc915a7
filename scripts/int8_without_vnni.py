"""Do the shipped int8 models answer the same on a CPU without int8 dot-product instructions?

On x86 without VNNI, onnxruntime's int8 kernels multiply uint8 by int8 with ``vpmaddubsw``,
which adds each pair of products into a saturating int16: weights of a full 8 bits could
overflow it and change the answer. This machine has VNNI, so the AVX2-only path is run under
QEMU's user-mode emulation of a Haswell (AVX2, FMA, no AVX-512, no VNNI): slow, but exact about
the arithmetic. ``save`` writes every shipped int8 model's logits for the first N FER+ valid
faces; ``compare`` prints, per model, how often two such files agree on the top label and
their largest differences.

Usage::

    python scripts/int8_without_vnni.py save native.npz DATA/ferplus 512
    qemu-x86_64 -cpu Haswell .venv/bin/python scripts/int8_without_vnni.py save avx2.npz DATA/ferplus 512
    python scripts/int8_without_vnni.py compare native.npz avx2.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tiltwatch, installed or not


def save(out: str, ferplus_root: str, n: int) -> None:
    from tiltwatch.training.datasets import load_ferplus
    from tiltwatch.vision.emotion import EmotionClassifier, shipped_models

    faces = load_ferplus(ferplus_root, "valid").subset(np.arange(n))
    logits = {}
    for name in [m for m in shipped_models() if m.endswith("_int8")]:
        clf = EmotionClassifier.load(name, threads=1)
        logits[name] = clf.session.run(None, {clf.input_name: clf.model_input(faces.images)})[0]
        np.savez(out, **logits)  # each model as it finishes: an emulated run is slow
        print(name, "saved", flush=True)


def compare(a_path: str, b_path: str) -> None:
    def probs(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    a, b = np.load(a_path), np.load(b_path)
    for name in sorted(set(a.files) & set(b.files)):
        pa, pb = probs(a[name]), probs(b[name])
        print(
            f"{name}: {len(pa)} faces, same top label {np.mean(pa.argmax(1) == pb.argmax(1)):.1%}, "
            f"largest probability difference {np.abs(pa - pb).max():.4f}, "
            f"largest logit difference {np.abs(a[name] - b[name]).max():.4f}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "save":
        save(args[1], args[2], int(args[3]))
    elif len(args) == 3 and args[0] == "compare":
        compare(args[1], args[2])
    else:
        raise SystemExit(__doc__.split("Usage::")[1].strip())
