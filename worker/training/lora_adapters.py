"""Adding LoRA (peft) and DoRA (our input-column layer, see dora.py) adapters; reading them back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import inject_adapter_in_model
from peft.tuners.lora import LoraLayer

from worker.training.dora import DoraLayer, inject_dora

ADAPTER = "default"


@dataclass(frozen=True)
class AdapterSpec:
    """Shape of the adapters to add."""

    rank: int
    alpha: float
    dropout: float
    use_dora: bool


def add_adapters(
    module: torch.nn.Module, target_modules: list[str], spec: AdapterSpec
) -> list[torch.nn.Parameter]:
    """Wrap every matching Linear/Conv in `module` with a trainable adapter; return its params.

    Gaussian init of A and zeros in B make the adapted model start identical to the base.
    DoRA uses our own layer: peft's keeps per-output magnitudes, which A1111 and InvokeAI
    cannot apply (see dora.py).
    """
    if spec.use_dora:
        inject_dora(module, target_modules, spec.rank, spec.alpha, spec.dropout)
        return _trainable(module, target_modules)
    peft_config = PeftLoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=target_modules,
        init_lora_weights="gaussian",
    )
    inject_adapter_in_model(peft_config, module, adapter_name=ADAPTER)
    return _trainable(module, target_modules)


def _trainable(module: torch.nn.Module, target_modules: list[str]) -> list[torch.nn.Parameter]:
    params = [p for name, p in module.named_parameters() if "lora_" in name]
    if not params:
        raise ValueError(f"no module matches the target modules {target_modules}; check the names")
    for param in params:
        # Trained weights stay in fp32 even when the frozen base runs in half precision.
        param.data = param.data.float()
        param.requires_grad_(True)
    return params


def lora_layers(module: torch.nn.Module) -> Iterator[tuple[str, LoraLayer | DoraLayer]]:
    """(module path, layer) of every adapted layer."""
    for name, child in module.named_modules():
        if isinstance(child, DoraLayer):
            yield name, child
        elif isinstance(child, LoraLayer) and ADAPTER in child.lora_A:
            yield name, child


def layer_weights(layer: LoraLayer | DoraLayer) -> dict[str, torch.Tensor]:
    """down (A), up (B) and, for DoRA, the magnitude (shaped like the file's dora_scale)."""
    if isinstance(layer, DoraLayer):
        return {
            "down": layer.lora_down.weight,
            "up": layer.lora_up.weight,
            "magnitude": layer.lora_magnitude,
        }
    weights = {
        "down": layer.lora_A[ADAPTER].weight,
        "up": layer.lora_B[ADAPTER].weight,
    }
    magnitude = getattr(layer, "lora_magnitude_vector", None)
    if magnitude is not None and ADAPTER in magnitude:
        weights["magnitude"] = magnitude[ADAPTER].weight
    return weights


def adapter_state(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """Every adapter tensor of `module` under `prefix` (for resumable states)."""
    state = {}
    for name, layer in lora_layers(module):
        for kind, tensor in layer_weights(layer).items():
            state[f"{prefix}.{name}.{kind}"] = tensor.detach()
    return state


@torch.no_grad()
def load_adapter_state(
    module: torch.nn.Module, prefix: str, state: dict[str, torch.Tensor]
) -> None:
    """Copy tensors saved by `adapter_state` back into the live adapters."""
    for name, layer in lora_layers(module):
        for kind, tensor in layer_weights(layer).items():
            tensor.copy_(state[f"{prefix}.{name}.{kind}"])
