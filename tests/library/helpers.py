"""Build finalizable jobs directly in the database and storage (no training needed)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import httpx
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.core.keys import (
    checkpoint_prefix,
    job_prefix,
    model_prefix,
    training_state_prefix,
    validation_key,
)
from app.models import Checkpoint, TrainingJob, ValidationImage
from app.storage.base import Storage

PROMPTS = ["a photo of sks", "sks in the snow"]
FILE_NAMES = {"lora": ["lora.safetensors"], "dora": ["lora.safetensors"],
              "textual_inversion": ["embedding.safetensors"],
              "pivotal": ["lora.safetensors", "embedding.safetensors"]}


@dataclass
class JobFixture:
    org_id: str
    job_id: str
    steps: list[int]
    # step -> {file name: bytes}
    files: dict[int, dict[str, bytes]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return job_prefix(self.org_id, self.job_id)


def keys_under(storage: Storage, prefix: str) -> list[str]:
    return [o.key for o in storage.list(prefix)]


def bytes_under(storage: Storage, prefix: str) -> int:
    return sum(o.size for o in storage.list(prefix))


def model_keys(storage: Storage, org_id: str, model_id: str) -> list[str]:
    prefix = model_prefix(org_id, model_id)
    return [k.removeprefix(prefix) for k in keys_under(storage, prefix)]


def make_job(
    storage: Storage, org_id: str, *, steps: list[int], type: str = "lora",
    status: str = "succeeded", state_file: bool = True, name: str = "Portraits",
    files: dict[int, dict[str, bytes]] | None = None, config: dict[str, object] | None = None,
) -> JobFixture:
    """A job with a checkpoint at each step, validation images for each step plus a step-0
    baseline, and (optionally) a resumable-state object that no row tracks."""
    if config is None:
        token = "<sks>" if type in ("textual_inversion", "pivotal") else None
        config = {"type": type, "caption_prefix": "sks person", "placeholder_token": token,
                  "max_train_steps": max(steps, default=0)}
    with session_scope() as db:
        job = TrainingJob(org_id=org_id, name=name, type=type, architecture="sd15",
                          base_model="tiny-sd15", config=config, dataset_snapshot=[],
                          status=status)
        db.add(job)
        db.flush()
        fx = JobFixture(org_id, job.id, steps)
        for step in steps:
            content = (files or {}).get(step) or {
                n: os.urandom(100 + step * 7 + i) for i, n in enumerate(FILE_NAMES[type])}
            fx.files[step] = content
            records = []
            for fname, data in content.items():
                key = checkpoint_prefix(org_id, job.id, step) + fname
                storage.put(key, data)
                records.append({"name": fname, "key": key, "bytes": len(data),
                                "sha256": hashlib.sha256(data).hexdigest()})
            db.add(Checkpoint(org_id=org_id, job_id=job.id, step=step, files=records,
                              bytes=sum(r["bytes"] for r in records)))
        for step in [0, *steps]:
            for p_index, prompt in enumerate(PROMPTS):
                key = validation_key(org_id, job.id, step, p_index, 0)
                data = os.urandom(50 + step + p_index)
                storage.put(key, data, "image/webp")
                db.add(ValidationImage(org_id=org_id, job_id=job.id, step=step,
                                       prompt_index=p_index, image_index=0, prompt=prompt,
                                       seed=1000 + p_index, storage_key=key, bytes=len(data)))
        if state_file:
            storage.put(training_state_prefix(org_id, job.id) + "trainable.safetensors",
                        os.urandom(64))
    return fx


def fetch(api: TestClient, url: str) -> bytes:
    """GET a presigned URL: local storage serves its URLs through the app, S3 URLs go to moto
    over HTTP."""
    r = api.get(url) if url.startswith("http://testserver/") else httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return r.content
