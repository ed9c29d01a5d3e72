"""Tenants read a failed job's summary and an error id, never the worker's traceback, paths,
storage keys or host names; the worker's own log has the traceback under the same id.

The end-to-end test runs a real Celery worker on its own Redis database (so no other test
session's worker takes its messages) against the session's PostgreSQL database.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import REDIS_URL, Tenant
from tests.jobs.conftest import job_body
from tests.processes import celery_worker
from worker.runner.error_report import scrub, summary

ERROR_ID = re.compile(r"\(error id ([0-9a-f]{12})\)")
# A path in tenant text: a slash that starts a word ("1/2" and "<path>" are fine).
PATH = re.compile(r"(?:^|[\s'\"(\[=:,])~?/[\w.-]")

SCRUBBED = [
    ("[Errno 2] No such file or directory: '/srv/atelier/models/sd15/model_index.json'",
     "[Errno 2] No such file or directory: '<path>'"),
    ("dataset file orgs/01a/datasets/02b/items/03c.png does not match its recorded sha256",
     "dataset file <storage key> does not match its recorded sha256"),
    ("NoSuchKey: bucket/prefix/orgs/01a/jobs/02b/checkpoints/step-000004/x.safetensors",
     "NoSuchKey: <storage key>"),
    ("Error 111 connecting to redis-internal:6379. Connection refused.",
     "Error 111 connecting to <host>. Connection refused."),
    ("could not connect to postgresql+psycopg://atelier:pw@db.internal:5432/atelier",
     "could not connect to <url>"),
    ("GET https://minio:9000/atelier/orgs/1/x?X-Amz-Signature=abc failed",
     "GET <url> failed"),
    ("upstream 10.0.3.7 and fe80::1%eth0 and 2001:db8:0:0:1:0:0:1 unreachable",
     "upstream <address> and <address> and <address> unreachable"),
    ("cannot open C:\\models\\x.bin, ~/models/y or ../../etc/passwd",
     "cannot open <path>, <path> or <path>"),
    ("loading base model /opt/models/tiny (sd15)", "loading base model <path> (sd15)"),
]
UNTOUCHED = ["checkpoint saved at step 4 (0.12 MB)", "trained 6 steps in 3.1s",
             "resuming from the training state saved at step 3",
             "a photo of zkw, 1/2 done at 12:30:45, lr 1e-4, ratio 16:9",
             "KeyError: 'unet.down_blocks.0.attentions'"]


@pytest.mark.parametrize(("raw", "clean"), SCRUBBED)
def test_scrub_replaces_internals_with_placeholders(raw: str, clean: str) -> None:
    assert scrub(raw) == clean


@pytest.mark.parametrize("line", UNTOUCHED)
def test_scrub_keeps_ordinary_lines(line: str) -> None:
    assert scrub(line) == line


def test_scrub_hides_this_machines_name() -> None:
    name = "worker-gpu-17.cluster.internal"
    text = f"lost connection to {name} while saving"
    from worker.runner import error_report

    error_report._machine_names.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket, "gethostname", lambda: name)
            assert scrub(text) == "lost connection to <host> while saving"
    finally:
        error_report._machine_names.cache_clear()


def test_summary_is_one_short_line_without_paths() -> None:
    exc = FileNotFoundError(2, "No such file or directory", "/srv/x/orgs/1/items/2.png")
    assert summary(exc) == "FileNotFoundError: [Errno 2] No such file or directory: '<path>'"
    long = summary(RuntimeError("line one\nline two " + "x" * 1000))
    assert "\n" not in long and len(long) <= 300 and long.startswith("RuntimeError: line one")


# --- end to end ------------------------------------------------------------------------------

@pytest.fixture()
def own_broker(service_env: dict[str, str], isolated_queue: None,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The worker's environment: a Redis database of its own as the broker. This process sends
    nothing (its Celery client stays on the shared broker); the worker's own reconciler (beat,
    every second) dispatches the queued jobs."""
    from app.jobs import dispatch

    url = REDIS_URL.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setattr(dispatch, "dispatch_soon", lambda: None)
    return {**service_env, "ATELIER_BROKER_URL": url, "ATELIER_RECONCILE_INTERVAL_S": "1"}


