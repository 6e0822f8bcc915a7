"""The 468-point face mesh: mediapipe's landmark model, run on a region of interest we choose.

mediapipe's FaceMesh solution re-detects the face inside every image it is given. Here
the landmark model runs alone (:class:`~tiltwatch.vision.mediapipe_models.LandmarkModel`), on
an ROI built from our detector's box and eye keypoints (or, between detections, from the
previous frame's landmarks): each face cut out of the frame as mediapipe's own graph cuts it
(a rotated square, 192x192, edges replicated), no hidden second detector. The model itself gates out non-faces.

Usage::

    FaceMesher().refine(frame_bgr, faces)   # fills face.landmarks in place
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import supervision as sv

from ..types import FaceResult
from .mediapipe_models import LandmarkModel

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


def _previous_meshes(faces: list[FaceResult], previous: Sequence[FaceResult], min_iou: float = 0.5) -> list:
    """For each detected face, the mesh of the last frame's face it overlaps (box IoU at least
    ``min_iou``; pairs taken greedily, most overlap first, each face of either frame at most once),
    or None."""
    meshed = [p for p in previous if p.landmarks is not None]
    out: list = [None] * len(faces)
    if not faces or not meshed:
        return out
    iou = sv.box_iou_batch(np.stack([f.box for f in faces]), np.stack([p.box for p in meshed]))
    used: set[int] = set()
    for flat in np.argsort(iou, axis=None)[::-1]:
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < min_iou:
            break
        if out[i] is None and j not in used:
            out[i] = meshed[j].landmarks
            used.add(int(j))
    return out


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """A detector-like box from mesh points (measured on real video: BlazeFace's box is the
    mesh's extent, a little wider and starting a little lower)."""
    (x1, y1), (x2, y2) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - 0.05 * w, y1 + 0.02 * h, x2 + 0.05 * w, y2], np.float32)


class FaceMesher:
    """Fills ``FaceResult.landmarks`` with (468, 3) points in image pixels.

    On a detected face (:meth:`refine`), more work buys a truer mesh, measured on AFLW2000's dev
    split (docs/head_pose.md): ``passes`` = 2 runs it again on the region its first points give,
    the one it is followed by between detections; ``tta`` averages it with five more views (its
    mirror image, a region a tenth smaller and one a tenth larger, each also mirrored); ``retry``
    tries a face the model rejects (mostly in profile) in other regions.

    ``threads``: the CPU threads the landmark model runs on. Two cut a face from 1.4 to 0.8 ms
    on an idle 2-core machine, but in a run they compete with the encoder and with other
    streams' models: on the group clip one thread gave 29.8 fps against 25.4 with video, and
    12.8 against 7.6 a stream with four streams (docs/reference/benchmarks.md).
    """

    def __init__(
        self, roi_scale: float = 1.5, threads: int = 1, passes: int = 1, tta: bool = False, retry: bool = False
    ):
        self.roi_scale = roi_scale
        self.passes, self.tta, self.retry = passes, tta, retry
        self._model = LandmarkModel(threads=max(1, threads))
        self._detector = None

    def landmarks_for_roi(self, image_bgr: np.ndarray, roi: Roi, mirrored: bool = False) -> np.ndarray | None:
        """(468, 3) points in image pixels for the face in ``roi``, or None if the model sees no face
        (or the region hardly meets the frame); ``mirrored``: found on the mirror image of the
        region, given back as the same face's points."""
        h, w = image_bgr.shape[:2]
        if not _inside(roi, w, h):
            return None
        points, presence = self._model(_crop(image_bgr, roi, mirrored))
        if presence < PRESENCE:
            return None
        if mirrored:  # back to the unmirrored crop, each point given its mirror partner's index
            points = points[mirror_index()]
            points[:, 0] = 1.0 - points[:, 0]
        return _to_image(points, roi)

    def landmarks_for_rois(
        self, image_bgr: np.ndarray, rois: list[Roi], mirrored: bool = False
    ) -> list[np.ndarray | None]:
        """:meth:`landmarks_for_roi` for each of ``rois``."""
        return [self.landmarks_for_roi(image_bgr, r, mirrored) for r in rois]

    def refine(self, image: np.ndarray, faces: list[FaceResult], previous: Sequence[FaceResult] = ()) -> None:
        """Mesh each detected face. ``previous``: the last frame's faces; a detected face that
        overlaps one with a mesh starts from that mesh's region, as it would have been followed,
        so a camera's detection frames read like the frames between them (and like a second pass)."""
        boxes = [roi_from_detection(f, self.roi_scale) for f in faces]
        followed = _previous_meshes(faces, previous)
        rois = [roi_from_landmarks(m, self.roi_scale) if m is not None else b for m, b in zip(followed, boxes)]
        found = self.landmarks_for_rois(image, rois)
        again = [i for i, lm in enumerate(found) if lm is None and followed[i] is not None]
        for i, lm in zip(again, self.landmarks_for_rois(image, [boxes[i] for i in again])):
            found[i] = lm  # the last frame's region no longer held the face: the detector's box
        if self.retry:
            found = [lm if lm is not None else self._retry(image, f) for f, lm in zip(faces, found)]
        meshed = [i for i, lm in enumerate(found) if lm is not None]
        for _ in range(self.passes - 1):
            again = self.landmarks_for_rois(image, [roi_from_landmarks(found[i], self.roi_scale) for i in meshed])
            for i, lm in zip(meshed, again):
                found[i] = lm if lm is not None else found[i]
        if self.tta:
            self._average_views(image, found, meshed)
        for face, lm in zip(faces, found):
            face.landmarks = lm

    # the views averaged with a mesh by ``tta``: (region side as a multiple of its own, mirrored)
    TTA_VIEWS = ((1.0, True), (0.9, False), (0.9, True), (1.1, False), (1.1, True))

    def _average_views(self, image: np.ndarray, found: list, meshed: list[int]) -> None:
        rois = [roi_from_landmarks(found[i], self.roi_scale) for i in meshed]
        sums = {i: found[i].astype(np.float64) for i in meshed}
        counts = dict.fromkeys(meshed, 1)
        for k, mirrored in self.TTA_VIEWS:
            views = [Roi(r.cx, r.cy, r.side * k, r.angle) for r in rois]
            for i, lm in zip(meshed, self.landmarks_for_rois(image, views, mirrored)):
                if lm is not None:
                    sums[i] += lm
                    counts[i] += 1
        for i in meshed:
            found[i] = (sums[i] / counts[i]).astype(np.float32)

    # other regions for a face the model rejects: (side as a multiple of the box's, keep the eyes' angle)
    RETRY_REGIONS = ((1.5, False), (1.8, True), (1.8, False), (1.25, True), (2.1, False))

    def _retry(self, image: np.ndarray, face: FaceResult) -> np.ndarray | None:
        box = roi_from_detection(face, 1.0)
        for scale, keep_angle in self.RETRY_REGIONS:
            lm = self.landmarks_for_roi(image, Roi(box.cx, box.cy, box.side * scale, box.angle if keep_angle else 0.0))
            if lm is not None:
                return lm
        return None

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
            self._detector = FaceDetector(full_range=False)
        faces = self._detector.detect(crop_bgr)
        if not faces:
            return None
        best = max(faces, key=lambda f: float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))
        return self.landmarks_for_roi(crop_bgr, roi_from_detection(best, self.roi_scale))

    def close(self) -> None:
        self._model.close()
        if self._detector is not None:
            self._detector.close()


