"""Resumable training state, written atomically (temp dir, then rename).

`output_dir/state/` holds: trainable.safetensors (adapter/embedding tensors), optimizer.pt,
scheduler.pt, rng.pt and meta.json (step). A run killed at any moment finds either the previous
complete state or the new one, never a half-written directory.
"""

from __future__ import annotations

import json
import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_DIR = "state"
_OLD_DIR = ".state-old"


@dataclass
class SavedState:
    step: int
    trainable: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    grad_scaler: dict[str, Any] | None
    rng: dict[str, Any]


def _rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    output_dir: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    grad_scaler: torch.amp.GradScaler | None,
) -> Path:
    """Write the state of `step` to `output_dir/state/` atomically; returns that path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    temp = output_dir / f".state-tmp-{uuid.uuid4().hex}"
    temp.mkdir()
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in trainable.items()},
        str(temp / "trainable.safetensors"),
    )
    torch.save(optimizer.state_dict(), temp / "optimizer.pt")
    torch.save(scheduler.state_dict(), temp / "scheduler.pt")
    if grad_scaler is not None:
        torch.save(grad_scaler.state_dict(), temp / "grad_scaler.pt")
    torch.save(_rng_state(), temp / "rng.pt")
    (temp / "meta.json").write_text(json.dumps({"step": step}))
    final = output_dir / STATE_DIR
    old = output_dir / _OLD_DIR
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    temp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _recover(output_dir: Path) -> Path | None:
    """The complete state dir, repairing a crash between the two renames."""
    final = output_dir / STATE_DIR
    old = output_dir / _OLD_DIR
    if not (final / "meta.json").exists() and (old / "meta.json").exists():
        shutil.rmtree(final, ignore_errors=True)
        old.rename(final)
    for leftover in output_dir.glob(".state-tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return final if (final / "meta.json").exists() else None


def load_training_state(output_dir: Path, device: torch.device) -> SavedState | None:
    """The saved state in `output_dir/state/`, or None for a fresh run."""
    if not output_dir.exists():
        return None
    directory = _recover(output_dir)
    if directory is None:
        return None
    meta = json.loads((directory / "meta.json").read_text())
    scaler_path = directory / "grad_scaler.pt"
    return SavedState(
        step=int(meta["step"]),
        trainable=load_file(str(directory / "trainable.safetensors"), device=str(device)),
        optimizer=torch.load(directory / "optimizer.pt", map_location=device, weights_only=True),
        scheduler=torch.load(directory / "scheduler.pt", weights_only=True),
        grad_scaler=torch.load(scaler_path, weights_only=True) if scaler_path.exists() else None,
        rng=torch.load(directory / "rng.pt", weights_only=True),
    )


def restore_rng(state: SavedState) -> None:
    _restore_rng(state.rng)
