"""Initial schema: runs, observations, visits, alerts, zone_counts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than built from ``schema.py``, so this step stays what it was
when the models change later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite auto-increments INTEGER keys only


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
    )
    op.create_table(
        "observations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("visit_key", sa.String(64), nullable=False),
        sa.Column("t", sa.Double(), nullable=False),
        sa.Column("zone", sa.String(128), nullable=True),
        sa.Column("probs", sa.JSON(), nullable=False),
        sa.Column("valence", sa.Double(), nullable=False),
        sa.Column("arousal", sa.Double(), nullable=False),
        sa.Column("yaw", sa.Double(), nullable=True),
        sa.Column("pitch", sa.Double(), nullable=True),
        sa.Column("attentive", sa.Boolean(), nullable=True),
    )
    op.create_index("ix_observations_camera_t", "observations", ["camera", "t"])
    op.create_index("ix_observations_visit_key", "observations", ["visit_key"])
    op.create_table(
        "visits",
        sa.Column("visit_key", sa.String(64), primary_key=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("end", sa.Double(), nullable=False),
        sa.Column("zones", sa.JSON(), nullable=False),
        sa.Column("dwell_s", sa.JSON(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("mean_probs", sa.JSON(), nullable=False),
        sa.Column("dominant", sa.String(32), nullable=False),
        sa.Column("mean_valence", sa.Double(), nullable=False),
        sa.Column("mean_arousal", sa.Double(), nullable=False),
        sa.Column("attention", sa.Double(), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_visits_camera_start", "visits", ["camera", "start"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("visit_key", sa.String(64), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(128), nullable=True),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("end", sa.Double(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
    )
    op.create_index("ix_alerts_camera_start", "alerts", ["camera", "start"])
    op.create_index("ix_alerts_kind", "alerts", ["kind"])
    op.create_table(
        "zone_counts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(128), nullable=False),
        sa.Column("zone", sa.String(128), nullable=False),
        sa.Column("t", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_zone_counts_camera_t", "zone_counts", ["camera", "t"])


def downgrade() -> None:
    for table in ("zone_counts", "alerts", "visits", "observations", "runs"):
        op.drop_table(table)
