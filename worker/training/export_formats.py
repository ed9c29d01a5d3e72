"""The files users load elsewhere: kohya-named LoRA/DoRA and TI embeddings (.safetensors).

LoRA: `lora_unet_*` / `lora_te_*` (SDXL `lora_te1_*`, `lora_te2_*`) with `.lora_down.weight`,
`.lora_up.weight`, `.alpha` and, for DoRA, `.dora_scale` (output-wise magnitude, shaped like
LyCORIS writes it) plus `ss_*` metadata; loads in A1111, ComfyUI, InvokeAI and diffusers.
TI: `emb_params` (SD1.5) or `clip_l` + `clip_g` (SDXL).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from worker.training.common_config import Architecture
from worker.training.lora_adapters import layer_weights, lora_layers

LORA_DTYPE = torch.float16
"""Half precision halves the file; it is how LoRAs are shared."""

BASE_MODEL_VERSION = {"sd15": "sd_v1", "sdxl": "sdxl_base_v1-0"}


def kohya_prefixes(architecture: Architecture) -> list[tuple[str, str]]:
    """(kohya prefix, diffusers component name) pairs in pipeline order."""
    if architecture == "sdxl":
        return [("lora_unet", "unet"), ("lora_te1", "text_encoder"), ("lora_te2", "text_encoder_2")]
    return [("lora_unet", "unet"), ("lora_te", "text_encoder")]


def kohya_name(prefix: str, module_path: str) -> str:
    """`lora_unet_down_blocks_0_..._to_q` / `lora_te_text_model_encoder_layers_0_..._q_proj`."""
    if prefix != "lora_unet" and not module_path.startswith("text_model."):
        # transformers 5 dropped the `text_model.` level; the file format keeps it.
        module_path = f"text_model.{module_path}"
    return f"{prefix}_{module_path.replace('.', '_')}"


def lora_to_kohya(
    modules: Sequence[tuple[str, torch.nn.Module]], alpha: float
) -> dict[str, torch.Tensor]:
    """Kohya tensors of every adapter in `modules` ((kohya prefix, module) pairs)."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules:
        for path, layer in lora_layers(module):
            name = kohya_name(prefix, path)
            weights = layer_weights(layer)
            tensors[f"{name}.lora_down.weight"] = weights["down"].detach()
            tensors[f"{name}.lora_up.weight"] = weights["up"].detach()
            tensors[f"{name}.alpha"] = torch.tensor(float(alpha))
            if "magnitude" in weights:
                up = weights["up"]
                # One magnitude per output channel, shaped (out, 1[, 1, 1]) like LyCORIS.
                shape = (up.shape[0],) + (1,) * (up.dim() - 1)
                tensors[f"{name}.dora_scale"] = weights["magnitude"].detach().reshape(shape)
    return {k: v.to("cpu", LORA_DTYPE).contiguous() for k, v in tensors.items()}


def lora_metadata(
    config: Any, step: int, num_images: int, extra: dict[str, Any] | None = None
) -> dict[str, str]:
    """`ss_*` metadata as kohya sd-scripts writes it (every value a string)."""
    is_dora = config.type == "dora"
    unet_lr = config.unet_learning_rate or config.learning_rate
    text_encoder_lr = 0.0
    if config.train_text_encoder:
        text_encoder_lr = config.text_encoder_learning_rate or unet_lr / 2
    network_args = {"algo": "lora", "dora_wd": "True"} if is_dora else {}
    values: dict[str, Any] = {
        "ss_network_module": "lycoris.kohya" if is_dora else "networks.lora",
        "ss_network_dim": config.rank,
        "ss_network_alpha": config.resolved_alpha(),
        "ss_network_args": json.dumps(network_args),
        "ss_base_model_version": BASE_MODEL_VERSION[config.architecture],
        "ss_v2": False,
        "ss_steps": step,
        "ss_max_train_steps": config.max_train_steps,
        "ss_learning_rate": config.learning_rate,
        "ss_unet_lr": unet_lr,
        "ss_text_encoder_lr": text_encoder_lr,
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_num_train_images": num_images,
        "ss_batch_size_per_device": config.train_batch_size,
        "ss_gradient_accumulation_steps": config.gradient_accumulation_steps,
        "ss_optimizer": config.optimizer,
        "ss_lr_scheduler": config.lr_scheduler,
        "ss_lr_warmup_steps": config.lr_warmup_steps,
        "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_noise_offset": config.noise_offset,
        "ss_seed": config.seed,
        "ss_mixed_precision": config.mixed_precision,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_network_train_text_encoder_only": False,
        "ss_network_train_unet_only": not config.train_text_encoder,
        "ss_training_comment": "trained with Atelier",
        **(extra or {}),
    }
    return {k: str(v) for k, v in values.items()}


