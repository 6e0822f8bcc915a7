"""Keyed rows and run epochs: an observation is unique by visit and time, an alert by visit, kind,
start and end, a staff-zone count by camera, zone and time, so a batch written twice (a retried flush whose
first commit did land) is stored once; each run gets its epoch, its number among its camera's runs.

Rows a store wrote twice before this revision are dropped (the first of each kept); old runs are
numbered by their start, per camera.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

KEYS = {
    "observations": ("uq_observations_visit_t", ["visit_key", "t"]),
    "alerts": ("uq_alerts_visit_kind_start_end", ["visit_key", "kind", "start", "end"]),
    "zone_counts": ("uq_zone_counts_camera_zone_t", ["camera", "zone", "t"]),
}


def upgrade() -> None:
    for table, (name, columns) in KEYS.items():
        keys = ", ".join(f'"{c}"' for c in columns)
        op.execute(f'DELETE FROM "{table}" WHERE id NOT IN (SELECT MIN(id) FROM "{table}" GROUP BY {keys})')
        with op.batch_alter_table(table) as batch:
            batch.create_index(name, columns, unique=True)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE runs SET epoch = (SELECT COUNT(*) FROM runs AS r WHERE r.camera = runs.camera AND "
        "(r.started_at < runs.started_at OR (r.started_at = runs.started_at AND r.run_id <= runs.run_id)))"
    )
    with op.batch_alter_table("runs") as batch:
        batch.create_index("uq_runs_camera_epoch", ["camera", "epoch"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("uq_runs_camera_epoch")
        batch.drop_column("epoch")
    for table, (name, _) in KEYS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_index(name)
