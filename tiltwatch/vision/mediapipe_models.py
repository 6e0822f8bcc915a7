"""Every use of mediapipe's models (0.10.21, the project's most fragile pin) lives in this file.

Two models ship in mediapipe's wheel: BlazeFace (the face detector, short and full range), run
through mediapipe's face-detection solution, and the 468-point face-landmark model, whose
TF Lite file is run here directly with the TF Lite runtime (``ai-edge-litert``) on 192x192
crops that :mod:`tiltwatch.vision.mesh` cuts from regions of interest it chooses.
mediapipe's own graph for it (``FaceLandmarkCpu``) gave the same points within 0.01 pixel
on AFLW2000 faces, at about twice the cost
(``python scripts/mesh_runtime_check.py DATA/aflw2000_dev``). :mod:`tiltwatch.vision.detector`
and :mod:`tiltwatch.vision.mesh` hold the logic around them (tiles, both ranges, ROIs) and see
only the two classes below, in plain numpy: replacing mediapipe means rewriting this file alone.

Usage::

    detect = BlazeFace(full_range=True, min_score=0.5)
    for box, score, keypoints in detect(rgb): ...           # relative (xmin, ymin, w, h), (6, 2) relative
    mesh = LandmarkModel()
    points, presence = mesh(crop)    # (192, 192, 3) uint8 RGB -> (468, 3) relative to the crop, score
"""

from __future__ import annotations

import math
from pathlib import Path

import mediapipe as mp
import numpy as np
from ai_edge_litert.interpreter import Interpreter

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


class LandmarkModel:
    """mediapipe's face-landmark model (``face_landmark.tflite``): 468 points and a face-presence
    score for a 192x192 RGB crop, on ``threads`` CPU threads (the runtime releases the GIL while
    it runs). One crop a call: batches cost as much a face (1.39 ms a face at batch 1, 1.47 at
    batch 4 on one thread) and hold an activation arena per batch size."""

    SIZE = 192

    def __init__(self, threads: int = 1):
        path = Path(mp.__file__).parent / "modules" / "face_landmark" / "face_landmark.tflite"
        with quiet_native_stderr():  # the runtime announces its XNNPACK delegate on stderr
            self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._points, self._flag = outputs[0]["index"], outputs[1]["index"]  # (1, 1, 1, 1404), (1, 1, 1, 1)

    def __call__(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """(468, 3) points (x, y in [0, 1] of the crop; z in crop widths) and the presence score
        in [0, 1] (mediapipe keeps a mesh at 0.5 or more) for ``crop`` (192, 192, 3) uint8 RGB."""
        self._interpreter.set_tensor(self._input, (crop.astype(np.float32) * np.float32(1 / 255))[None])
        self._interpreter.invoke()
        points = self._interpreter.get_tensor(self._points).reshape(468, 3) / np.float32(self.SIZE)
        flag = float(self._interpreter.get_tensor(self._flag).reshape(()))
        return points, 1 / (1 + math.exp(-flag))

    def close(self) -> None:
        self._interpreter = None


class LandmarkGraph:
    """mediapipe's own graph around the landmark model (``FaceLandmarkCpu``), which tiltwatch ran
    before :class:`LandmarkModel`: kept as the reference that path is checked against
    (``tests/test_mesh.py``, ``scripts/mesh_runtime_check.py``); the pipeline does not use it."""

    def __init__(self):
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase

        with quiet_native_stderr():
            config = text_format.Parse(_LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
            self._graph = SolutionBase(graph_config=config)

    def __call__(self, rgb: np.ndarray, roi: tuple[float, float, float, float, float]) -> np.ndarray | None:
        """(468, 3) points relative to ``rgb`` (x, y in [0, 1]; z in units of its width) for the face
        in ``roi`` = relative (x centre, y centre, width, height, rotation in radians), or None."""
        from mediapipe.framework.formats import rect_pb2

        cx, cy, w, h, rotation = roi
        rect = rect_pb2.NormalizedRect(x_center=cx, y_center=cy, width=w, height=h, rotation=rotation)
        res = self._graph.process({"image": rgb, "roi": rect})
        if res.landmarks is None:
            return None
        return np.array([(p.x, p.y, p.z) for p in res.landmarks.landmark], np.float32)

    def close(self) -> None:
        self._graph.close()
