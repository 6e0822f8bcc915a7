"""Cost of the pose stage per face: the PnP solver alone against the calibrated pose (solver,
polynomials and network), on the head model projected at a few poses (no camera, no mesh model).

    python scripts/pose_face_cost.py [--runs 5] [--faces 500]

Prints the best of ``runs`` runs of ``faces`` faces, microseconds per face; shared or busy CPUs
make it noisy (the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tiltwatch.types import Pose
from tiltwatch.vision.pose import HeadPoseEstimator, rotation_from_pose


def faces(est: HeadPoseEstimator, n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        r = rotation_from_pose(Pose(yaw=(i * 37) % 120 - 60, pitch=(i * 17) % 50 - 25, roll=(i * 11) % 40 - 20))
        pts = est.model @ r.T + np.array([0, 0, 8.0])
        uv = pts[:, :2] / pts[:, 2:] * 800 + 320
        out.append(np.column_stack([uv, pts[:, 2] * 100]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--faces", type=int, default=500)
    args = ap.parse_args()
    for name, est in (("solver alone", HeadPoseEstimator()), ("calibrated", HeadPoseEstimator(calibrated=True))):
        landmarks = faces(est, args.faces)
        best = float("inf")
        for _ in range(args.runs):
            t = time.perf_counter()
            for lm in landmarks:
                est.estimate(lm, (640, 640, 3))
            best = min(best, time.perf_counter() - t)
        print(f"{name:>12}: {1e6 * best / args.faces:.0f} us per face (best of {args.runs} runs of {args.faces})")


if __name__ == "__main__":
    main()
