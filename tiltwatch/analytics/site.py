"""The site configuration: cameras, their zones, alert thresholds. YAML, validated strictly.

A typo in a key or a bad value is an error that names the key and its line::

    site.yaml line 7: cameras.0.zones.1.kind: Input should be 'table', 'seat', 'slots', 'bar', 'staff' or 'other'

Usage::

    site = load_site("site.yaml")
    camera = site.camera("table-cam-1")
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import read_yaml
from ..emotions import EMOTIONS
from ..errors import ConfigError

ZoneKind = Literal["table", "seat", "slots", "bar", "staff", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttentionCone(_Strict):
    """Where a patron in the zone should be looking (the table, the machine), in head-pose degrees."""

    yaw: float = Field(0.0, ge=-90, le=90)
    pitch: float = Field(-20.0, ge=-90, le=90, description="negative: looking down, e.g. at a table")
    half_angle: float = Field(30.0, gt=0, le=90)


class ZoneConfig(_Strict):
    name: str = Field(min_length=1)
    kind: ZoneKind = "other"
    polygon: list[tuple[float, float]] = Field(min_length=3, description="image pixels, in order")
    attention: AttentionCone | None = None

    @property
    def staff(self) -> bool:
        return self.kind == "staff"

    @field_validator("polygon")
    @classmethod
    def _simple(cls, polygon: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """A polygon whose edges cross (points out of order) has no clear inside: refuse it."""
        crossing = _crossing_edges(polygon)
        if crossing is not None:
            i, j = crossing
            raise ValueError(
                f"the polygon's edges {i + 1} and {j + 1} cross (points must go round the zone "
                "in order, clockwise or not)"
            )
        if _area(polygon) < 1.0:  # points in a line, or all one point: no inside at all
            raise ValueError("the polygon encloses no area (its points lie on one line); give its corners")
        return polygon


def _area(points: list[tuple[float, float]]) -> float:
    """The polygon's area in square pixels (the shoelace formula)."""
    n = len(points)
    return abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))) / 2


def _crossing_edges(points: list[tuple[float, float]]) -> tuple[int, int] | None:
    """The first two non-adjacent edges of the closed polygon that intersect, if any."""

    def orient(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on_segment(a, b, c) -> bool:  # c, collinear with a-b, lies on it
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    def cross(p1, p2, q1, q2) -> bool:
        d1, d2, d3, d4 = orient(q1, q2, p1), orient(q1, q2, p2), orient(p1, p2, q1), orient(p1, p2, q2)
        if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
            return True
        return any(
            d == 0 and on_segment(a, b, c)
            for d, a, b, c in ((d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2))
        )

    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):  # neighbours share a corner
                continue
            if cross(*edges[i], *edges[j]):
                return i, j
    return None


class CameraConfig(_Strict):
    id: str = Field(min_length=1)
    source: str | None = None
    zones: list[ZoneConfig] = []
    # a wide floor view's small faces: detect on this many tiles a side too (see vision/detector.py);
    # unset: the analyzer's own setting
    detect_tiles: int | None = Field(None, ge=1, le=4)

    def analyzer_settings(self) -> dict[str, int]:
        """This camera's own analyzer settings (over the run's preset and settings file, under its flags)."""
        return {} if self.detect_tiles is None else {"detect_tiles": self.detect_tiles}

    @model_validator(mode="after")
    def _unique_zone_names(self):
        names = [z.name for z in self.zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"zone names must be unique per camera, repeated: {dupes}")
        return self


