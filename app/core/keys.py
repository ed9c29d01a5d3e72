"""Storage key layout (DESIGN.md "Storage keys"), in one place."""

from __future__ import annotations


def dataset_prefix(org_id: str, dataset_id: str) -> str:
    return f"orgs/{org_id}/datasets/{dataset_id}/"


def job_prefix(org_id: str, job_id: str) -> str:
    return f"orgs/{org_id}/jobs/{job_id}/"


def checkpoint_prefix(org_id: str, job_id: str, step: int) -> str:
    return f"{job_prefix(org_id, job_id)}checkpoints/step-{step:06d}/"


def validation_key(org_id: str, job_id: str, step: int, prompt_index: int, index: int) -> str:
    return f"{job_prefix(org_id, job_id)}validation/step-{step:06d}/p{prompt_index}-{index}.webp"


def training_state_prefix(org_id: str, job_id: str) -> str:
    """The latest resumable state of a job (replaced as training goes on)."""
    return f"{job_prefix(org_id, job_id)}state/"


def model_prefix(org_id: str, model_id: str) -> str:
    return f"orgs/{org_id}/models/{model_id}/"
