"""Video files through PyAV (FFmpeg): exact timestamps, broken packets skipped and counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from av.stream import Disposition

from ..errors import InputError, first_line
from .base import Frame, FrameSource
from .images import MIN_SIDE


class VideoFileSource(FrameSource):
    """Every ``stride``-th frame of a video file. Never drops frames on its own."""

    live = False

    def __init__(self, path: str | Path, stride: int = 1):
        self.path = Path(path)
        self.name = str(self.path)
        self.stride = max(1, int(stride))
        self.skipped: list[str] = []
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file")
        try:
            # (tags in another encoding than UTF-8, as old cameras and editors write: read, not fatal)
            self._container = av.open(str(self.path), metadata_errors="replace")
        except (av.FFmpegError, OSError) as exc:
            why = _ffmpeg_why(exc)
            raise InputError(f"{self.path}: cannot open as video ({why})") from None
        self.container_format = self._container.format.name
        # the main picture: not a cover image or thumbnail stream; the largest, then the longest
        streams = self._container.streams.video
        if not streams:
            self._container.close()
            raise InputError(f"{self.path}: holds no video stream")
        videos = [s for s in streams if s.codec_context is not None and not s.disposition & Disposition.attached_pic]
        if not videos:  # (a cut file's header may name a stream whose codec it never got to)
            self._container.close()
            raise InputError(f"{self.path}: holds no video stream that can be decoded (a cut or damaged file?)")
        self._stream = max(
            videos, key=lambda s: ((s.codec_context.width or 0) * (s.codec_context.height or 0), s.frames)
        )
        w, h = self._stream.codec_context.width, self._stream.codec_context.height
        if w and h and min(w, h) < MIN_SIDE:
            self._container.close()
            raise InputError(f"{self.path}: video is {w}x{h}, too small to hold a face (min {MIN_SIDE}px)")
        self._stream.thread_type = "AUTO"  # decode on FFmpeg's own threads
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None
        n = self._stream.frames or None
        self.total = -(-n // self.stride) if n else None

    def __iter__(self) -> Iterator[Frame]:
        index, start, last = 0, None, None
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # a broken container: nothing more can be read
                self.skipped.append(f"{self.path}: stopped reading at frame {index} ({_ffmpeg_why(exc)})")
                break
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:  # one picture lost; its place is kept (index counts it)
                self.skipped.append(f"{self.path}: frame {index} could not be decoded ({_ffmpeg_why(exc)})")
                index += 1
                continue
            for vf in frames:
                if vf.time is not None and start is None:
                    start = float(vf.time)  # a recording's segment or a DVR's file may not start at 0
                last = float(vf.time) if vf.time is not None else last
                if index % self.stride == 0:
                    t = float(vf.time) - start if vf.time is not None else index / (self.fps or 25.0)
                    yield Frame(index=index, timestamp=t, image=to_bgr(vf))
                index += 1
        self.ended_early = bool(self._stream.frames and index < self._stream.frames)
        if self.ended_early:  # a cut or damaged file: its header promised more
            self.skipped.append(
                f"{self.path}: ended early, after {index} of the {self._stream.frames} frames "
                "its header lists (a cut or damaged file)"
            )
        elif not self._stream.frames and (short := self._short_of_duration(last)) is not None:
            self.ended_early = True  # (Matroska and WebM give a duration, not a frame count)
            self.skipped.append(
                f"{self.path}: ended early, at {short[0]:.1f} s of the {short[1]:.1f} s its header gives "
                "(a cut or damaged file)"
            )

    def _short_of_duration(self, last: float | None) -> tuple[float, float] | None:
        """(where the frames ended, the duration the header gives) when they end over a second and
        two frames short of it; None when they do not, or there is no duration to hold them to.
        The end is the last frame's own time: Matroska's duration runs from 0 to the end (a DVR's
        file starting at 10 s says 14 for 4 s), others' from the start, so this end is never short
        of a whole file's. The container's duration counts only for a file of video alone: its
        audio may run longer."""
        duration = None
        if self._stream.duration and self._stream.time_base:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration and all(s.type == "video" for s in self._container.streams):
            duration = self._container.duration / av.time_base
        if not duration or last is None:
            return None
        frame = 1 / (self.fps or 25.0)
        ended = last + frame
        return (ended, duration) if ended < duration - 1.0 - 2 * frame else None

    def close(self) -> None:
        self._container.close()


def _ffmpeg_why(exc: Exception) -> str:
    """FFmpeg's words for an error, without PyAV's errno and call name."""
    return getattr(exc, "strerror", None) or first_line(exc, 200)


def to_bgr(vf: av.VideoFrame) -> np.ndarray:
    """A decoded frame as a BGR array, upright. The usual yuv420p goes through OpenCV (0.6 ms a 720p
    frame against 7.6 ms for swscale, same BT.601 video-range matrix); any other format through swscale."""
    # (OpenCV's matrix is video range: a full-range frame, as some VP9 and phone clips are, goes to swscale)
    full_range = vf.color_range == av.video.reformatter.ColorRange.JPEG
    if vf.format.name == "yuv420p" and vf.width % 2 == 0 and vf.height % 2 == 0 and not full_range:
        image = cv2.cvtColor(vf.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    else:
        image = vf.to_ndarray(format="bgr24")
    turn = _TURNS.get(round(vf.rotation) % 360)
    return image if turn is None else cv2.rotate(image, turn)


# a phone stores a portrait clip lying down, with a display rotation (degrees counter-clockwise)
# that players apply; faces must be upright for the detector and the mesh, so frames are turned too
_TURNS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
