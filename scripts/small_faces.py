"""Benchmark: how many small faces the detector finds in a wide frame, with and without tiles.

A stand-in for a floor camera: the middle frame of a real clip, shrunk k times and laid k x k
(so a 1280x720 frame holds k*k copies of every face at 1/k of its size). The faces found in
the original frame, mapped into each copy, are the ones to find. Prints, for each face size
and ``--tiles`` value, the faces found, the extra boxes, and the detector's median time.

Usage::

    python scripts/small_faces.py DATA/videos/yakhyo_headpose__in_video.mp4
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import supervision as sv

from tiltwatch.vision.detector import FaceDetector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clip")
    ap.add_argument("--max-side", type=int, default=640, help="as the analyzer's detect_max_side")
    ap.add_argument("--runs", type=int, default=20, help="timed calls per setting")
    args = ap.parse_args()
    cap = cv2.VideoCapture(args.clip)
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // 2)
    ok, frame = cap.read()
    if not ok:
        raise SystemExit(f"{args.clip}: cannot read a frame")
    h, w = frame.shape[:2]
    originals = [f.box for f in FaceDetector().detect(frame)]
    print(f"{args.clip}: {w}x{h}, {len(originals)} faces in the middle frame")
    print("| face size (px) | tiles | found | extra boxes | detector ms (median) |")
    print("| --- | --- | --- | --- | --- |")
    for k in (1, 2, 3, 4):
        wide = np.tile(cv2.resize(frame, (w // k, h // k), interpolation=cv2.INTER_AREA), (k, k, 1))
        truth = [
            b / k + np.array([i * (w // k), j * (h // k)] * 2) for b in originals for i in range(k) for j in range(k)
        ]
        size = int(np.median([b[2] - b[0] for b in truth]))
        for tiles in (1, 2, 3):
            det = FaceDetector(max_side=args.max_side, tiles=tiles)
            found = det.detect(wide)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                det.detect(wide)
                times.append(time.perf_counter() - t0)
            iou = (
                sv.box_iou_batch(np.stack(truth), np.stack([f.box for f in found]))
                if found
                else np.zeros((len(truth), 0))
            )
            hit, extra = int((iou > 0.3).any(1).sum()), int((~(iou > 0.3).any(0)).sum())
            print(f"| {size} | {tiles} | {hit}/{len(truth)} | {extra} | {np.median(times) * 1000:.1f} |")
            det.close()


if __name__ == "__main__":
    main()
