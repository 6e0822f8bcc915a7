"""The API lets in only whom it should: wrong keys limited per address, the key checked before the
body is read, JSON bodies capped, file sources only from the media folder, strict JSON types,
forwarded addresses believed only from trusted proxies, an OpenAPI document that says all this.

Real app (FastAPI TestClient over the ASGI app, or a real uvicorn on loopback), no mocks.
Rate limiters run on a frozen clock, so no result depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tiltwatch.server import Settings, create_app

KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
MB = 1024 * 1024


def settings(tmp: Path, **overrides) -> Settings:
    base = dict(
        api_keys=[KEY],
        api_key_file=None,
        db=f"sqlite:///{tmp / 'tw.db'}",
        site=None,
        data_dir=tmp / "data",
        rate_limit=0,
        image_workers=1,
    )
    return Settings(**{**base, **overrides})


def frozen(app, at: list[float]) -> None:
    """Both rate limiters read ``at[0]`` as the time: tests move the clock, not the wall."""
    app.state.rate_limiter.clock = app.state.auth_limiter.clock = lambda: at[0]


def one_line_error(r) -> str:
    error = r.json()["error"]
    assert isinstance(error, str) and error and "\n" not in error and "Traceback" not in error
    return error


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("security")


@pytest.fixture(scope="module")
def client(tmp):
    with TestClient(create_app(settings(tmp))) as c:
        yield c


# --- 1. wrong keys are limited per client address ----------------------------------------------


def test_wrong_keys_get_429_after_the_limit_per_address(tmp):
    app = create_app(settings(tmp, auth_failures=5, data_dir=tmp / "data-guess"))
    now = [1000.0]
    frozen(app, now)
    with TestClient(app) as c:
        codes = [
            c.get("/api/v1/streams", headers={"X-API-Key": f"guess-{i:04d}-0123456789"}).status_code for i in range(50)
        ]  # every guess a different key: each used to get a fresh bucket
        assert codes == [401] * 5 + [429] * 45
        r = c.get("/api/v1/streams", headers={"X-API-Key": "guess-last-0123456789"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "12"  # 5 a minute: one back every 12 s
        assert "too many wrong API keys" in one_line_error(r)
        # The right key from a blocked address is refused too, or a lucky guess would still show as 200.
        assert c.get("/api/v1/streams", headers=AUTH).status_code == 429
        # Another address is not blocked; a request with no key is no guess and is not counted.
        other = TestClient(app, client=("192.0.2.7", 4000))
        assert [other.get("/api/v1/streams").status_code for _ in range(20)] == [401] * 20
        assert other.get("/api/v1/streams", headers=AUTH).status_code == 200
        now[0] += 12.0  # one failure's worth of time later: one more try
        assert c.get("/api/v1/streams", headers=AUTH).status_code == 200
        assert c.get("/api/v1/streams", headers={"X-API-Key": "guess-more-0123456789"}).status_code == 401
        assert c.get("/api/v1/streams", headers=AUTH).status_code == 429


def test_the_default_limits_are_the_ones_the_readme_gives(tmp):
    """Out of the box (no limit set): 10 wrong keys a minute per address, then 429; JSON bodies up
    to 1 MB, then 413. The other tests use smaller limits; these are what a deployment gets."""
    app = create_app(
        Settings(api_keys=[KEY], api_key_file=None, db=f"sqlite:///{tmp / 'tw.db'}", data_dir=tmp / "data-defaults")
    )
    frozen(app, [0.0])
    with TestClient(app) as c:
        codes = [
            c.get("/api/v1/streams", headers={"X-API-Key": f"guess-{i:02d}-0123456789"}).status_code for i in range(12)
        ]
        assert codes == [401] * 10 + [429] * 2
        other = TestClient(app, client=("192.0.2.9", 4000))
        as_json = {**AUTH, "Content-Type": "application/json"}
        body = json.dumps({"id": "edge", "source": "sample"})
        at_cap = body + " " * (MB - len(body))  # (JSON may end in blanks: a valid body of exactly 1 MB)
        assert other.post("/api/v1/streams", headers=as_json, content=at_cap).status_code == 201
        r = other.post("/api/v1/streams", headers=as_json, content=at_cap.replace("edge", "edge2"))
        assert r.status_code == 413 and one_line_error(r).endswith("the limit for JSON bodies is 1048576 bytes")
        r = other.post("/api/v1/streams", headers=AUTH, json={"id": "long", "source": "sample", "camera": "x" * 201})
        assert r.status_code == 422 and "camera" in one_line_error(r)  # (a field is no way round the cap)


def test_wrong_keys_from_one_ipv6_64_share_a_limit(tmp):
    app = create_app(settings(tmp, auth_failures=2, data_dir=tmp / "data-guess-v6"))
    frozen(app, [0.0])
    with TestClient(app):
        codes = [
            TestClient(app, client=(f"2001:db8:1:2::{i:x}", 4000))
            .get("/api/v1/streams", headers={"X-API-Key": f"guess-{i}-0123456789abc"})
            .status_code
            for i in range(1, 5)
        ]
        assert codes == [401, 401, 429, 429]  # a new address per guess does not help within the /64
        assert TestClient(app, client=("2001:db8:1:3::1", 4000)).get("/api/v1/streams", headers=AUTH).status_code == 200


def test_wrong_keys_on_websocket_handshakes_count_too(tmp):
    from starlette.websockets import WebSocketDisconnect

    app = create_app(settings(tmp, auth_failures=2, data_dir=tmp / "data-guess-ws"))
    frozen(app, [0.0])
    with TestClient(app) as c:
        for i in range(2):
            with c.websocket_connect(f"/api/v1/ws?key=wrong-{i}-0123456789abc") as ws:
                assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as refused:
            with c.websocket_connect(f"/api/v1/ws?key={KEY}"):
                pass
        assert refused.value.code == 1008 and "too many wrong API keys" in refused.value.reason


def test_wrong_keys_sent_as_the_first_websocket_message_count_too(tmp):
    from starlette.websockets import WebSocketDisconnect

    app = create_app(settings(tmp, auth_failures=2, data_dir=tmp / "data-guess-ws-msg"))
    frozen(app, [0.0])
    with TestClient(app) as c:
        for i in range(2):
            with c.websocket_connect("/api/v1/ws") as ws:
                ws.send_json({"type": "auth", "key": f"wrong-{i}-0123456789abc"})
                assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as refused:
            with c.websocket_connect("/api/v1/ws"):
                pass
        assert refused.value.code == 1008 and "too many wrong API keys" in refused.value.reason


# --- 2. the key before the body; JSON bodies capped ---------------------------------------------


def _asgi_post(app, path: str, headers: list[tuple[bytes, bytes]], chunks: int, chunk: int = MB):
    """POST ``chunks`` x ``chunk`` bytes straight over ASGI; returns (status, body, bytes the app pulled)."""
    piece = b"[" + b"0," * (chunk // 2 - 1) + b"0"  # the same buffer each time: the sender holds nothing
    pulled, sent = 0, []
    total = chunks * len(piece)

    async def receive():
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.disconnect"}
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": pulled < total}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "headers": headers,
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body), pulled


def test_no_key_is_refused_before_a_byte_of_a_300_mb_body_is_read(tmp):
    app = create_app(settings(tmp, data_dir=tmp / "data-body"))
    json_type = (b"content-type", b"application/json")
    with TestClient(app):
        status, body, pulled = _asgi_post(app, "/api/v1/streams", [json_type], chunks=300)
        assert (status, pulled) == (401, 0), body  # was 422, after parsing all 300 MB
        assert body["error"].startswith("missing API key")
        status, body, pulled = _asgi_post(
            app, "/api/v1/streams", [json_type, (b"x-api-key", b"wrong-0123456789abc")], chunks=300
        )
        assert (status, pulled) == (401, 0)
        upload = (b"content-type", b"multipart/form-data; boundary=x")
        for path in ("/api/v1/jobs", "/api/v1/analyze/image"):  # the uploads too: no key, no byte read
            status, body, pulled = _asgi_post(app, path, [upload], chunks=300)
            assert (status, pulled) == (401, 0), (path, body)


def test_json_bodies_are_capped_from_content_length_and_while_streaming(tmp):
    app = create_app(settings(tmp, max_json_bytes=64 * 1024, data_dir=tmp / "data-cap"))
    keyed = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {KEY}".encode())]
    with TestClient(app) as c:
        # No Content-Length (chunked): the app stops at the first chunk over the cap.
        status, body, pulled = _asgi_post(app, "/api/v1/streams", keyed, chunks=300, chunk=16 * 1024)
        assert status == 413 and pulled <= 64 * 1024 + 16 * 1024, pulled
        assert body["error"] == "request body too large: the limit for JSON bodies is 65536 bytes"
        # A Content-Length over the cap: refused before reading.
        status, body, pulled = _asgi_post(
            app, "/api/v1/streams", keyed + [(b"content-length", b"314572800")], chunks=300
        )
        assert (status, pulled) == (413, 0)
        # Multipart is left to the upload endpoints only: elsewhere it would be read whole.
        multipart = [(b"content-type", b"multipart/form-data; boundary=x"), keyed[1]]
        status, body, pulled = _asgi_post(app, "/api/v1/streams", multipart, chunks=300, chunk=16 * 1024)
        assert status == 413 and pulled <= 64 * 1024 + 16 * 1024, pulled
        r = c.post("/api/v1/streams", headers=AUTH, json={"id": "big", "source": "sample", "camera": "x" * 70_000})
        assert r.status_code == 413 and "65536 bytes" in one_line_error(r)
        # Under the cap all is as before; uploads (multipart) keep their own, larger limits.
        assert c.post("/api/v1/streams", headers=AUTH, json={"id": "small", "source": "sample"}).status_code == 201
        r = c.post("/api/v1/analyze/image", headers=AUTH, files={"file": ("x.txt", b"\0" * 100_000, "text/plain")})
        assert r.status_code == 415  # read as multipart past the JSON cap, refused for its type


def test_multipart_names_beyond_latin_1_are_no_500(client):
    """Found by the schema fuzzing below: a field or file name past U+00FF used to raise inside the parser."""
    r = client.post(
        "/api/v1/analyze/image", headers=AUTH, data={"Ā": "x"}, files={"file": ("заметки.txt", b"hello", "text/plain")}
    )
    assert r.status_code == 415 and "заметки.txt" in one_line_error(r)


# --- 3. file sources: only from the media folder, never shown with a server path ---------------


def test_no_file_sources_over_the_api_without_a_media_folder(client, tmp):
    (tmp / "exists.mp4").write_bytes(b"\0" * 100)
    answers = set()
    for source in ("/etc/passwd", "/no/such/file.mp4", str(tmp / "exists.mp4"), "exists.mp4", "../exists.mp4"):
        r = client.post("/api/v1/streams", headers=AUTH, json={"id": "f", "source": source})
        assert r.status_code == 422, source
        answers.add(one_line_error(r))
    assert len(answers) == 1 and "no media_dir" in answers.pop()  # the same answer: nothing to probe
    assert client.get("/api/v1/streams/f", headers=AUTH).status_code == 404


def test_file_sources_only_inside_the_media_folder_and_shown_relative(tmp):
    media = tmp / "media"
    (media / "day1").mkdir(parents=True)
    (media / "clip.mp4").write_bytes(b"\0" * 100)
    (media / "day1" / "clip2.mp4").write_bytes(b"\0" * 100)
    (tmp / "secret.mp4").write_bytes(b"\0" * 100)
    (media / "link.mp4").symlink_to(tmp / "secret.mp4")
    # its own store: streams the module's other servers added over the API would come back in it
    own = settings(tmp, media_dir=media, data_dir=tmp / "data-media", db=f"sqlite:///{tmp / 'media.db'}")
    with TestClient(create_app(own)) as c:
        for source in (
            "/etc/passwd",
            "../secret.mp4",
            "day1/../../secret.mp4",
            str(tmp / "secret.mp4"),
            "link.mp4",
            "missing.mp4",
            "day1",
            "bad\0name.mp4",
        ):
            r = c.post("/api/v1/streams", headers=AUTH, json={"id": "f", "source": source})
            assert r.status_code == 422, source
            assert one_line_error(r) == f"source: no video {source!r} in the media folder"  # missing = forbidden
        r = c.post("/api/v1/streams", headers=AUTH, json={"id": "a", "source": "clip.mp4"})
        assert r.status_code == 201 and r.json()["source"] == "clip.mp4"
        r = c.post("/api/v1/streams", headers=AUTH, json={"id": "b", "source": str(media / "day1" / "clip2.mp4")})
        assert r.status_code == 201 and r.json()["source"] == "day1/clip2.mp4"
        listing = c.get("/api/v1/streams", headers=AUTH)
        assert [s["source"] for s in listing.json()["streams"]] == ["clip.mp4", "day1/clip2.mp4"]
        assert str(tmp) not in listing.text


def test_configured_file_stream_shows_no_server_path_even_in_its_error(tmp):
    folder = tmp / "operator-files"
    folder.mkdir()
    (folder / "notes.mp4").write_text("not a video\n")
    s = settings(tmp, data_dir=tmp / "data-op", streams=[{"id": "op", "source": str(folder / "notes.mp4")}])
    with TestClient(create_app(s)) as c:
        end = time.monotonic() + 120
        while (state := c.get("/api/v1/streams/op", headers=AUTH).json())["state"] != "failed":
            assert time.monotonic() < end, f"the stream never failed: {state}"
            time.sleep(0.2)
        assert state["source"] == "notes.mp4" and "notes.mp4" in state["last_error"]
        assert str(folder) not in json.dumps(state)
        assert str(folder) not in c.get("/api/v1/streams", headers=AUTH).text
        with c.websocket_connect(f"/api/v1/ws?key={KEY}") as ws:
            hello = ws.receive_json()
        assert hello["type"] == "hello" and str(folder) not in json.dumps(hello)


def test_failed_job_names_the_uploaded_file_not_the_server_path(client, tmp):
    r = client.post("/api/v1/jobs", headers=AUTH, files={"file": ("holiday.mp4", b"\0" * 4096, "video/mp4")})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    end = time.monotonic() + 120
    while (job := client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json())["status"] in ("queued", "running"):
        assert time.monotonic() < end, f"the job never ended: {job}"
        time.sleep(0.2)
    assert job["status"] == "failed" and "holiday.mp4" in job["error"], job
    assert "input.video" not in job["error"] and str(tmp) not in job["error"]


# --- 4. strict types, readable errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "payload, error",
    [
        ({"id": 5, "source": "sample"}, "id: Input should be a valid string, got number"),
        ({"id": "s", "source": 123}, "source: Input should be a valid string, got number"),
        ({"id": "s", "source": "sample", "loop": "yes"}, "loop: Input should be a valid boolean, got string"),
        ({"id": "s", "source": "sample", "camera": ["a"]}, "camera: Input should be a valid string, got array"),
        ({"id": "s", "source": "sample", "fps": 3}, "fps: Extra inputs are not permitted"),
        ([], "request body: Input should be a valid dictionary or object to extract fields from, got array"),
        (  # (OpenCV overflowed on it, and the stream stayed degraded for ever)
            {"id": "s", "source": "99999999999999999999"},
            "99999999999999999999: not a camera index (0 to 9999) and no such file",
        ),
    ],
)
def test_stream_fields_are_strict(client, payload, error):
    r = client.post("/api/v1/streams", headers=AUTH, json=payload)
    assert r.status_code == 422 and one_line_error(r) == error


def test_invalid_json_and_missing_body_read_as_one_line(client):
    json_type = {**AUTH, "Content-Type": "application/json"}
    r = client.post("/api/v1/streams", headers=json_type, content=b'{"id": "s", ')
    assert r.status_code == 422
    assert (
        one_line_error(r) == "request body is not valid JSON: Expecting property name enclosed in double quotes "
        "(at character 12)"
    )
    r = client.post("/api/v1/streams", headers=json_type, content=b"")
    assert r.status_code == 422 and one_line_error(r) == "request body is missing: send a JSON object"


def test_a_webcam_over_the_api_is_its_index_as_a_string(client):
    r = client.post("/api/v1/streams", headers=AUTH, json={"id": "cam0", "source": "0"})
    assert r.status_code == 201 and r.json()["source"] == "0" and r.json()["state"] == "stopped"
    assert client.delete("/api/v1/streams/cam0", headers=AUTH).status_code == 204


# --- 5. X-Forwarded-For only from trusted proxies (a real uvicorn on loopback) -----------------


class _Uvicorn:
    """The app served by uvicorn, configured as ``tiltwatch serve`` configures it, on a free loopback port."""

    def __init__(self, app):
        import uvicorn

        from tiltwatch.server.cli import uvicorn_config

        config = uvicorn_config(app, "127.0.0.1", 0)
        config.log_level = "warning"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Uvicorn:
        self.thread.start()
        end = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < end, "uvicorn did not start"
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def get(self, path: str, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_forwarded_for_from_an_untrusted_peer_changes_no_bucket(tmp):
    app = create_app(settings(tmp, rate_limit=3, auth_failures=3, data_dir=tmp / "data-xff"))
    frozen(app, [0.0])
    with _Uvicorn(app) as server:
        codes = [server.get("/api/v1/streams", {**AUTH, "X-Forwarded-For": f"198.51.100.{i}"}) for i in range(5)]
        assert codes == [200] * 3 + [429] * 2  # a loopback client used to get a fresh bucket per header
        guesses = [
            server.get(
                "/api/v1/visits", {"X-API-Key": f"guess-{i}-0123456789abc", "X-Forwarded-For": f"198.51.100.{i}"}
            )
            for i in range(5)
        ]
        assert guesses == [401] * 3 + [429] * 2


def test_forwarded_for_from_a_trusted_proxy_is_the_client(tmp):
    app = create_app(settings(tmp, rate_limit=2, trusted_proxies=["127.0.0.1"], data_dir=tmp / "data-proxy"))
    frozen(app, [0.0])
    with _Uvicorn(app) as server:
        a = {**AUTH, "X-Forwarded-For": "203.0.113.5"}
        b = {**AUTH, "X-Forwarded-For": "198.51.100.1, 203.0.113.6"}  # the right-most hop is what the proxy saw
        spoofed = {**AUTH, "X-Forwarded-For": "10.9.9.9, 203.0.113.5"}  # what the client wrote comes first
        assert [server.get("/api/v1/streams", a) for _ in range(3)] == [200, 200, 429]
        assert server.get("/api/v1/streams", spoofed) == 429  # still 203.0.113.5
        assert [server.get("/api/v1/streams", b) for _ in range(3)] == [200, 200, 429]


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="trusted proxy must be an IP address or network"):
        Settings(api_keys=[KEY], trusted_proxies=["proxy.local"])


# --- 6. OpenAPI and OPTIONS --------------------------------------------------------------------


def test_openapi_declares_the_key_errors_and_upload_bodies(client):
    doc = client.app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "the API key",
    }
    assert schemes["bearerKey"]["type"] == "http" and schemes["bearerKey"]["scheme"] == "bearer"
    error = doc["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"] and error["properties"]["error"]["type"] == "string"
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path == "/health":
                assert "security" not in op
                continue
            assert {"bearerKey": []} in op["security"] and {"apiKeyHeader": []} in op["security"], (method, path)
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == ref, (method, path)
            assert "429" in op["responses"], (method, path)
    paths = doc["paths"]
    assert {"409", "413", "422"} <= set(paths["/api/v1/streams"]["post"]["responses"])
    assert paths["/api/v1/streams"]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == ref
    assert {"404", "409"} <= set(paths["/api/v1/streams/{stream_id}/start"]["post"]["responses"])
    assert {"403", "404", "409"} <= set(paths["/api/v1/jobs/{job_id}/{name}"]["get"]["responses"])
    for upload in ("/api/v1/analyze/image", "/api/v1/jobs"):
        op = paths[upload]["post"]
        assert {"413", "415"} <= set(op["responses"])
        schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert schema["required"] == ["file"] and schema["properties"]["file"]["format"] == "binary"
    assert {"camera", "start_time"} <= set(
        paths["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    )


def test_a_client_that_knows_only_the_openapi_document_can_upload_and_read(client, astronaut):
    """What a generated client does: the key's header, the upload's content type and its field all
    taken from /openapi.json, nothing from this project's code or docs."""
    import cv2

    doc = client.get("/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["apiKeyHeader"]
    op = doc["paths"]["/api/v1/analyze/image"]["post"]
    [(content_type, body)] = op["requestBody"]["content"].items()
    [field] = [n for n, p in body["schema"]["properties"].items() if p.get("format") == "binary"]
    assert content_type == "multipart/form-data" and scheme["in"] == "header"
    jpeg = cv2.imencode(".jpg", astronaut)[1].tobytes()
    r = client.post(
        "/api/v1/analyze/image", headers={scheme["name"]: KEY}, files={field: ("astronaut.jpg", jpeg, "image/jpeg")}
    )
    assert "application/json" in op["responses"]["200"]["content"]  # (an object: the frame's JSON, as in the JSONL)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    assert len(r.json()["faces"]) == 1


def test_options_and_405_name_every_method_of_the_path(client):
    r = client.options("/api/v1/streams")  # no key needed: it says nothing the OpenAPI document does not
    assert r.status_code == 204 and r.headers["allow"] == "GET, OPTIONS, POST"
    r = client.options("/api/v1/streams/x")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, GET, OPTIONS"
    r = client.delete("/api/v1/streams", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, OPTIONS, POST"
    assert one_line_error(r) == "Method Not Allowed"
    r = client.put("/api/v1/jobs", headers=AUTH)
    assert r.status_code == 405 and r.headers["allow"] == "GET, OPTIONS, POST"
    assert client.options("/api/v1/nothing-here").status_code == 404


# --- 7. fuzzing: the schema holds and nothing answers 5xx --------------------------------------


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    allow_header_conformance,
]


def keeps_to_its_schema(schema, max_examples: int) -> None:
    """Schemathesis cases for each operation of ``schema``: documented status codes, content types,
    Allow headers and bodies, never a 5xx, errors in one line."""
    operations = [result.ok() for result in schema.exclude(path_regex=r"/mjpeg$").get_all_operations()]  # (never ends)
    assert len(operations) >= 15
    # schemathesis's pytest plugin does not run under this pytest, so each operation gets its own @given
    for operation in operations:

        @examples(
            max_examples=max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)
            if response.status_code >= 400:
                assert "\n" not in response.json()["error"], (operation.label, response.text)  # noqa: B023

        check()


def test_every_operation_keeps_to_its_schema(tmp):
    """In ASGI (no network; schemathesis's client runs the app's lifespan itself), 8 cases an operation."""
    app = create_app(settings(tmp, data_dir=tmp / "data-fuzz", max_image_bytes=64 * 1024, max_video_bytes=64 * 1024))
    keeps_to_its_schema(schemathesis.openapi.from_asgi("/openapi.json", app), max_examples=8)


def test_the_served_app_keeps_to_its_schema_over_loopback(tmp):
    """The same over real HTTP: uvicorn as ``tiltwatch serve`` runs it, on 127.0.0.1 only, 3 cases an
    operation (what uvicorn's own parsing and headers add to the app's answers)."""
    app = create_app(
        settings(tmp, data_dir=tmp / "data-fuzz-http", max_image_bytes=64 * 1024, max_video_bytes=64 * 1024)
    )
    with _Uvicorn(app) as served:
        keeps_to_its_schema(schemathesis.openapi.from_url(f"http://127.0.0.1:{served.port}/openapi.json"), 3)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
STREAM_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True),
        "source": JSON | st.sampled_from(["sample", "0", "../x", "/etc"]),
        "camera": JSON,
        "loop": JSON,
        "extra": JSON,
    },
)


@pytest.fixture(scope="module")
def fuzz_client(tmp):
    with TestClient(create_app(settings(tmp, data_dir=tmp / "data-json"))) as c:
        yield c


@examples(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(
    payload=JSON | STREAM_FIELDS,
    path=st.sampled_from(["/api/v1/streams", "/api/v1/analyze/image", "/api/v1/jobs", "/api/v1/streams/x/start"]),
)
def test_random_json_never_gets_a_5xx(fuzz_client, payload, path):
    from tiltwatch.server.readers import source_kind

    r = fuzz_client.post(path, headers={**AUTH, "Content-Type": "application/json"}, content=json.dumps(payload))
    assert r.status_code < 500, (payload, r.text)
    if r.status_code >= 400:
        one_line_error(r)
    else:  # only a well-typed stream that opens no server file gets in
        assert path == "/api/v1/streams" and r.status_code == 201, (payload, r.text)
        assert source_kind(payload["source"]) != "file"
