"""The per-frame pipeline: detect -> mesh -> pose -> align -> emotion (one batch) -> track -> smooth.

Usage::

    from tiltwatch import Analyzer
    result = Analyzer().analyze(frame_bgr)          # FrameResult
    for face in result.faces: print(face.track_id, face.emotion.label, face.pose)
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from ..config import AnalyzerConfig
from ..sources.images import to_bgr8
from ..tracking.cuts import CutDetector
from ..tracking.smoothing import TrackSmoother
from ..tracking.tracker import FaceTracker
from ..types import Emotion, FaceResult, FrameResult
from ..vision.align import align_faces
from ..vision.detector import FaceDetector
from ..vision.emotion import EmotionClassifier
from ..vision.mesh import FaceMesher
from ..vision.pose import HeadPoseEstimator
from ..vision.quality import quality_parts, quality_score
from .stages import Classifier, Detector, Landmarker, PoseEstimator

TIMINGS_KEPT = 1000


class Analyzer:
    """Loads every model once; ``analyze`` one frame at a time, in order, for stable track ids.

    ``exclude``: returns a zone name for faces that must not be analysed (staff zones: the
    EU AI Act forbids inferring workers' emotions). Such faces are dropped right after
    detection, before mesh and emotion, and only counted per zone in ``FrameResult.excluded``.
    """

    def __init__(
        self,
        config: AnalyzerConfig | None = None,
        exclude: Callable[[FaceResult], str | None] | None = None,
        *,
        detector: Detector | None = None,
        landmarker: Landmarker | None = None,
        pose: PoseEstimator | None = None,
        classifier: Classifier | None = None,
        **overrides,
    ):
        """A stage given (``detector=`` ...) replaces the shipped backend that ``config`` would build."""
        cfg = (config or AnalyzerConfig()).model_copy(update=overrides)
        self.config = AnalyzerConfig.model_validate(cfg.model_dump())
        c = self.config
        self.detector = detector or FaceDetector(
            c.min_score, c.full_range, c.min_face_size, c.detect_max_side, c.detect_tiles, c.detect_both_ranges
        )
        self.mesher = (
            (landmarker or FaceMesher(threads=c.mesh_threads, passes=c.mesh_passes, tta=c.mesh_tta, retry=c.mesh_retry))
            if c.mesh
            else None
        )
        self.pose = pose or HeadPoseEstimator(calibrated=True)
        self.classifier = (classifier or EmotionClassifier.load(c.model, c.threads)) if c.emotion else None
        self.smoother = TrackSmoother(c.smooth_tau, pose_min_cutoff=c.pose_min_cutoff, pose_beta=c.pose_beta)
        self.tracker = self._new_tracker(c.fps) if c.track else None
        # a cut only matters to what carries over between frames: tracks, and faces followed by their mesh
        self.cuts = CutDetector(c.cut_threshold) if c.cut_threshold is not None and (c.track or c.mesh) else None
        self.exclude = exclude
        # seconds per stage of the last TIMINGS_KEPT frames (each result carries its own frame's in
        # ``speed``): bounded, so that a camera running for months does not grow
        self.timings: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=TIMINGS_KEPT))
        self._speed: dict[str, float] = {}
        self._frames = 0
        self._previous: list = []  # last frame's faces, for landmark tracking
        self._since_detect = 0
        self._last_probs: dict[int, tuple[int, np.ndarray]] = {}  # track id -> (frame, probs)

    def set_fps(self, fps: float) -> None:
        """Tell the tracker the source's frame rate (after a stride) before the first frame."""
        if self.tracker is not None and self._frames == 0:
            self.tracker = self._new_tracker(fps)

    def _new_tracker(self, fps: float) -> FaceTracker:
        return FaceTracker(fps, self.config.lost_seconds, look_gate=self.config.look_gate)

    @contextmanager
    def _timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[stage].append(dt)
        self._speed[stage] = self._speed.get(stage, 0.0) + dt

    def analyze(
        self, image: np.ndarray, timestamp: float | None = None, index: int | None = None, source: str = ""
    ) -> FrameResult:
        image = to_bgr8(image, source or "frame")
        self._speed = {}
        index = self._frames if index is None else index
        timestamp = index / self.config.fps if timestamp is None else timestamp
        h, w = image.shape[:2]
        if self.cuts is not None:
            with self._timed("cut"):
                if self.cuts.is_cut(image):  # another shot: last frame's faces and tracks are not here
                    self._previous = []
                    if self.tracker is not None:
                        self.tracker.new_scene()
        follow = self.mesher is not None and self._previous and self._since_detect < self.config.detect_every - 1
        excluded: Counter[str] = Counter()
        if follow:
            with self._timed("mesh"):
                faces = self._drop_excluded(self.mesher.follow(image, self._previous), excluded)
            self._since_detect += 1
        else:
            with self._timed("detect"):
                faces = self._drop_excluded(self.detector.detect(image), excluded)
            self._since_detect = 0
            if self.mesher is not None:
                with self._timed("mesh"):
                    # a tracked source's faces start from last frame's meshes; photos each on their own
                    # (and a landmarker that takes no ``previous`` still fits when there is none)
                    previous = self._previous if self.config.track else []
                    if previous:
                        self.mesher.refine(image, faces, previous)
                    else:
                        self.mesher.refine(image, faces)
        with self._timed("pose"):
            for f in faces:  # from the mesh; without one, coarser, from the detector's keypoints
                if f.landmarks is not None:
                    f.pose = self.pose.estimate(f.landmarks, image.shape)
                elif f.keypoints is not None:
                    f.pose = self.pose.estimate_from_keypoints(f.keypoints, image.shape)
        if self.tracker is not None:
            with self._timed("track"):
                self.tracker.update(faces, image)
        if self.classifier is not None and faces:
            self._classify(image, faces)
        with self._timed("quality"):
            for f in faces:
                f.quality_parts = quality_parts(image, f)
                f.quality = quality_score(f.quality_parts)
                f.abstained = f.quality < self.config.min_quality
        with self._timed("smooth"):
            self.smoother.update(faces, timestamp)
        self._frames += 1
        self._previous = faces
        return FrameResult(
            index=index,
            timestamp=timestamp,
            width=w,
            height=h,
            faces=faces,
            source=source,
            excluded=dict(excluded),
            detected=not follow,
            speed=self._speed,
        )

    def _classify(self, image: np.ndarray, faces: list[FaceResult]) -> None:
        """Emotion for every face that is due (all of them unless ``emotion_every`` > 1), in one batch."""
        every, n = self.config.emotion_every, self._frames
        due = [
            f
            for f in faces
            if f.track_id is None or f.track_id not in self._last_probs or n - self._last_probs[f.track_id][0] >= every
        ]
        fresh: dict[int, np.ndarray] = {}
        if due:
            with self._timed("align"):
                crops = align_faces(image, due, self.classifier.card.input_size)
            with self._timed("emotion"):
                probs = self.classifier.predict(crops, tta=self.config.emotion_tta)
            for f, p in zip(due, probs):
                fresh[id(f)] = p
                if f.track_id is not None and every > 1:
                    self._last_probs[f.track_id] = (n, p)
        for f in faces:
            p = fresh.get(id(f))
            f.emotion = Emotion(p if p is not None else self._last_probs[f.track_id][1], self.classifier.classes)
        if every > 1 and len(self._last_probs) > 4 * max(len(faces), 16):  # forget long-gone tracks
            live = {f.track_id for f in faces}
            self._last_probs = {k: v for k, v in self._last_probs.items() if k in live}

    def _drop_excluded(self, faces: list[FaceResult], counts: Counter) -> list[FaceResult]:
        if self.exclude is None:
            return faces
        kept = []
        for f in faces:
            zone = self.exclude(f)
            if zone is None:
                kept.append(f)
            else:
                counts[zone] += 1
        return kept

    def close(self) -> None:
        self.detector.close()
        if self.mesher is not None:
            self.mesher.close()
