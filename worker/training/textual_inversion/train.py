"""Textual-inversion training entry point."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from worker.training.callbacks import TrainingCallbacks
from worker.training.captions import OBJECT_TEMPLATES, STYLE_TEMPLATES, CaptionRecipe
from worker.training.embeddings import NewToken
from worker.training.engine import group, run_method
from worker.training.export_formats import save_embedding_file
from worker.training.file_metadata import modelspec
from worker.training.method import TrainingMethod
from worker.training.model_loading import BaseModelParts
from worker.training.textual_inversion.config import EmbeddingOptions, TextualInversionConfig
from worker.training.types import ExportInfo, TrainingExample, TrainingResult

EMBEDDING_FILENAME = "embedding.safetensors"


def embedding_metadata(
    options: EmbeddingOptions, architecture: Any, step: int, info: ExportInfo, resolution: int
) -> dict[str, str]:
    """Atelier's own keys plus `modelspec.*` (kohya's `sai_model_spec` for TI files)."""
    return {
        "placeholder_token": options.placeholder_token,
        "num_vectors": str(options.num_vectors),
        "step": str(step),
        "trained_with": "Atelier",
        **modelspec(architecture, "textual-inversion", info, options.placeholder_token, resolution),
    }


def export_embedding(
    token: NewToken, config: Any, architecture: Any, step: int, directory: Path, info: ExportInfo
) -> Path:
    return save_embedding_file(
        directory / EMBEDDING_FILENAME,
        token.vectors(),
        architecture,
        embedding_metadata(config, architecture, step, info, config.resolution),
    )


class TextualInversionMethod(TrainingMethod):
    config: TextualInversionConfig

    def setup(self, parts: BaseModelParts) -> list[dict[str, Any]]:
        self.architecture = parts.architecture
        self.token = NewToken(self.config, parts.tokenizers, parts.text_encoders)
        return [group(self.token.parameters(), self.config.learning_rate, "embedding")]

    def caption_recipe(self) -> CaptionRecipe:
        presets = {"object": OBJECT_TEMPLATES, "style": STYLE_TEMPLATES}
        templates = presets.get(self.config.caption_templates)
        return CaptionRecipe(
            prefix=self.config.placeholder_token,
            templates=tuple(templates) if templates else None,
            delimiter=self.config.shuffle_caption_delimiter,
            dropout=self.config.caption_dropout,
            placeholder=self.config.placeholder_token,
            num_vectors=self.config.num_vectors,
        )

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return self.token.state()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.token.load_state(state)

    def export(self, step: int, directory: Path, info: ExportInfo) -> list[Path]:
        token, config, arch = self.token, self.config, self.architecture
        return [export_embedding(token, config, arch, step, directory, info)]


def train(
    config: TextualInversionConfig,
    dataset: Sequence[TrainingExample],
    callbacks: TrainingCallbacks,
    *,
    model_source: str,
    output_dir: Path,
    output_name: str | None = None,
) -> TrainingResult:
    """Train a textual-inversion embedding and write `.safetensors` checkpoints."""
    method = TextualInversionMethod(config)
    return run_method(
        method,
        dataset,
        callbacks,
        model_source=model_source,
        output_dir=output_dir,
        output_name=output_name,
    )
