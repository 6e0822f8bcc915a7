"""Single-image analysis off the event loop: a bounded pool of threads, one Analyzer each.

Uploaded images are unrelated to each other, so the analyzers run without tracking and
smoothing. At most ``workers`` images are analysed at once and at most ``queue`` wait;
beyond that :class:`~tiltwatch.errors.BusyError` is raised (the API answers 503 with Retry-After), so a burst of
uploads can neither stall the server nor take the CPU from the live streams forever.

Usage::

    pool = ImagePool(workers=2, queue=16, config=AnalyzerConfig())
    result = await pool.analyze(jpeg_bytes, "photo.jpg")     # FrameResult; InputError if undecodable
    pool.close()
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from .. import Analyzer
from ..config import AnalyzerConfig
from ..errors import BusyError, InputError
from ..pipeline.build import resolve_config
from ..sources.images import decode_image
from ..types import FrameResult

MAX_PIXELS = 50_000_000  # a small file may decode to a huge image (a "decompression bomb")
LATENCY_WINDOW = 300


class ImagePool:
    def __init__(self, workers: int = 2, queue: int = 16, config: AnalyzerConfig | None = None):
        self.config = config
        self.workers = workers
        self.queue = queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="analyze-image")
        self._local = threading.local()
        self._analyzers: list[Analyzer] = []
        self._lock = threading.Lock()
        self.pending = 0  # submitted and not finished (touched on the event loop only)
        self.done = 0
        self.timings: dict[str, deque[float]] = {}

    async def analyze(self, data: bytes, name: str) -> FrameResult:
        if self.pending >= self.workers + self.queue:
            raise BusyError(f"{self.pending} images are being analysed or waiting; retry shortly")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, data, name)
        finally:
            self.pending -= 1
            self.done += 1

    def _analyzer(self) -> Analyzer:
        analyzer = getattr(self._local, "analyzer", None)
        if analyzer is None:
            # unrelated images: the server's settings as for photos (exact path, photo preset)
            photo = resolve_config(self.config or AnalyzerConfig(), still=True)
            analyzer = self._local.analyzer = Analyzer(photo)
            with self._lock:
                self._analyzers.append(analyzer)
        return analyzer

    def _run(self, data: bytes, name: str) -> FrameResult:
        _check_size(data, name)
        image = decode_image(data, name)
        analyzer = self._analyzer()
        result = analyzer.analyze(image, 0.0, 0, name)
        with self._lock:
            for stage, seconds in result.speed.items():
                self.timings.setdefault(stage, deque(maxlen=LATENCY_WINDOW)).append(seconds)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for analyzer in self._analyzers:
                analyzer.close()
            self._analyzers.clear()


def _check_size(data: bytes, name: str) -> None:
    """Refuse images whose header declares more than MAX_PIXELS, before decoding them."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            w, h = img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InputError(f"{name}: not a decodable image") from None
    if w * h > MAX_PIXELS:
        raise InputError(f"{name}: image is {w}x{h}, more than {MAX_PIXELS // 1_000_000} megapixels")
