from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, org_fk

JOB_STATUSES = (
    "queued", "running", "succeeded", "finalized", "cancelling", "cancelled", "failed",
)
JOB_TYPES = ("lora", "dora", "textual_inversion", "pivotal")


class BaseModel(IdMixin, Base):
    """A base checkpoint jobs train on; org_id NULL means offered to every org."""

    __tablename__ = "base_models"

    org_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    architecture: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(1024))
    # Native training size in pixels: job defaults take it, sizes far above it are refused.
    resolution: Mapped[int] = mapped_column(Integer, default=512)


class TrainingJob(IdMixin, Base):
    __tablename__ = "training_jobs"
    # Lists page an org's jobs by id (cursor); queue positions count queued jobs by id.
    __table_args__ = (Index("ix_training_jobs_org_id_id", "org_id", "id"),
                      Index("ix_training_jobs_status_id", "status", "id"))

    org_id: Mapped[str] = org_fk()
    dataset_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(8))
    base_model: Mapped[str] = mapped_column(String(100))
    template: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset_snapshot: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float)
    images_per_second: Mapped[float | None] = mapped_column(Float)
    # What a running job is doing (worker/training/callbacks.py PHASES) and how far, n of N.
    phase: Mapped[str | None] = mapped_column(String(32))
    phase_done: Mapped[int | None] = mapped_column(Integer)
    phase_total: Mapped[int | None] = mapped_column(Integer)
    # How long the last validation took: the ETA counts the validations still to come.
    validation_seconds: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_of_id: Mapped[str | None] = mapped_column(String(32))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    resume_step: Mapped[int | None] = mapped_column(Integer)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # GPU seconds set aside at start for the expected run (app/integrations/quotas.py).
    gpu_seconds_reserved: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobMetric(Base):
    __tablename__ = "job_metrics"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    loss: Mapped[float] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)


class JobLogLine(Base):
    __tablename__ = "job_log_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    message: Mapped[str] = mapped_column(Text)


class Checkpoint(IdMixin, Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step"),)

    org_id: Mapped[str] = org_fk()
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[int] = mapped_column(Integer)
    # [{"name", "key", "bytes", "sha256"}]
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    bytes: Mapped[int] = mapped_column(BigInteger)


class ValidationImage(IdMixin, Base):
    __tablename__ = "validation_images"
    __table_args__ = (UniqueConstraint("job_id", "step", "prompt_index", "image_index"),)

    org_id: Mapped[str] = org_fk()
    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[int] = mapped_column(Integer)
    prompt_index: Mapped[int] = mapped_column(Integer)
    image_index: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(BigInteger)
