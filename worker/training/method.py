"""What a training method plugs into the shared loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch

from worker.training.captions import CaptionRecipe
from worker.training.common_config import CommonTrainingConfig
from worker.training.model_loading import BaseModelParts
from worker.training.types import ExportInfo


class TrainingMethod(ABC):
    """One method (TI, LoRA/DoRA, pivotal): its trainable weights, captions and exports."""

    def __init__(self, config: CommonTrainingConfig) -> None:
        self.config = config

    @abstractmethod
    def setup(self, parts: BaseModelParts) -> list[dict[str, Any]]:
        """Add trainable weights to the (already placed) models; return optimizer groups."""

    @abstractmethod
    def caption_recipe(self) -> CaptionRecipe:
        """How dataset captions become training captions."""

    @abstractmethod
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every trained tensor, by a stable name (for resumable states)."""

    @abstractmethod
    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore tensors produced by `trainable_state`."""

    @abstractmethod
    def export(self, step: int, directory: Path, info: ExportInfo) -> list[Path]:
        """Write the user-facing files of this step into `directory`."""

    def text_encoders_frozen(self, step: int) -> bool:
        """Whether text-encoder outputs at `step` equal those of any later step (cacheable)."""
        return not self.config.text_encoder_trained()

    def prepare_step(self, step: int) -> None:  # noqa: B027 - optional hook
        """Hook before each step (pivotal freezes its embedding after its phase)."""
        return None
