"""Optimizer and learning-rate schedule construction."""

from __future__ import annotations

from typing import Any

import torch
from diffusers.optimization import get_scheduler

from worker.training.common_config import CommonTrainingConfig


def build_optimizer(
    groups: list[dict[str, Any]], config: CommonTrainingConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (fused on CUDA) or Prodigy over the given parameter groups."""
    if config.optimizer == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(
            groups,
            lr=1.0,
            weight_decay=config.weight_decay,
            use_bias_correction=True,
            safeguard_warmup=config.lr_warmup_steps > 0,
        )
    return torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=config.weight_decay,
        fused=device.type == "cuda",
    )


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, config: CommonTrainingConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    return get_scheduler(
        config.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps,
        num_training_steps=config.max_train_steps,
    )
