"""The per-frame pipeline: detect -> mesh -> pose -> align -> emotion (one batch) -> track -> smooth.

Usage::

    from tiltwatch import Analyzer
    result = Analyzer().analyze(frame_bgr)          # FrameResult
    for face in result.faces: print(face.track_id, face.emotion.label, face.pose)
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from ..config import AnalyzerConfig
from ..sources.base import Frame
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


@dataclass
class _Pending:
    """A frame analysed up to its emotion model, which may still be running."""

    result: FrameResult  # faces without emotion, quality or smoothing yet
    image: np.ndarray
    job: Future | None = None  # this frame's batch of probabilities
    emotion_of: list[tuple[Future, int]] = field(default_factory=list)  # each face's (batch, row)


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
        # numpy's OpenBLAS spreads even the pose networks' small products over every core, and its
        # idle threads then spin (sched_yield) for more work, taking a core from the decoder, the
        # encoder and the emotion model: on 2 cores, 8 s of system time in a 300-frame run and
        # about a sixth of the frame rate. OpenCV's pool spins too (a few percent). Every stage has
        # a thread of its own already, so one thread each, process-wide
        threadpool_limits(1, user_api="blas")
        cv2.setNumThreads(1)
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
        self._worker: ThreadPoolExecutor | None = None  # the emotion model's thread, for ``stream``
        self._frames = 0
        self._previous: list = []  # last frame's faces, for landmark tracking
        self._since_detect = 0
        # track id -> (frame, batch, row): where the track's last probabilities are (or will be)
        self._last_probs: dict[int, tuple[int, Future, int]] = {}

    def set_fps(self, fps: float) -> None:
        """Tell the tracker the source's frame rate (after a stride) before the first frame."""
        if self.tracker is not None and self._frames == 0:
            self.tracker = self._new_tracker(fps)

    def _new_tracker(self, fps: float) -> FaceTracker:
        return FaceTracker(fps, self.config.lost_seconds, look_gate=self.config.look_gate)

    @contextmanager
    def _timed(self, stage: str, speed: dict[str, float]):
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[stage].append(dt)
        speed[stage] = speed.get(stage, 0.0) + dt

    def analyze(
        self, image: np.ndarray, timestamp: float | None = None, index: int | None = None, source: str = ""
    ) -> FrameResult:
        return self._finish(self._start(image, timestamp, index, source, overlap=False))

    def stream(
        self, frames: Iterable[Frame], name: str = "", overlap: bool = True
    ) -> Iterator[tuple[Frame, FrameResult | Exception]]:
        """Each frame with its result, or the exception analysing it raised, in order; ``name``
        for frames without one of their own (a folder's photos are named by their files).

        ``overlap``: one frame in flight, its emotion model on a worker thread while this thread
        detects and meshes the next frame (onnxruntime releases the GIL), so two cores are kept
        busy; each result is then handed out once the next frame has been read (or the frames
        end). The results are those of ``analyze`` frame by frame either way."""
        pending: tuple[Frame, _Pending] | None = None  # the frame in flight (its emotion model may be running)
        try:
            for frame in frames:
                try:
                    started = self._start(frame.image, frame.timestamp, frame.index, frame.name or name, overlap)
                except Exception as exc:  # noqa: BLE001 - the caller decides what one bad frame means
                    if pending is not None:  # (in order: the frame before it first)
                        last, pending = pending, None
                        yield last[0], self._finish_or_error(last[1])
                    yield frame, exc
                    continue
                last, pending = pending, (frame, started)  # (in flight before the last is handed out)
                if last is not None:
                    yield last[0], self._finish_or_error(last[1])
                if not overlap:
                    last, pending = pending, None
                    yield last[0], self._finish_or_error(last[1])
            if pending is not None:
                last, pending = pending, None
                yield last[0], self._finish_or_error(last[1])
        finally:
            if pending is not None and pending[1].job is not None:  # the caller stopped early
                wait([pending[1].job])

    def _finish_or_error(self, pending: _Pending) -> FrameResult | Exception:
        try:
            return self._finish(pending)
        except Exception as exc:  # noqa: BLE001 - as in ``_start``
            return exc

    def _start(
        self, image: np.ndarray, timestamp: float | None, index: int | None, source: str, overlap: bool
    ) -> _Pending:
        """Everything up to the emotion model, which it starts (on the worker thread if ``overlap``)."""
        image = to_bgr8(image, source or "frame")
        speed: dict[str, float] = {}
        index = self._frames if index is None else index
        timestamp = index / self.config.fps if timestamp is None else timestamp
        if self.cuts is not None:
            with self._timed("cut", speed):
                if self.cuts.is_cut(image):  # another shot: last frame's faces and tracks are not here
                    self._previous = []
                    if self.tracker is not None:
                        self.tracker.new_scene()
        follow = self.mesher is not None and self._previous and self._since_detect < self.config.detect_every - 1
        excluded: Counter[str] = Counter()
        if follow:
            with self._timed("mesh", speed):
                faces = self._drop_excluded(self.mesher.follow(image, self._previous), excluded)
            self._since_detect += 1
        else:
            with self._timed("detect", speed):
                faces = self._drop_excluded(self.detector.detect(image), excluded)
            self._since_detect = 0
            if self.mesher is not None:
                with self._timed("mesh", speed):
                    # a tracked source's faces start from last frame's meshes; photos each on their own
                    # (and a landmarker that takes no ``previous`` still fits when there is none)
                    previous = self._previous if self.config.track else []
                    if previous:
                        self.mesher.refine(image, faces, previous)
                    else:
                        self.mesher.refine(image, faces)
        with self._timed("pose", speed):  # from the mesh; without one, coarser, from the detector's keypoints
            meshed = [f for f in faces if f.landmarks is not None]
            for f, pose in zip(meshed, self.pose.estimate_many([f.landmarks for f in meshed], image.shape)):
                f.pose = pose
            for f in faces:
                if f.landmarks is None and f.keypoints is not None:
                    f.pose = self.pose.estimate_from_keypoints(f.keypoints, image.shape)
        if self.tracker is not None:
            with self._timed("track", speed):
                self.tracker.update(faces, image)
        h, w = image.shape[:2]
        result = FrameResult(
            index=index,
            timestamp=timestamp,
            width=w,
            height=h,
            faces=faces,
            source=source,
            excluded=dict(excluded),
            detected=not follow,
            speed=speed,
        )
        pending = _Pending(result, image)
        if self.classifier is not None and faces:
            self._start_emotion(pending, overlap)
        self._frames += 1
        self._previous = faces
        return pending

    def _start_emotion(self, pending: _Pending, overlap: bool) -> None:
        """Crops of the faces that are due (all unless ``emotion_every`` > 1), into the model as one
        batch; every face is told where its probabilities will be (this batch or an earlier one)."""
        every, n, faces = self.config.emotion_every, self._frames, pending.result.faces
        due = [
            f
            for f in faces
            if f.track_id is None or f.track_id not in self._last_probs or n - self._last_probs[f.track_id][0] >= every
        ]
        if due:
            with self._timed("align", pending.result.speed):
                crops = align_faces(pending.image, due, self.classifier.card.input_size)
            if overlap:
                if self._worker is None:
                    self._worker = ThreadPoolExecutor(1, thread_name_prefix="emotion")
                pending.job = self._worker.submit(self._predict, crops, pending.result.speed)
            else:
                pending.job = Future()
                pending.job.set_result(self._predict(crops, pending.result.speed))
        rows = {id(f): i for i, f in enumerate(due)}
        for f in faces:
            if id(f) in rows:
                pending.emotion_of.append((pending.job, rows[id(f)]))
                if f.track_id is not None and every > 1:
                    self._last_probs[f.track_id] = (n, pending.job, rows[id(f)])
            else:  # (read now: the next frame may replace this track's entry before this one finishes)
                pending.emotion_of.append(self._last_probs[f.track_id][1:])
        if every > 1 and len(self._last_probs) > 4 * max(len(faces), 16):  # forget long-gone tracks
            live = {f.track_id for f in faces}
            self._last_probs = {k: v for k, v in self._last_probs.items() if k in live}

    def _predict(self, crops: np.ndarray, speed: dict[str, float]) -> np.ndarray:
        with self._timed("emotion", speed):
            return self.classifier.predict(crops, tta=self.config.emotion_tta)

    def _finish(self, pending: _Pending) -> FrameResult:
        """Waits for the frame's emotions, then quality and smoothing (in frame order)."""
        result = pending.result
        for f, (job, row) in zip(result.faces, pending.emotion_of):
            try:
                f.emotion = Emotion(job.result()[row], self.classifier.classes)
            except Exception:  # no later frame may take its probabilities from a batch that failed
                self._last_probs = {k: v for k, v in self._last_probs.items() if v[1] is not job}
                raise
        with self._timed("quality", result.speed):
            for f in result.faces:
                f.quality_parts = quality_parts(pending.image, f)
                f.quality = quality_score(f.quality_parts)
                f.abstained = f.quality < self.config.min_quality
        with self._timed("smooth", result.speed):
            self.smoother.update(result.faces, result.timestamp)
        return result

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
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        self.detector.close()
        if self.mesher is not None:
            self.mesher.close()
