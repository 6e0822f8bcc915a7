"""The control plane: ``tiltwatch serve --cluster ADDRESS|local:N`` runs its streams as camera actors.

:class:`ClusterManager` stands where the server's :class:`~tiltwatch.server.streams.StreamManager`
stands (the same methods, so the routes, the WebSocket, the dashboard and the metrics are those of
local streams); each stream is a :class:`ClusterStream`, a view of one camera actor (:mod:`.camera`).

* **The actors are the record.** They are detached and named ``camera:<id>``: on start the manager
  finds every camera actor of the cluster and adopts it, as it runs (same process, same run in the
  store); a stream of ``--stream`` that has an actor already is adopted, not started again. So a
  control plane that stops (or crashes) and starts again never stops a camera.
* **Reconcile** (every ``poll_s``): each actor is polled for its status and its new messages (frame
  summaries and alerts, put on the hub as local streams' are); an actor that does not answer is
  ``restarting`` (Ray restarts it; one that was never up yet is ``pending``: no node has room for
  it); a stream that should run and whose actor is gone for good is started again.
* **Frames** (``frame.jpg``, MJPEG) are asked of the actor, annotated there.

States shown: ``starting``, ``running``, ``reconnecting`` (the source dropped or sends nothing; the
actor's reader reconnects), ``restarting``, ``pending``, ``finished``, ``stopped``, ``failed``.

``local:N`` starts a cluster on this machine for trying it: a head that runs no camera and N nodes
of ``cameras_per_node`` cameras each; it ends with the server (its cameras stopped first), so only
a cluster given by address outlives a control plane.

Usage::

    manager = ClusterManager(ClusterOptions("10.0.0.1:6379"), "postgresql+psycopg://...", site, hub.publish)
    manager.connect()                        # joins the cluster, adopts its camera actors
    manager.add(StreamSpec(id="table-7", source="rtsp://cam-7/stream")); manager.start("table-7")
    manager.get("table-7").status()          # {'state': 'running', 'node': ..., 'restarts': 0, ...}
    manager.stop_all()                       # leaves the cluster; the cameras go on
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, first_line
from ..server.streams import StreamError, StreamRegistry
from . import NAMESPACE, require_ray

log = logging.getLogger(__name__)
ANSWER_S = 5.0  # an actor that does not answer a poll within this is restarting (or pending)
ADOPT_S = 10.0  # how long a starting control plane waits for its camera actors to describe themselves
UNKNOWN = "unknown"  # the source of an adopted camera that has not said yet
NODES_EVERY_S = 5.0  # how often the nodes' addresses are read again


@dataclass
class ClusterOptions:
    """Where the cameras run and what each takes."""

    address: str  # 'local:N', or a Ray address: 'HOST:PORT', 'ray://HOST:10001', 'auto'
    num_cpus: float = 1.0  # logical CPUs Ray reserves for each camera actor
    memory_mb: int | None = None  # Ray's logical memory reservation of each camera actor
    cameras_per_node: int = 4  # local:N: each node's cap (a real cluster: ray start --resources)
    slots: bool = False  # each camera takes one camera slot (always so on local:N)
    stall_s: float = 15.0  # the actors' no-frame watchdog
    poll_s: float = 0.5
    local: Any = None  # local:N's LocalCluster, once started (start_local: Ray wants the main thread)

    @property
    def local_nodes(self) -> int | None:
        """N of 'local:N' (None: a cluster by address); ConfigError for a bad N."""
        m = re.fullmatch(r"local:(\d+)", self.address.strip())
        if m is None:
            if self.address.strip().startswith("local"):
                raise ConfigError(f"--cluster {self.address!r}: expected local:N (N from 1 to 16) or a Ray address")
            return None
        if not 1 <= int(m.group(1)) <= 16:
            raise ConfigError(f"--cluster {self.address!r}: N of local:N goes from 1 to 16")
        return int(m.group(1))

    def start_local(self) -> None:
        """Start local:N's cluster now: a head that runs no camera and N nodes of ``cameras_per_node``
        each (call it from the main thread: Ray's nodes set signal handlers). A no-op otherwise."""
        n = self.local_nodes
        if n is None or self.local is not None:
            return
        import signal

        from .local import LocalCluster

        per = self.cameras_per_node
        cpus = max(per * self.num_cpus, 1)
        handler = signal.getsignal(signal.SIGTERM)
        self.local = LocalCluster(nodes=n + 1, cpus_per_node=cpus, cameras_per_node=per, head_cameras=0)
        signal.signal(signal.SIGTERM, handler)  # Ray's own would exit(15) once the server re-raises SIGTERM
        self.slots = True

    def stop_local(self) -> None:
        if self.local is not None:
            self.local.shutdown()
            self.local = None

    def check(self) -> None:
        """ConfigError (one line) for settings no cluster can take."""
        if not self.address.strip():
            raise ConfigError("--cluster needs an address: local:N, HOST:PORT or ray://HOST:PORT")
        self.local_nodes  # noqa: B018 - validates N
        if self.num_cpus < 0 or (self.memory_mb is not None and self.memory_mb <= 0):
            raise ConfigError("--camera-cpus must be >= 0 and --camera-memory above 0")
        if self.cameras_per_node < 1:
            raise ConfigError(f"--cameras-per-node must be at least 1, got {self.cameras_per_node}")
        if self.stall_s <= 0:
            raise ConfigError(f"--watchdog must be above 0 s, got {self.stall_s}")


def shared_store_url(url: str) -> str:
    """The store's URL as every camera actor can open it: an SQLite file by its absolute path (the actors'
    working folder is not ours); ConfigError for an SQLite database in memory (no other process sees it)."""
    from sqlalchemy import make_url

    from ..store.engine import parse_url

    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        raise ConfigError("--db: an SQLite database in memory cannot be shared with camera actors; name a file")
    path = Path(parsed.database).expanduser().resolve()
    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def _stream_spec(described: dict[str, Any]):
    """The server's StreamSpec of a camera actor's spec (``{"id": ...}`` alone: not known yet)."""
    from ..server.settings import StreamSpec

    if "source" not in described:
        return StreamSpec(id=described["id"], source=UNKNOWN)
    keys = ("id", "source", "camera", "loop")
    return StreamSpec(**{k: described[k] for k in keys})


class ClusterStream:
    """One stream as a camera actor: what the API shows of it comes from the actor's last poll."""

    def __init__(self, spec, manager: ClusterManager, handle=None):
        self.spec = spec  # tiltwatch.server.settings.StreamSpec
        self.manager = manager
        self.handle = handle
        self.wanted = handle is not None  # it should run: reconcile starts it again if its actor is gone
        self.timings: dict = {}  # (per-stage latencies stay in the actor)
        self.queue_depth = 0
        self.last: dict[str, Any] = {}  # the actor's last status
        self.state = "starting" if handle is not None else "stopped"
        self.seen_up = self.restarting = False
        self.described = True  # its spec known (an actor adopted while it did not answer: once it does)
        self.seq = 0
        self.restarts_before = 0  # restarts of the actors this stream had before its current one
        self._alerts: list[dict[str, Any]] = []
        self._pending = None  # the poll in flight
        self.lock = threading.Lock()  # held while it is stopped, or its poll's answer taken in
        self._asked_at = 0.0

    # --- what the API reads (as LiveStream) ---------------------------------------------------

    fps = property(lambda self: float(self.last.get("fps", 0.0)) if self.state == "running" else 0.0)
    frames = property(lambda self: int(self.last.get("frames", 0)))
    faces = property(lambda self: int(self.last.get("faces", 0)))
    faces_now = property(lambda self: int(self.last.get("faces_now", 0)))
    dropped = property(lambda self: int(self.last.get("dropped_frames", 0)))
    failed_frames = property(lambda self: int(self.last.get("failed_frames", 0)))
    reconnects = property(lambda self: int(self.last.get("reconnects", 0)))
    latest_index = property(lambda self: int(self.last.get("frame", -1)) if self.state != "stopped" else -1)

    @property
    def active(self) -> bool:
        return self.handle is not None

    @property
    def camera(self) -> str | None:
        return self.last.get("camera") or self.spec.camera

    def current_state(self) -> str:
        return self.state

    def status(self) -> dict[str, Any]:
        from ..server.readers import masked_source

        last = self.last
        node = last.get("node")
        return {
            "id": self.spec.id,
            "source": masked_source(self.spec.source),
            "camera": self.camera,
            "loop": self.spec.loop,
            "state": self.state,
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "faces": self.faces_now,
            "faces_total": self.faces,
            "dropped_frames": self.dropped,
            "failed_frames": self.failed_frames,
            "reconnects": self.reconnects,
            "queue_depth": 0,
            "last_error": last.get("last_error"),
            "started_at": last.get("started_at"),
            "frame": self.latest_index,
            "node": node,
            "node_address": self.manager.node_address(node),
            "pid": last.get("pid"),
            "run_id": last.get("run_id"),
            "restarts": (last.get("restarts") or 0) + self.restarts_before,
            "stalls": last.get("stalls", 0),
        }

    def open_alerts(self) -> list[dict[str, Any]]:
        return list(self._alerts)

    def _describe(self) -> None:
        try:
            self.spec = _stream_spec(require_ray().get(self.handle.describe.remote(), timeout=ANSWER_S))
            self.described = True
        except Exception as exc:  # noqa: BLE001 - next poll, again
            log.warning("camera %s: not described yet: %s", self.spec.id, first_line(exc))

    def jpeg(self, quality: int = 80) -> bytes | None:
        """The actor's newest frame, annotated there (None when it has none or does not answer)."""
        ray = require_ray()
        handle = self.handle
        if handle is None:
            return None
        try:
            return ray.get(handle.jpeg.remote(self.manager.blur, quality), timeout=ANSWER_S)
        except Exception:  # noqa: BLE001 - restarting: no frame right now
            return None

    # --- control ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.handle is not None:
            raise StreamError(f"stream {self.spec.id!r} is already running", 409)
        self.manager.launch(self)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the camera (its visits and alerts closed and stored) and end its actor."""
        from .camera import remove_camera

        with self.lock:  # (the manager's poll skips this stream meanwhile)
            self.wanted = False
            if self.handle is not None and self.state == "pending":  # never placed: nothing to close
                require_ray().kill(self.handle, no_restart=True)
                self.handle, self._pending = None, None
            if self.handle is not None:
                last = remove_camera(self.spec.id, timeout=timeout)
                if last is not None:
                    self.last = last
                self.handle, self._pending = None, None
            self.state = "stopped"
            self._alerts = []

    # --- polled by the manager ----------------------------------------------------------------

    def take(self, answer: dict[str, Any]) -> list[dict[str, Any]]:
        """A poll's answer in: the status, open alerts; the new messages out (for the hub)."""
        status = answer["status"]
        if self.last.get("pid") not in (None, status["pid"]):
            self.restarting = True  # a new process: Ray restarted the actor (killed, or its node died)
        if status["state"] != "starting":
            self.restarting = False
        self.last = status
        if not self.described:
            self._describe()
        self.state = "restarting" if self.restarting else status["state"]
        self.seen_up = True
        self._alerts = answer.get("open_alerts", [])
        if answer["seq"] < self.seq:  # a restarted actor numbers its messages anew: take them next time
            self.seq = 0
            return []
        self.seq = answer["seq"]
        return answer["messages"]


class ClusterManager(StreamRegistry):
    """The server's streams as camera actors on a Ray cluster (thread-safe)."""

    def __init__(self, options: ClusterOptions, store_url: str, site, publish, blur: bool = False, config=None):
        options.check()
        super().__init__(site)
        self.options = options
        self.store_url = shared_store_url(store_url)
        self.publish = publish
        self.blur = blur
        self.config = config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nodes: dict[str, str] = {}
        self._nodes_at = 0.0

    # --- the cluster --------------------------------------------------------------------------

    def connect(self) -> list[str]:
        """Join (or, for local:N, start) the cluster, adopt its camera actors, start polling; their ids."""
        ray = require_ray()
        if self.options.local_nodes is not None:
            self.options.start_local()
        else:
            self._join(ray)
        adopted = self._adopt(ray)
        self._thread = threading.Thread(target=self._poll_loop, name="cluster-poll", daemon=True)
        self._thread.start()
        return adopted

    def _join(self, ray) -> None:
        from .local import LOOPBACK, _loopback_only

        address = self.options.address.strip()
        if address.split("://")[-1].split(":")[0] in (LOOPBACK, "localhost"):
            _loopback_only(ray)  # (a cluster on loopback: see local.py)
        try:
            ray.init(address=address, namespace=NAMESPACE, logging_level="warning", log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - Ray's errors are many and long
            raise ConfigError(f"--cluster {address}: cannot join the Ray cluster: {first_line(exc)}") from None

    def _adopt(self, ray) -> list[str]:
        """Take over every camera actor of the cluster; the ids. All are asked at once for their spec; one
        that does not answer within ADOPT_S (not placed yet, or restarting) is adopted by its name alone
        and described once it answers a poll."""
        handles = {}
        for name in ray.util.list_named_actors():
            if name.startswith("camera:"):
                try:
                    handles[name.removeprefix("camera:")] = ray.get_actor(name, namespace=NAMESPACE)
                except ValueError:
                    continue  # (gone meanwhile)
        refs = {cid: h.describe.remote() for cid, h in handles.items()}
        ready = set(ray.wait(list(refs.values()), num_returns=len(refs), timeout=ADOPT_S)[0]) if refs else set()
        adopted = []
        for cid, handle in handles.items():
            try:
                spec = ray.get(refs[cid]) if refs[cid] in ready else None
                stream = ClusterStream(_stream_spec(spec or {"id": cid}), self, handle)
            except Exception as exc:  # noqa: BLE001 - one broken actor (or a foreign id) must not stop the server
                log.error("camera actor camera:%s not adopted: %s", cid, first_line(exc))
                continue
            stream.described = spec is not None
            with self._lock:
                self._streams[cid] = stream
            adopted.append(cid)
        if adopted:
            log.info("adopted %d running camera(s): %s", len(adopted), ", ".join(sorted(adopted)))
        return adopted

    def node_address(self, node_id: str | None) -> str | None:
        if node_id is None:
            return None
        if time.monotonic() - self._nodes_at > NODES_EVERY_S or node_id not in self._nodes:
            try:
                ray = require_ray()
                self._nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
                self._nodes_at = time.monotonic()
            except Exception:  # noqa: BLE001 - only shown
                pass
        return self._nodes.get(node_id)

    def camera_spec(self, spec):
        """The camera actor's spec for the server's stream ``spec``."""
        from ..server.readers import source_kind
        from .camera import CameraSpec

        camera = self.site.camera(spec.camera).id if self.site is not None else spec.camera
        source = str(Path(spec.source).resolve()) if source_kind(spec.source) == "file" else spec.source
        o = self.options
        return CameraSpec(
            id=spec.id,
            source=source,
            camera=camera,
            site=self.site.model_dump() if self.site is not None else None,
            store_url=self.store_url if self.site is not None else None,
            config=self.config.model_dump() if self.config is not None else {},
            loop=spec.loop,
            stall_s=o.stall_s,
            publish=True,
            num_cpus=o.num_cpus,
            memory_mb=o.memory_mb,
            slot=o.slots,
        )

    def launch(self, stream: ClusterStream) -> None:
        """Start the stream's camera actor (a stream whose actor exists is adopted instead)."""
        from .camera import get_camera, start_camera

        try:
            stream.handle = get_camera(stream.spec.id)  # (one left running, e.g. by another control plane)
        except ValueError:
            stream.handle = start_camera(self.camera_spec(stream.spec))
        stream.wanted, stream.state, stream.seen_up, stream.seq = True, "starting", False, 0

    # --- StreamManager's methods --------------------------------------------------------------

    def add(self, spec) -> ClusterStream:
        return self._add(spec, lambda sp: ClusterStream(sp, self))

    def stop_all(self) -> None:
        """The server stops: leave the cluster, the cameras go on (local:N: they stop, then the cluster)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        ray = require_ray()
        if self.options.local is not None:
            for stream in sorted(self.all(), key=lambda s: s.state != "pending"):  # (or they take the room)
                stream.stop()
            self.options.stop_local()
        elif ray.is_initialized():
            ray.shutdown()

    # --- reconcile ----------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.options.poll_s):
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - the loop must go on
                log.error("cluster reconcile: %s", exc)

    def reconcile(self) -> None:
        """Poll every actor once (all at once); restarting or gone ones handled; messages to the hub."""
        ray = require_ray()
        now = time.monotonic()
        streams = [s for s in self.all() if s.handle is not None]
        for s in streams:
            if s._pending is None:
                s._pending, s._asked_at = s.handle.poll.remote(s.seq), now
        refs = [s._pending for s in streams]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=min(1.0, ANSWER_S)) if refs else ([], [])
        ready = set(ready)
        for s, ref in zip(streams, refs, strict=True):
            if not s.lock.acquire(blocking=False):
                continue  # being stopped right now
            try:
                if s.handle is None or s._pending is not ref:
                    continue  # stopped (or started anew) since it was asked
                if ref in ready:
                    self._answered(s, ref)
                elif now - s._asked_at > ANSWER_S:
                    self._unanswered(s)
            finally:
                s.lock.release()

    def _answered(self, stream: ClusterStream, ref) -> None:
        ray = require_ray()
        stream._pending = None
        try:
            messages = stream.take(ray.get(ref))
        except Exception:  # noqa: BLE001 - it died between answer and get
            self._unanswered(stream)
            return
        for message in messages:
            self.publish(message)

    def _unanswered(self, stream: ClusterStream) -> None:
        """A poll that failed or takes too long: Ray restarts the actor, places it, or it is gone for good."""
        from ray._private import state

        stream._pending = None
        try:
            info = state.actors(actor_id=stream.handle._actor_id.hex())
            ray_state = info.get("State")
        except Exception:  # noqa: BLE001 - the control store cannot say: keep waiting
            ray_state = "RESTARTING"
        if ray_state == "DEAD":
            again = stream.wanted and stream.described  # (a camera never described cannot be started again)
            log.warning("camera %s: its actor is gone%s", stream.spec.id, "; starting it again" * again)
            stream.handle = None
            if again:
                stream.restarts_before += (stream.last.get("restarts") or 0) + 1  # Ray's, and this one
                stream.last = dict(stream.last, restarts=0)
                self.launch(stream)
            else:
                stream.state = "stopped"
            return
        stream.state = "restarting" if stream.seen_up or ray_state == "RESTARTING" else "pending"
