"""Every use of mediapipe's models (0.10.21, the project's most fragile pin) lives in this file.

Two models ship in mediapipe's wheel: BlazeFace (the face detector, short and full range) and
the 468-point face-landmark model. Both TF Lite files are run here directly with the TF Lite
runtime (``ai-edge-litert``), mediapipe itself never imported: the detector's letterbox,
anchors and weighted suppression, and the landmark model's 192x192 crops, done as mediapipe's
own graphs do them. Against those graphs (kept below as references, :class:`FaceDetectionGraph`
and :class:`LandmarkGraph`): the same full-range detections within 0.001 pixel, short-range
within half a pixel on square photos, mesh points within 0.2 pixel, at less cost and a second
less start-up (``python scripts/mesh_runtime_check.py DATA/aflw2000_dev``).
:mod:`tiltwatch.vision.detector` and :mod:`tiltwatch.vision.mesh` hold the logic around them
(tiles, both ranges, ROIs) and see only the two classes below, in plain numpy: replacing
mediapipe means rewriting this file alone.

Usage::

    detect = BlazeFace(full_range=True)
    for box, score, keypoints in detect(rgb): ...           # relative (xmin, ymin, w, h), (6, 2) relative
    mesh = LandmarkModel()
    points, presence = mesh(crop)    # (192, 192, 3) uint8 RGB -> (468, 3) relative to the crop, score
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ..native import quiet_native_stderr

#: the model files inside mediapipe's wheel (found without importing mediapipe: its import
#: pulls matplotlib and costs about a second of start-up)
_MODULES = Path(importlib.util.find_spec("mediapipe").origin).parent / "modules"


def _interpreter(path: Path, threads: int = 1) -> tuple[Interpreter, int, list[int]]:
    """A TF Lite interpreter for ``path``, its input's index, and its outputs' indices, largest last
    dimension first."""
    with quiet_native_stderr():  # the runtime announces its XNNPACK delegate on stderr
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(d["shape"][-1]))
    return interpreter, interpreter.get_input_details()[0]["index"], [d["index"] for d in outputs]


class BlazeFace:
    """One BlazeFace model: ``full_range`` (192x192, faces up to about 5 m) or the short-range one
    (128x128, within about 2 m), run as mediapipe's face-detection graph runs it: the frame
    letterboxed into the model's square (black borders, values in [-1, 1]), boxes and keypoints
    decoded from its SSD anchors, overlapping boxes merged by score-weighted non-maximum
    suppression (IoU over 0.3). ``min_score`` None keeps the model's own threshold (0.6 full
    range, 0.5 short range): mediapipe 0.10.21's solution API kept those whatever confidence it
    was given, so tiltwatch's figures were all taken at them."""

    def __init__(self, full_range: bool = True, min_score: float | None = None):
        name, self.size, strides, per_cell, own = (
            ("face_detection_full_range_sparse.tflite", 192, (4,), 1, 0.6)
            if full_range
            else ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5)
        )
        self.min_score = own if min_score is None else min_score
        self._anchors = _anchor_centres(self.size, strides, per_cell)
        self._interpreter, self._input, (self._boxes, self._scores) = _interpreter(_MODULES / "face_detection" / name)

    def __call__(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, np.ndarray]]:
        """The faces in an RGB image: (relative xmin, ymin, width, height), score, (6, 2) relative keypoints."""
        h, w = rgb.shape[:2]
        side, s = max(w, h), self.size
        x0, y0 = (w - side) / 2, (h - side) / 2  # the frame centred in a square of its longer side
        m = cv2.getAffineTransform(
            np.float32([[x0, y0 + side], [x0, y0], [x0 + side, y0]]), np.float32([[0, s], [0, 0], [s, 0]])
        )
        tensor = cv2.warpAffine(rgb, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        self._interpreter.set_tensor(self._input, (tensor.astype(np.float32) * np.float32(2 / 255) - 1)[None])
        self._interpreter.invoke()
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64), -100, 100)
        scores = 1 / (1 + np.exp(-logits))
        keep = np.nonzero(scores >= self.min_score)[0]
        raw, scores, anchors = self._interpreter.get_tensor(self._boxes)[0, keep] / s, scores[keep], self._anchors[keep]
        centre, size = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)  # x1, y1, x2, y2 in the square
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]

        def in_frame(points: np.ndarray) -> np.ndarray:  # (K, 2) in the square -> relative to the frame
            return (points * side + (x0, y0)) / (w, h)

        out = []
        for box, score, kps in _weighted_nms(boxes, scores, keypoints):
            (bx1, by1), (bx2, by2) = in_frame(box.reshape(2, 2))
            out.append(
                ((float(bx1), float(by1), float(bx2 - bx1), float(by2 - by1)), score, in_frame(kps).astype(np.float32))
            )
        return out

    def close(self) -> None:
        self._interpreter = None


