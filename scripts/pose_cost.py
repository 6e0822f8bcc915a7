"""Per-frame cost of the detect, mesh and pose stages on a clip: the full-range detector with
the PnP solver alone, against both detector ranges with the calibrated pose (the defaults).

    python scripts/pose_cost.py CLIP [--frames 300]

Each frame runs through both analyzers in turn (same frames, same machine load); medians in ms.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from tiltwatch import Analyzer
from tiltwatch.vision.pose import HeadPoseEstimator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=300)
    args = ap.parse_args()
    before = Analyzer(track=False, emotion=False, smooth_tau=0, detect_both_ranges=False)
    before.pose = HeadPoseEstimator(calibrated=False)
    after = Analyzer(track=False, emotion=False, smooth_tau=0)
    cap = cv2.VideoCapture(args.clip)
    faces = {"before": 0, "after": 0}
    n = 0
    while n < args.frames:
        ok, frame = cap.read()
        if not ok:
            break
        faces["before"] += len(before.analyze(frame).faces)
        faces["after"] += len(after.analyze(frame).faces)
        n += 1
    print(f"{args.clip}: {n} frames {frame.shape[1]}x{frame.shape[0]}" if n else "no frames")
    for name, a in (("before", before), ("after", after)):
        stages = "  ".join(f"{s} {1000 * np.median(list(a.timings[s])):.2f}" for s in ("detect", "mesh", "pose"))
        total = sum(1000 * np.median(list(a.timings[s])) for s in ("detect", "mesh", "pose"))
        print(f"{name:>6}: {faces[name]} faces; median ms/frame {stages}  (sum {total:.2f})")


if __name__ == "__main__":
    main()
