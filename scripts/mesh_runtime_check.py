"""mediapipe's two models as tiltwatch runs them (straight on the TF Lite runtime) against
mediapipe's own graphs (what tiltwatch ran before): BlazeFace, both ranges, on the photos and on
every 15th frame of ``--clips`` (shrunk to 640 px, as the analyzer does): whether both find as
many faces, their largest box or keypoint difference in pixels and the cost a call; then the
face mesh (``FaceLandmarkCpu``) on the same regions: the largest point difference in pixels,
whether both keep or reject the same faces, and each one's cost per face.

    python scripts/mesh_runtime_check.py DATA/aflw2000_dev [--clips DATA/videos/*] [--images 200] [--threads 1]

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
from tiltwatch.vision.mediapipe_models import BlazeFace, FaceDetectionGraph, LandmarkGraph
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


def frames(photos: list[Path], clips: list[Path]) -> list[np.ndarray]:
    """RGB photos, and every 15th of the first 300 frames of each clip shrunk to 640 px."""
    out = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos]
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        for i in range(300):
            ok, frame = cap.read()
            if not ok:
                break
            if i % 15 == 0:
                f = min(1.0, 640 / max(frame.shape[:2]))
                small = cv2.resize(
                    frame, (round(frame.shape[1] * f), round(frame.shape[0] * f)), interpolation=cv2.INTER_AREA
                )
                out.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    return out


def check_detector(images: list[np.ndarray]) -> None:
    for full_range in (True, False):
        ours, theirs = BlazeFace(full_range), FaceDetectionGraph(full_range)
        other_counts, faces, diffs, t_ours, t_theirs = 0, 0, [], 0.0, 0.0
        for rgb in images:
            t0 = time.perf_counter()
            b = sorted(theirs(rgb), key=lambda d: -d[1])
            t1 = time.perf_counter()
            a = sorted(ours(rgb), key=lambda d: -d[1])
            t_theirs, t_ours = t_theirs + t1 - t0, t_ours + time.perf_counter() - t1
            if len(a) != len(b):
                other_counts += 1
                continue
            h, w = rgb.shape[:2]
            for (box_a, _, kps_a), (box_b, _, kps_b) in zip(a, b):
                faces += 1
                box = np.abs((np.array(box_a) - box_b) * [w, h, w, h]).max()
                diffs.append(max(float(box), float(np.abs((kps_a - kps_b) * [w, h]).max())))
        name = "full range" if full_range else "short range"
        print(
            f"BlazeFace {name}: {len(images)} images, {other_counts} with another count; {faces} faces, box or "
            f"keypoint difference (pixels) median {np.median(diffs):.4f}, max {np.max(diffs):.4f}; ms a call: "
            f"mediapipe graph {t_theirs / len(images) * 1e3:.2f}, tiltwatch {t_ours / len(images) * 1e3:.2f}"
        )
        theirs.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path, help="a folder of face photos (AFLW2000's dev split)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--clips", nargs="*", type=Path, default=[], help="video clips for the detector's check")
    ap.add_argument("--threads", type=int, default=1, help="the landmark model's threads (the graph runs on its own)")
    args = ap.parse_args()
    print(machine_line(describe_machine()))
    check_detector(frames(sorted(args.folder.glob("*.jpg"))[: args.images], args.clips))
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
    print(f"face mesh: {n} regions: kept or rejected alike {n - disagree}/{n}")
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
