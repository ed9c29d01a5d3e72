"""The model library: render, list, rename, delete, download."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.orm import Session

from app.core.after_commit import defer
from app.core.errors import Conflict, NotFound
from app.core.keys import model_prefix
from app.library.naming import download_name, file_entry, name_clash, taken
from app.library.schemas import ModelOut
from app.models import Model
from app.storage.base import Storage, StorageError

log = logging.getLogger("atelier.library")

URL_TTL_S = 3600
"""Lifetime of the file and preview URLs in a model body (the dashboard shows previews)."""
DOWNLOAD_TTL_S = 300
"""Lifetime of the URL ``/download`` redirects to: long enough to start, short enough to leak
little if it is shared."""


def model_fields(model: Model | Row[Any], storage: Storage) -> dict[str, Any]:
    """``ModelOut``'s fields as plain values, for a model object or a plain row (list pages
    write these with orjson, as jobs do: see app.jobs.rendering.job_fields)."""
    files = []
    for f in model.files:
        name = download_name(model, f["name"])  # type: ignore[arg-type]
        files.append({"name": f["name"], "download_name": name, "bytes": int(f["bytes"]),
                      "sha256": f.get("sha256") or "",
                      "url": storage.presign_get(f["key"], URL_TTL_S, filename=name)})
    previews = [{"url": storage.presign_get(p["key"], URL_TTL_S), "prompt": p["prompt"],
                 "prompt_index": int(p["prompt_index"]), "index": int(p["index"]),
                 "seed": int(p["seed"])} for p in model.preview_images]
    return {
        "id": model.id, "name": model.name, "type": model.type,
        "architecture": model.architecture, "base_model": model.base_model,
        "trigger": model.trigger, "step": model.step, "job_id": model.job_id,
        "dataset_id": model.dataset_id, "bytes": sum(f["bytes"] for f in files),
        "storage_bytes": model.bytes, "files": files, "preview_images": previews,
        "config": model.config or {}, "created_at": model.created_at,
    }


def render(model: Model, storage: Storage) -> ModelOut:
    return ModelOut.model_validate(model_fields(model, storage))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(
    stmt: Select[Any], *, type: str | None, architecture: str | None, q: str | None
) -> Select[Any]:
    """Apply the list filters; only these allow-listed fields can be filtered on."""
    if type:
        stmt = stmt.where(Model.type == type)
    if architecture:
        stmt = stmt.where(Model.architecture == architecture)
    if q and q.strip():
        stmt = stmt.where(Model.name.ilike(f"%{_escape_like(q.strip())}%", escape="\\"))
    return stmt


def download_url(model: Model, storage: Storage, file: str | None) -> str:
    if not model.files:
        # 409, not 404: the model exists (a 404 would read as "no such model").
        raise Conflict("This model has no files to download.")
    if file is None:
        chosen = model.files[0]  # the primary file (the LoRA of a pivotal model)
    else:
        found = file_entry(model, file)
        if found is None:
            names = ", ".join(f["name"] for f in model.files)
            raise NotFound(f"Model '{model.id}' has no file '{file}'; its files: {names}.")
        chosen = found
    return storage.presign_get(chosen["key"], DOWNLOAD_TTL_S,
                               filename=download_name(model, chosen["name"]))


def rename(db: Session, model: Model, name: str) -> None:
    """Rename within the org's unique names: another model's name is a 409."""
    if name != model.name and taken(db, model.org_id, [name], exclude=model.id):
        raise name_clash([name])
    model.name = name


def delete_prefix(storage: Storage, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many there were."""
    keys = [o.key for o in storage.list(prefix)]
    if keys:
        storage.delete_many(keys)
    return len(keys)


def delete_model(db: Session, model: Model, storage: Storage) -> None:
    """Delete the row now and its files once the deletion has committed.

    The files go after commit so a rolled-back request never loses them; a storage failure then
    leaves orphans under a prefix no row points at, retried by the cleanup task.
    """
    org_id, model_id = model.org_id, model.id
    db.delete(model)

    def remove_files() -> None:
        try:
            delete_prefix(storage, model_prefix(org_id, model_id))
        except StorageError:
            log.warning("deleting files of model %s failed; handing over to the worker", model_id)
            from app.library.cleanup import send_model_cleanup

            send_model_cleanup(org_id, model_id)

    defer(db, remove_files)
