"""The loss of one batch: latents (cached or encoded), conditioning, noise, UNet, min-SNR."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from worker.training.common_config import CommonTrainingConfig
from worker.training.data import PreparedImage, Sample, TrainingData
from worker.training.latents import LatentEncoder
from worker.training.model_loading import BaseModelParts
from worker.training.noise import (
    diffusion_loss,
    min_snr_weights,
    sample_noise,
    sample_timesteps,
    training_target,
)
from worker.training.runtime import as_channels_last
from worker.training.text_encoding import PromptEncoder

LATENT_CACHE_BATCH = 8


@dataclass
class StepContext:
    """Everything a step needs, built once per run."""

    config: CommonTrainingConfig
    parts: BaseModelParts
    data: TrainingData
    latents: LatentEncoder
    prompts: PromptEncoder
    device: torch.device
    dtype: torch.dtype
    use_latent_cache: bool
    # SDXL size conditioning of cached images, by (index, flipped).
    image_meta: dict[tuple[int, bool], tuple[tuple[int, int], tuple[int, int]]] = field(
        default_factory=dict
    )

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.dtype)
        return contextlib.nullcontext()


def precompute_latents(
    ctx: StepContext,
    log: Callable[[str], None],
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> bool:
    """Encode every image (and its mirror when flipping) once, batched by bucket.

    Returns False when `should_stop` asked to stop between batches (the cache is incomplete)."""
    started = time.perf_counter()
    flips = (False, True) if ctx.config.random_flip else (False,)
    keys = [(i, f) for i in range(len(ctx.data.examples)) for f in flips]
    keys.sort(key=lambda key: ctx.data.buckets[key[0]])
    on_progress(0, len(keys))
    for start in range(0, len(keys), LATENT_CACHE_BATCH):
        if should_stop():
            return False
        chunk = keys[start : start + LATENT_CACHE_BATCH]
        groups: dict[tuple[int, int], list[tuple[int, bool]]] = {}
        for key in chunk:
            groups.setdefault(ctx.data.buckets[key[0]], []).append(key)
        for group in groups.values():
            prepared = [ctx.data.prepare(i, f, (0.5, 0.5)) for i, f in group]
            params = ctx.latents.distribution(torch.stack([p.pixels for p in prepared]))
            for key, image, param in zip(group, prepared, params, strict=True):
                ctx.latents.store(key, param)
                ctx.image_meta[key] = (image.original_size, image.crop_top_left)
        on_progress(start + len(chunk), len(keys))
    log(f"cached VAE latents of {len(keys)} images in {time.perf_counter() - started:.1f}s")
    return True


def _time_ids(
    sizes: Sequence[tuple[tuple[int, int], tuple[int, int]]],
    target: tuple[int, int],
    ctx: StepContext,
) -> torch.Tensor:
    """SDXL micro-conditioning: original size, crop top-left, target size (all h, w)."""
    rows = [[*original, *crop, *target] for original, crop in sizes]
    return torch.tensor(rows, dtype=ctx.dtype).to(ctx.device, non_blocking=True)


def batch_latents(
    ctx: StepContext, samples: Sequence[Sample], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled latents of the batch and (SDXL) its time ids."""
    keys = [(s.index, s.flip) for s in samples]
    if ctx.use_latent_cache:
        params = torch.stack([ctx.latents.cached(k) for k in keys])  # type: ignore[misc]
        sizes = [ctx.image_meta[k] for k in keys]
    else:
        prepared: list[PreparedImage] = [
            ctx.data.prepare(s.index, s.flip, s.crop_fraction) for s in samples
        ]
        params = ctx.latents.distribution(torch.stack([p.pixels for p in prepared]))
        sizes = [(p.original_size, p.crop_top_left) for p in prepared]
    latents = ctx.latents.sample(params, generator)
    if ctx.parts.architecture != "sdxl":
        return latents, None
    width, height = ctx.data.buckets[samples[0].index]
    return latents, _time_ids(sizes, (height, width), ctx)


def batch_loss(
    ctx: StepContext,
    samples: Sequence[Sample],
    generator: torch.Generator,
    text_cached: bool,
) -> torch.Tensor:
    """Denoising loss of one batch (a scalar tensor; no host sync)."""
    latents, time_ids = batch_latents(ctx, samples, generator)
    captions = [s.caption for s in samples]
    scheduler = ctx.parts.noise_scheduler
    with ctx.autocast():
        if text_cached:
            conditioning = ctx.prompts.encode_cached(captions)
        else:
            conditioning = ctx.prompts.encode(captions)
        noise = sample_noise(latents, generator, ctx.config.noise_offset)
        timesteps = sample_timesteps(latents.shape[0], scheduler, generator, ctx.device)
        noisy = as_channels_last(scheduler.add_noise(latents, noise, timesteps))
        added = None
        if time_ids is not None:
            added = {"text_embeds": conditioning.pooled, "time_ids": time_ids}
        prediction = ctx.parts.unet(
            noisy,
            timesteps,
            encoder_hidden_states=conditioning.prompt_embeds,
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
    target = training_target(scheduler, latents, noise, timesteps)
    weights = None
    if ctx.config.min_snr_gamma is not None:
        weights = min_snr_weights(scheduler, timesteps, ctx.config.min_snr_gamma)
    return diffusion_loss(prediction, target, weights)
