"""Every call into mediapipe (0.10.21, the project's most fragile pin) lives in this file.

Two models ship in mediapipe's wheel: BlazeFace (the face detector, short and full range) and
the 468-point face-landmark model, run here as its ``FaceLandmarkCpu`` subgraph alone on a
region of interest we choose (mediapipe's FaceMesh solution would re-detect the face inside
every image). :mod:`tiltwatch.vision.detector` and :mod:`tiltwatch.vision.mesh` hold the
logic around them (tiles, both ranges, ROIs, threads) and see only the two classes below, in
plain numpy: replacing mediapipe means rewriting this file alone.

Usage::

    detect = BlazeFace(full_range=True, min_score=0.5)
    for box, score, keypoints in detect(rgb): ...           # relative (xmin, ymin, w, h), (6, 2) relative
    mesh = LandmarkGraph()
    points = mesh(rgb_crop, (cx, cy, w, h, rotation))        # (468, 3) relative to the crop, or None
"""

from __future__ import annotations

import mediapipe as mp
import numpy as np
from google.protobuf import text_format
from mediapipe.framework import calculator_pb2
from mediapipe.framework.formats import rect_pb2
from mediapipe.python.solution_base import SolutionBase

from .native import quiet_native_stderr

_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
}
"""


class BlazeFace:
    """One BlazeFace model: ``full_range`` (model 1, 192x192, faces up to about 5 m) or the
    short-range one (model 0, 128x128, within about 2 m)."""

    def __init__(self, full_range: bool = True, min_score: float = 0.5):
        with quiet_native_stderr():  # start-up and the first call log through absl
            self._model = mp.solutions.face_detection.FaceDetection(
                model_selection=1 if full_range else 0, min_detection_confidence=min_score
            )
            self._model.process(np.zeros((64, 64, 3), np.uint8))

    def __call__(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, np.ndarray]]:
        """The faces in an RGB image: (relative xmin, ymin, width, height), score, (6, 2) relative keypoints."""
        res = self._model.process(rgb)
        out = []
        for det in res.detections or []:
            rb = det.location_data.relative_bounding_box
            kps = np.array([[k.x, k.y] for k in det.location_data.relative_keypoints], np.float32)
            out.append(((rb.xmin, rb.ymin, rb.width, rb.height), float(det.score[0]), kps))
        return out

    def close(self) -> None:
        self._model.close()


class LandmarkGraph:
    """One face-landmark graph (stateless per ROI; mediapipe releases the GIL while it runs, so
    several graphs can run side by side on threads)."""

    def __init__(self, warm_up: tuple[np.ndarray, tuple[float, float, float, float, float]] | None = None):
        cfg = text_format.Parse(_LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
        with quiet_native_stderr():  # graphs log on start-up and on their first face
            self._graph = SolutionBase(graph_config=cfg)
            if warm_up is not None:
                self(*warm_up)

    def __call__(self, rgb: np.ndarray, roi: tuple[float, float, float, float, float]) -> np.ndarray | None:
        """(468, 3) points relative to ``rgb`` (x, y in [0, 1]; z in units of its width) for the
        face in ``roi`` = relative (x centre, y centre, width, height, rotation in radians), or
        None when the model sees no face there."""
        cx, cy, w, h, rotation = roi
        rect = rect_pb2.NormalizedRect(x_center=cx, y_center=cy, width=w, height=h, rotation=rotation)
        res = self._graph.process({"image": rgb, "roi": rect})
        if res.landmarks is None:
            return None
        return np.array([(p.x, p.y, p.z) for p in res.landmarks.landmark], np.float32)

    def close(self) -> None:
        self._graph.close()
