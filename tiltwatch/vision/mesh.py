"""The 468-point face mesh: mediapipe's landmark model, run on a region of interest we choose.

mediapipe's FaceMesh solution re-detects the face inside every image it is given. Here
the landmark model runs alone (:class:`~tiltwatch.vision.mediapipe_models.LandmarkGraph`), on
an ROI built from our detector's box and eye keypoints (or, between detections, from the
previous frame's landmarks): one model call per face, no hidden second detector. The model
itself gates out non-faces.

Usage::

    FaceMesher().refine(frame_bgr, faces)   # fills face.landmarks in place
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from ..types import FaceResult
from .mediapipe_models import LandmarkGraph

# Named mesh points (mediapipe's 468-point topology). "right" = the person's right.
RIGHT_EYE = (33, 133)
LEFT_EYE = (362, 263)
MOUTH = (61, 291, 13, 14)
NOSE_TIP = 1
EARS = (234, 454)  # tragion side of each cheek: right, left


def eye_mouth_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2): right-eye centre, left-eye centre, mouth centre from mesh points."""
    return keypoint_rows(landmarks[:, :2])[[0, 1, 3]].astype(np.float32)


def keypoint_rows(points: np.ndarray) -> np.ndarray:
    """(6, D) from (468, D) mesh points, in BlazeFace's keypoint order: right eye, left eye,
    nose tip, mouth, right ear, left ear (the head model's 3D points give the keypoints' 3D model)."""
    return np.stack(
        [
            points[list(RIGHT_EYE)].mean(0),
            points[list(LEFT_EYE)].mean(0),
            points[NOSE_TIP],
            points[list(MOUTH)].mean(0),
            points[EARS[0]],
            points[EARS[1]],
        ]
    )


def keypoints_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(6, 2) detector-style keypoints, so a face that later loses its mesh can still be aligned."""
    return keypoint_rows(landmarks[:, :2]).astype(np.float32)


@dataclass
class Roi:
    """A rotated square in pixels: centre, side, angle (radians, mediapipe's sign)."""

    cx: float
    cy: float
    side: float
    angle: float


def _angle(right_eye: np.ndarray, left_eye: np.ndarray) -> float:
    # mediapipe: rotation = target(0) - atan2(-(y1 - y0), x1 - x0), normalised to [-pi, pi)
    a = -math.atan2(-(left_eye[1] - right_eye[1]), left_eye[0] - right_eye[0])
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def roi_from_detection(face: FaceResult, scale: float = 1.5) -> Roi:
    """As mediapipe's face-landmark front graph: detection box, eyes for rotation, 1.5x, square."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    angle = _angle(face.keypoints[0], face.keypoints[1]) if face.keypoints is not None else 0.0
    return Roi((x1 + x2) / 2, (y1 + y2) / 2, scale * max(x2 - x1, y2 - y1), angle)


def roi_from_landmarks(landmarks: np.ndarray, scale: float = 1.5) -> Roi:
    """As mediapipe's landmarks-to-ROI: the mesh's extent in its own rotated frame, 1.5x, square."""
    angle = _angle(landmarks[33, :2], landmarks[263, :2])
    c, s = math.cos(angle), math.sin(angle)
    xy = landmarks[:, :2]
    centre = (xy.min(0) + xy.max(0)) / 2
    rel = xy - centre
    u = rel[:, 0] * c + rel[:, 1] * s  # coordinates along the face's own axes
    v = -rel[:, 0] * s + rel[:, 1] * c
    mid_u, mid_v = (u.min() + u.max()) / 2, (v.min() + v.max()) / 2
    cx = centre[0] + mid_u * c - mid_v * s
    cy = centre[1] + mid_u * s + mid_v * c
    return Roi(float(cx), float(cy), scale * float(max(np.ptp(u), np.ptp(v))), angle)


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """A detector-like box from mesh points (measured on real video: BlazeFace's box is the
    mesh's extent, a little wider and starting a little lower)."""
    (x1, y1), (x2, y2) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - 0.05 * w, y1 + 0.02 * h, x2 + 0.05 * w, y2], np.float32)