def save_lora_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def save_embedding_file(
    path: Path,
    vectors: Sequence[torch.Tensor],
    architecture: Architecture,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write TI vectors: `emb_params` (SD1.5) or `clip_l` + `clip_g` (SDXL)."""
    names = ["clip_l", "clip_g"] if architecture == "sdxl" else ["emb_params"]
    if len(names) != len(vectors):
        raise ValueError(f"{architecture} needs {len(names)} embedding tensors, got {len(vectors)}")
    tensors = {
        name: vector.detach().to("cpu", torch.float32).contiguous()
        for name, vector in zip(names, vectors, strict=True)
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata or {})
    return path


def load_embedding_into_pipeline(pipe: Any, path: Path, token: str) -> None:
    """Load a TI file the way users do in diffusers (SDXL: one table per text encoder)."""
    state = load_file(str(path))
    if "clip_g" in state:
        pipe.load_textual_inversion(
            state["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
        )
        pipe.load_textual_inversion(
            state["clip_g"],
            token=token,
            text_encoder=pipe.text_encoder_2,
            tokenizer=pipe.tokenizer_2,
        )
    else:
        pipe.load_textual_inversion(str(path), token=token)


def _kohya_to_diffusers_with_dora(pipe: Any, state: dict[str, torch.Tensor]) -> dict:
    """Kohya tensors -> diffusers/peft names, keeping DoRA magnitudes (alpha folded into up)."""
    architecture: Architecture = "sdxl" if hasattr(pipe, "text_encoder_2") else "sd15"
    converted: dict[str, torch.Tensor] = {}
    for prefix, component in kohya_prefixes(architecture):
        module = getattr(pipe, component, None)
        if module is None:
            continue
        for path, _ in module.named_modules():
            name = kohya_name(prefix, path)
            down = state.get(f"{name}.lora_down.weight")
            if down is None:
                continue
            up = state[f"{name}.lora_up.weight"].float()
            alpha = float(state[f"{name}.alpha"]) if f"{name}.alpha" in state else down.shape[0]
            key = f"{component}.{path}"
            converted[f"{key}.lora_A.weight"] = down.float()
            converted[f"{key}.lora_B.weight"] = up * (alpha / down.shape[0])
            if f"{name}.dora_scale" in state:
                converted[f"{key}.lora_magnitude_vector"] = state[f"{name}.dora_scale"].flatten()
    return converted


def load_lora_into_pipeline(pipe: Any, path: Path, adapter_name: str = "atelier") -> None:
    """Load an exported LoRA into a diffusers pipeline.

    Plain LoRA goes straight through `load_lora_weights(path)`. diffusers drops kohya
    `dora_scale` keys, so DoRA files are converted to diffusers' own naming first.
    """
    state = load_file(str(path))
    if not any(k.endswith(".dora_scale") for k in state):
        pipe.load_lora_weights(str(path), adapter_name=adapter_name)
        return
    pipe.load_lora_weights(_kohya_to_diffusers_with_dora(pipe, state), adapter_name=adapter_name)
