"""Video jobs: an uploaded video analysed in the background, one job at a time.

Each job has a folder ``<data_dir>/jobs/<id>/`` with ``job.json`` (its status, rewritten on
every change), ``results.jsonl``, ``summary.csv``, ``annotated.mp4`` (only when the server
serves frames) and, with a site config, the day's ``report.html`` (visits and alerts of the
job also go to the store). The uploaded video is deleted once analysed. Jobs that a
restart interrupted are shown as ``cancelled``.

Usage::

    jobs = JobManager(Path("tiltwatch-data"), store, site, annotate=True, blur=False)
    job = jobs.create("clip.mp4", camera=None, start_time=None); <write the video to job.input>
    jobs.submit(job); jobs.get(job.id).to_dict(); jobs.close()
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..analytics.site import SiteConfig
from ..config import AnalyzerConfig
from ..errors import TiltwatchError, first_line
from ..pipeline.build import build_run
from ..sinks import Sink
from ..sources import VideoFileSource
from ..sources.base import Frame, FrameSource
from ..types import FrameResult

log = logging.getLogger(__name__)
FILES = ("results.jsonl", "summary.csv", "annotated.mp4", "report.html")


@dataclass
class Job:
    id: str
    filename: str
    folder: Path
    camera: str | None = None
    start_time: float | None = None  # epoch seconds of the video's first frame (default: upload time)
    status: str = "queued"  # queued | running | done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    frames_done: int = 0
    frames_total: int | None = None
    fps: float = 0.0
    error: str | None = None
    alerts: int | None = None
    analyzer: dict[str, Any] | None = None  # the settings the job ran with (its camera's included)

    @property
    def input(self) -> Path:
        return self.folder / "input.video"

    def files(self) -> list[str]:
        return [name for name in FILES if (self.folder / name).is_file()]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("folder")
        d["progress"] = {
            "frames": self.frames_done,
            "total": self.frames_total,
            "fraction": round(self.frames_done / self.frames_total, 4) if self.frames_total else None,
        }
        d["files"] = self.files()
        return d

    def save(self) -> None:
        tmp = self.folder / "job.json.tmp"
        tmp.write_text(json.dumps({k: v for k, v in asdict(self).items() if k != "folder"}))
        tmp.replace(self.folder / "job.json")


class _Progress(Sink):
    def __init__(self, job: Job):
        self.job = job
        self.t0 = time.perf_counter()

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.job.frames_done += 1
        elapsed = time.perf_counter() - self.t0
        self.job.fps = round(self.job.frames_done / elapsed, 2) if elapsed > 0 else 0.0


class _Stoppable(FrameSource):
    """A source that ends early when ``stop`` is set (the run then closes and flushes every sink)."""

    def __init__(self, inner: FrameSource, stop: threading.Event, name: str):
        self.inner, self.stop, self.name = inner, stop, name
        self.fps, self.total, self.live = inner.fps, inner.total, False
        self.stride = getattr(inner, "stride", 1)

    @property
    def skipped(self) -> list[str]:
        return self.inner.skipped

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.inner:
            if self.stop.is_set():
                return
            yield frame

    def close(self) -> None:
        self.inner.close()


class JobManager:
    def __init__(
        self,
        data_dir: Path,
        store,
        site: SiteConfig | None,
        annotate: bool,
        blur: bool = False,
        config: AnalyzerConfig | None = None,
    ):
        self.config = config
        self.root = Path(data_dir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.incoming = Path(data_dir) / "incoming"
        self.clear_incoming()  # uploads a crash left half-written
        self.store, self.site, self.annotate, self.blur = store, site, annotate, blur
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._load()
        self._thread = threading.Thread(target=self._worker, name="jobs", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        for path in sorted(self.root.glob("*/job.json")):
            try:
                data = json.loads(path.read_text())
                job = Job(folder=path.parent, **data)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("%s: unreadable job, skipped (%s)", path, exc)
                continue
            if job.status in ("queued", "running"):
                job.status, job.error = "cancelled", "interrupted by a server restart"
                job.input.unlink(missing_ok=True)
                job.save()
            self._jobs[job.id] = job

    def incoming_path(self) -> Path:
        """Where an upload is written before it becomes a job (deleted if the upload fails)."""
        return self.incoming / f"{uuid.uuid4().hex}.part"

    def create(self, upload: Path, filename: str, camera: str | None, start_time: float | None) -> Job:
        """A queued job owning ``upload`` (moved into its folder); call :meth:`submit` to run it."""
        job_id = uuid.uuid4().hex[:16]
        folder = self.root / job_id
        folder.mkdir()
        job = Job(id=job_id, filename=filename, folder=folder, camera=camera, start_time=start_time)
        upload.replace(job.input)
        job.save()
        self._jobs[job.id] = job
        return job

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in list(self._jobs.values()):
            out[job.status] = out.get(job.status, 0) + 1
        return out

    def close(self, timeout: float = 30.0) -> None:
        """Stop the running job (its results so far are kept and flushed) and cancel queued ones."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)
        for job in self._jobs.values():
            if job.status == "queued":
                job.status, job.error = "cancelled", "the server stopped before the job ran"
                job.input.unlink(missing_ok=True)
                job.save()

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stop.is_set():
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        job.status, job.started = "running", time.time()
        job.save()
        try:
            self._analyse(job)
            if self._stop.is_set():
                job.status, job.error = "cancelled", "the server stopped during the job; results so far are kept"
            elif job.frames_done == 0:
                job.status, job.error = "failed", f"{job.filename}: no frame could be analysed"
            else:
                job.status = "done"
        except Exception as exc:  # noqa: BLE001 - the job must say why, the worker must go on
            job.status = "failed"
            job.error = first_line(exc).replace(str(job.input), job.filename)  # no server path
            log.error("job %s failed: %s", job.id, job.error)
        finally:
            job.finished = time.time()
            job.input.unlink(missing_ok=True)
            job.save()

    def _analyse(self, job: Job) -> None:
        source = _Stoppable(VideoFileSource(job.input), self._stop, job.filename)
        job.frames_total = source.total
        start = job.start_time if job.start_time is not None else job.created
        outputs = ("jsonl", "csv", "video") if self.annotate else ("jsonl", "csv")
        run = build_run(
            source,
            self.config or AnalyzerConfig.preset(),
            job.folder,
            outputs,
            site=self.site,
            camera=job.camera,
            store=self.store if self.site is not None else None,
            start_time=start,
            blur=self.blur,
            extra_sinks=[_Progress(job)],
        )
        job.analyzer = run.analyzer.config.model_dump()
        run.execute()
        if run.analytics is not None:
            job.alerts = run.analytics.alert_count
            if not self._stop.is_set():
                self._report(job, run.analytics.camera.id, start)

    def _report(self, job: Job, camera: str, start: float) -> None:
        try:
            from ..analytics.report import build_report
        except ImportError as exc:  # matplotlib missing: the job is still done
            log.warning("job %s: no report (%s)", job.id, exc)
            return
        day = datetime.fromtimestamp(start, UTC).date().isoformat()
        try:
            build_report(self.store, camera, day, job.folder / "report.html")
        except (TiltwatchError, ImportError) as exc:
            log.warning("job %s: no report (%s)", job.id, exc)

    def discard(self, path: Path) -> None:
        """Remove a failed upload (and nothing else)."""
        if path.parent == self.incoming:
            path.unlink(missing_ok=True)

    def clear_incoming(self) -> None:
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir(parents=True, exist_ok=True)
