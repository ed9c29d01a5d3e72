"""Validation images: fixed seed per (prompt, index) so steps are comparable.

The pipeline is assembled from the very modules being trained (adapters/new tokens in place),
which renders exactly what loading the exported file gives (tests check that equivalence).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image

from worker.training.common_config import CommonTrainingConfig
from worker.training.model_loading import BaseModelParts
from worker.training.types import ValidationImage

WEBP_QUALITY = 90


def validation_seed(seed: int, prompt_index: int, image_index: int) -> int:
    """The seed of one validation image, stable across steps and resumes."""
    return (seed * 7_919 + prompt_index * 1_000 + image_index) % (2**31 - 1)


def validation_scheduler(parts: BaseModelParts) -> DPMSolverMultistepScheduler:
    return DPMSolverMultistepScheduler.from_config(parts.scheduler_config)


def build_pipeline(
    parts: BaseModelParts, scheduler: Any | None = None
) -> StableDiffusionPipeline | StableDiffusionXLPipeline:
    """A pipeline over `parts`' modules (no copies)."""
    scheduler = scheduler or validation_scheduler(parts)
    if parts.architecture == "sdxl":
        pipe = StableDiffusionXLPipeline(
            vae=parts.vae,
            text_encoder=parts.text_encoders[0],
            text_encoder_2=parts.text_encoders[1],
            tokenizer=parts.tokenizers[0],
            tokenizer_2=parts.tokenizers[1],
            unet=parts.unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=parts.vae,
            text_encoder=parts.text_encoders[0],
            tokenizer=parts.tokenizers[0],
            unet=parts.unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(
    pipe: Any,
    config: CommonTrainingConfig,
    prompt: str,
    seed: int,
    dtype: torch.dtype,
    should_stop: Callable[[], bool] | None = None,
) -> Image.Image:
    """One validation image; the generator lives on the CPU so any device gives the same noise.

    `should_stop` is asked after every denoising step; True skips the remaining steps (the
    pipeline's interrupt), so a cancel never waits for a whole large image."""
    extra: dict[str, Any] = {}
    if should_stop is not None:

        def check(pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> Any:
            if should_stop():
                pipeline._interrupt = True
            return kwargs

        extra["callback_on_step_end"] = check
    device = pipe.unet.device
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if device.type == "cuda" and dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.no_grad(), autocast:
        return pipe(
            prompt=prompt,
            negative_prompt=config.negative_prompt,
            num_inference_steps=config.validation_inference_steps,
            guidance_scale=config.validation_guidance_scale,
            height=config.resolution,
            width=config.resolution,
            generator=torch.Generator("cpu").manual_seed(seed),
            **extra,
        ).images[0]


class Validator:
    """Renders and saves every (prompt, index) image for a step."""

    def __init__(
        self,
        parts: BaseModelParts,
        config: CommonTrainingConfig,
        output_dir: Path,
        dtype: torch.dtype,
    ) -> None:
        self.parts = parts
        self.config = config
        self.output_dir = output_dir
        self.dtype = dtype
        self._pipe: Any | None = None

    def enabled(self) -> bool:
        return bool(self.config.validation_prompts)

    def count(self) -> int:
        """Images rendered per validation."""
        return len(self.config.validation_prompts) * self.config.num_validation_images

    def run(
        self,
        step: int,
        should_stop: Callable[[], bool] = lambda: False,
        on_image: Callable[[int, int], None] = lambda done, total: None,
    ) -> list[ValidationImage] | None:
        """Every image for `step`, or None when `should_stop` asked to stop midway."""
        if self._pipe is None:
            self._pipe = build_pipeline(self.parts)
        modules = [self.parts.unet, *self.parts.text_encoders]
        was_training = [m.training for m in modules]
        for module in modules:
            module.eval()
        try:
            return self._render_all(step, should_stop, on_image)
        finally:
            for module, training in zip(modules, was_training, strict=True):
                module.train(training)

    def _render_all(
        self,
        step: int,
        should_stop: Callable[[], bool],
        on_image: Callable[[int, int], None],
    ) -> list[ValidationImage] | None:
        directory = self.output_dir / "validation" / f"step-{step:06d}"
        directory.mkdir(parents=True, exist_ok=True)
        images: list[ValidationImage] = []
        total = self.count()
        on_image(0, total)
        for p_index, prompt in enumerate(self.config.validation_prompts):
            for i in range(self.config.num_validation_images):
                if should_stop():
                    return None
                seed = validation_seed(self.config.seed, p_index, i)
                image = render(self._pipe, self.config, prompt, seed, self.dtype, should_stop)
                if should_stop():
                    return None  # possibly cut short: never saved as a real image
                path = directory / f"p{p_index}-{i}.webp"
                image.save(path, "WEBP", quality=WEBP_QUALITY)
                images.append(ValidationImage(prompt, p_index, i, seed, path))
                on_image(len(images), total)
        return images
