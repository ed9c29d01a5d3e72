"""A tenant with one real object of every kind, for the route-wide tests (scope matrix, audit
coverage, schemathesis): ids from the caller's own org, so a 404 never hides what is tested."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Tenant, add_user

BASE_MODEL = "matrix-sd15"
CAPTIONER = "matrix-tags"


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (seed % 256, (seed * 7) % 256, 90)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class World:
    ids: dict[str, str]  # path parameter name -> a real id of the tenant's org
    finalizable_job_id: str
    failed_job_id: str
    queued_job_id: str


def quiet_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reaches the shared broker: tasks queued here would be run by other tests'
    workers (training a job on a base model that is not real, say)."""
    from app.integrations import webhooks
    from app.jobs import dispatch
    from app.library import cleanup

    monkeypatch.setattr(dispatch, "send", lambda ids: None)
    monkeypatch.setattr(webhooks, "send", lambda ids: None)
    monkeypatch.setattr(cleanup, "send_cleanup", lambda org_id, job_id: None)
    monkeypatch.setattr(cleanup, "send_model_cleanup", lambda org_id, model_id: None)


def ensure_base_model() -> None:
    from app.cli.seed import register_base_model, register_captioner
    from app.core.db import session_scope

    # Only creating a job reads it; nothing here trains, so the source need not exist.
    with session_scope() as db:
        register_base_model(db, BASE_MODEL, "/nonexistent/matrix-sd15", "sd15")
        register_captioner(db, CAPTIONER, "/nonexistent/matrix-tags", "tags")


def _job(org_id: str, status: str) -> str:
    from app.core.db import session_scope
    from app.models import TrainingJob

    with session_scope() as db:
        job = TrainingJob(org_id=org_id, name=f"{status} job", type="lora", architecture="sd15",
                          base_model=BASE_MODEL, config={"type": "lora"},
                          dataset_snapshot=[], status=status, total_steps=4)
        db.add(job)
        db.flush()
        return job.id


def _caption_job(org_id: str, dataset_id: str, item_id: str) -> str:
    """A queued caption job on the dataset, with a suggestion for the item (to accept)."""
    from app.core.db import session_scope
    from app.models import CaptionJob, CaptionSuggestion

    with session_scope() as db:
        job = CaptionJob(org_id=org_id, dataset_id=dataset_id, captioner=CAPTIONER,
                         mode="uncaptioned", style="tags", item_ids=[item_id], status="queued",
                         progress_total=1)
        db.add(job)
        db.flush()
        db.add(CaptionSuggestion(item_id=item_id, org_id=org_id, dataset_id=dataset_id,
                                 caption_job_id=job.id, text="1girl, solo", attempt=1))
        return job.id


def _delivery(org_id: str, webhook_id: str) -> str:
    from app.core.db import session_scope
    from app.models import WebhookDelivery

    with session_scope() as db:
        row = WebhookDelivery(org_id=org_id, endpoint_id=webhook_id, event="job.succeeded",
                              payload={"event": "job.succeeded"}, status="failed", attempts=3,
                              response_code=500)
        db.add(row)
        db.flush()
        return row.id


def build_world(client: TestClient, tenant: Tenant) -> World:
    """Every object kind a /v1 path can name, made in ``tenant``'s org."""
    from app.storage.factory import get_storage
    from tests.library.helpers import make_job

    ensure_base_model()
    auth = tenant.auth

    def call(method: str, url: str, **kwargs: object) -> dict:
        r = client.request(method, url, headers=auth, **kwargs)  # type: ignore[arg-type]
        assert r.status_code in (200, 201), (method, url, r.status_code, r.text)
        return r.json()

    dataset = call("POST", "/v1/datasets", json={"name": "world"})
    files = [("files", (f"{i}.png", png(secrets.randbelow(10_000)), "image/png"))
             for i in range(2)]
    items = call("POST", f"/v1/datasets/{dataset['id']}/items", files=files)["created"]
    webhook = call("POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    email, _ = add_user(tenant, "member")
    members = call("GET", "/v1/members")["items"]
    member = next(m for m in members if m["email"] == email)
    spare_key = call("POST", "/v1/api-keys", json={"name": "spare", "scopes": ["jobs:read"]})
    invitation = call("POST", "/v1/invitations", json={
        "email": f"invited-{secrets.token_hex(4)}@example.com", "role": "viewer"})

    storage = get_storage()
    model_job = make_job(storage, tenant.org_id, steps=[2, 4])
    models = call("POST", f"/v1/jobs/{model_job.job_id}/finalize", json={"steps": [4]})
    model_id = models["models"][0]["id"]
    link = call("POST", f"/v1/models/{model_id}/links", json={"name": "world"})
    finalizable = make_job(storage, tenant.org_id, steps=[2])
    ids = {
        "dataset_id": dataset["id"], "item_id": items[0]["id"], "job_id": model_job.job_id,
        "model_id": model_id, "link_id": link["id"], "filename": link["files"][0]["name"],
        "webhook_id": webhook["id"],
        "delivery_id": _delivery(tenant.org_id, webhook["id"]), "key_id": spare_key["id"],
        "member_id": member["id"], "invitation_id": invitation["id"],
        "token": invitation["url"].rsplit("/", 1)[-1],
        "caption_job_id": _caption_job(tenant.org_id, dataset["id"], items[0]["id"]),
    }
    return World(ids=ids, finalizable_job_id=finalizable.job_id,
                 failed_job_id=_job(tenant.org_id, "failed"),
                 queued_job_id=_job(tenant.org_id, "queued"))


def fill(path: str, ids: dict[str, str]) -> str:
    return path.format(**ids)
