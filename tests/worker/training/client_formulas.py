"""How each client merges one kohya LoRA/DoRA layer into a weight, written from its source.

Our own code, one function per client, following the arithmetic (order of operations, where
alpha/rank and the strength apply, which axis is normalised, the epsilon) of:
- ComfyUI: `comfy/weight_adapter/lora.py` `LoRAAdapter.calculate_weight` and
  `comfy/weight_adapter/base.py` `weight_decompose` (older releases: `comfy/lora.py`).
- AUTOMATIC1111: `extensions-builtin/Lora/network_lora.py` `NetworkModuleLora.calc_updown`
  (`lyco_helpers.rebuild_conventional`), `extensions-builtin/Lora/network.py`
  `NetworkModule.finalize_updown`, `apply_weight_decompose` and `calc_scale`.
- InvokeAI: `invokeai/backend/patches/layers/dora_layer.py` `DoRALayer.get_weight` and
  `lora_layer_base.py` `LoRALayerBase.get_parameters` / `scale`.
"""

from __future__ import annotations

import torch


def _product(up: torch.Tensor, down: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """up @ down over flattened trailing axes, reshaped to the weight (all three clients)."""
    return (up.flatten(1) @ down.flatten(1)).reshape(shape)


def _input_column_norm(weight: torch.Tensor) -> torch.Tensor:
    """transpose(0, 1) -> reshape(in, -1) -> norm(dim=1) -> back to (1, in, 1...)."""
    rest = [1] * (weight.dim() - 1)
    norm = weight.transpose(0, 1).reshape(weight.shape[1], -1).norm(dim=1, keepdim=True)
    return norm.reshape(weight.shape[1], *rest).transpose(0, 1)


def comfyui_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    strength: float = 1.0,
) -> torch.Tensor:
    """ComfyUI: alpha/rank scales the update *inside* the decomposition; strength outside."""
    weight = weight.clone()
    scale = alpha / down.shape[0] if alpha is not None else 1.0
    diff = _product(up, down, weight.shape)
    if dora_scale is None:
        return weight + strength * scale * diff
    calc = weight + diff * scale
    # weight_decompose picks the axis from dora_scale's shape: output rows when it has one
    # entry per output, otherwise the input columns of the *merged* weight.
    if dora_scale.shape[0] == calc.shape[0]:
        rest = [1] * (weight.dim() - 1)
        norm = weight.reshape(weight.shape[0], -1).norm(dim=1, keepdim=True)
        norm = norm.reshape(weight.shape[0], *rest)
    else:
        norm = _input_column_norm(calc)
    norm = norm + torch.finfo(weight.dtype).eps
    calc = calc * (dora_scale / norm)
    if strength != 1.0:
        return weight + strength * (calc - weight)
    return calc


def a1111_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    multiplier: float = 1.0,
) -> torch.Tensor:
    """A1111: decomposition of W + up@down (no alpha), then the difference times
    alpha/dim and the multiplier."""
    updown = _product(up, down, weight.shape)
    if dora_scale is not None:
        merged = updown + weight
        updown = merged * (dora_scale / _input_column_norm(merged)) - weight
    scale = alpha / down.shape[0] if alpha is not None else 1.0
    return weight + updown * scale * multiplier


def invokeai_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    weight_factor: float = 1.0,
) -> torch.Tensor:
    """InvokeAI: like A1111 (decompose W + up@down, then scale the difference)."""
    delta = _product(up, down, weight.shape)
    if dora_scale is not None:
        out = weight + delta
        delta = out * (dora_scale / _input_column_norm(out)) - weight
    scale = alpha / down.shape[0] if alpha is not None else 1.0
    return weight + delta * (weight_factor * scale)


CLIENTS = {"comfyui": comfyui_merge, "a1111": a1111_merge, "invokeai": invokeai_merge}