class FaceMesher:
    """Fills ``FaceResult.landmarks`` with (468, 3) points in image pixels.

    ``threads``: landmark graphs run side by side on a frame's faces (mediapipe releases the
    GIL while a graph runs: measured on 6 faces, 19.3 ms a frame on one, 13.4 ms on two).
    The model is stateless per ROI, so the split does not change any result.
    """

    def __init__(self, roi_scale: float = 1.5, threads: int = 2):
        self.roi_scale = roi_scale
        face = _warm_up_face()  # each graph meets its first face (and logs about it) at start-up
        self._graphs = [LandmarkGraph(warm_up=face) for _ in range(max(1, threads))]
        self._pool = ThreadPoolExecutor(len(self._graphs) - 1, "mesh") if len(self._graphs) > 1 else None
        self._detector = None

    def landmarks_for_roi(self, image_bgr: np.ndarray, roi: Roi) -> np.ndarray | None:
        """(468, 3) points in image pixels for the face in ``roi``, or None if the model sees no face."""
        return _landmarks(self._graphs[0], image_bgr, roi)

    def landmarks_for_rois(self, image_bgr: np.ndarray, rois: list[Roi]) -> list[np.ndarray | None]:
        """Like :meth:`landmarks_for_roi` for many faces, split across the graphs."""
        if self._pool is None or len(rois) < 2:
            return [_landmarks(self._graphs[0], image_bgr, r) for r in rois]
        k = len(self._graphs)
        chunks = [rois[i::k] for i in range(k)]
        futures = [
            self._pool.submit(lambda g=g, c=c: [_landmarks(g, image_bgr, r) for r in c])
            for g, c in zip(self._graphs[1:], chunks[1:])
        ]
        results = [[_landmarks(self._graphs[0], image_bgr, r) for r in chunks[0]]] + [f.result() for f in futures]
        out: list[np.ndarray | None] = [None] * len(rois)
        for i, res in enumerate(results):
            out[i::k] = res
        return out

    def refine(self, image: np.ndarray, faces: list[FaceResult]) -> None:
        rois = [roi_from_detection(f, self.roi_scale) for f in faces]
        for face, lm in zip(faces, self.landmarks_for_rois(image, rois)):
            face.landmarks = lm

    def follow(self, image: np.ndarray, previous: list[FaceResult]) -> list[FaceResult]:
        """Landmark tracking: each previous face's mesh sets this frame's ROI; no detector runs.

        A face the mesh cannot follow, or never saw (dim, blurred, in profile), is held at its
        last box without a mesh until the next detection frame keeps or drops it. Dropping it
        instead made such faces blink (seen one frame in three) and never get a track id.
        """
        meshed = [p for p in previous if p.landmarks is not None]
        found = iter(self.landmarks_for_rois(image, [roi_from_landmarks(p.landmarks, self.roi_scale) for p in meshed]))
        out = []
        for p in previous:
            lm = next(found) if p.landmarks is not None else None
            if lm is None:  # held: keypoints (the detector's, or from its last mesh) still align it
                kp = p.keypoints if p.keypoints is not None else keypoints_from_landmarks(p.landmarks)
                out.append(FaceResult(box=p.box.copy(), score=p.score, keypoints=kp))
            else:
                out.append(FaceResult(box=box_from_landmarks(lm), score=p.score, landmarks=lm))
        return out

    def landmarks_in_crop(self, crop_bgr: np.ndarray) -> np.ndarray | None:
        """Mesh of the largest face in an image (detects it first); None when there is none."""
        from .detector import FaceDetector

        if self._detector is None:
            self._detector = FaceDetector(min_score=0.3, full_range=False)
        faces = self._detector.detect(crop_bgr)
        if not faces:
            return None
        best = max(faces, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))
        return self.landmarks_for_roi(crop_bgr, roi_from_detection(best, self.roi_scale))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for g in self._graphs:
            g.close()
        if self._detector is not None:
            self._detector.close()


def _landmarks(graph: LandmarkGraph, image_bgr: np.ndarray, roi: Roi) -> np.ndarray | None:
    """One landmark-model run on ``roi``; points in image pixels, or None when it sees no face."""
    h, w = image_bgr.shape[:2]
    # hand the graph only a window around the ROI (a full-frame copy per face would cost more)
    half = roi.side * 0.75
    x0, y0 = max(int(roi.cx - half), 0), max(int(roi.cy - half), 0)
    x1, y1 = min(int(roi.cx + half) + 1, w), min(int(roi.cy + half) + 1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = cv2.cvtColor(image_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
    cw, ch = x1 - x0, y1 - y0
    pts = graph(crop, ((roi.cx - x0) / cw, (roi.cy - y0) / ch, roi.side / cw, roi.side / ch, roi.angle))
    if pts is None:
        return None
    return np.column_stack([pts[:, 0] * cw + x0, pts[:, 1] * ch + y0, pts[:, 2] * cw]).astype(np.float32)


def _warm_up_face() -> tuple[np.ndarray, tuple[float, float, float, float, float]]:
    """A real face and its ROI (skimage's astronaut), so each graph meets its first face at start-up."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[20:230, 120:330]), (0.5, 0.5, 0.76, 0.76, 0.0)
