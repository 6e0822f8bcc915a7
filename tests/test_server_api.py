"""The HTTP API of ``tiltwatch serve``: auth, upload limits, analysis, jobs, streams, data, metrics, limits.

Real app (FastAPI TestClient over the ASGI app, lifespan included), a temporary SQLite store,
real models, the built-in sample as a live stream. No mocks.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tiltwatch.analytics.records import Alert, Visit
from tiltwatch.server import Settings, create_app
from tiltwatch.sources import SampleSource
from tiltwatch.store import Store

from .conftest import HAPPY_TILT_SITE

KEY = "test-key-0123456789abcdef"
KEY2 = "other-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SITE = HAPPY_TILT_SITE + "sample_every: 0.25\n"
T0 = 1_740_000_000.0  # 2025-02-19T21:20:00Z: seeded records live around here


def settings(tmp: Path, **overrides) -> Settings:
    base = dict(
        api_keys=[KEY, KEY2],
        api_key_file=None,
        db=f"sqlite:///{tmp / 'tw.db'}",
        site=tmp / "site.yaml",
        allow_frames=True,
        data_dir=tmp / "data",
        rate_limit=0,
        image_workers=1,
        media_dir=tmp,
    )
    return Settings(**{**base, **overrides})


def _visit(camera: str, track: int, start: float, seconds: float, zones: list[str]) -> Visit:
    return Visit(
        camera=camera,
        visit_key=f"seed:{camera}:{track}",
        run_id="seed",
        track_id=track,
        start=start,
        end=start + seconds,
        zones=zones,
        dwell_s={z: seconds for z in zones},
        frames=10,
        mean_probs=[0.1] * 8,
        dominant="neutral",
        mean_valence=0.0,
        mean_arousal=0.0,
        attention=None,
        closed=True,
    )


def _alert(camera: str, kind: str, start: float, zone: str) -> Alert:
    return Alert(
        camera=camera,
        kind=kind,
        visit_key=f"seed:{camera}:1",
        track_id=1,
        zone=zone,
        start=start,
        end=start + 5,
        value=0.8,
        threshold=0.5,
        evidence={"series": []},
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("server")
    (folder / "site.yaml").write_text(SITE)
    with Store(f"sqlite:///{folder / 'tw.db'}") as store:  # records for the filter tests
        store.upsert_visit(_visit("cam-a", 1, T0, 60, ["table-1"]))
        store.upsert_visit(_visit("cam-a", 2, T0 + 600, 30, ["table-2"]))
        store.upsert_visit(_visit("cam-b", 3, T0 + 1200, 90, ["bar"]))
        store.add(_alert("cam-a", "tilt", T0 + 10, "table-1"))
        store.add(_alert("cam-a", "distress", T0 + 620, "table-2"))
        store.add(_alert("cam-b", "tilt", T0 + 1250, "bar"))
    return folder


@pytest.fixture(scope="module")
def client(tmp):
    with TestClient(create_app(settings(tmp))) as c:
        yield c


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    from skimage import data

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return buf.tobytes()


def wait_for(predicate, timeout: float, what: str, every: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stored_counts(db: Path) -> tuple[int, int, int]:
    with Store(f"sqlite:///{db}") as store:
        return len(store.visits()), len(store.alerts()), len(store.observations())


# --- auth ---------------------------------------------------------------------------------------


def test_health_needs_no_key(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"] and "total" in body["streams"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"X-API-Key": "wrong-key-0123456789"},
        {"Authorization": KEY},
    ],
)
def test_401_without_or_with_wrong_key(client, headers):
    for path in ("/api/v1/streams", "/api/v1/visits", "/metrics"):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, path
        assert "error" in r.json() and "\n" not in r.json()["error"]


def test_every_api_operation_needs_the_key(tmp):
    """Not three paths: every operation under /api/v1 and /metrics, each method, gets 401 without a
    key or with a wrong one; only /health and the dashboard page answer without one."""
    import re

    with TestClient(create_app(settings(tmp, auth_failures=0))) as c:  # (no 429: many wrong keys here)
        checked = set()
        for template, operations in c.app.openapi()["paths"].items():
            if not template.startswith(("/api/v1", "/metrics")):
                continue
            path = re.sub(r"\{[^}]+\}", "x", template)
            for method in operations:
                for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}):
                    r = c.request(method.upper(), path, headers=headers)
                    assert r.status_code == 401, (method, path, headers, r.status_code)
                    assert "\n" not in r.json()["error"]
                checked.add((method.upper(), template))
        assert len(checked) >= 15 and ("POST", "/api/v1/analyze/image") in checked
        assert c.get("/health").status_code == 200 and c.get("/").status_code == 200


def test_both_key_headers_work_and_query_key_only_for_media(client):
    assert client.get("/api/v1/streams", headers=AUTH).status_code == 200
    assert client.get("/api/v1/streams", headers={"X-API-Key": KEY2}).status_code == 200
    assert client.get(f"/api/v1/streams?key={KEY}").status_code == 401  # keys in URLs: media and ws only


def test_generated_key_is_printed_once_and_works(tmp, monkeypatch, capsys):
    monkeypatch.delenv("TILTWATCH_API_KEYS", raising=False)
    monkeypatch.delenv("TILTWATCH_API_KEY_FILE", raising=False)
    app = create_app(settings(tmp, api_keys=[], data_dir=tmp / "data-gen"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("API key: ")]
    assert len(lines) == 1
    key = lines[0].removeprefix("API key: ")
    with TestClient(app) as c:
        assert c.get("/api/v1/streams", headers={"X-API-Key": key}).status_code == 200
    assert key not in repr(Settings(api_keys=[key]))  # SecretStr: never in a log line of the settings


def test_dashboard_page_loads_nothing_from_elsewhere(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert 'id="alerts"' in r.text and 'id="mood"' in r.text and 'id="key-input"' in r.text
    page = r.text + client.get("/static/app.js").text + client.get("/static/style.css").text
    assert "https://" not in page
    assert page.replace("http://www.w3.org/2000/svg", "").count("http://") == 0


# --- uploads ------------------------------------------------------------------------------------


def test_image_analysis_on_the_astronaut(client, astronaut_jpeg):
    r = client.post(
        "/api/v1/analyze/image", headers=AUTH, files={"file": ("astronaut.jpg", astronaut_jpeg, "image/jpeg")}
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["schema"] == 1 and result["width"] == 512 and result["face_present"]
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert face["emotion"]["label"] == "happiness"
    assert abs(sum(face["emotion"]["probs"].values()) - 1) < 0.01
    assert face["has_mesh"] and set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert abs(face["pose"]["yaw"]) < 20


def test_a_phone_photo_is_analysed_upright(client, astronaut):
    """An upload lying on its side with an EXIF orientation (as phones save portraits) is read as
    a viewer shows it: the face is found, upright."""
    from PIL import Image

    im = Image.fromarray(cv2.cvtColor(cv2.rotate(astronaut, cv2.ROTATE_90_COUNTERCLOCKWISE), cv2.COLOR_BGR2RGB))
    exif, buf = im.getexif(), io.BytesIO()
    exif[0x0112] = 6  # show it turned 90 degrees clockwise
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    r = client.post("/api/v1/analyze/image", headers=AUTH, files={"file": ("phone.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 1 and abs(faces[0]["pose"]["roll"]) < 15


def test_wrong_type_415_and_undecodable_422(client, astronaut_jpeg):
    r = client.post("/api/v1/analyze/image", headers=AUTH, files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and "accepted: jpeg" in r.json()["error"]
    r = client.post("/api/v1/analyze/image", headers={**AUTH, "Content-Type": "image/jpeg"}, content=astronaut_jpeg)
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/api/v1/jobs", headers=AUTH, files={"file": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    assert r.status_code == 415
    r = client.post(
        "/api/v1/analyze/image", headers=AUTH, files={"file": ("broken.png", b"\x89PNG not really", "image/png")}
    )
    assert r.status_code == 422
    assert r.json()["error"] == "broken.png: not a decodable image"
    r = client.post("/api/v1/analyze/image", headers=AUTH, files={"other": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    assert r.status_code == 422 and "field 'file'" in r.json()["error"]


def test_oversized_uploads_413_and_nothing_stored(tmp, astronaut_jpeg):
    small = settings(tmp, max_image_bytes=20_000, max_video_bytes=30_000, data_dir=tmp / "data-small")
    before = stored_counts(tmp / "tw.db")
    with TestClient(create_app(small)) as c:
        r = c.post("/api/v1/analyze/image", headers=AUTH, files={"file": ("big.jpg", astronaut_jpeg, "image/jpeg")})
        assert r.status_code == 413 and "limit is 20000 bytes" in r.json()["error"]
        r = c.post("/api/v1/jobs", headers=AUTH, files={"file": ("big.mp4", b"\0" * 100_000, "video/mp4")})
        assert r.status_code == 413
        assert c.get("/api/v1/jobs", headers=AUTH).json()["jobs"] == []
    assert not any((tmp / "data-small" / "jobs").iterdir())
    assert not any((tmp / "data-small" / "incoming").iterdir())
    assert stored_counts(tmp / "tw.db") == before


def test_413_stops_reading_the_body(tmp):
    """Without Content-Length (chunked), the app stops pulling the body right after the limit."""
    limit, chunk = 50_000, 8192
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\0" * 5_000_000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    app = create_app(settings(tmp, max_image_bytes=limit, data_dir=tmp / "data-stream"))
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        piece = body[pulled : pulled + chunk]
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": pulled < len(body)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/analyze/image",
        "raw_path": b"/api/v1/analyze/image",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "headers": [
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
    }
    with TestClient(app):  # runs the lifespan (store, pools)
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled <= limit + 2 * chunk, f"read {pulled} bytes for a {limit}-byte limit"


# --- jobs ---------------------------------------------------------------------------------------


def write_clip(path: Path, seconds: float = 1.0, fps: float = 10.0) -> int:
    """An H.264 mp4 of the built-in sample; returns its frame count."""
    source = SampleSource(seconds=seconds, fps=fps)
    n = 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = 960, 540, "yuv420p"
        for frame in source:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")))
            n += 1
        out.mux(stream.encode())
    return n


def test_video_job_completes_with_downloadable_results(client, tmp):
    clip = tmp / "clip.mp4"
    frames = write_clip(clip)
    r = client.post(
        "/api/v1/jobs",
        headers=AUTH,
        data={"camera": "sample", "start_time": "2026-01-02T10:00:00Z"},
        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status"] in ("queued", "running")
    job = wait_for(
        lambda: (j := client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json())["status"] not in ("queued", "running")
        and j,
        120,
        "the job to finish",
    )
    assert job["status"] == "done", job
    assert job["progress"] == {"frames": frames, "total": frames, "fraction": 1.0}
    assert job["fps"] > 0 and job["error"] is None
    lines = client.get(f"/api/v1/jobs/{job_id}/results.jsonl", headers=AUTH).text.splitlines()
    assert len(lines) == frames
    first = json.loads(lines[0])
    assert first["schema"] == 1 and first["source"] == "clip.mp4" and first["faces"]
    video = client.get(f"/api/v1/jobs/{job_id}/annotated.mp4", headers=AUTH)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    report = client.get(f"/api/v1/jobs/{job_id}/report.html", headers=AUTH)
    assert report.status_code == 200 and "tiltwatch report: camera sample, 2026-01-02" in report.text
    assert client.get(f"/api/v1/jobs/{job_id}/nope.txt", headers=AUTH).status_code == 404
    visits = client.get(
        "/api/v1/visits",
        headers=AUTH,
        params={"camera": "sample", "start": "2026-01-02T00:00:00Z", "end": "2026-01-03T00:00:00Z"},
    ).json()
    assert visits["count"] >= 2 and all(v["camera"] == "sample" for v in visits["visits"])


# --- visits and alerts --------------------------------------------------------------------------


def test_visit_and_alert_filters(client):
    def get(path, **params):
        r = client.get(path, headers=AUTH, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    window = {"start": T0 - 1, "end": T0 + 3600}
    assert get("/api/v1/visits", **window)["count"] == 3
    assert [v["track_id"] for v in get("/api/v1/visits", camera="cam-a", **window)["visits"]] == [1, 2]
    assert [v["track_id"] for v in get("/api/v1/visits", zone="table-2", **window)["visits"]] == [2]
    iso = {"start": "2025-02-19T21:25:00Z", "end": "2025-02-19T21:45:00+00:00"}  # T0 + 300 .. T0 + 1500
    assert [v["track_id"] for v in get("/api/v1/visits", **iso)["visits"]] == [2, 3]
    assert [v["track_id"] for v in get("/api/v1/visits", limit=1, **window)["visits"]] == [3]
    assert [a["kind"] for a in get("/api/v1/alerts", camera="cam-a", **window)["alerts"]] == ["tilt", "distress"]
    assert [a["camera"] for a in get("/api/v1/alerts", kind="tilt", **window)["alerts"]] == ["cam-a", "cam-b"]
    assert [a["zone"] for a in get("/api/v1/alerts", zone="bar", **window)["alerts"]] == ["bar"]
    r = client.get("/api/v1/alerts", headers=AUTH, params={"start": "yesterday"})
    assert r.status_code == 422 and r.json()["error"].startswith("start: expected ISO 8601")
    r = client.get("/api/v1/visits", headers=AUTH, params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"].startswith("query.limit")


# --- streams, live frames, WebSocket, metrics -------------------------------------------------


@pytest.fixture(scope="module")
def live(client):
    """The sample playing as live stream 'live' (stopped at the end)."""
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "live", "source": "sample", "loop": True})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "stopped"
    assert client.post("/api/v1/streams/live/start", headers=AUTH).json()["state"] in ("starting", "running")
    wait_for(lambda: client.get("/api/v1/streams/live", headers=AUTH).json()["frames"] >= 5, 60, "frames")
    yield "live"
    client.post("/api/v1/streams/live/stop", headers=AUTH)


def test_stream_add_start_state_stop(client, live, tmp):
    state = client.get(f"/api/v1/streams/{live}", headers=AUTH).json()
    assert state["state"] == "running" and state["camera"] == "sample" and state["fps"] > 0
    assert state["faces"] >= 1 and state["last_error"] is None
    assert {"dropped_frames", "reconnects", "queue_depth"} <= set(state)
    assert [s["id"] for s in client.get("/api/v1/streams", headers=AUTH).json()["streams"]].count(live) == 1
    jpeg = client.get(f"/api/v1/streams/{live}/frame.jpg", headers=AUTH)
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_COLOR).shape == (540, 960, 3)
    assert client.get(f"/api/v1/streams/{live}/frame.jpg?key={KEY}").status_code == 200  # for <img src>

    assert client.post("/api/v1/streams", headers=AUTH, json={"id": live, "source": "sample"}).status_code == 409
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "x", "source": str(tmp / "missing.mp4")})
    assert r.status_code == 422 and "no video" in r.json()["error"] and "media folder" in r.json()["error"]
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "x", "source": "sample", "camera": "nope"})
    assert r.status_code == 422 and "camera 'nope'" in r.json()["error"]
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "bad id!", "source": "sample"})
    assert r.status_code == 422 and r.json()["error"].startswith("id:")
    assert client.get("/api/v1/streams/nope", headers=AUTH).status_code == 404
    assert client.post(f"/api/v1/streams/{live}/start", headers=AUTH).status_code == 409


def test_stream_stop_and_restart(client, tmp):
    assert client.post("/api/v1/streams", headers=AUTH, json={"id": "short", "source": "sample"}).status_code == 201
    client.post("/api/v1/streams/short/start", headers=AUTH)
    wait_for(lambda: client.get("/api/v1/streams/short", headers=AUTH).json()["frames"] >= 2, 60, "frames")
    stopped = client.post("/api/v1/streams/short/stop", headers=AUTH).json()
    assert stopped["state"] == "stopped" and stopped["fps"] >= 0
    frames = stopped["frames"]
    time.sleep(0.5)
    assert client.get("/api/v1/streams/short", headers=AUTH).json()["frames"] == frames  # nothing runs
    client.post("/api/v1/streams/short/start", headers=AUTH)
    wait_for(lambda: client.get("/api/v1/streams/short", headers=AUTH).json()["frames"] > frames, 60, "restart")
    assert client.delete("/api/v1/streams/short", headers=AUTH).status_code == 204
    assert client.get("/api/v1/streams/short", headers=AUTH).status_code == 404


def test_file_stream_is_paced_to_its_frame_rate_and_loops(client, tmp):
    clip = tmp / "paced.mp4"
    frames = write_clip(clip, seconds=1.0, fps=10.0)  # 10 frames = 1 s of video
    for stream_id, loop in (("once", False), ("looped", True)):
        r = client.post("/api/v1/streams", headers=AUTH, json={"id": stream_id, "source": str(clip), "loop": loop})
        assert r.status_code == 201, r.text
    t0 = time.monotonic()
    client.post("/api/v1/streams/once/start", headers=AUTH)
    client.post("/api/v1/streams/looped/start", headers=AUTH)
    once = wait_for(
        lambda: (s := client.get("/api/v1/streams/once", headers=AUTH).json())["state"] == "stopped" and s,
        60,
        "the file to end",
    )
    assert time.monotonic() - t0 >= 0.9  # played at 10 fps, not as fast as it decodes
    assert 1 <= once["frames"] <= frames and once["last_error"] is None
    wait_for(
        lambda: client.get("/api/v1/streams/looped", headers=AUTH).json()["frame"] >= frames + 2,
        60,
        "the file to start again",
    )
    assert client.post("/api/v1/streams/looped/stop", headers=AUTH).json()["state"] == "stopped"


def test_stream_of_a_file_that_is_no_video_fails_with_a_reason(client, tmp):
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "notvideo", "source": str(tmp / "site.yaml")})
    assert r.status_code == 201
    client.post("/api/v1/streams/notvideo/start", headers=AUTH)
    state = wait_for(
        lambda: (s := client.get("/api/v1/streams/notvideo", headers=AUTH).json())["state"] == "failed" and s,
        30,
        "the stream to fail",
    )
    assert "cannot open as video" in state["last_error"] and "\n" not in state["last_error"]


def test_unreachable_stream_is_degraded_and_reconnects(client):
    port = _free_port()
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "gone", "source": f"http://127.0.0.1:{port}/cam"})
    assert r.status_code == 201
    client.post("/api/v1/streams/gone/start", headers=AUTH)
    state = wait_for(
        lambda: (s := client.get("/api/v1/streams/gone", headers=AUTH).json())["reconnects"] >= 2
        and s["state"] == "degraded"
        and s,
        30,
        "reconnect attempts",
    )
    assert "reconnecting in" in state["last_error"]
    assert client.post("/api/v1/streams/gone/stop", headers=AUTH).json()["state"] == "stopped"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_websocket_pushes_frames(client, live):
    with client.websocket_connect(f"/api/v1/ws?key={KEY}") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and live in [s["id"] for s in hello["streams"]]
        frame = next(m for m in iter(ws.receive_json, None) if m["type"] == "frame" and m["faces"])
    assert frame["stream"] == live and frame["width"] == 960 and frame["timestamp"] > 1e9
    face = frame["faces"][0]
    assert {"track_id", "box", "label", "probs", "pose", "valence", "zone"} <= set(face)
    assert face["zone"] in ("table-1", "table-2") and len(face["box"]) == 4


def test_websocket_auth_by_first_message_or_refused(client, live):
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"type": "auth", "key": KEY2})
        assert ws.receive_json()["type"] == "hello"
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"type": "auth", "key": "wrong-key-0123456789"})
        assert ws.receive_json() == {"type": "error", "error": "missing or invalid API key"}


def test_metrics(client, live):
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    per_stream = ("fps", "dropped_frames_total", "queue_depth", "frames_total", "reconnects_total", "faces_total")
    for name in per_stream:
        assert f'tiltwatch_stream_{name}{{stream="{live}"}}' in text, name
    assert f'tiltwatch_stream_state{{state="running",stream="{live}"}} 1.0' in text
    assert "tiltwatch_http_requests_total{" in text
    assert f'tiltwatch_stage_latency_seconds{{quantile="0.95",stage="detect",stream="{live}"}}' in text
    fps_line = next(line for line in text.splitlines() if line.startswith(f'tiltwatch_stream_fps{{stream="{live}"'))
    fps = float(fps_line.split()[-1])
    assert fps > 0


def test_frames_forbidden_unless_allowed(tmp):
    with TestClient(create_app(settings(tmp, allow_frames=False, data_dir=tmp / "data-noframes"))) as c:
        c.post("/api/v1/streams", headers=AUTH, json={"id": "s", "source": "sample"})
        for path in ("/api/v1/streams/s/frame.jpg", "/api/v1/streams/s/mjpeg"):
            r = c.get(path, headers=AUTH)
            assert r.status_code == 403 and "allow_frames" in r.json()["error"]
        assert c.get("/api/v1/streams", headers=AUTH).json()["allow_frames"] is False


# --- rate limit, CORS, shutdown -----------------------------------------------------------------


def test_rate_limit_429_with_retry_after(tmp):
    with TestClient(create_app(settings(tmp, rate_limit=5, data_dir=tmp / "data-rl"))) as c:
        codes = [c.get("/api/v1/streams", headers=AUTH).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = c.get("/api/v1/streams", headers=AUTH)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "rate limit exceeded" in r.json()["error"]
        assert c.get("/api/v1/streams", headers={"X-API-Key": KEY2}).status_code == 200  # per key
        assert c.get("/health").status_code == 200


def test_rate_limit_refuses_websocket_handshakes_too(tmp):
    from starlette.websockets import WebSocketDisconnect

    with TestClient(create_app(settings(tmp, rate_limit=2, data_dir=tmp / "data-rlws"))) as c:
        for _ in range(2):
            with c.websocket_connect("/api/v1/ws", headers=AUTH) as ws:
                assert ws.receive_json()["type"] == "hello"
        with pytest.raises(WebSocketDisconnect) as refused:
            with c.websocket_connect("/api/v1/ws", headers=AUTH):
                pass
        assert refused.value.code == 1008 and "rate limit" in refused.value.reason


def test_cors_off_by_default_and_on_when_configured(client, tmp):
    origin = {"Origin": "https://evil.example"}
    r = client.get("/api/v1/streams", headers={**AUTH, **origin})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = client.options("/api/v1/streams", headers={**origin, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(settings(tmp, cors_origins=["https://floor.example"], data_dir=tmp / "data-cors"))) as c:
        r = c.get("/api/v1/streams", headers={**AUTH, "Origin": "https://floor.example"})
        assert r.headers["access-control-allow-origin"] == "https://floor.example"
        r = c.get("/api/v1/streams", headers={**AUTH, **origin})
        assert "access-control-allow-origin" not in r.headers


def test_shutdown_closes_streams_and_keeps_every_record(tmp):
    db = tmp / "shutdown.db"
    s = settings(
        tmp,
        db=f"sqlite:///{db}",
        data_dir=tmp / "data-shutdown",
        streams=[{"id": "sample", "source": "sample", "loop": True}],
    )
    with TestClient(create_app(s)) as c:
        wait_for(lambda: c.get("/api/v1/streams/sample", headers=AUTH).json()["frames"] >= 15, 60, "frames")
    with Store(f"sqlite:///{db}") as store:
        visits = store.visits()
        assert visits and all(v.closed for v in visits)  # open visits were closed and written at shutdown
        assert store.observations()
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from runs where ended_at is null").fetchone()[0] == 0


def test_streams_added_over_the_api_come_back_after_a_restart(tmp):
    """A restarted server adds its API streams again, running ones started; a deleted one stays gone; one
    whose file left the media folder is said once and not added."""
    db = f"sqlite:///{tmp / 'kept.db'}"
    clip = tmp / "kept.mp4"
    write_clip(clip, 2)
    s = settings(tmp, db=db, data_dir=tmp / "data-kept")
    with TestClient(create_app(s)) as c:
        for body in (
            {"id": "runs", "source": "sample", "loop": True},
            {"id": "waits", "source": "kept.mp4"},
            {"id": "goes", "source": "sample"},
            {"id": "moved", "source": "kept.mp4"},
        ):
            assert c.post("/api/v1/streams", json=body, headers=AUTH).status_code == 201
        assert c.post("/api/v1/streams/runs/start", headers=AUTH).status_code == 200
        assert c.delete("/api/v1/streams/goes", headers=AUTH).status_code == 204
    clip.rename(tmp / "elsewhere.mp4")  # "waits" and "moved" name it: neither can come back
    with TestClient(create_app(s)) as c:
        streams = {x["id"]: x for x in c.get("/api/v1/streams", headers=AUTH).json()["streams"]}
        assert set(streams) == {"runs"}
        assert streams["runs"]["state"] in ("starting", "running")
        wait_for(lambda: c.get("/api/v1/streams/runs", headers=AUTH).json()["frames"] >= 3, 60, "frames")
        assert c.post("/api/v1/streams/runs/stop", headers=AUTH).status_code == 200
    (tmp / "elsewhere.mp4").rename(clip)
    with TestClient(create_app(s)) as c:
        streams = {x["id"]: x for x in c.get("/api/v1/streams", headers=AUTH).json()["streams"]}
        assert set(streams) == {"runs", "waits", "moved"}  # the file is back: so are its streams
        assert {x["state"] for x in streams.values()} == {"stopped"}  # "runs" was stopped before this start
        assert streams["waits"]["source"] == "kept.mp4"  # as the client named it, no server path
