"""A job's whole life reaches a loopback receiver as signed events: started, succeeded,
finalized (and cancelled), with the first delivery retried after a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.integrations.signing import verify
from tests.conftest import Tenant
from tests.integrations.conftest import WORKER_ENV, Receiver, wait_for
from tests.jobs.conftest import job_body, make_dataset
from tests.jobs.flow import ended
from tests.jobs.flow import wait_for as wait_for_job
from tests.processes import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_queue")]


def test_job_life_events_are_signed_and_delivered(
    client: TestClient, tenant: Tenant, receiver: Receiver, tiny_base_model: str,
    service_env: dict[str, str],
) -> None:
    path = f"/fail/1/life-{tenant.org_id}"
    hook = client.post("/v1/webhooks", json={"url": receiver.base_url + path},
                       headers=tenant.auth).json()
    ds = make_dataset(tenant, 2)
    with celery_worker({**service_env, **WORKER_ENV}):
        job = client.post("/v1/jobs", json=job_body(ds, tiny_base_model, steps=2, every=2,
                                                    caption_prefix="zkw"),
                          headers=tenant.auth).json()
        wait_for_job(client, tenant, job["id"], ended("succeeded"))
        r = client.post(f"/v1/jobs/{job['id']}/finalize", json={"steps": [2]},
                        headers=tenant.auth)
        assert r.status_code == 200, r.text
        queued = client.post("/v1/jobs", json=job_body(ds, tiny_base_model, steps=400,
                                                       caption_prefix="zkw"),
                             headers={**tenant.auth}).json()
        client.post(f"/v1/jobs/{queued['id']}/cancel", headers=tenant.auth)

        def delivered() -> list[str] | None:
            ok = [json.loads(x.body) for x in receiver.to(path)
                  if verify(hook["secret"], x.headers["Atelier-Signature"], x.body)]
            types = [e["type"] for e in ok]
            wanted = {"job.started", "job.succeeded", "job.finalized", "job.cancelled"}
            # The 500'd first request is recorded too: also wait for its retry to arrive.
            retried = receiver.seen[path] > len(set(types))
            return types if wanted <= set(types) and retried else None

        types = wait_for(delivered, timeout_s=60, what="job life events")
    assert types.index("job.started") < types.index("job.succeeded") < types.index(
        "job.finalized")
    assert receiver.seen[path] > len(set(types)), "the first delivery (a 500) was retried"
