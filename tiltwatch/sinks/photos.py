"""Outputs of a run over photos: ``faces.csv`` (one row per face) and ``annotated/`` (one image per photo).

A folder of photos is not a video: nothing is tracked between them, so the per-track summary
and the annotated video give way to a row per face (file, face number, box, pose, every emotion
probability and the label) and to each photo annotated on its own, under the same relative
name (JPEG and PNG inputs as they are named; any other kind with ".png" added: x.webp.png).
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2

from ..emotions import EMOTIONS
from ..sources.base import Frame
from ..types import FrameResult
from .base import Sink
from .draw import annotate


class FacesCsvSink(Sink):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = open(self.path, "w", newline="")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(
            [
                "file",
                "face",
                "x",
                "y",
                "w",
                "h",
                "score",
                "yaw",
                "pitch",
                "roll",
                "label",
                *(f"p_{c}" for c in EMOTIONS),
            ]
        )

    def write(self, frame: Frame, result: FrameResult) -> None:
        for i, face in enumerate(result.faces):
            pose = [round(v, 2) for v in (face.pose.yaw, face.pose.pitch, face.pose.roll)] if face.pose else [""] * 3
            emo = face.emotion
            probs = [round(float(p), 4) for p in emo.probs] if emo is not None else [""] * len(EMOTIONS)
            self._csv.writerow(
                [
                    result.source,
                    i,
                    *(round(v, 1) for v in face.xywh),
                    round(float(face.score), 4),
                    *pose,
                    emo.label if emo is not None else "",
                    *probs,
                ]
            )

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class AnnotatedImagesSink(Sink):
    """Each photo annotated (boxes, pose axes, labels) into ``folder``, under its relative name."""

    def __init__(self, folder: str | Path, blur: bool = False):
        self.folder, self.blur = Path(folder), blur
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Frame, result: FrameResult) -> None:
        name = Path(result.source or f"{frame.index:06d}.png")
        # JPEG and PNG keep their own name; any other kind gains ".png" (x.webp -> x.webp.png), so
        # that x.png and x.webp in one folder never overwrite each other's annotated copy
        kept = name.suffix.lower() in (".jpg", ".jpeg", ".png")
        out = self.folder / (name if kept else name.with_name(name.name + ".png"))
        out.parent.mkdir(parents=True, exist_ok=True)
        image = annotate(frame.image, result, blur=self.blur)
        ok, buf = cv2.imencode(out.suffix, image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise OSError(f"cannot encode {out.name}")
        out.write_bytes(buf.tobytes())
