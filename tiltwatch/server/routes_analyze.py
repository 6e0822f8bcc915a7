"""``/api/v1/analyze/image`` (one image, answered at once) and ``/api/v1/jobs`` (videos, in the background).

Usage::

    curl -H "Authorization: Bearer $KEY" -F file=@photo.jpg http://localhost:8000/api/v1/analyze/image
    curl -H "Authorization: Bearer $KEY" -F file=@clip.mp4 -F camera=table-7 http://localhost:8000/api/v1/jobs
    curl -H "Authorization: Bearer $KEY" http://localhost:8000/api/v1/jobs/<id>/results.jsonl
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import TiltwatchError
from ..timeparse import parse_time
from .jobs import FILES
from .settings import error_responses
from .state import Server, server
from .uploads import IMAGE_FORMATS, VIDEO_FORMATS, receive_file

router = APIRouter()
UPLOAD_PATHS = ("/api/v1/analyze/image", "/api/v1/jobs")  # multipart bodies these stream and limit themselves


def _multipart(description: str, **fields: str) -> dict[str, Any]:
    """The multipart request body the handler parses itself, for OpenAPI (so clients can upload)."""
    props: dict[str, Any] = {"file": {"type": "string", "format": "binary", "description": description}}
    props.update({name: {"type": "string", "description": text} for name, text in fields.items()})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": props}}
            },
        }
    }


IMAGE_BODY = _multipart("JPEG, PNG, WebP or BMP")
VIDEO_BODY = _multipart(
    "MP4, MOV, MKV or AVI",
    camera="site camera id (default: the site's only camera)",
    start_time="ISO 8601 time of the first frame (default: upload time)",
)
MEDIA_TYPES = {
    "results.jsonl": "application/x-ndjson",
    "summary.csv": "text/csv",
    "annotated.mp4": "video/mp4",
    "report.html": "text/html",
}


@router.post(
    "/analyze/image",
    summary="Analyse one image: faces, emotion, head pose",
    openapi_extra=IMAGE_BODY,
    responses=error_responses(413, 415),
)
async def analyze_image(request: Request, srv: Server = Depends(server)) -> dict[str, Any]:
    """Multipart field ``file`` (JPEG, PNG, WebP or BMP). Returns the FrameResult as JSON."""
    s = srv.settings
    data = bytearray()
    upload = await receive_file(
        request, limit=s.max_image_bytes, formats=s.image_types, kinds=IMAGE_FORMATS, write=data.extend
    )
    result = await srv.images.analyze(bytes(data), upload.filename)  # BusyError: 503, InputError: 422
    return result.to_dict()


@router.post(
    "/jobs",
    status_code=202,
    summary="Analyse a video in the background",
    openapi_extra=VIDEO_BODY,
    responses=error_responses(413, 415),
)
async def create_job(request: Request, srv: Server = Depends(server)) -> JSONResponse:
    """Multipart field ``file`` (MP4, MOV, MKV or AVI); optional fields ``camera`` (site camera id)
    and ``start_time`` (ISO 8601 time of the first frame, for the stored visits and alerts)."""
    s = srv.settings
    path = srv.jobs.incoming_path()
    fh = await run_in_threadpool(open, path, "wb")
    try:
        upload = await receive_file(
            request,
            limit=s.max_video_bytes,
            formats=s.video_types,
            kinds=VIDEO_FORMATS,
            write=lambda b: run_in_threadpool(fh.write, b),
        )
        camera = upload.fields.get("camera") or None
        start_time = parse_time(upload.fields.get("start_time"), "start_time")  # ConfigError: 422
        if srv.site is not None:
            try:
                camera = srv.site.camera(camera).id
            except TiltwatchError as exc:
                raise HTTPException(422, str(exc)) from None
    except BaseException:
        fh.close()
        srv.jobs.discard(path)
        raise
    fh.close()
    job = srv.jobs.create(path, upload.filename, camera, start_time)
    srv.jobs.submit(job)
    return JSONResponse(
        {"job_id": job.id, "status": job.status}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


@router.get("/jobs", summary="Every job, oldest first")
def list_jobs(srv: Server = Depends(server)) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in srv.jobs.all()]}


def _job(srv: Server, job_id: str):
    job = srv.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


@router.get("/jobs/{job_id}", summary="A job's status, progress, fps and error", responses=error_responses(404))
def get_job(job_id: str, srv: Server = Depends(server)) -> dict[str, Any]:
    return _job(srv, job_id).to_dict()


@router.get(
    "/jobs/{job_id}/{name}",
    summary="A job's results.jsonl, summary.csv, annotated.mp4 or report.html",
    responses=error_responses(403, 404, 409),
)
def job_file(job_id: str, name: str, srv: Server = Depends(server)) -> FileResponse:
    job = _job(srv, job_id)
    if name not in FILES:
        raise HTTPException(404, f"no such result {name!r}; a job has {', '.join(FILES)}")
    if name == "annotated.mp4" and not srv.settings.allow_frames:
        raise HTTPException(403, "frames are not served: start the server with allow_frames to get annotated videos")
    path = job.folder / name
    if not path.is_file():
        why = {
            "report.html": "the server runs without a site config" if srv.site is None else "no report was made",
            "annotated.mp4": "the job made no annotated video",
        }.get(name, "not written yet")
        raise HTTPException(404, f"job {job_id} has no {name} ({why}; status: {job.status})")
    if job.status in ("queued", "running") and name != "results.jsonl":
        raise HTTPException(409, f"job {job_id} is {job.status}; {name} is ready when it is done")
    return FileResponse(path, media_type=MEDIA_TYPES[name], filename=name if name != "report.html" else None)