def _anchor_centres(size: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
    """(N, 2) SSD anchor centres, as mediapipe's SsdAnchorsCalculator lays them for BlazeFace
    (fixed size, so only centres matter): layers of one stride share a grid, ``per_cell``
    anchors each."""
    centres = []
    for stride in dict.fromkeys(strides):  # in order, each stride once
        n = math.ceil(size / stride)
        grid = (np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) + 0.5) / n  # x, y, row-major
        centres.append(np.repeat(grid, per_cell * strides.count(stride), axis=0))
    return np.concatenate(centres).astype(np.float32)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, threshold: float = 0.3):
    """mediapipe's weighted non-maximum suppression: best first, every box overlapping it by IoU
    over ``threshold`` (itself included) merged into one, boxes and keypoints averaged by score,
    the best one's score kept."""
    order = np.argsort(-scores, kind="stable")
    while len(order):
        top, rest = boxes[order[0]], boxes[order]
        wh = np.clip(np.minimum(top[2:], rest[:, 2:]) - np.maximum(top[:2], rest[:, :2]), 0, None)
        inter = wh[:, 0] * wh[:, 1]
        union = np.prod(top[2:] - top[:2]) + np.prod(rest[:, 2:] - rest[:, :2], axis=1) - inter
        merged = inter > threshold * union
        group, weight = order[merged], scores[order[merged]]
        yield (
            (boxes[group] * weight[:, None]).sum(0) / weight.sum(),
            float(scores[order[0]]),
            (keypoints[group] * weight[:, None, None]).sum(0) / weight.sum(),
        )
        order = order[~merged]


class LandmarkModel:
    """mediapipe's face-landmark model (``face_landmark.tflite``): 468 points and a face-presence
    score for a 192x192 RGB crop, on ``threads`` CPU threads (the runtime releases the GIL while
    it runs). One crop a call: batches cost as much a face (1.39 ms a face at batch 1, 1.47 at
    batch 4 on one thread) and hold an activation arena per batch size."""

    SIZE = 192

    def __init__(self, threads: int = 1):
        self._interpreter, self._input, (self._points, self._flag) = _interpreter(
            _MODULES / "face_landmark" / "face_landmark.tflite", threads
        )  # outputs (1, 1, 1, 1404) and (1, 1, 1, 1)

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


class FaceDetectionGraph:
    """mediapipe's face-detection solution, which tiltwatch ran before :class:`BlazeFace`: kept as
    the reference that path is checked against (``tests/test_detector.py``,
    ``scripts/mesh_runtime_check.py``); the pipeline does not use it. Same call as BlazeFace."""

    def __init__(self, full_range: bool = True):
        import mediapipe as mp

        with quiet_native_stderr():
            self._model = mp.solutions.face_detection.FaceDetection(model_selection=1 if full_range else 0)

    def __call__(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, np.ndarray]]:
        out = []
        for det in self._model.process(rgb).detections or []:
            rb = det.location_data.relative_bounding_box
            kps = np.array([[k.x, k.y] for k in det.location_data.relative_keypoints], np.float32)
            out.append(((rb.xmin, rb.ymin, rb.width, rb.height), float(det.score[0]), kps))
        return out

    def close(self) -> None:
        self._model.close()
