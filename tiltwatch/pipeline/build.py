"""One way to wire a run: source -> Analyzer -> sinks (+ the site's analytics and the store).

``tiltwatch analyze``, the server's video jobs and live streams, and ``tiltwatch bench`` all
build their analyzer here (:func:`build_analyzer`), so a setting reaches the analyzer the same
way everywhere: the base config (a preset and a settings file), then the site camera's own
settings (``detect_tiles``), then explicit overrides (CLI flags); still images always take the
exact path. Runs that write files (``analyze``, jobs) are built whole by :func:`build_run`.

Usage::

    run = build_run(open_source("clip.mp4"), AnalyzerConfig.preset("fast"), out=Path("out"))
    stats = run.execute(progress=True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import EACH_IMAGE_ALONE, PHOTO_MESH, AnalyzerConfig
from ..errors import first_line
from ..sinks.base import Sink
from ..sinks.folder import OUTPUT_FILES, output_names
from ..sources.base import FrameSource
from ..types import FaceResult
from .analyzer import Analyzer
from .runner import RunStats, run

log = logging.getLogger(__name__)


def resolve_config(
    base: AnalyzerConfig,
    camera=None,
    overrides: dict[str, Any] | None = None,
    still: bool = False,
    fps: float | None = None,
) -> AnalyzerConfig:
    """``base``, then the site ``camera``'s own settings, then ``overrides``; ``fps``: the source's
    frame rate, when it has one. ``still`` (photos: nothing to follow between them): the photo
    preset's mesh work for every ``mesh_*`` setting that neither ``base`` (a settings file, the
    server's flags), the camera nor ``overrides`` set, and, whatever was asked, the exact path
    untracked and unsmoothed."""
    data = base.model_dump()
    chosen = set(base.model_fields_set)
    if camera is not None:
        data |= camera.analyzer_settings()
        chosen |= set(camera.analyzer_settings())
    data |= overrides or {}
    chosen |= set(overrides or {})
    if still:
        data |= {k: v for k, v in PHOTO_MESH.items() if k not in chosen} | EACH_IMAGE_ALONE
    if fps:
        data["fps"] = fps
    return AnalyzerConfig.model_validate(data)


def build_analyzer(
    base: AnalyzerConfig,
    camera=None,
    overrides: dict[str, Any] | None = None,
    still: bool = False,
    fps: float | None = None,
    exclude: Callable[[FaceResult], str | None] | None = None,
) -> Analyzer:
    """The Analyzer of a run (models loaded once), its config resolved by :func:`resolve_config`."""
    return Analyzer(resolve_config(base, camera, overrides, still, fps), exclude=exclude)


def output_sinks(
    folder: Path,
    outputs: Sequence[str] = tuple(OUTPUT_FILES),
    fps: float = 25.0,
    blur: bool = False,
    video_preset: str = "superfast",
    landmarks: bool = False,
    photos: bool = False,
) -> list[Sink]:
    """The file sinks of ``outputs`` (``jsonl``, ``csv``, ``video``) in ``folder``; ``photos``: a row per
    face in faces.csv and an annotated image per photo in annotated/ instead of the track summary and video."""
    from ..sinks import AnnotatedVideoSink, JsonlSink, SummaryCsvSink
    from ..sinks.photos import AnnotatedImagesSink, FacesCsvSink

    def jsonl(path: Path) -> Sink:
        return JsonlSink(path, with_landmarks=landmarks)

    if photos:
        kinds = {"jsonl": jsonl, "csv": FacesCsvSink, "video": lambda p: AnnotatedImagesSink(p, blur=blur)}
    else:
        kinds = {
            "jsonl": jsonl,
            "csv": SummaryCsvSink,
            "video": lambda p: AnnotatedVideoSink(p, fps=fps, blur=blur, preset=video_preset),
        }
    return [kinds[o](folder / name) for o, name in zip(outputs, output_names(list(outputs), photos))]


@dataclass
class Run:
    """A wired run: execute it once."""

    source: FrameSource
    analyzer: Analyzer
    sinks: list[Sink]
    analytics: Any = None  # the AnalyticsSink, with a site and a store

    def execute(self, progress: bool = False, max_frames: int | None = None) -> RunStats:
        try:
            return run(self.source, self.analyzer, self.sinks, progress=progress, max_frames=max_frames)
        finally:
            self.analyzer.close()

    def abandon(self) -> None:
        """Close everything opened without running it (stopped during set-up): the store's run ends."""
        for close in [s.close for s in self.sinks] + [self.analyzer.close, self.source.close]:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - nothing was analysed; the rest must still close
                log.warning("while closing an unstarted run: %s", first_line(exc))


def build_run(
    source: FrameSource,
    base: AnalyzerConfig,
    out: Path,
    outputs: Sequence[str] = tuple(OUTPUT_FILES),
    overrides: dict[str, Any] | None = None,
    site=None,
    camera: str | None = None,
    store=None,
    start_time: float | None = None,
    blur: bool = False,
    video_preset: str = "superfast",
    landmarks: bool = False,
    extra_sinks: Sequence[Sink] = (),
) -> Run:
    """Source -> analyzer -> the file sinks of ``outputs`` in ``out`` (+ ``extra_sinks``), and with ``site``
    and ``store`` the analytics that turn the run into visits and alerts (staff faces never analysed)."""
    from ..sources import ImageSource

    cam = site.camera(camera) if site is not None else None
    photos = isinstance(source, ImageSource)
    analyzer = build_analyzer(base, cam, overrides, still=photos, fps=source.fps)
    analytics = None
    if site is not None and store is not None:
        from ..analytics.sink import AnalyticsSink

        analytics = AnalyticsSink(
            store, site, cam.id, source.name, start_time=start_time, lost_seconds=analyzer.config.lost_seconds
        )
        analyzer.exclude = analytics.staff_filter  # staff faces: counted per zone, never analysed
    video_fps = (source.fps or 5.0) / getattr(source, "stride", 1)
    sinks = output_sinks(out, outputs, video_fps, blur, video_preset, landmarks, photos) + list(extra_sinks)
    if analytics is not None:
        sinks.append(analytics)
    return Run(source, analyzer, sinks, analytics)
