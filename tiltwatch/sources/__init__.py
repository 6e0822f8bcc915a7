"""Every way frames come in: image files and folders, video files, cameras, streams, the sample.

Usage::

    source = open_source("clip.mp4", stride=2)   # or "photos/", "0", "rtsp://...", "sample"
    for frame in source: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..lazy import lazy_exports
from .base import Frame, FrameSource
from .images import IMAGE_EXTS, ImageSource, is_multi_frame, read_image, to_bgr8
from .sample import SampleSource
from .stream import StreamSource, camera_index

if TYPE_CHECKING:
    from .video import VideoFileSource

ANIMATIONS_AS_VIDEO = (".gif", ".png")  # FFmpeg reads these animations as clips (not animated WebP)
STILL_FORMATS = ("image2", "gif", "apng", "webp_pipe", "tty")  # FFmpeg demuxers of single pictures or text
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")

__all__ = [
    "Frame",
    "FrameSource",
    "ImageSource",
    "SampleSource",
    "StreamSource",
    "VideoFileSource",
    "open_source",
    "read_image",
    "to_bgr8",
]


# video files need PyAV; it loads on first use, so that the training side, which reads image
# files through this package, runs where only the numeric stack is installed
__getattr__ = lazy_exports(__name__, {"VideoFileSource": ".video"})


def open_source(spec: str, stride: int = 1, live_drop: bool = True, recursive: bool = False) -> FrameSource:
    """Pick the source for ``spec``: ``sample``, a webcam index, a stream URL, a folder or a file."""
    spec = str(spec)
    if spec == "sample":
        return SampleSource(stride=stride)
    try:
        index = camera_index(spec)
    except InputError:  # digits beyond any camera: a file of that name, or one line
        if not Path(spec).exists():
            raise
        index = None
    if index is not None:
        return StreamSource(index, drop_frames=live_drop)
    if spec.lower().startswith(STREAM_SCHEMES):
        return StreamSource(spec, drop_frames=live_drop)
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{spec}: no such file or folder (nor 'sample', a camera index or a stream URL)")
    if path.is_dir():
        return ImageSource(path, recursive=recursive)
    suffix = path.suffix.lower()
    # a video, or an animated GIF or PNG (every frame, timed, as a clip)
    if suffix not in IMAGE_EXTS or (suffix in ANIMATIONS_AS_VIDEO and is_multi_frame(path)):
        return _video(path, stride)
    try:
        return ImageSource(path)
    except InputError as exc:  # a clip under an image's name is still a clip
        try:
            video = _video(path, stride)
        except InputError:
            raise exc from None
        # FFmpeg's reader of the same broken image (image2, or a format's own *_pipe)
        if video.container_format in STILL_FORMATS or video.container_format.endswith("_pipe"):
            video.close()
            raise exc from None
        return video


def _video(path: Path, stride: int) -> VideoFileSource:
    from .video import VideoFileSource  # PyAV loads only for video

    return VideoFileSource(path, stride=stride)
