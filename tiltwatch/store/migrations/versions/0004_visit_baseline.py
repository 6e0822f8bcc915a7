"""Each visit's baseline (the person's resting expression, analytics/baseline.py), its number of
confident observations, and the visit's peak tilt score and peak deviation from the baseline.

Old visits get no baseline (NULL), 0 frames and no peaks (NULL): the absolute rule applied to them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits") as batch:  # (SQLite alters tables by copying them)
        batch.add_column(sa.Column("baseline", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("baseline_frames", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("peak_tilt", sa.Double(), nullable=True))
        batch.add_column(sa.Column("peak_deviation", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch:
        for column in ("peak_deviation", "peak_tilt", "baseline_frames", "baseline"):
            batch.drop_column(column)
