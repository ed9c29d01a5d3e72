"""Pivotal tuning entry point: a new token and a LoRA that learns against it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worker.training.callbacks import TrainingCallbacks
from worker.training.captions import CaptionRecipe
from worker.training.embeddings import NewToken
from worker.training.engine import group, run_method
from worker.training.export_formats import bundle_embedding, save_lora_file
from worker.training.file_metadata import lora_metadata
from worker.training.lora.train import LORA_FILENAME, LoraAdapters
from worker.training.method import TrainingMethod
from worker.training.model_loading import BaseModelParts
from worker.training.pivotal.config import PivotalConfig
from worker.training.textual_inversion.train import export_embedding
from worker.training.types import ExportInfo, TrainingExample, TrainingResult

BUNDLE_FILENAME = "lora_with_embedding.safetensors"
"""One-file pivotal: the LoRA with the embedding inside, as A1111 reads bundles."""


class PivotalMethod(TrainingMethod):
    config: PivotalConfig

    def __init__(self, config: PivotalConfig) -> None:
        super().__init__(config)
        self.adapters = LoraAdapters(config, use_dora=False)

    def setup(self, parts: BaseModelParts) -> list[dict[str, Any]]:
        self.architecture = parts.architecture
        # The token first: the text-encoder adapters then wrap the grown embedding table.
        self.token = NewToken(self.config, parts.tokenizers, parts.text_encoders)
        groups = self.adapters.setup(parts, self.config.learning_rate)
        embedding = group(self.token.parameters(), self.config.embedding_learning_rate, "embedding")
        return [*groups, embedding]

    def caption_recipe(self) -> CaptionRecipe:
        return CaptionRecipe(
            prefix=self.config.caption_prefix or self.config.placeholder_token,
            delimiter=self.config.shuffle_caption_delimiter,
            dropout=self.config.caption_dropout,
            placeholder=self.config.placeholder_token,
            num_vectors=self.config.num_vectors,
        )

    def _embedding_trains(self, step: int) -> bool:
        return step <= self.config.embedding_steps()

    def prepare_step(self, step: int) -> None:
        self.token.set_trainable(self._embedding_trains(step))

    def text_encoders_frozen(self, step: int) -> bool:
        return not self.config.train_text_encoder and not self._embedding_trains(step)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {**self.adapters.state(), **self.token.state()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.adapters.load_state(state)
        self.token.load_state(state)

    def export(self, step: int, directory: Path, info: ExportInfo) -> list[Path]:
        """The LoRA + embedding pair, and the same two in one file (`bundle_emb.*`)."""
        config, token = self.config, self.config.placeholder_token
        lora = self.adapters.export(directory / LORA_FILENAME, config, step, info, token)
        embedding = export_embedding(self.token, config, self.architecture, step, directory, info)
        if "." in token:
            return [lora, embedding]  # A1111 splits bundle keys on '.': no one-file version
        tensors, file_alpha = self.adapters.tensors()
        bundled = bundle_embedding(tensors, token, self.token.vectors(), self.architecture)
        metadata = lora_metadata(config, step, info, file_alpha, token)
        bundle = save_lora_file(directory / BUNDLE_FILENAME, bundled, metadata)
        return [lora, embedding, bundle]


def train(
    config: PivotalConfig,
    dataset: Sequence[TrainingExample],
    callbacks: TrainingCallbacks,
    *,
    model_source: str,
    output_dir: Path,
    output_name: str | None = None,
) -> TrainingResult:
    """Pivotal tuning: exports a kohya LoRA and a TI embedding per checkpoint."""
    return run_method(
        PivotalMethod(config),
        dataset,
        callbacks,
        model_source=model_source,
        output_dir=output_dir,
        output_name=output_name,
    )
