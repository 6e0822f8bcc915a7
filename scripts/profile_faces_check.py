"""Detections on video clips with the full-range BlazeFace alone and with both ranges
(``FaceDetector(both_ranges=True)``): faces per clip, the faces only the second model adds, how
many of those the face mesh rejects, and the detector's cost per frame.

    python scripts/profile_faces_check.py CLIP... [--sheet added.png] [--max-side 640]

The sheet shows every added face (crop with its frame number), for a person to judge whether
each is a face or a false alarm.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from tiltwatch.vision.detector import FaceDetector
from tiltwatch.vision.mesh import FaceMesher


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--sheet", type=Path, help="write a contact sheet of the added faces here")
    ap.add_argument("--max-side", type=int, default=640, help="as the analyzer's detect_max_side")
    args = ap.parse_args()
    full = FaceDetector(max_side=args.max_side)
    both = FaceDetector(max_side=args.max_side, both_ranges=True)
    mesher = FaceMesher(threads=1)
    crops = []
    for clip in args.clips:
        cap = cv2.VideoCapture(str(clip))
        n = n_full = n_both = rejected = 0
        t_full, t_both = [], []
        size = (0, 0)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            size = frame.shape[:2]
            t0 = time.perf_counter()
            a = full.detect(frame)
            t1 = time.perf_counter()
            b = both.detect(frame)
            t2 = time.perf_counter()
            t_full.append(t1 - t0)
            t_both.append(t2 - t1)
            added = b[len(a) :]  # both_ranges keeps the full-range faces first and as they were
            mesher.refine(frame, added)
            rejected += sum(f.landmarks is None for f in added)
            for f in added:
                x1, y1, x2, y2 = (int(v) for v in f.box)
                crop = cv2.resize(frame[max(y1, 0) : y2, max(x1, 0) : x2], (96, 96))
                label = f"{n} {f.score:.2f}{'' if f.landmarks is None else ' m'}"  # m: the mesh took it
                cv2.putText(crop, label, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
                crops.append(crop)
            n, n_full, n_both = n + 1, n_full + len(a), n_both + len(b)
        h, w = size if n else (0, 0)
        print(
            f"{clip.name}: {n} frames {w}x{h}, faces full-range {n_full}, both ranges {n_both} "
            f"(+{n_both - n_full}, mesh rejects {rejected} of those); detector ms/frame median "
            f"{1000 * np.median(t_full):.1f} -> {1000 * np.median(t_both):.1f}"
        )
    if args.sheet and crops:
        rows = [
            np.hstack(crops[i : i + 12] + [np.zeros_like(crops[0])] * (12 - len(crops[i : i + 12])))
            for i in range(0, len(crops), 12)
        ]
        cv2.imwrite(str(args.sheet), np.vstack(rows[:40]))
        print(f"{len(crops)} added faces -> {args.sheet}")


if __name__ == "__main__":
    main()
