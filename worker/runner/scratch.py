"""Local scratch for a job: dataset images cached by sha256 (shared across jobs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from app.core.hashing import file_sha256
from app.storage.base import Storage
from worker.training.types import TrainingExample


def cached_file(storage: Storage, cache_dir: Path, key: str, sha256: str, suffix: str) -> Path:
    """The object at ``key``, downloaded once per content hash and verified."""
    target = cache_dir / sha256[:2] / f"{sha256}{suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.part")
    storage.download_to(key, str(temp))
    if file_sha256(temp) != sha256:
        temp.unlink(missing_ok=True)
        raise RuntimeError(f"dataset file {key} does not match its recorded sha256")
    temp.replace(target)  # atomic: concurrent jobs never see a half-written file
    return target


def fetch_snapshot(
    storage: Storage, cache_dir: Path, snapshot: list[dict[str, Any]]
) -> list[TrainingExample]:
    examples = []
    for item in snapshot:
        suffix = Path(item["storage_key"]).suffix
        path = cached_file(storage, cache_dir, item["storage_key"], item["sha256"], suffix)
        examples.append(TrainingExample(image_path=path, caption=item.get("caption")))
    return examples


def reset_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
