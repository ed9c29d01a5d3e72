"""Device and precision choice shared by the captioners."""

from __future__ import annotations

import torch

from worker.captioning.types import CaptionerLoadError


def pick_device(device: str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise CaptionerLoadError(f"unknown device {device!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise CaptionerLoadError(f"device {device} was asked for but CUDA is not available")
    return chosen


def inference_dtype(device: torch.device) -> torch.dtype:
    """Half precision on GPUs (bf16 where supported: no fp16 overflow), fp32 on the CPU."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
