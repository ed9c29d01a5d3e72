from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, org_fk


class Model(IdMixin, Base):
    """A finalized add-on in an org's library."""

    __tablename__ = "models"
    # Names travel (file names, prompts, "which one was it?"): one name, one model per org.
    __table_args__ = (UniqueConstraint("org_id", "name"),
                      Index("ix_models_org_id_id", "org_id", "id"))  # the list's cursor

    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(8))
    base_model: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str | None] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("training_jobs.id", ondelete="SET NULL"), index=True
    )
    dataset_id: Mapped[str | None] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"name", "key", "bytes", "sha256"}]
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # [{"key", "prompt", "prompt_index", "index", "seed"}]
    preview_images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    bytes: Mapped[int] = mapped_column(BigInteger)


class ModelLink(IdMixin, Base):
    """A long-lived, revocable download link to a model's files (InvokeAI installs from a URL
    and cannot send an API key). Only the token's hash is stored; the link dies with its model.
    """

    __tablename__ = "model_links"

    org_id: Mapped[str] = org_fk()
    model_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(400), default="")
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
