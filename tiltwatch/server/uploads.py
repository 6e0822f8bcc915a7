"""One uploaded file from a ``multipart/form-data`` request, within a byte limit, read as it streams.

The body is parsed while it arrives (python-multipart's push parser): a ``Content-Length``
over the limit is refused before anything is read (413), the file's type is checked as soon
as its part headers are in (415), and the file's bytes are counted as they come: the
upload stops at ``limit + 1`` bytes (413), so an endless or lying body costs at most one
chunk more than the limit. Small form fields beside the file (e.g. ``camera``) are kept.

Every other request body (JSON) is capped by :class:`BodyLimitMiddleware`: a ``Content-Length``
over the cap is refused before anything is read, and a body without one is counted while
it streams and stops at the first chunk over the cap (413 either way).

Usage::

    app.add_middleware(BodyLimitMiddleware, limit=1 * MB, uploads=("/api/v1/analyze/image",))
    upload = await receive_file(request, limit=10 * MB, formats=["jpeg", "png"], kinds=IMAGE_FORMATS,
                                write=buffer.extend)
    upload.filename, upload.size, upload.fields["camera"]
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePath

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMAGE_FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # format: (MIME types, extensions)
    "jpeg": (("image/jpeg", "image/jpg", "image/pjpeg"), (".jpg", ".jpeg")),
    "png": (("image/png",), (".png",)),
    "webp": (("image/webp",), (".webp",)),
    "bmp": (("image/bmp", "image/x-ms-bmp", "image/x-bmp"), (".bmp",)),
}
VIDEO_FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mp4": (("video/mp4",), (".mp4", ".m4v")),
    "mov": (("video/quicktime",), (".mov",)),
    "mkv": (("video/x-matroska", "video/matroska"), (".mkv",)),
    "avi": (("video/x-msvideo", "video/avi", "video/msvideo"), (".avi",)),
}
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
FORM_OVERHEAD = 64 * 1024  # multipart headers, boundaries and small fields allowed beside the file
FIELD_LIMIT = 4 * 1024


@dataclass
class Upload:
    filename: str
    content_type: str
    format: str
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def _format_of(content_type: str, filename: str, allowed: list[str], kinds: dict) -> str | None:
    """The allowed format the part declares; the extension decides only for generic MIME types."""
    ext = PurePath(filename).suffix.lower()
    for name in allowed:
        mimes, exts = kinds[name]
        if content_type in mimes or (content_type in GENERIC_TYPES and ext in exts):
            return name
    return None


def _too_big(limit: int) -> HTTPException:
    return HTTPException(413, f"upload too large: the limit is {limit} bytes ({limit / 2**20:.1f} MB)")


class _Parts:
    """python-multipart callbacks: keeps the wanted file's bytes (counted) and small fields beside it."""

    def __init__(self, name: str, limit: int, formats: list[str], kinds: dict):
        self.name, self.limit, self.formats, self.kinds = name, limit, formats, kinds
        self.upload: Upload | None = None
        self.fields: dict[str, bytes] = {}
        self.pending: list[bytes] = []  # file bytes parsed from the current chunk, to write
        self._headers: dict[str, str] = {}
        self._field, self._value = "", b""
        self._current: Upload | str | None = None  # the part being read: the file or a field name
        self._other = 0  # bytes of parts that are not the file

    def callbacks(self) -> dict:
        return {
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
        }

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end].decode("latin-1")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        # latin-1 keeps the header's bytes as they came (parse_options_header re-encodes latin-1;
        # a UTF-8 decoding here made it fail on any character past U+00FF); names are UTF-8 below.
        self._headers[self._field.lower()] = self._value.decode("latin-1")
        self._field, self._value = "", b""

    def on_headers_finished(self) -> None:
        headers, self._headers = self._headers, {}
        _, disp = parse_options_header(headers.get("content-disposition", ""))
        field_name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        if filename is None:
            self._current = field_name
            return
        if field_name != self.name or self.upload is not None:
            raise HTTPException(
                422, f"send one file, in the multipart field '{self.name}' (got a file in '{field_name}')"
            )
        part_type = headers.get("content-type", "").split(";")[0].strip().lower()
        fname = PurePath(filename.decode("utf-8", "replace").replace("\\", "/")).name
        fmt = _format_of(part_type, fname, self.formats, self.kinds)
        if fmt is None:
            raise HTTPException(
                415, f"unsupported file type {part_type or 'unknown'!r} ({fname}); accepted: {', '.join(self.formats)}"
            )
        self.upload = self._current = Upload(filename=fname, content_type=part_type, format=fmt)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if isinstance(self._current, Upload):
            self._current.size += end - start
            if self._current.size > self.limit:
                raise _too_big(self.limit)
            self.pending.append(data[start:end])
            return
        self._other += end - start
        if self._other > FORM_OVERHEAD:
            raise HTTPException(413, "form fields beside the file are too large")
        if self._current:
            value = self.fields.get(self._current, b"") + data[start:end]
            if len(value) > FIELD_LIMIT:
                raise HTTPException(413, f"form field '{self._current}' is too large")
            self.fields[self._current] = value


async def receive_file(
    request: Request,
    *,
    limit: int,
    formats: list[str],
    kinds: dict,
    write: Callable[[bytes], Awaitable[None] | None],
    name: str = "file",
) -> Upload:
    """Stream the file in form field ``name`` into ``write``; HTTPException 413/415/422 when it cannot."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, f"send the file as multipart/form-data in the field '{name}'")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length header")
        if int(length) > limit + FORM_OVERHEAD:
            raise _too_big(limit)

    parts = _Parts(name, limit, formats, kinds)
    parser = MultipartParser(params[b"boundary"], parts.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)  # raises 413 / 415 / 422 as soon as the bytes show it
            for piece in parts.pending:
                done = write(piece)
                if inspect.isawaitable(done):
                    await done
            parts.pending.clear()
        parser.finalize()
    except (FormParserError, ValueError):  # UnicodeError is a ValueError
        raise HTTPException(422, "malformed multipart body") from None
    upload = parts.upload
    if upload is None:
        raise HTTPException(422, f"no file in the upload: send it in the multipart field '{name}'")
    if upload.size == 0:
        raise HTTPException(422, f"{upload.filename}: empty file")
    upload.fields = {k: v.decode("utf-8", "replace") for k, v in parts.fields.items()}
    return upload


def _body_too_big(limit: int) -> str:
    return f"request body too large: the limit for JSON bodies is {limit} bytes"


class BodyLimitMiddleware:
    """Caps request bodies at ``limit`` bytes, except multipart ones to the ``uploads`` paths
    (:func:`receive_file` streams and limits those itself). Multipart elsewhere is capped too:
    FastAPI would read such a body whole before finding it is no JSON."""

    def __init__(self, app: ASGIApp, limit: int, uploads: tuple[str, ...] = ()):
        self.app, self.limit, self.uploads = app, limit, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] in self.uploads and headers.get("content-type", "").lower().startswith("multipart/form-data"):
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            status, error = (413, _body_too_big(self.limit)) if length.isdigit() else (400, "invalid Content-Length")
            await JSONResponse({"error": error}, status_code=status)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # no (or a lying) Content-Length: stop at the first chunk over
                    raise HTTPException(413, _body_too_big(self.limit))  # FastAPI passes it to the 413 handler
            return message

        await self.app(scope, counted, send)
