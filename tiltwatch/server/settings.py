"""Settings of ``tiltwatch serve``: validated, a typo in a key is an error (``extra="forbid"``).

API keys come from ``api_keys``, from ``TILTWATCH_API_KEYS`` (comma-separated) and from
``api_key_file`` / ``TILTWATCH_API_KEY_FILE`` (one key a line, ``#`` comments). Keys are
``SecretStr``: printing or logging the settings shows ``**********``.

Usage::

    settings = Settings(db="sqlite:///floor.db", site="site.yaml", allow_frames=True)
    app = create_app(settings)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..config import AnalyzerConfig
from ..errors import ConfigError

ImageType = Literal["jpeg", "png", "webp", "bmp"]
VideoType = Literal["mp4", "mov", "mkv", "avi"]
STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MB = 1024 * 1024


def validation_message(errors: list[dict], skip: tuple[str, ...] = ("body",)) -> str:
    """One line for pydantic's errors: ``where: what`` of the first, and how many more."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in skip) or "request"
    what = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {what}{more}"


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
    camera: str | None = Field(None, description="camera id in the site config (default: its only camera)")
    loop: bool = Field(False, description="files and the sample: start again at the end")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(STREAM_ID, v):
            raise ValueError(f"stream id must be 1-64 letters, digits, '_', '.' or '-', got {v!r}")
        return v


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
    rate_limit: int = Field(120, ge=0, description="requests per minute per client IP and key; 0 = off")
    cors_origins: list[str] = Field([], description="origins allowed by CORS; empty = CORS off")
    data_dir: Path = Field(Path("tiltwatch-data"), description="uploaded videos and job results")
    image_workers: int = Field(2, ge=1, le=32, description="analyzers for /analyze/image (one thread each)")
    image_queue: int = Field(16, ge=1, description="image requests waiting beyond this get 503")
    streams: list[StreamSpec] = Field([], description="streams added (and started) at startup")
    analyzer: AnalyzerConfig = Field(default_factory=lambda: AnalyzerConfig(detect_every=3, emotion_every=2),
                                     description="pipeline of streams and jobs: the CLI's fast path by default "
                                                 "(images always use the exact path)")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"CORS origin must look like https://host[:port], got {origin!r}")
        return v

    def keys(self) -> list[str]:
        """Every configured key (settings, environment, key file), without duplicates."""
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_key_file is not None:
            try:
                lines = self.api_key_file.read_text().splitlines()
            except OSError as exc:
                raise ConfigError(f"{self.api_key_file}: cannot read the API key file ({exc.strerror})") from None
            keys += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        short = [k for k in keys if len(k) < 16]
        if short:
            raise ConfigError(f"{len(short)} API key(s) shorter than 16 characters; use long random keys")
        return list(dict.fromkeys(keys))
