"""Loading Atelier's files into a diffusers pipeline (what the docs tell diffusers users).

Plain LoRA goes through diffusers' own `load_lora_weights`. diffusers (0.42) drops kohya
`dora_scale` keys and peft only knows per-output magnitudes, so DoRA files are applied with
the same input-column DoraLayer that trained them (UNet and text encoders, Linear and Conv).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from worker.training.common_config import Architecture
from worker.training.dora import DoraLayer
from worker.training.export_formats import kohya_name, kohya_prefixes


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


@torch.no_grad()
def _apply_dora(module: torch.nn.Module, prefix: str, state: dict[str, torch.Tensor]) -> int:
    """Wrap every layer of `module` named in `state` with a DoraLayer holding its tensors."""
    found = []
    for path, child in module.named_modules():
        if f"{kohya_name(prefix, path)}.dora_scale" in state:
            found.append((path, child))
    for path, child in found:
        name = kohya_name(prefix, path)
        down = state[f"{name}.lora_down.weight"]
        rank = down.shape[0]
        alpha = float(state.get(f"{name}.alpha", torch.tensor(float(rank))))
        layer = DoraLayer(child, rank, alpha)
        layer.lora_down.weight.copy_(down)
        layer.lora_up.weight.copy_(state[f"{name}.lora_up.weight"])
        layer.lora_magnitude.copy_(state[f"{name}.dora_scale"])
        layer.requires_grad_(False)
        parent_path, _, attribute = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        setattr(parent, attribute, layer)
    return len(found)


def load_dora_into_pipeline(pipe: Any, state: dict[str, torch.Tensor]) -> int:
    """Apply a DoRA file's layers to the pipeline's UNet and text encoders; return how many."""
    architecture: Architecture = "sdxl" if hasattr(pipe, "text_encoder_2") else "sd15"
    applied = 0
    for prefix, component in kohya_prefixes(architecture):
        module = getattr(pipe, component, None)
        if module is not None:
            applied += _apply_dora(module, prefix, state)
    expected = sum(1 for key in state if key.endswith(".dora_scale"))
    if applied != expected:
        raise ValueError(f"only {applied} of the file's {expected} DoRA layers match this model")
    return applied


def load_lora_into_pipeline(pipe: Any, path: Path, adapter_name: str = "atelier") -> None:
    """Load an exported LoRA or DoRA file into a diffusers pipeline."""
    state = load_file(str(path))
    if any(k.endswith(".dora_scale") for k in state):
        load_dora_into_pipeline(pipe, state)
        return
    lora_only = {k: v for k, v in state.items() if not k.startswith("bundle_emb.")}
    pipe.load_lora_weights(lora_only, adapter_name=adapter_name)
