"""Finalize: the chosen checkpoints of a job become library models; the rest is deleted.

Order matters for safety:
1. The job moves to ``finalized`` with one conditional UPDATE first. It takes the row lock, so
   of two concurrent calls exactly one gets past this line; the other waits, then fails.
2. The chosen files and previews are *copied* under each model's own prefix; the originals are
   not touched, so a failure here leaves the job as it was (the transaction rolls back).
3. Every checkpoint and validation-image row of the job is deleted in the same transaction as
   the models are created, so no row ever points at an object that is about to go.
4. After commit, a task deletes everything under the job's prefix (``app.library.cleanup``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.errors import AppError, Conflict
from app.core.ids import new_id
from app.core.keys import model_prefix
from app.jobs.notify import job_status_changed
from app.jobs.state import FINALIZABLE, transition
from app.library import naming
from app.library.cleanup import schedule_cleanup
from app.library.schemas import FinalizeIn
from app.models import Checkpoint, Model, TrainingJob, ValidationImage
from app.storage.base import ObjectNotFound, Storage, StorageError

log = logging.getLogger("atelier.finalize")

TOKEN_TYPES = ("textual_inversion", "pivotal")


class StorageUnavailable(AppError):
    status, title = 503, "Storage unavailable"


def trigger_of(job: TrainingJob) -> str | None:
    """What a prompt needs to use the model: the new token (TI, pivotal) or the caption
    prefix the LoRA was trained with."""
    key = "placeholder_token" if job.type in TOKEN_TYPES else "caption_prefix"
    value = (job.config or {}).get(key)
    return str(value) if value else None


def _claim_job(db: Session, job: TrainingJob) -> None:
    if not transition(db, job.id, FINALIZABLE, "finalized"):
        # Read the state again: it may have changed since the job was loaded.
        status = db.scalar(select(TrainingJob.status).where(TrainingJob.id == job.id))
        raise Conflict(
            f"Job '{job.id}' is {status}; only a succeeded job, or a cancelled one with "
            "checkpoints, can be finalized.",
            extra={"job_status": status},
        )


def _checkpoints(db: Session, job: TrainingJob, steps: Sequence[int]) -> dict[int, Checkpoint]:
    found = {c.step: c for c in db.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id))}
    missing = [s for s in steps if s not in found]
    if missing:
        available = ", ".join(str(s) for s in sorted(found)) or "none"
        raise Conflict(
            f"Job '{job.id}' has no checkpoint at step {', '.join(map(str, missing))}; "
            f"available steps: {available}.",
            extra={"available_steps": sorted(found)},
        )
    return found


def _names(db: Session, job: TrainingJob, body: FinalizeIn) -> list[str]:
    """One name per kept step: the caller's (a clash with the library is a 409), else
    '<job name> · step N', made unique with ' (2)'... so a default never fails."""
    given = body.given_names()
    clash = naming.taken(db, job.org_id, given.values())
    if clash:
        raise naming.name_clash(sorted(clash))
    defaults = {s: f"{job.name} · step {s}" for s in body.steps if s not in given}
    used = naming.taken(db, job.org_id, defaults.values()) | set(given.values())
    names: list[str] = []
    for step in body.steps:
        if step in given:
            names.append(given[step])
        else:
            names.append(naming.free_name(defaults[step], used))
            used.add(names[-1])
    return names


class _Copier:
    """Copies objects and remembers what it wrote, to undo it if finalize fails."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.written: list[str] = []

    def copy(self, src: str, dst: str, step: int) -> None:
        try:
            self.storage.copy(src, dst)
        except ObjectNotFound as exc:
            raise Conflict(f"A file of the checkpoint at step {step} is missing from storage "
                           f"({src}); choose another step.") from exc
        except StorageError as exc:
            raise StorageUnavailable(f"Storage failed while copying step {step}: {exc}") from exc
        self.written.append(dst)

    def undo(self) -> None:
        with contextlib.suppress(StorageError):
            self.storage.delete_many(self.written)


def _build_model(
    job: TrainingJob, ckpt: Checkpoint, images: list[ValidationImage], name: str,
    copier: _Copier,
) -> Model:
    model_id = new_id()
    prefix = model_prefix(job.org_id, model_id)
    files: list[dict[str, Any]] = []
    for f in ckpt.files:
        dst = f"{prefix}{f['name']}"
        copier.copy(f["key"], dst, ckpt.step)
        files.append({"name": f["name"], "key": dst, "bytes": int(f["bytes"]),
                      "sha256": f.get("sha256") or ""})
    previews: list[dict[str, Any]] = []
    for img in sorted(images, key=lambda i: (i.prompt_index, i.image_index)):
        dst = f"{prefix}previews/p{img.prompt_index}-{img.image_index}.webp"
        copier.copy(img.storage_key, dst, ckpt.step)
        previews.append({"key": dst, "prompt": img.prompt, "prompt_index": img.prompt_index,
                         "index": img.image_index, "seed": img.seed, "bytes": img.bytes})
    return Model(
        id=model_id, org_id=job.org_id, name=name, type=job.type,
        architecture=job.architecture, base_model=job.base_model, trigger=trigger_of(job),
        step=ckpt.step, job_id=job.id, dataset_id=job.dataset_id, config=job.config or {},
        files=files, preview_images=previews,
        # Everything under the model's prefix, so usage falls by exactly what is deleted.
        bytes=sum(f["bytes"] for f in files) + sum(p["bytes"] for p in previews),
    )


def finalize(db: Session, job: TrainingJob, body: FinalizeIn, storage: Storage) -> list[Model]:
    """Create one model per chosen step; returns them in the order of ``body.steps``."""
    _claim_job(db, job)
    checkpoints = _checkpoints(db, job, body.steps)
    images = list(db.scalars(select(ValidationImage).where(ValidationImage.job_id == job.id)))
    names = _names(db, job, body)
    copier = _Copier(storage)
    try:
        models = [
            _build_model(job, checkpoints[step], [i for i in images if i.step == step], name,
                         copier)
            for step, name in zip(body.steps, names, strict=True)
        ]
        db.add_all(models)
        # All of the job's rows go: the kept steps now live on as the models' own rows.
        db.execute(delete(ValidationImage).where(ValidationImage.job_id == job.id)
                   .execution_options(synchronize_session=False))
        db.execute(delete(Checkpoint).where(Checkpoint.job_id == job.id)
                   .execution_options(synchronize_session=False))
        db.flush()
    except BaseException:
        copier.undo()  # the transaction rolls back; leave no copies no row points at
        raise
    schedule_cleanup(db, job.org_id, job.id)
    job_status_changed(db, job, "finalized")  # the job.finalized webhook
    log.info("job %s finalized: steps %s -> models %s", job.id, body.steps,
             [m.id for m in models])
    return models
