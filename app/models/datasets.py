from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, IdMixin, org_fk, utcnow

if TYPE_CHECKING:
    from app.models.captioning import CaptionSuggestion


class Dataset(IdMixin, Base):
    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_org_id_id", "org_id", "id"),)  # the list's cursor

    org_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DatasetItem(IdMixin, Base):
    __tablename__ = "dataset_items"
    __table_args__ = (UniqueConstraint("dataset_id", "sha256"),)

    org_id: Mapped[str] = org_fk()
    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(512))
    thumbnail_key: Mapped[str | None] = mapped_column(String(512))
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    caption: Mapped[str | None] = mapped_column(Text)
    # Loaded with every item (one IN query per batch), so item responses carry it for free;
    # setting it to None deletes the row (accept, discard).
    suggestion: Mapped[CaptionSuggestion | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True)


class PendingUpload(IdMixin, Base):
    """A presigned direct-to-storage upload awaiting its `complete` call."""

    __tablename__ = "pending_uploads"

    org_id: Mapped[str] = org_fk()
    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    declared_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime]
