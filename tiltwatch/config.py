"""Settings of the per-frame analyzer, validated: a typo in a key is an error, not a silent default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .emotions import DEFAULT_MODEL


class AnalyzerConfig(BaseModel):
    """Every knob of :class:`tiltwatch.Analyzer`, with the defaults the CLI uses."""

    model_config = ConfigDict(extra="forbid")

    # detection
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="detector score threshold")
    full_range: bool = Field(True, description="full-range detector: small and distant faces")
    min_face_size: int = Field(12, ge=4, description="ignore faces smaller than this (pixels)")
    detect_max_side: int = Field(640, ge=128, description="shrink frames to this longest side for the detector "
                                                         "(its network sees 192x192 anyway; boxes are mapped back)")
    detect_tiles: int = Field(1, ge=1, le=4, description="also detect on an N x N grid of overlapping tiles: "
                                                        "small faces of a wide camera (2 or 3), at 1 + N*N "
                                                        "detector calls a detection frame")
    detect_both_ranges: bool = Field(True, description="with full_range, also run the short-range detector on "
                                                       "the whole frame: near faces in half-profile and profile "
                                                       "(about 2 ms a detection frame)")
    # landmarks, pose
    mesh: bool = Field(True, description="468-point face mesh: precise head pose and alignment (without it, "
                                         "both come from the detector's six keypoints)")
    mesh_threads: int = Field(2, ge=1, le=8, description="landmark graphs run side by side on a frame's faces")
    detect_every: int = Field(1, ge=1, description="run the detector every N frames and follow faces by "
                                                  "their landmarks in between (needs mesh)")
    # emotion
    emotion: bool = True
    emotion_every: int = Field(1, ge=1, description="classify each tracked face every N frames, carrying its "
                                                   "last probabilities in between (untracked faces: every frame)")
    model: str = Field(DEFAULT_MODEL, description="shipped model name or path to an .onnx file")
    threads: int | None = Field(1, ge=1, description="onnxruntime threads for the emotion model (None: all "
                                                     "cores); one leaves the other core to decode and encode")
    emotion_tta: bool = Field(False, description="average each face over its mirror image and one-pixel "
                                                 "shifts (eval's --tta): a little more accurate, about 5x the "
                                                 "emotion stage's time; for photos and spare CPU")
    # tracking, smoothing
    track: bool = True
    fps: float = Field(25.0, gt=0, description="frame rate the tracker assumes when the source has none")
    lost_seconds: float = Field(2.0, ge=0, description="how long an unseen face keeps its track id")
    cut_threshold: float | None = Field(0.3, gt=0, le=1, description="a frame whose colours differ this much "
                                        "from the last one's starts a new shot: every track ends (a recorded "
                                        "or switched feed); None: never")
    look_gate: float | None = Field(0.4, ge=0, le=1, description="a lost track id is given back only to a "
                                       "face this close in colour (Bhattacharyya, face with hair and "
                                       "collar); None: by place and size alone")
    smooth_tau: float = Field(0.5, ge=0, description="smoothing time constant in seconds; 0 = off")
