"""Helpers for end-to-end job tests against a real worker process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def wait_for(client: TestClient, tenant: Tenant, job_id: str,
             until: Callable[[dict[str, Any]], bool], timeout_s: float = 240,
             poll_s: float = 0.5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=tenant.auth).json()
        if until(job):
            return job
        if job["status"] == "failed":
            logs = client.get(f"/v1/jobs/{job_id}/logs", headers=tenant.auth).text
            raise AssertionError(f"job failed: {job['error']}\n{logs[-3000:]}")
        time.sleep(poll_s)
    raise TimeoutError(f"job {job_id} still {job.get('status')} at step "
                       f"{job.get('progress', {}).get('step')} after {timeout_s}s")


def read_events(client: TestClient, tenant: Tenant, job_id: str, timeout_s: float) -> list[str]:
    """The event names of a job's SSE stream, read until the server ends it (job over)."""
    events: list[str] = []

    def read() -> None:
        with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=tenant.auth) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))

    # In a thread: a stream that never ends must fail the test, not hang the suite.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert not reader.is_alive(), f"event stream still open after {timeout_s}s: {events}"
    return events


def ended(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda job: job["status"] == status
