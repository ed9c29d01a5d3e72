"""Metadata of exported files: kohya sd-scripts' `ss_*`/`sshs_*` and the `modelspec.*` spec.

Written from kohya sd-scripts: `train_network.py` (`NetworkTrainer.train`, the `ss_*` dict),
`library/train_util.py` (`precalculate_safetensors_hashes`, `addnet_hash_safetensors`,
`addnet_hash_legacy`) and `library/sai_model_spec.py` (`build_metadata`). Every value is a
string, as safetensors metadata must be.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import torch
from safetensors.torch import save

from worker.training.types import ExportInfo

BASE_MODEL_VERSION = {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0"}
# sai_model_spec.py: ARCH_SD_V1 / ARCH_SD_XL_V1_BASE, and the implementation each names.
MODELSPEC_ARCH = {"sd15": "stable-diffusion-v1", "sdxl": "stable-diffusion-xl-v1-base"}
MODELSPEC_IMPL = {"sd15": "diffusers", "sdxl": "https://github.com/Stability-AI/generative-models"}
TAG_DATASET = "atelier"
"""kohya keys tag counts by image folder; an Atelier dataset is one folder."""


def tag_frequency(info: ExportInfo) -> dict[str, dict[str, int]]:
    """`ss_tag_frequency`: comma-separated caption tags counted over the dataset."""
    counts: Counter[str] = Counter()
    for example in info.examples:
        tags = (example.caption or "").split(",")
        counts.update(tag.strip() for tag in tags if tag.strip())
    return {TAG_DATASET: dict(counts)}


def modelspec(
    architecture: str, adapter: str, info: ExportInfo, trigger: str | None, resolution: int
) -> dict[str, str]:
    """`modelspec.*` keys (adapter: "lora" or "textual-inversion")."""
    values = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{MODELSPEC_ARCH[architecture]}/{adapter}",
        "modelspec.implementation": MODELSPEC_IMPL[architecture],
        "modelspec.title": info.output_name,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "modelspec.prediction_type": "epsilon",
    }
    if trigger:
        values["modelspec.trigger_phrase"] = trigger
    return values


def _network_args(config: Any) -> dict[str, str]:
    if config.type != "dora":
        return {}
    # LyCORIS's names: algo=lora with dora_wd, decomposed per input column.
    return {"algo": "lora", "dora_wd": "True", "wd_on_output": "False"}


def lora_metadata(
    config: Any, step: int, info: ExportInfo, file_alpha: float, trigger: str | None
) -> dict[str, str]:
    """`ss_*` and `modelspec.*` of a LoRA/DoRA/pivotal file (hashes added when saved)."""
    is_dora = config.type == "dora"
    unet_lr = config.unet_learning_rate or config.learning_rate
    text_encoder_lr = 0.0
    if config.train_text_encoder:
        text_encoder_lr = config.text_encoder_learning_rate or unet_lr / 2
    comment = f"trained with Atelier ({config.type})"
    values: dict[str, Any] = {
        "ss_network_module": "lycoris.kohya" if is_dora else "networks.lora",
        "ss_network_dim": config.rank,
        "ss_network_alpha": file_alpha,
        "ss_network_args": json.dumps(_network_args(config)),
        "ss_base_model_version": BASE_MODEL_VERSION[config.architecture],
        "ss_sd_model_name": info.base_model_name,
        "ss_output_name": info.output_name,
        "ss_v2": False,
        "ss_steps": step,
        "ss_max_train_steps": config.max_train_steps,
        "ss_learning_rate": config.learning_rate,
        "ss_unet_lr": unet_lr,
        "ss_text_encoder_lr": text_encoder_lr,
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_num_train_images": len(info.examples),
        "ss_batch_size_per_device": config.train_batch_size,
        "ss_gradient_accumulation_steps": config.gradient_accumulation_steps,
        "ss_optimizer": config.optimizer,
        "ss_lr_scheduler": config.lr_scheduler,
        "ss_lr_warmup_steps": config.lr_warmup_steps,
        "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_noise_offset": config.noise_offset,
        "ss_seed": config.seed,
        "ss_mixed_precision": info.mixed_precision,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_network_train_text_encoder_only": False,
        "ss_network_train_unet_only": not config.train_text_encoder,
        "ss_tag_frequency": json.dumps(tag_frequency(info)),
        "ss_training_comment": comment,
    }
    if config.type == "pivotal":
        values["ss_training_comment"] = (
            f"{comment}: LoRA trained against the new token {config.placeholder_token}"
        )
        values.update(
            ss_embedding_token=config.placeholder_token,
            ss_embedding_num_vectors=config.num_vectors,
            ss_embedding_lr=config.embedding_learning_rate,
            ss_embedding_train_fraction=config.embedding_train_fraction,
        )
    strings = {k: str(v) for k, v in values.items()}
    arch = config.architecture
    return {**strings, **modelspec(arch, "lora", info, trigger, config.resolution)}


def addnet_hash_safetensors(data: bytes) -> str:
    """sha256 of everything after the safetensors header (`addnet_hash_safetensors`)."""
    header_size = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header_size :]).hexdigest()


def addnet_hash_legacy(data: bytes) -> str:
    """First 8 hex of sha256 over 64 KiB read at offset 1 MiB (`addnet_hash_legacy`)."""
    return hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def with_hashes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> dict[str, str]:
    """Add `sshs_model_hash`/`sshs_legacy_hash`, computed as kohya does: over the file the
    tensors make with only the `ss_*` metadata (so editing other metadata keeps the hash)."""
    training_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    data = save(tensors, training_only)
    return {
        **metadata,
        "sshs_model_hash": addnet_hash_safetensors(data),
        "sshs_legacy_hash": addnet_hash_legacy(data),
    }
