"""Device and precision choices."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from worker.training.common_config import CommonTrainingConfig


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def weight_dtype(config: CommonTrainingConfig, device: torch.device) -> torch.dtype:
    """Storage dtype of frozen weights: half precision only on a GPU."""
    if device.type != "cuda" or config.mixed_precision == "no":
        return torch.float32
    return torch.bfloat16 if config.mixed_precision == "bf16" else torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def enable_fast_math(device: torch.device) -> None:
    """TF32 matmuls on Ampere+ GPUs: free speed, no visible quality change for training."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


SMALL_MODEL_PARAMS = 5_000_000


def fit_cpu_threads(device: torch.device, unet: torch.nn.Module) -> None:
    """One CPU thread for a tiny model: its ops are so small that splitting them costs more
    than it gains, and on a shared host the threads' spin-waits made steps 10x slower
    (measured: 0.34-0.9 s vs 0.045 s per tiny-UNet forward on a loaded 2-core machine)."""
    if device.type == "cpu" and sum(p.numel() for p in unet.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)


COMPILE_ENV = "ATELIER_COMPILE_UNET"
"""Worker setting: `1` compiles the UNet with torch.compile on CUDA (pays on long runs only:
the first steps wait for the compiler)."""


def channels_last_pays(device: torch.device) -> bool:
    """NHWC weights and activations only on CUDA, where cuDNN runs the UNet's and the VAE's
    convolutions natively in it. On CPU it measured no faster and slower to start (this
    project's 2-core box, quiet, SD1.5 shapes at 256 px, batch 2, rank-16 LoRA: UNet
    forward+backward 9.1-9.6 s contiguous vs 8.7-10.4 s NHWC, VAE encode of 2 images 4.9-5.3 s
    vs 5.1-6.4 s, and NHWC's first UNet forward ~5 s longer); see bench/README.md."""
    return device.type == "cuda"


def use_channels_last(device: torch.device, *modules: torch.nn.Module) -> None:
    """Re-lay the modules' weights in NHWC where that pays. Same maths, another layout."""
    if channels_last_pays(device):
        for module in modules:
            module.to(memory_format=torch.channels_last)


def as_channels_last(images: torch.Tensor) -> torch.Tensor:
    """A 4-D batch in the layout the module weights use (see ``channels_last_pays``)."""
    if images.dim() == 4 and channels_last_pays(images.device):
        return images.contiguous(memory_format=torch.channels_last)
    return images


def compile_requested(device: torch.device) -> bool:
    """torch.compile only where it is asked for and pays: on CUDA (CPU compiles take minutes)."""
    return device.type == "cuda" and os.environ.get(COMPILE_ENV, "") == "1"
