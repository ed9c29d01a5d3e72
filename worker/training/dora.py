"""DoRA with one magnitude per *input column* (LyCORIS `wd_on_output=False`).

peft's DoRA keeps one magnitude per output row; A1111 (`network.py`,
`NetworkModule.apply_weight_decompose`) and InvokeAI (`DoRALayer.get_weight`) only implement
the input-column norm for `dora_scale`, and ComfyUI (`weight_decompose`) picks it whenever it is not
shaped like the output. Training in this form makes the file mean the same everywhere:

    V  = W + scale * (up @ down)          (reshaped to W's shape; scale = alpha / rank)
    W' = magnitude * V / ||V||_col        (norm over every axis but the input channel)

`magnitude` is shaped (1, in) for Linear and (1, in, 1, 1) for Conv2d, exactly the file's
`dora_scale`. Scaling W's columns equals scaling the layer's input channels, so the forward
pass scales the input and runs the frozen layer plus the low-rank branch (no merged copy).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def column_norm(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each input column, shaped (1, in, 1...) like the weight's axes (reduced
    over the other axes, without a transposed copy). Training steps use
    ``DoraLayer.direction_norm`` instead, which never builds the weight."""
    other_axes = [0, *range(2, weight.dim())]
    return torch.linalg.vector_norm(weight, dim=other_axes, keepdim=True)


def _branches(base: nn.Module, rank: int) -> tuple[nn.Module, nn.Module]:
    """down/up layers of the low-rank branch, on the base layer's device, in fp32."""
    device = base.weight.device
    if isinstance(base, nn.Linear):
        down: nn.Module = nn.Linear(base.in_features, rank, bias=False, device=device)
        up: nn.Module = nn.Linear(rank, base.out_features, bias=False, device=device)
    elif isinstance(base, nn.Conv2d):
        if base.groups != 1:
            raise ValueError("DoRA on grouped convolutions is not supported")
        down = nn.Conv2d(
            base.in_channels,
            rank,
            base.kernel_size,
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            bias=False,
            device=device,
        )
        # Kohya's convention: the kernel lives in down, up is 1x1.
        up = nn.Conv2d(rank, base.out_channels, 1, bias=False, device=device)
    else:
        raise TypeError(f"DoRA needs a Linear or Conv2d layer, got {type(base).__name__}")
    return down, up


class DoraLayer(nn.Module):
    """A frozen Linear/Conv2d plus a trainable input-column DoRA adapter."""

    def __init__(self, base: nn.Module, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base_layer = base
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_down, self.lora_up = _branches(base, rank)
        # peft's "gaussian" init: A ~ N(0, 1/rank), B = 0, so training starts at W.
        nn.init.normal_(self.lora_down.weight, std=1.0 / rank)
        nn.init.zeros_(self.lora_up.weight)
        self.lora_magnitude = nn.Parameter(column_norm(base.weight.detach().float()))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # ||W_j||^2 of each flattened column j of the frozen weight, for direction_norm();
        # not persistent: never saved, rebuilt from the base weight.
        squares = base.weight.detach().flatten(1).float().pow(2).sum(0)
        self.register_buffer("base_column_squares", squares, persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        """The frozen weight (some callers read `.weight` for its dtype/device)."""
        return self.base_layer.weight

    def direction(self) -> torch.Tensor:
        """V = W + scale * up @ down as one dense fp32 tensor (one fused multiply-add), for
        merging and exports; the forward pass needs only its norm (``direction_norm``)."""
        weight = self.base_layer.weight
        fused = torch.addmm(weight.flatten(1).float(), self.lora_up.weight.flatten(1),
                            self.lora_down.weight.flatten(1), alpha=self.scaling)
        return fused.view(weight.shape)

    def direction_norm(self) -> torch.Tensor:
        """||W + s * up @ down||_col without building that weight-sized sum: per flattened
        column j, ||W_j||^2 (frozen, precomputed) + 2s (up^T W)_j . down_j
        + s^2 down_j^T (up^T up) down_j. Only (rank x columns) tensors are made, so the
        forward and backward never write a copy of the weight (this runs for every adapted
        layer on every forward)."""
        weight = self.base_layer.weight.flatten(1).float()
        up, down = self.lora_up.weight.flatten(1), self.lora_down.weight.flatten(1)
        cross = (up.t() @ weight * down).sum(0)
        quad = ((up.t() @ up) @ down * down).sum(0)
        squares = self.base_column_squares + 2 * self.scaling * cross + self.scaling**2 * quad
        per_input = squares.clamp_min(0).reshape(self.base_layer.weight.shape[1], -1).sum(1)
        shape = (1, -1, *[1] * (self.base_layer.weight.dim() - 2))
        return per_input.sqrt().reshape(shape)

    def column_scale(self) -> torch.Tensor:
        """magnitude / ||W + delta||_col: the factor each input column is multiplied by."""
        return self.lora_magnitude / self.direction_norm()

    def effective_weight(self) -> torch.Tensor:
        """W' as one dense tensor (for merging and for checking clients' formulas)."""
        direction = self.direction()
        return direction * (self.lora_magnitude / column_norm(direction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.column_scale()
        if isinstance(self.base_layer, nn.Linear):
            scale = scale.reshape(-1)  # over the last (feature) axis
        else:
            scale = scale.reshape(1, -1, 1, 1)  # over the channel axis
        scaled = x * scale.to(x.dtype)
        out = self.base_layer(scaled)
        branch_in = self.dropout(scaled).to(self.lora_down.weight.dtype)
        branch = self.lora_up(self.lora_down(branch_in)) * self.scaling
        return out + branch.to(out.dtype)


def _matches(name: str, targets: list[str]) -> bool:
    """peft's rule: the module path equals a target or ends with `.target`."""
    return any(name == t or name.endswith(f".{t}") for t in targets)


def inject_dora(
    module: nn.Module, targets: list[str], rank: int, alpha: float, dropout: float = 0.0
) -> list[DoraLayer]:
    """Replace every Linear/Conv2d whose path matches `targets` with a DoraLayer."""
    found = [
        (name, child)
        for name, child in module.named_modules()
        if _matches(name, targets) and isinstance(child, nn.Linear | nn.Conv2d)
    ]
    layers = []
    for name, child in found:
        parent_path, _, attribute = name.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        layer = DoraLayer(child, rank, alpha, dropout)
        setattr(parent, attribute, layer)
        layers.append(layer)
    return layers


def dora_layers(module: nn.Module) -> Iterator[tuple[str, DoraLayer]]:
    for name, child in module.named_modules():
        if isinstance(child, DoraLayer):
            yield name, child
