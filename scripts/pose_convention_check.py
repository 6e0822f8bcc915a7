"""Which Euler order do AFLW2000-3D's pose labels use? Check them against the dataset's own
labelled 3D landmarks (``pt3d_68``, from the same 3DDFA fit as the angles).

    python scripts/pose_convention_check.py AFLW2000_DEV

For each order and sign choice, every image's 68 landmarks (image x, y and depth; depth negated
into tiltwatch's camera frame, x right, y down, z away) are fitted by a rotation to the mean
shape of the near-frontal images (Kabsch), and that rotation is compared with the one its labels
give in that order (after one constant offset, fitted on the near-frontal images). The right order
agrees at every yaw; prints the median and 90th percentile angle between the two by |yaw| bin,
best orders first. The order in use is ``tiltwatch.training.pose_eval.rotation_from_dataset_angles``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from scipy.spatial.transform import Rotation

from tiltwatch.training.pose_eval import load_pose_dataset, rotation_from_dataset_angles

BINS = ((0, 30), (30, 60), (60, 100))


def kabsch(template: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations R with points[i] ~ R @ template (both centred, unit size)."""
    h = np.einsum("pi,npj->nij", template, points)
    u, _, vt = np.linalg.svd(h)
    d = np.tile(np.eye(3), (len(h), 1, 1))
    d[:, 2, 2] = np.sign(np.linalg.det(np.einsum("nji,nkj->nik", vt, u)))
    return np.einsum("nji,njk,nlk->nil", vt, d, u)


def agreement(labels: np.ndarray, fitted: np.ndarray, frontal: np.ndarray, yaw: np.ndarray) -> list[str]:
    offset = np.einsum("nji,njk->nik", labels[frontal], fitted[frontal]).mean(0)
    u, _, vt = np.linalg.svd(offset)
    angle = np.degrees(Rotation.from_matrix(np.einsum("nji,njk->nik", labels @ (u @ vt), fitted)).magnitude())
    cells = [angle[(yaw >= lo) & (yaw < hi)] for lo, hi in BINS]
    return [f"{np.median(a):5.1f} {np.percentile(a, 90):5.1f}" for a in cells]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path, help="an AFLW2000-3D folder (imageNNNNN.jpg + .mat)")
    args = ap.parse_args()
    samples = load_pose_dataset(f"aflw2000:{args.data}")
    true = np.stack([s.angles for s in samples])  # yaw, pitch, roll, degrees
    pts = np.stack([loadmat(str(s.image.with_suffix(".mat")))["pt3d_68"][:3].T for s in samples]) * [1, 1, -1.0]
    pts -= pts.mean(1, keepdims=True)
    pts /= np.sqrt((pts**2).sum(-1).mean(1))[:, None, None]
    frontal = np.abs(true).max(1) < 8
    fitted = kabsch(pts[frontal].mean(0), pts)
    yaw = np.abs(true[:, 0])
    rows = [("in use (pose_eval)", agreement(rotation_from_dataset_angles(true), fitted, frontal, yaw))]
    for order in ("XYZ", "ZYX", "YXZ", "ZXY", "XZY", "YZX"):
        for signs in itertools.product((1, -1), repeat=3):
            about = {"X": signs[0] * true[:, 1], "Y": signs[1] * true[:, 0], "Z": signs[2] * true[:, 2]}
            r = Rotation.from_euler(order, np.stack([about[c] for c in order], 1), degrees=True).as_matrix()
            name = f"{order} signs x{signs[0]:+d} y{signs[1]:+d} z{signs[2]:+d}"
            rows.append((name, agreement(r, fitted, frontal, yaw)))
    print(f"{len(samples)} images; degrees between label and landmark rotation, median and 90th percentile")
    print(f"{'order':>31}  " + "  ".join(f"|yaw| {lo}-{hi:<6}" for lo, hi in BINS))
    ranked = sorted(rows[1:], key=lambda r: float(r[1][2].split()[0]))
    before = [r for r in ranked if r[0] == "ZYX signs x-1 y+1 z+1"]  # the order tiltwatch assumed until #24
    for name, cells in rows[:1] + ranked[:6] + [(f"{n} (before)", c) for n, c in before]:
        print(f"{name:>31}  " + "  ".join(f"{c:>13}" for c in cells))


if __name__ == "__main__":
    main()
