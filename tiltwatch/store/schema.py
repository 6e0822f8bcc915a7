"""ORM tables of the store: one table per record type of :mod:`tiltwatch.analytics.records`, plus ``runs``.

Usage::

    from tiltwatch.store.schema import Base, ObservationRow
    Base.metadata  # what the migrations in ``migrations/versions`` build

Column names equal the dataclass field names, so rows and records convert field by field.
Only generic types (``JSON``, ``Double``, ...) are used: the same schema runs on SQLite and
PostgreSQL. Any change here needs a new migration in ``migrations/versions``.

Appended rows are keyed (unique indexes, ``uq_*``): an observation by visit and time, an alert by
visit, kind, start and end, a staff-zone count by camera, zone and time (a visit key is the run and the
track, the run is the camera's epoch). The store inserts with "on conflict do nothing", so a batch
written again (a retried flush whose first commit did land) adds nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Double, Index, Integer, String, Text, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

KEY = 64  # visit keys are "<run_id>:<track_id>"
NAME = 128  # camera and zone names


class Base(DeclarativeBase):
    """Declarative base holding the store's metadata."""


class RunRow(Base):
    """One process run on one camera: ``started_at`` / ``ended_at`` in epoch seconds; ``epoch``: its number
    among the camera's runs (1, 2, ...: a restarted camera starts the next, so no track joins an old one)."""

    __tablename__ = "runs"
    __table_args__ = (Index("uq_runs_camera_epoch", "camera", "epoch", unique=True),)

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera: Mapped[str] = mapped_column(String(NAME))
    epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    # closed by a later run or purge, not by its own process (killed): ended_at is its last record
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the process writing it (None: runs from before migration 0007)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StreamRow(Base):
    """A stream added over the API, kept so that a restarted server has it again: its request
    (id, source as the client named it, camera, loop) and whether it was running."""

    __tablename__ = "streams"

    id: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    running: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[float] = mapped_column(Double)


class ObservationRow(Base):
    """:class:`~tiltwatch.analytics.records.Observation`."""

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_camera_t", "camera", "t"),
        Index("ix_observations_visit_key", "visit_key"),
        Index("uq_observations_visit_t", "visit_key", "t", unique=True),  # a batch written twice: once
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(NAME))
    visit_key: Mapped[str] = mapped_column(String(KEY))
    t: Mapped[float] = mapped_column(Double)
    zone: Mapped[str | None] = mapped_column(String(NAME), nullable=True)
    probs: Mapped[list[float]] = mapped_column(JSON)
    valence: Mapped[float] = mapped_column(Double)
    arousal: Mapped[float] = mapped_column(Double)
    yaw: Mapped[float | None] = mapped_column(Double, nullable=True)
    pitch: Mapped[float | None] = mapped_column(Double, nullable=True)
    attentive: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    quality: Mapped[float | None] = mapped_column(Double, nullable=True)


class VisitRow(Base):
    """:class:`~tiltwatch.analytics.records.Visit`, upserted by ``visit_key`` while the visit goes on."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_camera_start", "camera", "start"),)

    visit_key: Mapped[str] = mapped_column(String(KEY), primary_key=True)
    camera: Mapped[str] = mapped_column(String(NAME))
    run_id: Mapped[str] = mapped_column(String(32))
    track_id: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Double)
    end: Mapped[float] = mapped_column(Double)
    zones: Mapped[list[str]] = mapped_column(JSON)
    dwell_s: Mapped[dict[str, float]] = mapped_column(JSON)
    frames: Mapped[int] = mapped_column(Integer)
    mean_probs: Mapped[list[float]] = mapped_column(JSON)
    dominant: Mapped[str] = mapped_column(String(32))
    mean_valence: Mapped[float] = mapped_column(Double)
    mean_arousal: Mapped[float] = mapped_column(Double)
    attention: Mapped[float | None] = mapped_column(Double, nullable=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    baseline: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    baseline_frames: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    peak_tilt: Mapped[float | None] = mapped_column(Double, nullable=True)
    peak_deviation: Mapped[float | None] = mapped_column(Double, nullable=True)


class AlertRow(Base):
    """:class:`~tiltwatch.analytics.records.Alert`."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_camera_start", "camera", "start"),
        Index("ix_alerts_kind", "kind"),
        Index("uq_alerts_visit_kind_start_end", "visit_key", "kind", "start", "end", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(NAME))
    kind: Mapped[str] = mapped_column(String(32))
    visit_key: Mapped[str] = mapped_column(String(KEY))
    track_id: Mapped[int] = mapped_column(Integer)
    zone: Mapped[str | None] = mapped_column(String(NAME), nullable=True)
    start: Mapped[float] = mapped_column(Double)
    end: Mapped[float] = mapped_column(Double)
    value: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)


class ZoneCountRow(Base):
    """:class:`~tiltwatch.analytics.records.ZoneCount` (staff zones: counts only)."""

    __tablename__ = "zone_counts"
    __table_args__ = (
        Index("ix_zone_counts_camera_t", "camera", "t"),
        Index("uq_zone_counts_camera_zone_t", "camera", "zone", "t", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(NAME))
    zone: Mapped[str] = mapped_column(String(NAME))
    t: Mapped[float] = mapped_column(Double)
    count: Mapped[int] = mapped_column(Integer)
