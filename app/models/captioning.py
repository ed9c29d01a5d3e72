"""Auto-captioning: registered captioners, caption jobs, and the suggestions they leave.

A suggestion sits beside an item's caption until someone accepts or discards it; nothing here
ever writes ``DatasetItem.caption`` (app/captioning/review.py does, on accept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, org_fk, utcnow

CAPTIONER_KINDS = ("sentence", "tags")


class Captioner(IdMixin, Base):
    """A captioning model operators registered (`atelier captioners add|make-tiny`); offered to
    every org, as base models are."""

    __tablename__ = "captioners"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    # A local folder or a hub id resolved from the worker's local cache (never the network).
    source: Mapped[str] = mapped_column(String(1024))


class CaptionJob(IdMixin, Base):
    """Captions a frozen list of items (``item_ids``, fixed at creation) in that order.

    ``progress_done`` counts the items of ``item_ids`` already handled and is committed with
    their suggestions, so a worker taking over after a crash starts at that index.
    """

    __tablename__ = "caption_jobs"

    org_id: Mapped[str] = org_fk()
    dataset_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(64))
    captioner: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(16))
    style: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str | None] = mapped_column(String(200))
    max_length: Mapped[int | None] = mapped_column(Integer)
    item_ids: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class CaptionSuggestion(Base):
    """The current suggestion for one item (a newer job's replaces it)."""

    __tablename__ = "caption_suggestions"

    item_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("dataset_items.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[str] = org_fk()
    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    caption_job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("caption_jobs.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str | None] = mapped_column(String(200))
    # The job's attempt that wrote it: after a worker loss, earlier attempts' rows stay as-is.
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
