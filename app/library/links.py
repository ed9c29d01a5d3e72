"""Long-lived, revocable model links: one URL per file that needs no API key.

InvokeAI installs a model from a plain URL and cannot send headers, so the URL itself is the
credential: a random 256-bit token of which only the SHA-256 is stored (shown once, like an
API key). A link names one model; its URLs serve that model's files and nothing else.

Using a link is one conditional UPDATE (not revoked, not expired) that also records
``last_used_at``: a revoke that committed first always wins, with no window between check and
use. Unknown, revoked and expired tokens, and names that are not the model's files, all get
the same 404, so the answer says nothing about which tokens exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound
from app.core.locking import lock_org
from app.core.settings import get_settings
from app.identity.principal import Principal
from app.identity.security import new_token, sha256_hex
from app.library.naming import download_name, file_entry
from app.models import Model, ModelLink

MAX_ACTIVE_PER_MODEL = 20
MAX_TOKEN_CHARS = 128  # new_token() gives 43; anything much longer is not ours
GONE = "This link is invalid, revoked or expired; ask the model's owner for a new one."


def _now() -> datetime:
    return datetime.now(UTC)


def file_urls(model: Model, token: str) -> list[dict[str, str]]:
    """One URL per file. The path ends in the file's stored name, which a rename leaves
    alone; the download name comes in Content-Disposition (InvokeAI names the file by it)."""
    base = get_settings().base_url.rstrip("/")
    return [{"name": f["name"], "download_name": download_name(model, f["name"]),
             "url": f"{base}/v1/model-links/{token}/{f['name']}"} for f in model.files]


def create(db: Session, principal: Principal, model: Model, name: str, days: int
           ) -> tuple[ModelLink, str]:
    """A new link (and its token, never stored); 409 past the per-model cap."""
    if not model.files:
        raise Conflict("This model has no files to link to.")
    lock_org(db, model.org_id)  # the cap is check-then-insert: one creator at a time
    now = _now()
    active = db.scalar(select(func.count()).select_from(ModelLink).where(
        ModelLink.model_id == model.id, ModelLink.revoked_at.is_(None),
        ModelLink.expires_at > now))
    if (active or 0) >= MAX_ACTIVE_PER_MODEL:
        raise Conflict(f"This model already has {MAX_ACTIVE_PER_MODEL} active links; revoke "
                       "one you no longer use first.")
    token = new_token()
    link = ModelLink(org_id=model.org_id, model_id=model.id, name=name,
                     token_hash=sha256_hex(token), created_by=principal.label,
                     expires_at=now + timedelta(days=days))
    db.add(link)
    db.flush()
    return link, token


def revoke(db: Session, link: ModelLink) -> bool:
    """Revoke now; False when it was already revoked."""
    done = db.execute(update(ModelLink).where(
        ModelLink.id == link.id, ModelLink.revoked_at.is_(None),
    ).values(revoked_at=_now()).execution_options(synchronize_session=False))
    db.refresh(link)
    return bool(done.rowcount)  # type: ignore[attr-defined]


def use(db: Session, token: str, filename: str) -> tuple[Model, dict[str, Any]]:
    """The model and file entry a link URL names, recording the use; else 404 (GONE)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise NotFound(GONE)
    now = _now()
    model_id = db.scalar(update(ModelLink).where(
        ModelLink.token_hash == sha256_hex(token), ModelLink.revoked_at.is_(None),
        ModelLink.expires_at > now,
    ).values(last_used_at=now).returning(ModelLink.model_id)
        .execution_options(synchronize_session=False))
    model = db.get(Model, model_id) if model_id is not None else None
    entry = file_entry(model, filename) if model is not None else None
    if model is None or entry is None:
        raise NotFound(GONE)
    return model, entry
