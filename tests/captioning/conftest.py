"""Fixtures for captioning tests: tiny captioners of both kinds and small datasets."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.jobs.conftest import make_dataset

__all__ = ["make_dataset", "dataset_with", "create_job", "suggest", "items_of"]


@pytest.fixture(scope="session")
def tiny_captioners(service_env: dict[str, str],
                    tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """kind -> key of a tiny random captioner built once per session (real architectures)."""
    from app.cli.seed import build_tiny_captioner
    from app.core.db import session_scope

    root = tmp_path_factory.mktemp("captioners")
    keys = {}
    with session_scope() as db:
        for kind in ("sentence", "tags"):
            key = f"tiny-{kind}-{secrets.token_hex(3)}"
            build_tiny_captioner(db, key, kind, root)
            keys[kind] = key
    return keys


@pytest.fixture()
def registered(service_env: dict[str, str]) -> dict[str, str]:
    """kind -> key of registered captioners whose files are never loaded (API tests)."""
    from app.cli.seed import register_captioner
    from app.core.db import session_scope

    keys = {}
    with session_scope() as db:
        for kind in ("sentence", "tags"):
            key = f"api-{kind}-{secrets.token_hex(3)}"
            register_captioner(db, key, f"/nonexistent/{key}", kind)
            keys[kind] = key
    return keys


@pytest.fixture(autouse=True)
def _isolated_queue(isolated_queue: None) -> None:
    """Every captioning test starts with an empty GPU queue (tests.conftest.park_active_jobs)."""


def dataset_with(tenant: Tenant, captions: list[str | None]) -> tuple[str, list[str]]:
    """A dataset of len(captions) images with those captions; returns (id, item ids)."""
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import DatasetItem

    dataset_id = make_dataset(tenant, len(captions), captions=False)
    with session_scope() as db:
        items = list(db.scalars(select(DatasetItem).where(DatasetItem.dataset_id == dataset_id)
                                .order_by(DatasetItem.id)))
        for item, caption in zip(items, captions, strict=True):
            item.caption = caption
        return dataset_id, [i.id for i in items]


def create_job(client: TestClient, tenant: Tenant, dataset_id: str,
               **body: Any) -> dict[str, Any]:
    r = client.post(f"/v1/datasets/{dataset_id}/caption-jobs", json=body, headers=tenant.auth)
    assert r.status_code == 201, r.text
    return r.json()


def suggest(job_id: str, texts: dict[str, str]) -> None:
    """Suggestions as a worker writes them (for API tests that run no worker)."""
    from app.core.db import session_scope
    from app.models import CaptionJob, CaptionSuggestion

    with session_scope() as db:
        job = db.get(CaptionJob, job_id)
        assert job is not None
        for item_id, text in texts.items():
            db.add(CaptionSuggestion(item_id=item_id, org_id=job.org_id,
                                     dataset_id=job.dataset_id, caption_job_id=job_id,
                                     text=text, prefix=job.prefix, attempt=1))


def items_of(client: TestClient, tenant: Tenant, dataset_id: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/v1/datasets/{dataset_id}/items?limit=200", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return {i["id"]: i for i in r.json()["items"]}
