"""Settings of the per-frame analyzer, validated: a typo in a key is an error, not a silent default.

One name per setting everywhere: the field here, the YAML key of an analyzer settings file
(``analyze --settings``, ``bench --settings``, ``serve --settings``, a server settings file's
``analyzer:``), and the CLI flag (``--detect-every`` for ``detect_every``). The defaults below
are the exact path, which is right for any input; the run tools (``analyze``, ``bench``,
``serve``) start from the ``fast`` preset for videos and cameras. A setting reaches the
analyzer in this order, each step overriding the one before: preset, settings file, the site
camera's own settings, flags (see :func:`tiltwatch.pipeline.build.resolve_config`).

Usage::

    AnalyzerConfig.preset("fast", detect_tiles=2)
    load_analyzer_settings("analyzer.yaml")        # a mapping of these fields
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .emotions import AUTO_MODEL, DEFAULT_MODEL, NO_VNNI_MODEL
from .errors import ConfigError, pydantic_message

# What no image carries over to the next, whatever else was asked (photos, eval-pose's images).
EACH_IMAGE_ALONE: dict[str, Any] = {"detect_every": 1, "emotion_every": 1, "track": False, "smooth_tau": 0.0}
# The photo preset's mesh work (docs/head_pose.md); for images, a flag or settings file still wins.
PHOTO_MESH: dict[str, Any] = {"mesh_passes": 2, "mesh_tta": True, "mesh_retry": True}

# Named once: what each preset changes from the field defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "exact": {},  # detect every frame, classify every face every frame
    # videos and cameras: detect every 3rd frame (faces followed by their mesh in between) and
    # classify each tracked face every 2nd; about 1.5x the exact path's speed (README, "Speed")
    "fast": {"detect_every": 3, "emotion_every": 2},
    # unrelated photos: nothing carries over from one image to the next, and each face gets the
    # mesh's best reading (docs/head_pose.md: 4.32 -> 3.83 degrees cross-validated on AFLW2000)
    "photo": EACH_IMAGE_ALONE | PHOTO_MESH,
}
DEFAULT_PRESET = "fast"  # of the run tools, for videos and cameras (images always run as "photo")


class AnalyzerConfig(BaseModel):
    """Every knob of :class:`tiltwatch.Analyzer`; the defaults are the ``exact`` preset."""

    model_config = ConfigDict(extra="forbid")

    # detection
    min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="detector score threshold (unset: the model's own, 0.6 full range, 0.5 short)"
    )
    full_range: bool = Field(True, description="full-range detector: small and distant faces")
    min_face_size: int = Field(12, ge=4, description="ignore faces smaller than this (pixels)")
    detect_max_side: int = Field(
        640,
        ge=128,
        description="shrink frames to this longest side for the detector "
        "(its network sees 192x192 anyway; boxes are mapped back)",
    )
    detect_tiles: int = Field(
        1,
        ge=1,
        le=4,
        description="also detect on an N x N grid of overlapping tiles: "
        "small faces of a wide camera (2 or 3), at 1 + N*N "
        "detector calls a detection frame",
    )
    detect_both_ranges: bool = Field(
        True,
        description="with full_range, also run the short-range detector on "
        "the whole frame: near faces in half-profile and profile "
        "(about 2 ms a detection frame)",
    )
    # landmarks, pose
    mesh: bool = Field(
        True,
        description="468-point face mesh: precise head pose and alignment (without it, "
        "both come from the detector's six keypoints)",
    )
    mesh_threads: int = Field(1, ge=1, le=8, description="CPU threads the face-landmark model runs on")
    mesh_passes: int = Field(
        1,
        ge=1,
        le=3,
        description="mesh runs on a detected face, each after the first on the region the last one's "
        "points give (as between detections); photos: 2",
    )
    mesh_tta: bool = Field(
        False,
        description="average each detected face's mesh over five more views (its mirror image, "
        "a region a tenth smaller and a tenth larger, each mirrored too): six times the mesh's "
        "time on a detection frame; photos: on",
    )
    mesh_retry: bool = Field(
        False,
        description="a detected face the mesh rejects is tried again in up to five other regions "
        "(larger, smaller, upright): faces in profile; photos: on",
    )
    detect_every: int = Field(
        1,
        ge=1,
        description="run the detector every N frames and follow faces by their landmarks in between (needs mesh)",
    )
    # emotion
    emotion: bool = True
    emotion_every: int = Field(
        1,
        ge=1,
        description="classify each tracked face every N frames, carrying its "
        "last probabilities in between (untracked faces: every frame)",
    )
    model: str = Field(
        AUTO_MODEL,
        description=f"shipped emotion model, a path to an .onnx file, or auto: {DEFAULT_MODEL} on a CPU with "
        f"int8 dot products (VNNI), {NO_VNNI_MODEL} on one without (tiltwatch models says which runs)",
    )
    threads: int | None = Field(
        1,
        ge=1,
        description="onnxruntime threads for the emotion model (None: all "
        "cores); one leaves the other core to decode and encode",
    )
    emotion_tta: bool = Field(
        False,
        description="average each face over its mirror image and one-pixel "
        "shifts (eval's --tta): a little more accurate, about 5x the "
        "emotion stage's time; for photos and spare CPU",
    )
    # tracking, smoothing
    track: bool = True
    fps: float = Field(25.0, gt=0, description="frame rate the tracker assumes when the source has none")
    lost_seconds: float = Field(2.0, ge=0, description="how long an unseen face keeps its track id")
    cut_threshold: float | None = Field(
        0.3,
        gt=0,
        le=1,
        description="a frame whose colours differ this much "
        "from the last one's starts a new shot: every track ends (a recorded "
        "or switched feed); None: never",
    )
    look_gate: float | None = Field(
        0.4,
        ge=0,
        le=1,
        description="a lost track id is given back only to a "
        "face this close in colour (Bhattacharyya, face with hair and "
        "collar); None: by place and size alone",
    )
    smooth_tau: float = Field(0.5, ge=0, description="smoothing time constant in seconds; 0 = off")
    pose_min_cutoff: float | None = Field(
        0.3,
        gt=0,
        description="head pose through a One Euro filter: its "
        "cut-off in Hz at rest (lower: steadier); None: smoothed as emotion, "
        "by smooth_tau",
    )
    pose_beta: float = Field(
        0.03,
        ge=0,
        description="One Euro: how fast the cut-off rises with the head's "
        "speed (Hz per degree a second): less lag while it turns",
    )
    min_quality: float = Field(
        0.3,
        ge=0,
        le=1,
        description="faces whose quality score (0-1: size, blur, "
        "exposure, pose, mesh, confidence) is below this are reported but abstain: "
        "they move no smoothing, visit or alert; 0 = none abstains",
    )

    @classmethod
    def preset(cls, name: str = DEFAULT_PRESET, **overrides: Any) -> AnalyzerConfig:
        """The named preset (``exact``, ``fast``, ``photo``) with ``overrides``."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
        return cls.model_validate(PRESETS[name] | overrides)


def read_yaml(path: str | Path, what: str) -> tuple[Any, yaml.Node | None]:
    """A YAML file's data and its node tree (for line numbers); one-line ConfigError when it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())  # PyYAML's can span lines
        raise ConfigError(f"{path}{where}: not valid YAML ({why})") from None


def load_analyzer_settings(path: str | Path) -> dict[str, Any]:
    """The settings an analyzer settings file sets (a mapping of :class:`AnalyzerConfig` fields), checked."""
    data, _ = read_yaml(path, "analyzer settings file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of analyzer settings (e.g. detect_every: 3)")
    try:
        AnalyzerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {pydantic_message(exc)}") from None
    return data
