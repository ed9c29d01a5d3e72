"""indexes for the list routes' cursor pagination and queue positions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (name, table, columns): lists page an org's rows newest-first by id; a queued job's position
# counts the queued jobs before it by id.
INDEXES = (
    ("ix_training_jobs_org_id_id", "training_jobs", ["org_id", "id"]),
    ("ix_training_jobs_status_id", "training_jobs", ["status", "id"]),
    ("ix_datasets_org_id_id", "datasets", ["org_id", "id"]),
    ("ix_models_org_id_id", "models", ["org_id", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
