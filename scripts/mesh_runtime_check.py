"""The face mesh as tiltwatch runs it (mediapipe's landmark model straight on the TF Lite
runtime, a frame's faces in one batch) against mediapipe's own ``FaceLandmarkCpu`` graph (what
tiltwatch ran before), on the same regions: the largest point difference in pixels, whether
both keep or reject the same faces, and each one's cost per face.

    python scripts/mesh_runtime_check.py DATA/aflw2000_dev [--images 200] [--threads 1]

Each detected face is tried in three regions: the detector's, the same turned by 0.3 radian,
and the detector's on the mirror image (the photo preset's mirror view; the earlier path's
mirror was a pixel off: it flipped x to W - x, where a flipped array's column x is W - 1 - x). Then the cost a face of
one pass, two, and the photo preset's mesh work (two passes, six views, retry), median of 50
on the first photo's face.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from tiltwatch.config import PHOTO_MESH
from tiltwatch.machine import describe_machine, machine_line
from tiltwatch.vision.detector import FaceDetector
from tiltwatch.vision.mediapipe_models import LandmarkGraph
from tiltwatch.vision.mesh import FaceMesher, Roi, mirror_index, roi_from_detection


def graph_landmarks(graph: LandmarkGraph, image_bgr: np.ndarray, roi: Roi, mirrored: bool) -> np.ndarray | None:
    """mediapipe's graph on one region of a BGR image, in image pixels, as the earlier path ran it."""
    h, w = image_bgr.shape[:2]
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    cx, angle = roi.cx / w, roi.angle
    if mirrored:
        rgb, cx, angle = np.ascontiguousarray(rgb[:, ::-1]), 1.0 - cx, -angle
    pts = graph(rgb, (cx, roi.cy / h, roi.side / w, roi.side / h, angle))
    if pts is None:
        return None
    if mirrored:
        pts = pts[mirror_index()] * np.array([-1.0, 1.0, 1.0], np.float32) + np.array([1.0, 0.0, 0.0], np.float32)
    return np.column_stack([pts[:, 0] * w, pts[:, 1] * h, pts[:, 2] * w])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, help="a folder of face photos (AFLW2000's dev split)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="the landmark model's threads (the graph runs on its own)")
    args = ap.parse_args()
    detector, graph, mesher = FaceDetector(both_ranges=True), LandmarkGraph(), FaceMesher(threads=args.threads)
    views = ("the detector's region", "turned 0.3 radian", "mirrored")
    diffs: dict[str, list[float]] = {v: [] for v in views}
    disagree, n, t_graph, t_direct = 0, 0, 0.0, 0.0
    for path in sorted(args.folder.glob("*.jpg"))[: args.images]:
        image = cv2.imread(str(path))
        for face in detector.detect(image):
            box = roi_from_detection(face)
            turned = Roi(box.cx, box.cy, box.side, box.angle + 0.3)
            for view, roi, mirrored in zip(views, (box, turned, box), (False, False, True)):
                t0 = time.perf_counter()
                old = graph_landmarks(graph, image, roi, mirrored)
                t1 = time.perf_counter()
                new = mesher.landmarks_for_rois(image, [roi], mirrored)[0]
                t_graph, t_direct, n = t_graph + t1 - t0, t_direct + time.perf_counter() - t1, n + 1
                if (old is None) != (new is None):
                    disagree += 1
                elif old is not None:
                    diffs[view].append(float(np.abs(old[:, :2] - new[:, :2]).max()))
    print(machine_line(describe_machine()))
    print(f"{n} regions: kept or rejected alike {n - disagree}/{n}")
    for view, d in diffs.items():
        print(f"{view}: largest point difference (pixels), median {np.median(d):.4f}, max {np.max(d):.4f}")
    print(f"ms a face, one at a time: mediapipe graph {t_graph / n * 1e3:.2f}, tiltwatch {t_direct / n * 1e3:.2f}")
    image = cv2.imread(str(sorted(args.folder.glob("*.jpg"))[0]))
    faces = detector.detect(image)
    photo = {k.removeprefix("mesh_"): v for k, v in PHOTO_MESH.items()}
    for name, settings in (("one pass", {}), ("two passes", {"passes": 2}), ("photo preset", photo)):
        mesher = FaceMesher(threads=args.threads, **settings)
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            mesher.refine(image, faces[:1])
            times.append(time.perf_counter() - t0)
        print(f"{name}: {np.median(times) * 1e3:.2f} ms a face ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
