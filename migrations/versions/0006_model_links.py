"""model links: long-lived, revocable download links (only the token's hash stored)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_links',
        sa.Column('org_id', sa.String(length=32), nullable=False),
        sa.Column('model_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=400), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['model_id'], ['models.id'],
                                name=op.f('fk_model_links_model_id_models'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'],
                                name=op.f('fk_model_links_org_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_model_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_model_links_token_hash')),
    )
    with op.batch_alter_table('model_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_links_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_model_links_org_id'), ['org_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_links_org_id'))
        batch_op.drop_index(batch_op.f('ix_model_links_model_id'))
    op.drop_table('model_links')
