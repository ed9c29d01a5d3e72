"""limits that hold: usage reservations

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Server defaults fill existing rows; the models set the same values for new ones.
    with op.batch_alter_table('organizations') as batch:
        batch.add_column(sa.Column('max_train_steps_limit', sa.Integer(), nullable=False,
                                   server_default='20000'))
        batch.add_column(sa.Column('max_validation_images_limit', sa.Integer(),
                                   nullable=False, server_default='2000'))
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('gpu_seconds_reserved', sa.Float(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_column('gpu_seconds_reserved')
    with op.batch_alter_table('organizations') as batch:
        batch.drop_column('max_validation_images_limit')
        batch.drop_column('max_train_steps_limit')
