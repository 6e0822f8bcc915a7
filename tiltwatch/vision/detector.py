"""Face detection with mediapipe's BlazeFace (the full-range model by default).

BlazeFace sees the frame at 192x192, so in a wide camera view faces under about 70 pixels
(of 1280) are lost. ``tiles=N`` also runs it on an N x N grid of overlapping tiles and adds
the faces only they find (one box per face), for the small faces of a wide floor camera.

The full-range model misses many faces turned to half-profile and profile (on AFLW2000-3D it
finds 53% of faces beyond 60 degrees of yaw); the short-range model, which sees the frame at
128x128, finds 97% of them. ``both_ranges=True`` runs both on the whole frame and adds the
faces only the short-range model finds with a score of at least :data:`NEAR_MIN_SCORE`, the
same way tiles add theirs (see docs/head_pose.md).

Usage::

    faces = FaceDetector().detect(frame_bgr)   # list[FaceResult] with box, score, keypoints
    faces = FaceDetector(tiles=2).detect(wide_frame)   # + a 2x2 grid of tiles: small faces too
    faces = FaceDetector(both_ranges=True).detect(frame)   # + near faces in profile
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from ..types import FaceResult
from .mediapipe_models import BlazeFace

#: a face only the short-range model finds is added when it scores at least this: on seven
#: video clips every such detection that was not a face scored 0.61 or less, while on
#: AFLW2000-3D this keeps 98.7% of faces found (92.6% beyond 60 degrees of yaw; 99.4 / 96.7 at 0.5)
NEAR_MIN_SCORE = 0.65


class FaceDetector:
    """BlazeFace (:class:`~tiltwatch.vision.mediapipe_models.BlazeFace`); no cap on faces per frame.

    ``full_range=True`` (model 1) finds small and distant faces up to about 5 m;
    ``False`` uses the short-range model (faster, faces within about 2 m).
    ``both_ranges=True`` (with ``full_range``) also runs the short-range model on the whole frame
    and adds the faces it alone finds: near faces in half-profile and profile.
    """

    def __init__(
        self,
        min_score: float | None = None,
        full_range: bool = True,
        min_size: int = 12,
        max_side: int | None = None,
        tiles: int = 1,
        both_ranges: bool = False,
    ):
        if tiles < 1:
            raise ValueError(f"tiles must be at least 1, got {tiles}")
        self.min_score = min_score
        self.min_size = min_size
        self.max_side = max_side
        self.tiles = tiles
        self._model = BlazeFace(full_range=full_range, min_score=min_score)
        self._near = BlazeFace(full_range=False, min_score=min_score) if both_ranges and full_range else None

    def detect(self, image: np.ndarray) -> list[FaceResult]:
        """Faces in a BGR frame; with ``tiles`` > 1, plus the faces the tiles find that the whole
        frame did not (tiles only add faces: a face the whole frame found keeps its box)."""
        faces = self._detect(image)
        if self._near is not None:
            near = [f for f in self._detect(image, self._near) if f.score >= max(NEAR_MIN_SCORE, self.min_score or 0.0)]
            faces = _add_new(faces, near)
        if self.tiles == 1:
            return faces
        extra = []
        for x0, y0, x1, y1 in _tile_grid(image.shape[1], image.shape[0], self.tiles):
            for f in self._detect(image[y0:y1, x0:x1]):
                f.box += np.array([x0, y0, x0, y0], np.float32)
                f.keypoints += np.array([x0, y0], np.float32)
                extra.append(f)
        return _add_new(faces, extra)

    def _detect(self, image: np.ndarray, model=None) -> list[FaceResult]:
        h, w = image.shape[:2]
        if self.max_side and max(h, w) > self.max_side:  # outputs are relative: boxes map back for free
            f = self.max_side / max(h, w)
            image = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        faces = []
        for (bx, by, bw, bh), score, rel_kps in (model or self._model)(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)):
            x1, y1 = max(bx * w, 0.0), max(by * h, 0.0)
            x2, y2 = min((bx + bw) * w, w), min((by + bh) * h, h)
            if x2 - x1 < self.min_size or y2 - y1 < self.min_size:
                continue
            kps = (rel_kps * np.array([w, h], np.float32)).astype(np.float32)
            faces.append(FaceResult(box=np.array([x1, y1, x2, y2], np.float32), score=score, keypoints=kps))
        return faces

    def close(self) -> None:
        self._model.close()
        if self._near is not None:
            self._near.close()


#: tiles overlap by this share of a tile, so a face cut by one tile's edge is whole in its neighbour
TILE_OVERLAP = 0.25


def _tile_grid(w: int, h: int, n: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of an n x n grid of overlapping tiles covering a w x h frame."""
    tw, th = w / (n - (n - 1) * TILE_OVERLAP), h / (n - (n - 1) * TILE_OVERLAP)
    xs = [round(i * tw * (1 - TILE_OVERLAP)) for i in range(n)]
    ys = [round(i * th * (1 - TILE_OVERLAP)) for i in range(n)]
    return [(x, y, min(round(x + tw), w), min(round(y + th), h)) for y in ys for x in xs]


def _add_new(kept: list[FaceResult], extra: list[FaceResult], overlap: float = 0.5) -> list[FaceResult]:
    """``kept`` plus each of ``extra`` (best score first) that overlaps none already there by more
    than ``overlap`` of the smaller box: a face seen in two tiles, or cut by a tile's edge (a part
    inside the whole), counts once."""
    kept = list(kept)
    for f in sorted(extra, key=lambda f: -f.score):
        if (
            not kept
            or sv.box_iou_batch(f.box[None], np.stack([k.box for k in kept]), overlap_metric=sv.OverlapMetric.IOS).max()
            <= overlap
        ):
            kept.append(f)
    return kept
