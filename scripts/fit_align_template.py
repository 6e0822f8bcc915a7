"""Measure where FER+ crops put the eyes and mouth: the alignment template of tiltwatch.vision.align.

Runs the face mesh on FER+ training crops (upscaled 4x) and prints the median right-eye,
left-eye and mouth centres in 48x48 coordinates. The live pipeline warps each face so
those points land there, so its crops are framed like the crops the model trained on.

Usage: python scripts/fit_align_template.py DATA/ferplus [N]
"""

import sys

import cv2
import numpy as np

from tiltwatch.training.datasets import load_ferplus
from tiltwatch.vision.mesh import FaceMesher, eye_mouth_points


def main(root: str, n: int = 1500) -> None:
    fs = load_ferplus(root, "train")
    rng = np.random.default_rng(0)
    mesher = FaceMesher()
    pts = []
    for i in rng.choice(len(fs), n, replace=False):
        big = cv2.cvtColor(cv2.resize(fs.images[i], (192, 192), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
        lm = mesher.landmarks_in_crop(big)
        if lm is not None:
            pts.append(eye_mouth_points(lm) / 4)
    pts = np.stack(pts)
    med = np.median(pts, 0)
    print(f"mesh found a face in {len(pts)}/{n} crops; median points (48x48):")
    print(np.round(med, 2).tolist())
    print("spread (IQR px):", np.round(np.subtract(*np.percentile(pts, [75, 25], 0)), 2).tolist())


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
