"""Tenant isolation over every route that takes an object id, including routes added later.

Org A owns one object of every kind; org B's API key (with every scope) must get 404 on each
route and method that names one of them. A route with a path parameter this test does not know
fails the test, so new routes cannot skip the check.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def _world(tenant: Tenant) -> dict[str, str]:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import (
        ApiKey,
        CaptionJob,
        CaptionSuggestion,
        Checkpoint,
        Dataset,
        DatasetItem,
        Invitation,
        Membership,
        Model,
        ModelLink,
        TrainingJob,
        WebhookEndpoint,
    )

    org = tenant.org_id
    with session_scope() as db:
        ds = Dataset(org_id=org, name="secret")
        db.add(ds)
        db.flush()
        item = DatasetItem(org_id=org, dataset_id=ds.id, filename="a.png", storage_key="k",
                           content_type="image/png", sha256="0" * 64, width=8, height=8,
                           bytes=10, caption="x")
        job = TrainingJob(org_id=org, dataset_id=ds.id, name="j", type="lora",
                          architecture="sd15", base_model="tiny", config={},
                          dataset_snapshot=[], status="succeeded")
        db.add_all([item, job])
        db.flush()
        ckpt = Checkpoint(org_id=org, job_id=job.id, step=1, files=[], bytes=0)
        model = Model(org_id=org, name="m", type="lora", architecture="sd15", base_model="tiny",
                      step=1, job_id=job.id, files=[], bytes=0)
        hook = WebhookEndpoint(org_id=org, url="http://127.0.0.1:9/h", secret="s")
        invitation = Invitation(org_id=org, email="invitee@example.com", role="member",
                                token_hash=secrets.token_hex(32),
                                expires_at=datetime.now(UTC) + timedelta(days=1))
        # Ended, so its event stream ends at once; its suggestion is what accept/discard name.
        caption_job = CaptionJob(org_id=org, dataset_id=ds.id, captioner="tiny", mode="all",
                                 style="tags", item_ids=[item.id], status="succeeded",
                                 progress_total=1, progress_done=1)
        db.add_all([ckpt, model, hook, invitation, caption_job])
        db.flush()
        db.add(CaptionSuggestion(item_id=item.id, org_id=org, dataset_id=ds.id,
                                 caption_job_id=caption_job.id, text="secret", attempt=1))
        db.flush()
        link = ModelLink(org_id=org, model_id=model.id, token_hash=secrets.token_hex(32),
                         expires_at=datetime.now(UTC) + timedelta(days=1))
        db.add(link)
        db.flush()
        member = db.scalar(select(Membership).where(Membership.org_id == org))
        key = db.get(ApiKey, tenant.api_key_id)
        assert member is not None and key is not None
        return {
            "dataset_id": ds.id, "item_id": item.id, "job_id": job.id, "model_id": model.id,
            "webhook_id": hook.id, "member_id": member.id, "key_id": key.id,
            "delivery_id": "0" * 28, "upload_id": "0" * 28, "invitation_id": invitation.id,
            "link_id": link.id, "caption_job_id": caption_job.id,
        }


# The token in these paths is itself the credential (as for /storage links): whoever holds it
# may use it, whatever org they sign in to; tests/security/test_accounts_*.py and
# tests/library/test_model_links.py attack them.
TOKEN_ROUTES = {"/v1/invitations/{token}", "/v1/invitations/{token}/accept",
                "/v1/auth/password-reset/{token}", "/v1/model-links/{token}/{filename}"}


def _object_routes(client: TestClient) -> list[tuple[str, str, list[str]]]:
    # The OpenAPI document lists every public route (each must be documented anyway).
    paths = client.get("/openapi.json").json()["paths"]
    routes = []
    for path, operations in paths.items():
        params = re.findall(r"{(\w+)}", path)
        if path.startswith("/v1/") and params and path not in TOKEN_ROUTES:
            routes += [(method.upper(), path, params) for method in sorted(operations)]
    return routes


def test_other_org_gets_404_on_every_object_route(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    ids = _world(tenant)
    routes = _object_routes(client)
    assert routes, "no object routes found"
    failures = []
    for method, path, params in routes:
        unknown = [p for p in params if p not in ids]
        assert not unknown, f"{method} {path}: add {unknown} to this test's world"
        url = path.format(**{p: ids[p] for p in params})
        r = client.request(method, url, headers=other_tenant.auth, json={})
        if r.status_code != 404:
            failures.append(f"{method} {path} -> {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_owner_reaches_its_own_objects(client: TestClient, tenant: Tenant) -> None:
    """The same GET routes answer the owning org, so the 404s above mean isolation."""
    ids = _world(tenant)
    for method, path, params in _object_routes(client):
        if method != "GET" or "delivery_id" in params or "upload_id" in params:
            continue
        url = path.format(**{p: ids[p] for p in params})
        r = client.get(url, headers=tenant.auth)
        assert r.status_code != 404, f"GET {path} -> 404 for the owning org: {r.text[:200]}"
