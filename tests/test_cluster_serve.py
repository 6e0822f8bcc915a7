"""``tiltwatch serve --cluster``: the service as the control plane of camera actors on a real Ray cluster
(two local nodes, loopback only). The server is a real process, stopped and started again: the cameras
never stop, and the new server adopts them; ``local:N`` caps the cameras a node takes, the head takes none."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ray = pytest.importorskip("ray", reason="Ray is the 'cluster' extra: pip install -e '.[cluster]'")

from tiltwatch.cluster.camera import CameraSpec, get_camera, remove_camera, start_camera  # noqa: E402

from .test_cluster import SITE  # noqa: E402

KEY = "cluster-test-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture()
def site(tmp_path):
    import yaml

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(SITE))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``tiltwatch serve`` as its own process (what an operator runs), on loopback."""

    def __init__(self, *args):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TILTWATCH_API_KEYS=KEY)
        cmd = [sys.executable, "-m", "tiltwatch", "serve", "--port", str(self.port), *map(str, args)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server ended ({self.proc.returncode}): {self.proc.stdout.read()[-3000:]}")
            try:
                if self.get("/health")["status"] == "ok":
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail("the server did not come up within 120 s")

    def request(self, path: str, method: str = "GET") -> tuple[int, bytes, str | None]:
        """(status, body, content type)."""
        req = urllib.request.Request(self.base + path, method=method, headers=HEADERS)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type")

    def get(self, path: str) -> dict:
        """The JSON answer; one refused by the rate limit (120 a minute: a long wait polls more) is asked again."""
        for _ in range(60):
            status, body, _ = self.request(path)
            if status != 429:
                return json.loads(body)
            time.sleep(1.0)
        pytest.fail(f"{path}: rate-limited for a minute")

    def wait(self, path: str, ok, timeout: float = 90.0, seen: list | None = None) -> dict:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            last = self.get(path)
            if seen is not None:
                seen.append(last.get("state"))
            if ok(last):
                return last
            time.sleep(0.5)  # under the server's 120 requests a minute
        pytest.fail(f"{path}: no such answer within {timeout} s; last: {last}")

    def frame_message(self, stream: str, timeout: float = 60.0) -> dict:
        """The first ``frame`` message of ``stream`` on the WebSocket."""
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{self.port}/api/v1/ws?key={KEY}", open_timeout=30) as ws:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(ws.recv(timeout=timeout))
                if message["type"] == "frame" and message["stream"] == stream:
                    return message
        pytest.fail(f"no frame message of {stream} within {timeout} s")

    def stop(self) -> bool:
        """SIGTERM; whether it shut down cleanly (uvicorn re-raises the signal once it has)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.output = f"exit {self.proc.returncode}: " + self.proc.stdout.read()[-3000:]
        return self.proc.returncode in (0, -signal.SIGTERM)


def gone(camera: str, timeout: float = 30.0) -> bool:
    """Whether the camera's actor is gone (its name freed) within ``timeout`` (ray.kill is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get_camera(camera)
        except ValueError:
            return True
        time.sleep(0.2)
    return False


def states(answer: dict) -> list[str]:
    return sorted(s["state"] for s in answer["streams"])


def running(n: int):
    return lambda s: s["state"] == "running" and s["frames"] >= n


def test_the_cameras_go_on_while_the_control_plane_restarts(cluster, clip, site, tmp_path):
    """And the control plane shows a camera restarted by Ray, and starts anew one whose actor is gone."""
    db = tmp_path / "floor.db"
    args = ["--cluster", cluster.address, "--db", f"sqlite:///{db}", "--site", site, "--allow-frames"]
    args += ["--stream", f"cam-a={clip}", "--no-sample"]
    first = Served(*args)
    try:
        a = first.wait("/api/v1/streams/cam-a", running(3))
        assert a["node"] in cluster.node_ids and a["node_address"] == "127.0.0.1" and a["restarts"] == 0
        status, jpeg, kind = first.request("/api/v1/streams/cam-a/frame.jpg")
        assert status == 200 and kind == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
        assert "tiltwatch_stream_frames" in first.request("/metrics")[1].decode()
    finally:
        down = time.monotonic()
        assert first.stop(), first.output
    actor = get_camera("cam-a")  # no control plane now: the camera goes on
    alone = ray.get(actor.status.remote(), timeout=30)
    time.sleep(2)
    later = ray.get(actor.status.remote(), timeout=30)
    assert later["state"] == "running" and later["frames"] > alone["frames"] and later["pid"] == a["pid"]
    second = Served(*args)
    try:
        b = second.wait("/api/v1/streams/cam-a", lambda s: s["state"] == "running" and s["frames"] > later["frames"])
        assert (b["pid"], b["run_id"], b["node"]) == (a["pid"], a["run_id"], a["node"])  # adopted, not restarted
        print(f"control plane down and up again, camera adopted: {time.monotonic() - down:.1f} s")
        assert [s["id"] for s in second.get("/api/v1/streams")["streams"]] == ["cam-a"]
        assert second.frame_message("cam-a")["faces"]  # the actor's frames reach the WebSocket
        path = "/api/v1/streams/cam-a"
        t0 = time.monotonic()
        ray.kill(get_camera("cam-a"), no_restart=False)  # the process dies: Ray restarts it
        c = second.wait(path, lambda s: s["state"] == "running" and s["pid"] != b["pid"])
        print(f"killed camera running again, as the API shows it: {time.monotonic() - t0:.1f} s")
        assert c["restarts"] == 1 and c["run_id"] != b["run_id"]
        t0 = time.monotonic()
        ray.kill(get_camera("cam-a"), no_restart=True)  # gone for good: the control plane starts it anew
        d = second.wait(path, lambda s: s["state"] == "running" and s["pid"] != c["pid"])
        print(f"camera gone for good, started anew by the control plane: {time.monotonic() - t0:.1f} s")
        assert d["restarts"] == 2 and d["run_id"] not in (b["run_id"], c["run_id"])
        assert second.request("/api/v1/streams/cam-a", "DELETE")[0] == 204
        assert gone("cam-a")
    finally:
        assert second.stop(), second.output
        remove_camera("cam-a")
    with sqlite3.connect(db) as con:
        stored = con.execute("select run_id, epoch, ended_at from runs order by epoch").fetchall()
    assert [r[:2] for r in stored] == [(a["run_id"], 1), (c["run_id"], 2), (d["run_id"], 3)]  # one run a process
    assert stored[-1][2] is not None  # the last one ended by DELETE


def test_a_camera_no_node_has_room_for_is_adopted_as_pending(cluster, tmp_path):
    huge = CameraSpec(id="huge", source="sample", loop=True, num_cpus=64)  # more CPUs than any node has
    start_camera(huge)
    try:
        served = Served("--cluster", cluster.address, "--db", f"sqlite:///{tmp_path / 'floor.db'}", "--no-sample")
        try:
            pending = served.wait("/api/v1/streams/huge", lambda s: s["state"] == "pending")
            assert pending["node"] is None and pending["frames"] == 0
            assert served.request("/api/v1/streams/huge", "DELETE")[0] == 204
            assert gone("huge")
        finally:
            assert served.stop(), served.output
    finally:
        remove_camera("huge", timeout=1)


def test_local_nodes_take_their_cap_of_cameras_and_the_head_none(clip, site, tmp_path):
    db = tmp_path / "floor.db"
    args = ["--cluster", "local:1", "--cameras-per-node", 1, "--db", f"sqlite:///{db}", "--site", site]
    args += ["--stream", f"cam-a={clip}", "--stream", f"cam-b={clip}", "--no-sample"]
    served = Served(*args)
    try:
        both = served.wait("/api/v1/streams", lambda r: states(r) == ["pending", "running"], timeout=120)
        up = next(s for s in both["streams"] if s["state"] == "running")
        time.sleep(3)  # (and it stays so: the head has no slot)
        assert states(served.get("/api/v1/streams")) == ["pending", "running"]
        health = served.get("/health")["streams"]
        assert health == {"total": 2, "running": 1, "pending": 1}
    finally:
        assert served.stop(), served.output  # local:N ends with the server: its cameras stopped first
    with sqlite3.connect(db) as con:
        stored = con.execute("select camera, ended_at from runs").fetchall()
    assert stored == [(up["camera"], stored[0][1])] and stored[0][1] is not None


def test_serve_refuses_bad_cluster_settings(tmp_path):
    from .conftest import tiltwatch

    r = tiltwatch("serve", "--cluster", "local:0", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 2 and "N of local:N goes from 1 to 16" in r.stderr
    r = tiltwatch("serve", "--cluster", "local:2", "--db", "sqlite://")
    assert r.returncode == 2 and "in memory cannot be shared" in r.stderr
