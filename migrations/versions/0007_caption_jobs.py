"""auto-captioning: captioners, caption jobs, caption suggestions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'captioners',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=1024), nullable=False),
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', TZ, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_captioners')),
        sa.UniqueConstraint('key', name=op.f('uq_captioners_key')),
    )
    op.create_table(
        'caption_jobs',
        sa.Column('org_id', sa.String(length=32), nullable=False),
        sa.Column('dataset_id', sa.String(length=32), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=True),
        sa.Column('captioner', sa.String(length=100), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.Column('style', sa.String(length=16), nullable=False),
        sa.Column('prefix', sa.String(length=200), nullable=True),
        sa.Column('max_length', sa.Integer(), nullable=True),
        sa.Column('item_ids', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('progress_done', sa.Integer(), nullable=False),
        sa.Column('progress_total', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('worker_id', sa.String(length=200), nullable=True),
        sa.Column('heartbeat_at', TZ, nullable=True),
        sa.Column('dispatched_at', TZ, nullable=True),
        sa.Column('gpu_seconds', sa.Float(), nullable=False),
        sa.Column('started_at', TZ, nullable=True),
        sa.Column('finished_at', TZ, nullable=True),
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', TZ, nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'],
                                name=op.f('fk_caption_jobs_dataset_id_datasets'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'],
                                name=op.f('fk_caption_jobs_org_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_caption_jobs')),
    )
    with op.batch_alter_table('caption_jobs') as batch:
        batch.create_index(batch.f('ix_caption_jobs_dataset_id'), ['dataset_id'], unique=False)
        batch.create_index(batch.f('ix_caption_jobs_org_id'), ['org_id'], unique=False)
        batch.create_index(batch.f('ix_caption_jobs_status'), ['status'], unique=False)
    op.create_table(
        'caption_suggestions',
        sa.Column('item_id', sa.String(length=32), nullable=False),
        sa.Column('org_id', sa.String(length=32), nullable=False),
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('caption_job_id', sa.String(length=32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('prefix', sa.String(length=200), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('created_at', TZ, nullable=False),
        sa.ForeignKeyConstraint(['caption_job_id'], ['caption_jobs.id'],
                                name=op.f('fk_caption_suggestions_caption_job_id_caption_jobs'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'],
                                name=op.f('fk_caption_suggestions_dataset_id_datasets'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['item_id'], ['dataset_items.id'],
                                name=op.f('fk_caption_suggestions_item_id_dataset_items'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'],
                                name=op.f('fk_caption_suggestions_org_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('item_id', name=op.f('pk_caption_suggestions')),
    )
    with op.batch_alter_table('caption_suggestions') as batch:
        batch.create_index(batch.f('ix_caption_suggestions_caption_job_id'), ['caption_job_id'],
                           unique=False)
        batch.create_index(batch.f('ix_caption_suggestions_dataset_id'), ['dataset_id'],
                           unique=False)
        batch.create_index(batch.f('ix_caption_suggestions_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    op.drop_table('caption_suggestions')
    op.drop_table('caption_jobs')
    op.drop_table('captioners')
