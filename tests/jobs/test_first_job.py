"""A newcomer's first job on the embedded tiny default: it finishes, and cancel works in the
phases before training (real Celery worker, real Redis, real PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.jobs.conftest import make_dataset
from tests.jobs.flow import ended, wait_for
from tests.processes import celery_worker

pytestmark = pytest.mark.slow
FIRST_JOB_GOAL_S = 120  # issue #13: the demo's first LoRA job from a template, under 2 minutes


def _in_phase(phase: str) -> Any:
    return lambda job: job["status"] == "running" and job["progress"]["phase"] == phase


def _cancel_within(client: TestClient, tenant: Tenant, job_id: str) -> tuple[dict[str, Any], float]:
    asked = time.monotonic()
    r = client.post(f"/v1/jobs/{job_id}/cancel", headers=tenant.auth)
    assert r.status_code == 200, r.text
    done = wait_for(client, tenant, job_id, ended("cancelled"), timeout_s=90, poll_s=0.2)
    return done, time.monotonic() - asked


def test_first_lora_job_from_a_template_finishes_in_time(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    # As a newcomer does it: photos bigger than the model, a template, no prompts typed in.
    ds = make_dataset(tenant, 10, size=512)
    body = {"name": "My first LoRA", "dataset_id": ds, "type": "lora",
            "base_model": tiny_base_model, "template": "sd15-lora-object"}
    with celery_worker(service_env, log_path=tmp_path / "worker.log"):
        created = time.monotonic()
        job = client.post("/v1/jobs", json=body, headers=tenant.auth).json()
        seen_phases: set[str] = set()

        def done(j: dict[str, Any]) -> bool:
            if j["progress"]["phase"]:
                seen_phases.add(j["progress"]["phase"])
            return j["status"] == "succeeded"

        finished = wait_for(client, tenant, job["id"], done, timeout_s=600, poll_s=0.3)
        took = time.monotonic() - created
    print(f"first LoRA job (sd15-lora-object, {finished['progress']['total_steps']} steps, "
          f"10 images) took {took:.1f}s, GPU time {finished['gpu_seconds']:.1f}s")
    assert finished["config"]["resolution"] == 64
    assert took < FIRST_JOB_GOAL_S, f"the first job took {took:.0f}s (goal {FIRST_JOB_GOAL_S}s)"
    assert "training" in seen_phases and finished["progress"]["phase"] is None
    assert finished["gpu_seconds"] > 0
    ckpts = client.get(f"/v1/jobs/{job['id']}/checkpoints", headers=tenant.auth).json()
    assert ckpts[0]["step"] == 0 and ckpts[0]["validation_images"], "a step-0 row"
    assert all(c["validation_images"] for c in ckpts), "images at every checkpoint"
    assert ckpts[0]["validation_images"][0]["prompt"] == "sks object"


def test_cancel_while_rendering_step0_images(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
) -> None:
    ds = make_dataset(tenant, 2)
    body = {"name": "slow step 0", "dataset_id": ds, "type": "lora", "caption_prefix": "zkw",
            "base_model": tiny_base_model, "max_train_steps": 400,
            "validation_prompts": [f"zkw {i}" for i in range(16)],
            "advanced": {"num_validation_images": 8, "validation_inference_steps": 150,
                         "validate_every_n_steps": None, "resolution": 128}}
    with celery_worker(service_env):
        job = client.post("/v1/jobs", json=body, headers=tenant.auth).json()
        assert "id" in job, job
        seen = wait_for(client, tenant, job["id"], _in_phase("rendering_step0"), poll_s=0.2)
        assert seen["progress"]["phase_total"] == 128
        done, took = _cancel_within(client, tenant, job["id"])
    assert took < 30, f"cancel during step-0 rendering took {took:.1f}s"
    assert done["progress"]["step"] == 0
    logs = client.get(f"/v1/jobs/{job['id']}/logs", headers=tenant.auth).text
    assert "while rendering the step-0 images" in logs


def test_cancel_while_caching_latents(
    client: TestClient, tenant: Tenant, tiny_base_model: str, service_env: dict[str, str],
) -> None:
    # Many large photos with mirrors: caching takes long enough to cancel in the middle.
    ds = make_dataset(tenant, 150, size=1024)
    body = {"name": "slow caching", "dataset_id": ds, "type": "lora", "caption_prefix": "zkw",
            "base_model": tiny_base_model, "max_train_steps": 400,
            "advanced": {"random_flip": True, "resolution": 128}}
    with celery_worker(service_env):
        job = client.post("/v1/jobs", json=body, headers=tenant.auth).json()
        seen = wait_for(client, tenant, job["id"], _in_phase("caching_latents"), poll_s=0.1)
        assert seen["progress"]["phase_total"] == 300
        done, took = _cancel_within(client, tenant, job["id"])
    assert took < 30, f"cancel during latent caching took {took:.1f}s"
    assert done["progress"]["step"] == 0
    logs = client.get(f"/v1/jobs/{job['id']}/logs", headers=tenant.auth).text
    assert "while caching latents" in logs
