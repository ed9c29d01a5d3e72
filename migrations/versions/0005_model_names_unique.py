"""model names unique within an org

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

MAX_NAME = 200


def _rename_duplicates() -> None:
    # Names that repeat within an org get ' (2)', ' (3)'... (oldest keeps its name), so the
    # constraint can be created on an existing library.
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, org_id, name FROM models ORDER BY org_id, created_at, id")).fetchall()
    existing: dict[str, set[str]] = {}
    for _, org_id, name in rows:
        existing.setdefault(org_id, set()).add(name)
    kept: set[tuple[str, str]] = set()
    for model_id, org_id, name in rows:
        if (org_id, name) not in kept:
            kept.add((org_id, name))
            continue
        n, new = 1, name
        while new in existing[org_id]:
            n += 1
            suffix = f" ({n})"
            new = f"{name[:MAX_NAME - len(suffix)]}{suffix}"
        existing[org_id].add(new)
        kept.add((org_id, new))
        conn.execute(sa.text("UPDATE models SET name = :name WHERE id = :id"),
                     {"name": new, "id": model_id})


def upgrade() -> None:
    _rename_duplicates()
    with op.batch_alter_table('models') as batch:
        batch.create_unique_constraint('uq_models_org_id_name', ['org_id', 'name'])


def downgrade() -> None:
    with op.batch_alter_table('models') as batch:
        batch.drop_constraint('uq_models_org_id_name', type_='unique')