#: the model's face-presence score at which mediapipe keeps a mesh
PRESENCE = 0.5


def _inside(roi: Roi, w: int, h: int, min_side: int = 8) -> bool:
    """Whether at least ``min_side`` pixels each way of the ROI's window (1.5 x its side) lie in the frame."""
    half = roi.side * 0.75
    x0, y0 = max(int(roi.cx - half), 0), max(int(roi.cy - half), 0)
    x1, y1 = min(int(roi.cx + half) + 1, w), min(int(roi.cy + half) + 1, h)
    return x1 - x0 >= min_side and y1 - y0 >= min_side


def _corners(roi: Roi) -> np.ndarray:
    """Three corners of the ROI's rotated square in image pixels, matching the crop's (0, S), (0, 0), (S, 0)."""
    return cv2.boxPoints(((roi.cx, roi.cy), (roi.side, roi.side), math.degrees(roi.angle)))[:3]


def _crop(image_bgr: np.ndarray, roi: Roi, mirrored: bool = False) -> np.ndarray:
    """The ROI as the model's 192x192 RGB input, cut as mediapipe's ImageToTensorCalculator cuts it
    (bilinear, edges replicated); ``mirrored``: its mirror image."""
    s = LandmarkModel.SIZE
    corners = [[s, s], [s, 0], [0, 0]] if mirrored else [[0, s], [0, 0], [s, 0]]
    m = cv2.getAffineTransform(_corners(roi), np.float32(corners))
    crop = cv2.warpAffine(image_bgr, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def _to_image(points: np.ndarray, roi: Roi) -> np.ndarray:
    """(468, 3) crop-relative points into image pixels (z in the same scale), as mediapipe's
    LandmarkProjectionCalculator maps them."""
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
    return np.column_stack(
        [roi.cx + (c * x - s * y) * roi.side, roi.cy + (s * x + c * y) * roi.side, points[:, 2] * roi.side]
    ).astype(np.float32)


@cache
def mirror_index() -> np.ndarray:
    """Each mesh point's mirror partner (the person's right eye's corner for the left's, ...)."""
    from .pose import HeadPoseEstimator, mirror_permutation  # pose builds on this module

    return mirror_permutation(HeadPoseEstimator().model)
