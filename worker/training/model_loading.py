"""Loading a base model's components from a diffusers folder, a single file or the hub cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTokenizer

from worker.training.common_config import Architecture


@dataclass
class BaseModelParts:
    """The components training needs; text encoders/tokenizers in pipeline order."""

    architecture: Architecture
    tokenizers: list[CLIPTokenizer]
    text_encoders: list[torch.nn.Module]
    vae: AutoencoderKL
    unet: UNet2DConditionModel
    noise_scheduler: DDPMScheduler
    scheduler_config: dict[str, Any]

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def _pipeline_class(
    architecture: Architecture,
) -> type[StableDiffusionPipeline] | type[StableDiffusionXLPipeline]:
    return StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline


def _load_pipeline(
    source: str, architecture: Architecture
) -> StableDiffusionPipeline | StableDiffusionXLPipeline:
    cls = _pipeline_class(architecture)
    extra: dict[str, Any] = {}
    if architecture == "sd15":
        # The safety checker is an inference add-on; training never loads it.
        extra = {"safety_checker": None, "requires_safety_checker": False}
    path = Path(source)
    if path.is_file():
        if path.suffix not in (".safetensors", ".ckpt"):
            raise ValueError(f"base model file {path} is not a .safetensors checkpoint")
        # The component configs come from the local hub cache (no network in workers).
        return cls.from_single_file(str(path), local_files_only=True, **extra)
    if path.is_dir():
        return cls.from_pretrained(str(path), **extra)
    return cls.from_pretrained(source, local_files_only=True, **extra)


def _check_architecture(unet: UNet2DConditionModel, architecture: Architecture) -> None:
    is_sdxl = unet.config.addition_embed_type == "text_time"
    if is_sdxl != (architecture == "sdxl"):
        actual = "sdxl" if is_sdxl else "sd15"
        raise ValueError(
            f"the base model is {actual}-shaped but the config says architecture={architecture}"
        )


def load_base_model(source: str, architecture: Architecture) -> BaseModelParts:
    """Load every component in fp32 on the CPU; callers move/cast what they need."""
    pipe = _load_pipeline(source, architecture)
    _check_architecture(pipe.unet, architecture)
    tokenizers = [pipe.tokenizer]
    text_encoders = [pipe.text_encoder]
    if architecture == "sdxl":
        tokenizers.append(pipe.tokenizer_2)
        text_encoders.append(pipe.text_encoder_2)
    scheduler_config = dict(pipe.scheduler.config)
    return BaseModelParts(
        architecture=architecture,
        tokenizers=tokenizers,
        text_encoders=text_encoders,
        vae=pipe.vae,
        unet=pipe.unet,
        noise_scheduler=DDPMScheduler.from_config(scheduler_config),
        scheduler_config=scheduler_config,
    )


def freeze(module: torch.nn.Module) -> None:
    """Turn off gradients for every parameter of `module`."""
    module.requires_grad_(False)
