"""Settings of ``tiltwatch serve``: validated, a typo in a key is an error (``extra="forbid"``).

API keys come from ``api_keys``, from ``TILTWATCH_API_KEYS`` (comma-separated) and from
``api_key_file`` / ``TILTWATCH_API_KEY_FILE`` (one key a line, ``#`` comments). Keys are
``SecretStr``: printing or logging the settings shows ``**********``.

Usage::

    settings = Settings(db="sqlite:///floor.db", site="site.yaml", allow_frames=True)
    app = create_app(settings)
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..config import AnalyzerConfig
from ..errors import ConfigError, validation_message  # noqa: F401  (the API's 422 messages)

ImageType = Literal["jpeg", "png", "webp", "bmp"]
VideoType = Literal["mp4", "mov", "mkv", "avi"]
STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MB = 1024 * 1024


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: str = Field(description="what went wrong, in one line")


ERRORS = {
    400: "Malformed request (e.g. Content-Length)",
    401: "Missing or invalid API key",
    403: "Frames are not served (allow_frames is off)",
    404: "No such stream, job or file",
    409: "Conflicts with the current state",
    413: "Body or upload over its size limit",
    415: "Not multipart/form-data, or a file type not accepted",
    422: "Invalid input",
    429: "Rate limit, or too many wrong keys from this address (see Retry-After)",
    503: "Starting, stopping, or too busy (see Retry-After)",
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` for these error codes, each an :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes}


def _env_keys() -> list[SecretStr]:
    return [SecretStr(k.strip()) for k in os.environ.get("TILTWATCH_API_KEYS", "").split(",") if k.strip()]


def _env_key_file() -> Path | None:
    value = os.environ.get("TILTWATCH_API_KEY_FILE", "").strip()
    return Path(value) if value else None


class StreamSpec(BaseModel):
    """One live stream: ``source`` is an rtsp/http URL, a webcam index, a video file or ``sample``."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)  # {"source": 0}: webcam 0

    id: str = Field(description="letters, digits, '_', '.', '-'; at most 64")
    source: str = Field(min_length=1, max_length=2048)
    camera: str | None = Field(
        None, min_length=1, max_length=200, description="camera id in the site config (default: its only camera)"
    )
    loop: bool = Field(False, description="files and the sample: start again at the end")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(STREAM_ID, v):
            raise ValueError(f"stream id must be 1-64 letters, digits, '_', '.' or '-', got {v!r}")
        return v


class StreamRequest(StreamSpec):
    """A stream added over the API: strict JSON types, nothing coerced (``{"source": 0}`` is refused).

    ``source`` is ``"sample"``, a webcam index as a string (``"0"``), an rtsp/http(s)/rtmp/udp/tcp
    URL, or a video file named relative to the server's media folder (only when it has one)."""

    model_config = ConfigDict(extra="forbid", strict=True, coerce_numbers_to_str=False)

    source: str = Field(
        min_length=1,
        max_length=2048,
        description="'sample'; a webcam index as a string ('0'); an rtsp/http(s)/rtmp/udp/tcp URL; "
        "or a video file relative to the server's media folder (media_dir)",
    )


class Settings(BaseModel):
    """Everything ``create_app`` needs; the defaults are the safe ones (no frames served, no CORS)."""

    model_config = ConfigDict(extra="forbid")

    api_keys: list[SecretStr] = Field(default_factory=_env_keys, description="accepted API keys")
    api_key_file: Path | None = Field(default_factory=_env_key_file, description="more keys, one a line")
    db: str = Field("sqlite:///tiltwatch.db", description="the store's SQLAlchemy URL")
    site: Path | None = Field(None, description="site config (YAML): zones and alert rules")
    allow_frames: bool = Field(False, description="serve annotated frames, MJPEG and annotated videos")
    blur_faces: bool = Field(False, description="pixelate faces in every served frame and video")
    max_image_bytes: int = Field(10 * MB, gt=0)
    max_video_bytes: int = Field(200 * MB, gt=0)
    image_types: list[ImageType] = ["jpeg", "png", "webp", "bmp"]
    video_types: list[VideoType] = ["mp4", "mov", "mkv", "avi"]
    max_json_bytes: int = Field(MB, gt=0, description="largest JSON (non-multipart) request body; more: 413")
    rate_limit: int = Field(120, ge=0, description="requests per minute per client IP and key; 0 = off")
    auth_failures: int = Field(
        10,
        ge=0,
        description="wrong API keys a minute from one client address before it gets 429 (all its requests); 0 = off",
    )
    trusted_proxies: list[str] = Field(
        [],
        description="addresses or networks of reverse proxies whose "
        "X-Forwarded-For is believed; empty = the TCP peer counts",
    )
    media_dir: Path | None = Field(
        None,
        description="the only folder API clients may name video files in "
        "(relative names); None = no file sources over the API",
    )
    cors_origins: list[str] = Field([], description="origins allowed by CORS; empty = CORS off")
    data_dir: Path = Field(Path("tiltwatch-data"), description="uploaded videos and job results")
    image_workers: int = Field(2, ge=1, le=32, description="analyzers for /analyze/image (one thread each)")
    image_queue: int = Field(16, ge=1, description="image requests waiting beyond this get 503")
    streams: list[StreamSpec] = Field([], description="streams added (and started) at startup")
    analyzer: AnalyzerConfig = Field(
        default_factory=AnalyzerConfig.preset,
        description="pipeline of streams and jobs: the CLI's fast path by default (images always use the exact path)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for item in v:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"trusted proxy must be an IP address or network, got {item!r}") from None
        return v

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"CORS origin must look like https://host[:port], got {origin!r}")
        return v

    @field_validator("media_dir")
    @classmethod
    def _media_dir(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_dir():  # (else every file source is refused later, as if missing)
            raise ValueError(f"{v} is not a folder" if v.exists() else f"{v}: no such folder")
        return v

    def keys(self) -> list[str]:
        """Every configured key (settings, environment, key file), without duplicates."""
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_key_file is not None:
            try:
                lines = self.api_key_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"{self.api_key_file}: cannot read the API key file ({exc.strerror})") from None
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"{self.api_key_file}: the API key file is not UTF-8 text (byte {exc.start}); keys are ASCII"
                ) from None
            keys += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        short = [k for k in keys if len(k) < 16]
        if short:
            raise ConfigError(f"{len(short)} API key(s) shorter than 16 characters; use long random keys")
        return list(dict.fromkeys(keys))
