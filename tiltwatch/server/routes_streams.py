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
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .settings import StreamSpec
from .state import Server, server
from .streams import LiveStream

router = APIRouter()
MJPEG_MAX_FPS = 15.0
NO_FRAMES = "frames are not served: start the server with allow_frames (e.g. tiltwatch serve --allow-frames)"


@router.post("/streams", status_code=201, summary="Add a stream (stopped; start it with /start)")
def add_stream(spec: StreamSpec, srv: Server = Depends(server)) -> JSONResponse:
    stream = srv.streams.add(spec)
    return JSONResponse(stream.status(), status_code=201, headers={"Location": f"/api/v1/streams/{spec.id}"})


@router.get("/streams", summary="Every stream and its state")
def list_streams(srv: Server = Depends(server)) -> dict[str, Any]:
    return {"streams": [s.status() for s in srv.streams.all()], "allow_frames": srv.settings.allow_frames}


@router.get("/streams/{stream_id}", summary="A stream's state, fps, faces, dropped frames, reconnects, last error")
def get_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    return srv.streams.get(stream_id).status()


@router.post("/streams/{stream_id}/start", summary="Start reading and analysing")
def start_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    return srv.streams.start(stream_id).status()


@router.post("/streams/{stream_id}/stop", summary="Stop; open visits and alerts are closed and stored")
def stop_stream(stream_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    return srv.streams.stop(stream_id).status()


@router.delete("/streams/{stream_id}", status_code=204, summary="Stop and forget a stream")
def delete_stream(stream_id: str, srv: Server = Depends(server)) -> Response:
    srv.streams.remove(stream_id)
    return Response(status_code=204)


def _frames_allowed(srv: Server, stream_id: str) -> LiveStream:
    if not srv.settings.allow_frames:
        raise HTTPException(403, NO_FRAMES)
    return srv.streams.get(stream_id)


@router.get("/streams/{stream_id}/frame.jpg", summary="The latest annotated frame (allow_frames only)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def frame_jpg(stream_id: str, srv: Server = Depends(server)) -> Response:
    stream = _frames_allowed(srv, stream_id)
    jpeg = await run_in_threadpool(stream.jpeg)
    if jpeg is None:
        raise HTTPException(404, f"stream {stream_id!r} has no frame yet (state: {stream.current_state()})")
    return Response(jpeg, media_type="image/jpeg",
                    headers={"Cache-Control": "no-store", "X-Frame-Index": str(stream.latest_index)})


@router.get("/streams/{stream_id}/mjpeg", summary="Annotated frames as multipart MJPEG (allow_frames only)",
            response_class=StreamingResponse)
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
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                           + b"\r\n\r\n" + jpeg + b"\r\n")
            await asyncio.sleep(1.0 / MJPEG_MAX_FPS)

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store"})
