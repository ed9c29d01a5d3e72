"""Diffusion-loss helpers: noise (with offset), timesteps, min-SNR weighting."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler


def step_generator(seed: int, step: int, micro_step: int, device: torch.device) -> torch.Generator:
    """A generator seeded by (seed, step, micro-step): resumable without saving its state."""
    generator = torch.Generator(device=device)
    generator.manual_seed((seed * 1_000_003 + step * 1_009 + micro_step) % (2**63 - 1))
    return generator


def sample_noise(
    latents: torch.Tensor, generator: torch.Generator, noise_offset: float
) -> torch.Tensor:
    """Gaussian noise; a per-channel offset lets the model learn overall brightness."""
    noise = torch.randn(
        latents.shape, generator=generator, device=latents.device, dtype=latents.dtype
    )
    if noise_offset > 0:
        shape = (latents.shape[0], latents.shape[1], 1, 1)
        offset = torch.randn(shape, generator=generator, device=latents.device, dtype=latents.dtype)
        noise = noise + noise_offset * offset
    return noise


def sample_timesteps(
    batch_size: int, scheduler: DDPMScheduler, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    num = scheduler.config.num_train_timesteps
    return torch.randint(0, num, (batch_size,), generator=generator, device=device)


def training_target(
    scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the UNet should predict, per the scheduler's prediction type."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


def min_snr_weights(
    scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Per-sample loss weights min(SNR, gamma)/SNR (Hang et al. 2023); v-pred uses SNR+1."""
    alphas_cumprod = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    snr = alphas_cumprod / (1.0 - alphas_cumprod)
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1.0)
    return clipped / snr


def diffusion_loss(
    prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None
) -> torch.Tensor:
    """Mean-squared error per sample (in fp32), optionally weighted, averaged over the batch."""
    per_sample = (prediction.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
    if weights is not None:
        per_sample = per_sample * weights
    return per_sample.mean()
