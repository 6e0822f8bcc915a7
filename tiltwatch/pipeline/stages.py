"""The interface of each stage the Analyzer runs, so that a backend can be swapped in one place.

The shipped backends are mediapipe's BlazeFace (:class:`~tiltwatch.vision.detector.FaceDetector`)
and face mesh (:class:`~tiltwatch.vision.mesh.FaceMesher`), a PnP head model
(:class:`~tiltwatch.vision.pose.HeadPoseEstimator`) and an ONNX emotion model
(:class:`~tiltwatch.vision.emotion.EmotionClassifier`). Anything with these methods can stand
in for one of them: ``Analyzer(detector=HaarFaceDetector())`` runs OpenCV's Haar cascade in
place of BlazeFace, with everything after it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..types import FaceResult, Pose


@runtime_checkable
class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[FaceResult]:
        """New faces of a BGR frame: ``box`` and ``score`` set, ``keypoints`` (6, 2) when it has them."""

    def close(self) -> None: ...


@runtime_checkable
class Landmarker(Protocol):
    def refine(self, image: np.ndarray, faces: list[FaceResult], previous: Sequence[FaceResult] = ()) -> None:
        """Set ``landmarks`` (468, 3) of each of ``faces`` it can (in place; the others keep None);
        ``previous``: the last frame's faces, whose meshes it may start from."""

    def follow(self, image: np.ndarray, previous: list[FaceResult]) -> list[FaceResult]:
        """The faces of ``previous`` found again in this frame by their landmarks (no detector)."""

    def close(self) -> None: ...


@runtime_checkable
class PoseEstimator(Protocol):
    def estimate_many(self, landmarks: Sequence[np.ndarray], image_shape: tuple[int, ...]) -> list[Pose | None]:
        """The pose of each face of a frame from its (468, 3) mesh points (None: not solvable)."""

    def estimate_from_keypoints(self, keypoints: np.ndarray, image_shape: tuple[int, ...]) -> Pose | None: ...


@runtime_checkable
class Classifier(Protocol):
    classes: tuple[str, ...]
    card: Any  # its model card: ``card.input_size`` is the side of the crops it takes

    def predict(self, crops: np.ndarray, tta: bool = False) -> np.ndarray:
        """Class probabilities (N, C) of aligned face crops (N, S, S) uint8 grey."""
