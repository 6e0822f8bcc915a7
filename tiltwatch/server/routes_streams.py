"""``/api/v1/streams``: add, start, stop, inspect live streams; their latest annotated frame and MJPEG.

Usage::

    curl -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
         -d '{"id": "demo", "source": "sample", "loop": true}' http://localhost:8000/api/v1/streams
    curl -X POST -H "Authorization: Bearer $KEY" http://localhost:8000/api/v1/streams/demo/start
    <img src="/api/v1/streams/demo/mjpeg?key=...">      (only with allow_frames)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .readers import source_kind
from .settings import StreamRequest, StreamSpec, error_responses
from .state import Server, server
from .streams import LiveStream

router = APIRouter()
MJPEG_MAX_FPS = 15.0
NO_FRAMES = "frames are not served: start the server with allow_frames (e.g. tiltwatch serve --allow-frames)"


def media_file(source: str, media_dir: Path | None) -> Path:
    """The video file an API client names, inside ``media_dir``; 422 otherwise.

    A missing file and one outside the folder (absolute, ``..``, a symlink out) get the same
    answer, so the server's files cannot be probed."""
    if media_dir is None:
        raise HTTPException(
            422,
            "source: video files cannot be named over the API (the server has no media_dir); "
            "use 'sample', a webcam index such as '0', or a stream URL",
        )
    root = media_dir.resolve()
    try:
        path = (root / source).resolve()
        found = path.is_relative_to(root) and path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long, a symlink loop
        found = False
    if not found:
        raise HTTPException(422, f"source: no video {source!r} in the media folder")
    return path


def shown_source(source: str, media_dir: Path | None) -> str:
    """A file source as clients see it: relative to the media folder, else its name alone."""
    if source_kind(source) != "file":
        return source  # status() already masks URL passwords
    if media_dir is not None:
        path, root = Path(source), media_dir.resolve()
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return Path(source).name


def public(stream: LiveStream, srv: Server) -> dict[str, Any]:
    """``stream.status()`` with no server path in ``source`` or ``last_error``."""
    status = stream.status()
    source = stream.spec.source
    if source_kind(source) == "file":
        status["source"] = shown = shown_source(source, srv.settings.media_dir)
        if status["last_error"]:
            status["last_error"] = status["last_error"].replace(source, shown)
    return status


@router.post(
    "/streams",
    status_code=201,
    summary="Add a stream (stopped; start it with /start)",
    responses=error_responses(409, 413),
)
def add_stream(body: StreamRequest, srv: Server = Depends(server)) -> JSONResponse:
    spec = stream_spec(body, srv.settings.media_dir)
    stream = srv.streams.add(spec)
    srv.store.keep_stream(body.model_dump())  # a restarted server adds it again (stopped, until started)
    return JSONResponse(public(stream, srv), status_code=201, headers={"Location": f"/api/v1/streams/{spec.id}"})


def stream_spec(body: StreamRequest, media_dir: Path | None) -> StreamSpec:
    """The stream a request names: a file source found inside ``media_dir`` (422 otherwise)."""
    source = body.source
    if source_kind(source) == "file":
        source = str(media_file(source, media_dir))
    return StreamSpec(id=body.id, source=source, camera=body.camera, loop=body.loop)


@router.get("/streams", summary="Every stream and its state")
def list_streams(srv: Server = Depends(server)) -> dict[str, Any]:
    return {"streams": [public(s, srv) for s in srv.streams.all()], "allow_frames": srv.settings.allow_frames}


@router.get(
    "/streams/{stream_id}",
    summary="A stream's state, fps, faces, dropped frames, reconnects, last error",
    responses=error_responses(404),
)
def get_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    return public(srv.streams.get(stream_id), srv)


@router.post("/streams/{stream_id}/start", summary="Start reading and analysing", responses=error_responses(404, 409))
def start_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    stream = srv.streams.start(stream_id)
    srv.store.stream_running(stream_id, True)
    return public(stream, srv)


@router.post(
    "/streams/{stream_id}/stop",
    summary="Stop; open visits and alerts are closed and stored",
    responses=error_responses(404),
)
def stop_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    stream = srv.streams.stop(stream_id)
    srv.store.stream_running(stream_id, False)
    return public(stream, srv)


@router.delete(
    "/streams/{stream_id}", status_code=204, summary="Stop and forget a stream", responses=error_responses(404)
)
def delete_stream(stream_id: str, srv: Server = Depends(server)) -> Response:
    srv.streams.remove(stream_id)
    srv.store.forget_stream(stream_id)
    return Response(status_code=204)


def _frames_allowed(srv: Server, stream_id: str) -> LiveStream:
    if not srv.settings.allow_frames:
        raise HTTPException(403, NO_FRAMES)
    return srv.streams.get(stream_id)


@router.get(
    "/streams/{stream_id}/frame.jpg",
    summary="The latest annotated frame (allow_frames only)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(403, 404)},
)
async def frame_jpg(stream_id: str, srv: Server = Depends(server)) -> Response:
    stream = _frames_allowed(srv, stream_id)
    jpeg = await run_in_threadpool(stream.jpeg)
    if jpeg is None:
        raise HTTPException(404, f"stream {stream_id!r} has no frame yet (state: {stream.current_state()})")
    return Response(
        jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Frame-Index": str(stream.latest_index)}
    )


@router.get(
    "/streams/{stream_id}/mjpeg",
    summary="Annotated frames as multipart MJPEG (allow_frames only)",
    response_class=StreamingResponse,
    responses=error_responses(403, 404),
)
async def mjpeg(stream_id: str, srv: Server = Depends(server)) -> StreamingResponse:
    stream = _frames_allowed(srv, stream_id)

    async def parts() -> AsyncIterator[bytes]:
        last = -1
        while not srv.closing.is_set():
            index = stream.latest_index
            if index != last and index >= 0:
                jpeg = await run_in_threadpool(stream.jpeg)
                if jpeg is not None:
                    last = index
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpeg)).encode()
                        + b"\r\n\r\n"
                        + jpeg
                        + b"\r\n"
                    )
            await asyncio.sleep(1.0 / MJPEG_MAX_FPS)

    return StreamingResponse(
        parts(), media_type="multipart/x-mixed-replace; boundary=frame", headers={"Cache-Control": "no-store"}
    )
