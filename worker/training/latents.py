"""VAE encoding, and the latent cache used when crops are deterministic."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from worker.training.runtime import as_channels_last


class LatentEncoder:
    """Turns pixels into scaled latents; can cache the VAE's distribution per image."""

    def __init__(self, vae: AutoencoderKL, device: torch.device, dtype: torch.dtype) -> None:
        self.vae = vae
        self.device = device
        self.dtype = dtype
        self.scaling_factor = float(vae.config.scaling_factor)
        shift = getattr(vae.config, "shift_factor", None)
        self.shift_factor = float(shift) if shift is not None else 0.0
        self._cache: dict[tuple[int, bool], torch.Tensor] = {}

    @torch.no_grad()
    def distribution(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VAE posterior's parameters (mean and log-variance stacked on channels)."""
        pixels = as_channels_last(pixels.to(self.device, self.vae.dtype, non_blocking=True))
        return self.vae.encode(pixels).latent_dist.parameters.to(self.dtype)

    def sample(self, parameters: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw latents from stored posterior parameters, scaled for the UNet."""
        latents = DiagonalGaussianDistribution(parameters.float()).sample(generator=generator)
        return ((latents - self.shift_factor) * self.scaling_factor).to(self.dtype)

    def store(self, key: tuple[int, bool], parameters: torch.Tensor) -> None:
        self._cache[key] = parameters

    def cached(self, key: tuple[int, bool]) -> torch.Tensor | None:
        return self._cache.get(key)

    def cache_size(self) -> int:
        return len(self._cache)