class TiltRule(_Strict):
    """Sustained negative affect: any of ``emotions`` above ``threshold`` for ``seconds``.
    The alert stays open until the value falls below ``release`` (hysteresis: no flicker).
    Once the track has a baseline (:class:`BaselineRule`) that emotion must also stand at least
    ``margin`` above the person's own resting level of it; the alert then stays open while it is
    still ``margin - (threshold - release)`` above it (the same band as the absolute value's)."""

    emotions: list[str] = ["anger", "sadness", "fear"]
    threshold: float = Field(0.5, gt=0, le=1)
    release: float = Field(0.35, ge=0, le=1)
    seconds: float = Field(3.0, ge=0)
    margin: float = Field(0.2, ge=0, le=1, description="rise above the track's baseline needed, once it has one")

    @field_validator("emotions")
    @classmethod
    def _known(cls, v):
        bad = [e for e in v if e not in EMOTIONS]
        if bad:
            raise ValueError(f"unknown emotion(s) {bad}; known: {list(EMOTIONS)}")
        return v

    @model_validator(mode="after")
    def _release_below(self):
        if self.release > self.threshold:
            raise ValueError("release must not be above threshold")
        return self


class DisengagementRule(_Strict):
    """Attention (share of the last ``window`` seconds looking into the zone's cone) below
    ``threshold`` for ``seconds``; closes when it is back above ``release``."""

    threshold: float = Field(0.3, ge=0, le=1)
    release: float = Field(0.5, ge=0, le=1)
    window: float = Field(5.0, gt=0)
    seconds: float = Field(10.0, ge=0)


class DistressRule(_Strict):
    """A spike: fear + sadness rises by ``rise`` within ``within`` seconds and exceeds ``threshold``."""

    threshold: float = Field(0.6, gt=0, le=1)
    rise: float = Field(0.4, gt=0, le=1)
    within: float = Field(1.0, gt=0)
    cooldown: float = Field(10.0, ge=0, description="seconds before the same visit can spike again")


class BaselineRule(_Strict):
    """A person's own resting expression: each track learns the median of each of its smoothed
    emotion probabilities over the first ``seconds`` of its visit, from the observations whose
    quality is at least ``min_quality`` (abstained faces never count), then keeps it fixed. With
    fewer than ``min_frames`` such observations, or a face that was not steady over them (a tilt
    emotion's 10th to 90th percentile range above ``max_spread``), the track gets no baseline and the
    absolute rule alone applies to it. While it learns, a tilt alert may begin but cannot fire."""

    enabled: bool = True
    seconds: float = Field(4.0, gt=0, le=600, description="the learning window, from the visit's first observation")
    min_frames: int = Field(10, ge=1, description="confident observations needed for a baseline")
    min_quality: float = Field(0.5, ge=0, le=1, description="an observation counts when its quality is at least this")
    max_spread: float = Field(
        0.3, ge=0, le=1, description="a steady face: each tilt emotion's 10th-90th percentile range over the window"
    )


class AlertRules(_Strict):
    tilt: TiltRule = TiltRule()
    disengagement: DisengagementRule = DisengagementRule()
    distress: DistressRule = DistressRule()


class SiteConfig(_Strict):
    site: str = "site"
    cameras: list[CameraConfig] = Field(min_length=1)
    alerts: AlertRules = AlertRules()
    baseline: BaselineRule = BaselineRule()
    sample_every: float = Field(0.5, gt=0, description="seconds between stored observations of one visit")
    retention_days: float | None = Field(None, gt=0)

    def camera(self, camera_id: str | None) -> CameraConfig:
        if camera_id is None:
            if len(self.cameras) == 1:
                return self.cameras[0]
            raise ConfigError(
                f"the site has {len(self.cameras)} cameras; name one with --camera "
                f"({', '.join(c.id for c in self.cameras)})"
            )
        for c in self.cameras:
            if c.id == camera_id:
                return c
        raise ConfigError(f"camera {camera_id!r} is not in the site config ({', '.join(c.id for c in self.cameras)})")


def load_site(path: str | Path) -> SiteConfig:
    path = Path(path)
    data, node = read_yaml(path, "site config")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'cameras' at the top")
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        # a misspelt key also makes its real name "missing": report the misspelling first
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = [p for p in err["loc"]]
        line = _line_of(node, loc)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        key = ".".join(map(str, loc)) or "(top)"
        raise ConfigError(f"{path} line {line}: {key}: {err['msg']}{more}") from None


def _line_of(node, loc: list) -> int:
    """1-based line of the deepest YAML node on the error's path (the key itself if it is extra)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
