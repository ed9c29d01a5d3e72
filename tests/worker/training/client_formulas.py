"""How each client merges one kohya LoRA/DoRA layer into a weight, written from its source.

Our own code, one function per client, following the arithmetic (order of operations, where
alpha/rank and the strength apply, which axis is normalised, the epsilon) of the source read
through the search tool; each function names the repository, file, function and commit.
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


def _scale(alpha: float | None, down: torch.Tensor) -> float:
    return alpha / down.shape[0] if alpha is not None else 1.0


# comfyanonymous/ComfyUI: comfy/weight_adapter/lora.py `LoRAAdapter.calculate_weight`
# (commit 6fd406fb14ca663225b88c6f75d7a7f2b997e5a0: alpha/rank is handed to weight_decompose
# as `alpha`) and comfy/weight_adapter/base.py `weight_decompose` (commit
# 9c0cf36cd7964978850fd40f8cf76ac2cf9f9e15: the output-axis branch and the epsilon; the older
# 14c20852c59de28eec3389840000a8d162ae7d35 has only the input-column norm and no epsilon).
def comfyui_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    strength: float = 1.0,
) -> torch.Tensor:
    """V = W + s·ΔW; W_d = m·V/(‖·‖ + eps); W' = W + strength·(W_d − W)."""
    weight = weight.clone()
    scale = _scale(alpha, down)
    diff = _product(up, down, weight.shape)
    if dora_scale is None:
        return weight + strength * scale * diff
    calc = weight + diff * scale
    # weight_decompose picks the axis from dora_scale's shape: output rows when it has one
    # entry per output (then the *original* weight's norm), otherwise the merged weight's
    # input columns.
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


# AUTOMATIC1111/stable-diffusion-webui: extensions-builtin/Lora/network.py
# `NetworkModule.finalize_updown`, `apply_weight_decompose`, `calc_scale`, fed by
# extensions-builtin/Lora/network_lora.py `NetworkModuleLora.calc_updown` (up @ down).
# The upstream copies in the index (f2844bd024ff3cf7ee712153a514afd9085980db,
# 0a0efa3fc130d27f42f12d8ab037af3e27af778f) predate DoRA; two forms of the DoRA code were read
# in forks that carry it:
# - current: chirag127/stable-diffusion-webui 5347a0d3261e467f6861ea9407016579e5cc6113 —
#   `updown * calc_scale()` first, then `apply_weight_decompose`, then `* multiplier()`;
# - first release of it: lxrdyu/stable-diffusion-webui 022673065d9a45511c968c3ddf2d12a46621fe5a
#   (both sides of a merge with upstream feee37d75f1b168768014e4634dcb156ee649c05) —
#   `apply_weight_decompose` on the unscaled update, then `* calc_scale() * multiplier()`.
# Neither adds an epsilon to the norm.
def a1111_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    multiplier: float = 1.0,
) -> torch.Tensor:
    """Current A1111: V = W + s·ΔW; W' = W + multiplier·(m·V/‖V‖_col − W)."""
    updown = _product(up, down, weight.shape) * _scale(alpha, down)
    if dora_scale is not None:
        merged = updown + weight
        updown = merged * (dora_scale / _input_column_norm(merged)) - weight
    return weight + updown * multiplier


def a1111_first_dora_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    multiplier: float = 1.0,
) -> torch.Tensor:
    """First A1111 DoRA code: V = W + ΔW (no alpha); W' = W + s·multiplier·(m·V/‖V‖_col − W).
    It agrees with the others only when s = 1, which is why DoRA files carry alpha = rank."""
    updown = _product(up, down, weight.shape)
    if dora_scale is not None:
        merged = updown + weight
        updown = merged * (dora_scale / _input_column_norm(merged)) - weight
    return weight + updown * _scale(alpha, down) * multiplier


# invoke-ai/InvokeAI: invokeai/backend/patches/layers/dora_layer.py `DoRALayer.get_weight`
# (delta_v * self.scale() before the norm) and `DoRALayer.get_parameters` (only the user's
# weight outside), read at commits 3372c8eb571dca05ebee14c1f6fa4252795ccab4 and
# 19ef9e928f3bdac08f423c00fd0396bd84375ae3 (the latter also reads a `dora_magnitude` key in the
# output-row convention; `dora_scale` stays per input column); `scale()` is alpha/rank from
# lora_layer_base.py `LoRALayerBase.scale`.
def invokeai_merge(
    weight: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    alpha: float | None,
    dora_scale: torch.Tensor | None,
    weight_factor: float = 1.0,
) -> torch.Tensor:
    """V = W + s·ΔW; W' = W + weight·(m·V/‖V‖_col − W) (plain LoRA: W + weight·s·ΔW)."""
    delta = _product(up, down, weight.shape) * _scale(alpha, down)
    if dora_scale is not None:
        out = weight + delta
        delta = out * (dora_scale / _input_column_norm(out)) - weight
    return weight + delta * weight_factor


CLIENTS = {"comfyui": comfyui_merge, "a1111": a1111_merge,
           "a1111_first_dora": a1111_first_dora_merge, "invokeai": invokeai_merge}
