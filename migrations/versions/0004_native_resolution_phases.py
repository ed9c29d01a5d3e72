"""base model native resolution, job phases

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('base_models') as batch:
        batch.add_column(sa.Column('resolution', sa.Integer(), nullable=False,
                                   server_default='512'))
    # Real SDXL models and the tiny demo models (built by `atelier base-models make-tiny`).
    op.execute("UPDATE base_models SET resolution = 1024 WHERE architecture = 'sdxl'")
    op.execute("UPDATE base_models SET resolution = 64 WHERE name LIKE 'Tiny %'")
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('phase', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('phase_done', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('phase_total', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('validation_seconds', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_column('validation_seconds')
        batch.drop_column('phase_total')
        batch.drop_column('phase_done')
        batch.drop_column('phase')
    with op.batch_alter_table('base_models') as batch:
        batch.drop_column('resolution')
