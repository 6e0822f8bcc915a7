"""Runs and visits cut short by a process that was killed: ``interrupted``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("runs", "visits"):
        with op.batch_alter_table(table) as batch:  # (SQLite alters tables by copying them)
            batch.add_column(sa.Column("interrupted", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table in ("runs", "visits"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("interrupted")
