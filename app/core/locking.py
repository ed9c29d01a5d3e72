"""Serialising writers that must see each other: one lock per organization.

Invariants that span rows (an org keeps an owner, usage stays under quota, a dataset is not
deleted under a new job) are check-then-act; two requests checking at once would both pass.
Taking the org's lock first makes the check and the write one step for that org.

PostgreSQL: a row lock on the organization (``SELECT ... FOR UPDATE``), held until commit;
under READ COMMITTED every later statement sees what the previous holder committed.
SQLite: the driver opens a transaction only at the first write, so a no-op write takes the
database's write lock (waiting up to ``busy_timeout``), and every read after it is current.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Organization


def lock_org(db: Session, org_id: str) -> None:
    """Hold the org's write lock until this transaction ends."""
    if db.get_bind().dialect.name == "sqlite":
        db.execute(update(Organization).where(Organization.id == org_id)
                   .values(plan=Organization.plan).execution_options(synchronize_session=False))
    else:
        # NO KEY UPDATE: serialises lock holders, yet does not wait on (or deadlock with) the
        # KEY SHARE locks that inserting a row referencing the org takes.
        db.execute(select(Organization.id).where(Organization.id == org_id)
                   .with_for_update(key_share=True))
