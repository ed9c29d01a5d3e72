"""Fixtures for job tests: a tiny base model and small datasets of real images."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Tenant

FAST = {"resolution": 64, "validation_inference_steps": 2, "num_validation_images": 1,
        "mixed_precision": "no", "seed": 7}


def job_body(dataset_id: str, base_model: str, *, type_: str = "lora", steps: int = 6,
             every: int = 3, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"test {type_}", "dataset_id": dataset_id, "type": type_,
        "base_model": base_model, "max_train_steps": steps, "save_every_n_steps": every,
        "validate_every_n_steps": every, "validation_prompts": ["a photo of zkw"],
        "advanced": dict(FAST),
    }
    if type_ in ("textual_inversion", "pivotal"):
        body["placeholder_token"] = "<zkw>"
        body["initial_phrase"] = "square"
    if type_ == "pivotal":
        body["caption_prefix"] = "<zkw>"
    body.update(extra)
    return body


@pytest.fixture(autouse=True)
def _isolated_queue(isolated_queue: None) -> None:
    """Every job test starts with an empty queue (see tests.conftest.park_active_jobs)."""


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_dataset(tenant: Tenant, n: int = 3, *, captions: bool = True, size: int = 64) -> str:
    """A dataset with ``n`` small images, written to storage and the database."""
    from app.core.db import session_scope
    from app.core.keys import dataset_prefix
    from app.models import Dataset, DatasetItem
    from app.storage.factory import get_storage

    storage = get_storage()
    with session_scope() as db:
        ds = Dataset(org_id=tenant.org_id, name=f"ds-{secrets.token_hex(2)}")
        db.add(ds)
        db.flush()
        for i in range(n):
            data = png((200, (40 * i) % 256, (30 + i) % 256), size)
            item = DatasetItem(org_id=tenant.org_id, dataset_id=ds.id, filename=f"{i}.png",
                               storage_key="", content_type="image/png",
                               sha256=hashlib.sha256(data).hexdigest(), width=size, height=size,
                               bytes=len(data), caption="a red square" if captions else None)
            db.add(item)
            db.flush()
            item.storage_key = f"{dataset_prefix(tenant.org_id, ds.id)}items/{item.id}.png"
            storage.put(item.storage_key, data, "image/png")
        return ds.id


ROOT = Path(__file__).resolve().parents[2]