def _unique_dataset(tenant: Tenant, n: int = 2) -> tuple[str, list[str]]:
    """Images no other test has (the worker caches by content hash): (dataset id, keys)."""
    from app.core.db import session_scope
    from app.core.keys import dataset_prefix
    from app.models import Dataset, DatasetItem
    from app.storage.factory import get_storage

    keys = []
    with session_scope() as db:
        ds = Dataset(org_id=tenant.org_id, name=f"ds-{secrets.token_hex(2)}")
        db.add(ds)
        db.flush()
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", (64, 64), tuple(secrets.token_bytes(3))).save(buf, format="PNG")
            data = buf.getvalue()
            item = DatasetItem(org_id=tenant.org_id, dataset_id=ds.id, filename=f"{i}.png",
                               storage_key="", content_type="image/png",
                               sha256=hashlib.sha256(data).hexdigest(), width=64, height=64,
                               bytes=len(data), caption="a square")
            db.add(item)
            db.flush()
            item.storage_key = f"{dataset_prefix(tenant.org_id, ds.id)}items/{item.id}.png"
            get_storage().put(item.storage_key, data, "image/png")
            keys.append(item.storage_key)
        return ds.id, keys


def _ended(client: TestClient, tenant: Tenant, job_id: str, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=tenant.auth).json()
        if job["status"] in ("failed", "succeeded", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end in {timeout_s}s")


def _assert_tenant_safe(text: str, *internals: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text
    assert not PATH.search(text), text
    assert "orgs/" not in text, text
    assert f"{socket.gethostname()}:" not in text, text
    for internal in internals:
        assert internal not in text, (internal, text)


@pytest.mark.slow
def test_failed_jobs_show_a_summary_and_an_error_id_only(
    client: TestClient, tenant: Tenant, own_broker: dict[str, str], tmp_path: Path,
) -> None:
    from app.cli.seed import register_base_model
    from app.core.db import session_scope
    from app.storage.factory import get_storage

    # 1. the base model's folder is deleted before the job runs
    model_dir = tmp_path / "base-models" / f"gone-{secrets.token_hex(3)}"
    model_dir.mkdir(parents=True)
    with session_scope() as db:
        register_base_model(db, model_dir.name, str(model_dir), "sd15")
    model_dir.rmdir()
    ds, _ = _unique_dataset(tenant)
    no_model = client.post("/v1/jobs", json=job_body(ds, model_dir.name), headers=tenant.auth)
    assert no_model.status_code == 201, no_model.text
    # 2. the dataset's files are deleted from storage after the job froze its snapshot
    ds2, keys = _unique_dataset(tenant)
    no_data = client.post("/v1/jobs", json=job_body(ds2, model_dir.name), headers=tenant.auth)
    assert no_data.status_code == 201, no_data.text
    for key in keys:
        get_storage().delete(key)

    log_path = tmp_path / "worker.log"
    with celery_worker(own_broker, log_path=log_path, beat_schedule=tmp_path / "beat"):
        jobs = [_ended(client, tenant, r.json()["id"]) for r in (no_model, no_data)]
    worker_log = log_path.read_text(errors="replace")
    internals = (str(tmp_path), model_dir.name + "/", own_broker["ATELIER_DATA_DIR"])

    for job in jobs:
        assert job["status"] == "failed", job
        [error_id] = ERROR_ID.findall(job["error"])
        _assert_tenant_safe(job["error"], *internals)
        logs = client.get(f"/v1/jobs/{job['id']}/logs", headers=tenant.auth).text
        _assert_tenant_safe(logs, *internals)
        assert "training failed: " in logs and f"(error id {error_id})" in logs, logs
        with client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=tenant.auth) as r:
            events = "".join(r.iter_text())
        assert error_id in events
        _assert_tenant_safe(events, *internals)
        # the server's log: the traceback, under the same id
        at = worker_log.index(f"failed (error id {error_id})")
        assert "Traceback (most recent call last)" in worker_log[at:at + 20_000]
