"""Configuration of pivotal tuning: a new token and a LoRA trained together (no torch)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from worker.training.common_config import CommonTrainingConfig, ConfigError
from worker.training.lora.config import LoraOptions
from worker.training.textual_inversion.config import EmbeddingOptions


class PivotalConfig(LoraOptions, EmbeddingOptions, CommonTrainingConfig):
    """Pivotal tuning: the LoRA learns against a newly trained token (both files exported)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["pivotal"] = Field(default="pivotal", description="Training method.")
    learning_rate: float = Field(
        default=1e-4, gt=0.0, le=10.0, description="Base learning rate of the LoRA adapters."
    )
    embedding_learning_rate: float = Field(
        default=1e-3, gt=0.0, le=10.0, description="Learning rate of the new token's vectors."
    )
    embedding_train_fraction: float = Field(
        default=0.5,
        description="Share of the steps (from the start) during which the embedding trains; "
        "afterwards it is frozen and only the LoRA learns. 0 to 1.",
    )
    caption_prefix: str | None = Field(
        default=None,
        min_length=1,
        description="Text put before every caption; it must contain placeholder_token "
        "(e.g. 'a photo of <my-cat>'). null = the placeholder token alone.",
    )

    @model_validator(mode="after")
    def check_pivotal(self) -> Self:
        if not 0.0 <= self.embedding_train_fraction <= 1.0:
            raise ConfigError(
                "embedding_train_fraction",
                f"embedding_train_fraction must be between 0 and 1 (got "
                f"{self.embedding_train_fraction}); it is the share of steps that train the "
                "embedding, e.g. 0.5 for the first half."
            )
        if self.caption_prefix is not None and self.placeholder_token not in self.caption_prefix:
            raise ConfigError(
                "caption_prefix",
                f"the caption prefix {self.caption_prefix!r} must contain the placeholder "
                f"token {self.placeholder_token!r}, or the LoRA never learns against it; "
                f"write it in, e.g. 'a photo of {self.placeholder_token}', or leave the "
                "caption prefix empty to use the token alone.",
            )
        if self.cache_text_encoder_outputs and (
            self.train_text_encoder or self.embedding_train_fraction > 0
        ):
            raise ConfigError(
                "cache_text_encoder_outputs",
                "cache_text_encoder_outputs cannot be forced on for pivotal tuning while the "
                "embedding or text encoder trains; leave it unset (automatic): outputs are then "
                "cached once the embedding phase is over."
            )
        return self

    def text_encoder_trained(self) -> bool:
        return True

    def embedding_steps(self) -> int:
        """Number of first steps that train the embedding."""
        return round(self.max_train_steps * self.embedding_train_fraction)
