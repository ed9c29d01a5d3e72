"""The files users load elsewhere: kohya-named LoRA/DoRA and TI embeddings (.safetensors).

LoRA: `lora_unet_*` / `lora_te_*` (SDXL `lora_te1_*`, `lora_te2_*`) with `.lora_down.weight`,
`.lora_up.weight`, `.alpha` and, for DoRA, `.dora_scale` (one magnitude per input column,
shaped (1, in[, 1, 1]); see dora.py) plus `ss_*`/`modelspec.*` metadata (file_metadata.py).
TI: `emb_params` (SD1.5) or `clip_l` + `clip_g` (SDXL). Loading into diffusers:
diffusers_loading.py. Formulas of each client: docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from worker.training.common_config import Architecture
from worker.training.dora import DoraLayer
from worker.training.file_metadata import with_hashes
from worker.training.lora_adapters import layer_weights, lora_layers

LORA_DTYPE = torch.float16
"""Half precision halves the file; it is how LoRAs are shared."""


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
) -> tuple[dict[str, torch.Tensor], float]:
    """Kohya tensors of every adapter in `modules` ((kohya prefix, module) pairs), and the
    alpha the file records.

    DoRA files fold alpha/rank into `lora_up` and record alpha = rank: A1111's first DoRA
    code multiplies the *decomposed* difference by alpha/rank while ComfyUI, current A1111 and
    InvokeAI scale the update inside the norm; the two agree only at scale 1 (docs/formats.md).
    They are stored in fp32 because `dora_scale` is of the size of the weight itself, so
    half-precision rounding would move the whole weight, not just the update.
    """
    tensors: dict[str, torch.Tensor] = {}
    file_alpha = float(alpha)
    for prefix, module in modules:
        for path, layer in lora_layers(module):
            name = kohya_name(prefix, path)
            weights = {k: v.detach() for k, v in layer_weights(layer).items()}
            up, dtype = weights["up"], LORA_DTYPE
            if isinstance(layer, DoraLayer):
                up, dtype = up * layer.scaling, torch.float32
                file_alpha = float(layer.rank)
                tensors[f"{name}.dora_scale"] = weights["magnitude"].to("cpu", dtype)
            tensors[f"{name}.lora_down.weight"] = weights["down"].to("cpu", dtype)
            tensors[f"{name}.lora_up.weight"] = up.to("cpu", dtype)
            tensors[f"{name}.alpha"] = torch.tensor(file_alpha, dtype=dtype)
    return {k: v.contiguous() for k, v in tensors.items()}, file_alpha


def bundle_embedding(
    tensors: dict[str, torch.Tensor],
    token: str,
    vectors: Sequence[torch.Tensor],
    architecture: Architecture,
) -> dict[str, torch.Tensor]:
    """LoRA tensors plus the embedding as `bundle_emb.<token>.*` (one-file pivotal).

    A1111 (`extensions-builtin/Lora/networks.py`, `load_network`) splits such keys into the
    embedding name and its tensor name and hands them to `create_embedding_from_data`, which
    reads `string_to_param.*` (SD1.5) or `clip_l` + `clip_g` (SDXL).
    """
    if "." in token:
        raise ValueError(f"a bundled token cannot contain '.': {token!r}")
    names = ["clip_l", "clip_g"] if architecture == "sdxl" else ["string_to_param.*"]
    bundled = dict(tensors)
    for name, vector in zip(names, vectors, strict=True):
        bundled[f"bundle_emb.{token}.{name}"] = vector.detach().to("cpu", torch.float32)
    return {k: v.contiguous() for k, v in bundled.items()}


def save_lora_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write a kohya file; `sshs_*` hashes are computed here, from the final tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=with_hashes(tensors, metadata))
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
