"""Keep a job's resumable training state in storage, so any worker can resume it.

Layout: ``state/step-NNNNNN/<files>`` plus ``state/latest.json`` naming the complete one. The
pointer is written only after every file of the new state is uploaded, and older states are
deleted only after that, so a crash at any moment leaves one complete state to resume from.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.core.keys import training_state_prefix
from app.storage.base import Storage

POINTER = "latest.json"


def upload_state(storage: Storage, org_id: str, job_id: str, step: int, path: Path) -> None:
    prefix = training_state_prefix(org_id, job_id)
    step_prefix = f"{prefix}step-{step:06d}/"
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    for name in names:
        with (path / name).open("rb") as f:
            storage.put(step_prefix + name, f)
    storage.put(prefix + POINTER, json.dumps({"step": step, "files": names}).encode(),
                "application/json")
    stale = [o.key for o in storage.list(prefix)
             if not o.key.startswith(step_prefix) and not o.key.endswith(POINTER)]
    storage.delete_many(stale)


def restore_state(storage: Storage, org_id: str, job_id: str, target: Path) -> int | None:
    """Download the latest complete state into ``target``; returns its step, or None."""
    prefix = training_state_prefix(org_id, job_id)
    if storage.head(prefix + POINTER) is None:
        return None
    pointer = json.loads(storage.get(prefix + POINTER))
    target.mkdir(parents=True, exist_ok=True)
    for name in pointer["files"]:
        storage.download_to(f"{prefix}step-{pointer['step']:06d}/{name}", str(target / name))
    return int(pointer["step"])
