"""Prometheus metrics (``GET /metrics``), one registry per app so several apps never mix.

Stream figures are read when scraped (nothing to keep in sync): fps, frames, faces,
dropped frames, reconnects, queue depth, state; per-stage latency as the median and 95th
percentile of the last 300 frames (``quantile`` label). HTTP requests are counted by a
pure ASGI middleware, labelled by route template (not raw path: bounded cardinality).

Usage::

    metrics = Metrics(server)                 # server: anything with .streams, .images, .hub, .jobs
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    text, content_type = metrics.render()
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: every state a stream reports: a local one (server/streams.py: starting, running, degraded, stopped,
#: failed) or a camera actor's (cluster/: also pending, reconnecting, restarting, finished)
STATES = ("pending", "starting", "running", "degraded", "reconnecting", "restarting", "finished", "stopped", "failed")


class _ServerCollector(Collector):
    def __init__(self, server: Any):
        self.server = server

    def collect(self) -> Iterable[Metric]:
        s = self.server
        label = ["stream"]
        fps = GaugeMetricFamily("tiltwatch_stream_fps", "Frames analysed per second (last ~60 frames)", labels=label)
        frames = CounterMetricFamily("tiltwatch_stream_frames", "Frames analysed", labels=label)
        faces = CounterMetricFamily("tiltwatch_stream_faces", "Faces found, summed over frames", labels=label)
        faces_now = GaugeMetricFamily("tiltwatch_stream_faces_current", "Faces in the latest frame", labels=label)
        dropped = CounterMetricFamily("tiltwatch_stream_dropped_frames", "Frames dropped to stay live", labels=label)
        failed = CounterMetricFamily("tiltwatch_stream_failed_frames", "Frames not analysable", labels=label)
        reconnects = CounterMetricFamily("tiltwatch_stream_reconnects", "Reconnection attempts", labels=label)
        depth = GaugeMetricFamily("tiltwatch_stream_queue_depth", "Frames waiting for analysis", labels=label)
        state = GaugeMetricFamily(
            "tiltwatch_stream_state", "1 for the stream's current state", labels=["stream", "state"]
        )
        latency = GaugeMetricFamily(
            "tiltwatch_stage_latency_seconds",
            "Per-stage latency over the last 300 frames (stream 'images': the image API)",
            labels=["stream", "stage", "quantile"],
        )
        streams = s.streams.all() if s.streams is not None else []
        for st in streams:
            sid = st.spec.id
            fps.add_metric([sid], st.fps)
            frames.add_metric([sid], st.frames)
            faces.add_metric([sid], st.faces)
            faces_now.add_metric([sid], st.faces_now)
            dropped.add_metric([sid], st.dropped)
            failed.add_metric([sid], st.failed_frames)
            reconnects.add_metric([sid], st.reconnects)
            depth.add_metric([sid], st.queue_depth)
            current = st.current_state()
            for name in STATES:
                state.add_metric([sid, name], 1.0 if current == name else 0.0)
            _latencies(latency, sid, st.timings)
        if s.images is not None:
            _latencies(latency, "images", s.images.timings)
        yield from (fps, frames, faces, faces_now, dropped, failed, reconnects, depth, state, latency)

        clients = GaugeMetricFamily("tiltwatch_ws_clients", "Connected WebSocket clients")
        clients.add_metric([], s.hub.clients)
        yield clients
        ws_depth = GaugeMetricFamily("tiltwatch_ws_queue_depth", "Messages waiting for the slowest WebSocket client")
        ws_depth.add_metric([], s.hub.depth())
        yield ws_depth
        ws_dropped = CounterMetricFamily("tiltwatch_ws_dropped_messages", "Messages dropped for slow clients")
        ws_dropped.add_metric([], s.hub.dropped)
        yield ws_dropped
        if s.images is not None:
            pending = GaugeMetricFamily("tiltwatch_image_queue_depth", "Images being analysed or waiting")
            pending.add_metric([], s.images.pending)
            yield pending
        if s.jobs is not None:
            jobs = GaugeMetricFamily("tiltwatch_jobs", "Video jobs by status", labels=["status"])
            for status, n in sorted(s.jobs.counts().items()):
                jobs.add_metric([status], n)
            yield jobs


def _latencies(family: GaugeMetricFamily, stream: str, timings: dict) -> None:
    for stage, values in list(timings.items()):
        v = np.fromiter(list(values), float)
        if v.size:
            family.add_metric([stream, stage, "0.5"], float(np.median(v)))
            family.add_metric([stream, stage, "0.95"], float(np.percentile(v, 95)))


class Metrics:
    def __init__(self, server: Any):
        self.registry = CollectorRegistry()
        self.registry.register(_ServerCollector(server))
        self.requests = Counter(
            "tiltwatch_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "tiltwatch_http_request_duration_seconds",
            "HTTP request time until the response starts",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class HttpMetricsMiddleware:
    """Counts every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                route = scope.get("route")
                self.metrics.latency.labels(getattr(route, "path", "other")).observe(time.perf_counter() - t0)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
