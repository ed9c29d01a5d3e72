"""LoRA / DoRA training entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worker.training.callbacks import TrainingCallbacks
from worker.training.captions import CaptionRecipe
from worker.training.engine import group, run_method
from worker.training.export_formats import kohya_prefixes, lora_to_kohya, save_lora_file
from worker.training.file_metadata import lora_metadata
from worker.training.lora.config import LoraConfig, LoraOptions
from worker.training.lora_adapters import (
    AdapterSpec,
    adapter_state,
    add_adapters,
    load_adapter_state,
)
from worker.training.method import TrainingMethod
from worker.training.model_loading import BaseModelParts
from worker.training.types import ExportInfo, TrainingExample, TrainingResult

LORA_FILENAME = "lora.safetensors"


class LoraAdapters:
    """The adapters of a run: UNet always, text encoder(s) when trained."""

    def __init__(self, options: LoraOptions, use_dora: bool) -> None:
        self.options = options
        self.spec = AdapterSpec(
            rank=options.rank,
            alpha=options.resolved_alpha(),
            dropout=options.lora_dropout,
            use_dora=use_dora,
        )
        self.modules: list[tuple[str, torch.nn.Module]] = []

    def setup(self, parts: BaseModelParts, base_lr: float) -> list[dict[str, Any]]:
        options = self.options
        unet_lr = options.unet_learning_rate or base_lr
        unet_params = add_adapters(parts.unet, options.unet_target_modules, self.spec)
        prefixes = kohya_prefixes(parts.architecture)
        self.modules = [(prefixes[0][0], parts.unet)]
        groups = [group(unet_params, unet_lr, "unet")]
        if options.train_text_encoder:
            te_lr = options.text_encoder_learning_rate or unet_lr / 2
            for (prefix, _), encoder in zip(prefixes[1:], parts.text_encoders, strict=True):
                params = add_adapters(encoder, options.text_encoder_target_modules, self.spec)
                self.modules.append((prefix, encoder))
                groups.append(group(params, te_lr, prefix))
        return groups

    def state(self) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = {}
        for prefix, module in self.modules:
            state.update(adapter_state(module, prefix))
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for prefix, module in self.modules:
            load_adapter_state(module, prefix, state)

    def tensors(self) -> tuple[dict[str, torch.Tensor], float]:
        """Kohya tensors and the alpha the file records."""
        return lora_to_kohya(self.modules, self.spec.alpha)

    def export(
        self, path: Path, config: Any, step: int, info: ExportInfo, trigger: str | None
    ) -> Path:
        tensors, file_alpha = self.tensors()
        metadata = lora_metadata(config, step, info, file_alpha, trigger)
        return save_lora_file(path, tensors, metadata)


class LoraMethod(TrainingMethod):
    config: LoraConfig

    def __init__(self, config: LoraConfig) -> None:
        super().__init__(config)
        self.adapters = LoraAdapters(config, use_dora=config.type == "dora")

    def setup(self, parts: BaseModelParts) -> list[dict[str, Any]]:
        return self.adapters.setup(parts, self.config.learning_rate)

    def caption_recipe(self) -> CaptionRecipe:
        return CaptionRecipe(
            prefix=self.config.caption_prefix,
            delimiter=self.config.shuffle_caption_delimiter,
            dropout=self.config.caption_dropout,
        )

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.adapters.state()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.adapters.load_state(state)

    def export(self, step: int, directory: Path, info: ExportInfo) -> list[Path]:
        path = directory / LORA_FILENAME
        return [self.adapters.export(path, self.config, step, info, self.config.caption_prefix)]


def train(
    config: LoraConfig,
    dataset: Sequence[TrainingExample],
    callbacks: TrainingCallbacks,
    *,
    model_source: str,
    output_dir: Path,
    output_name: str | None = None,
) -> TrainingResult:
    """Train a LoRA or DoRA (config.type) and write kohya-format checkpoints."""
    return run_method(
        LoraMethod(config),
        dataset,
        callbacks,
        model_source=model_source,
        output_dir=output_dir,
        output_name=output_name,
    )
