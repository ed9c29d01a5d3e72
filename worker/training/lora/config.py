"""Configuration of LoRA and DoRA training (no torch)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.training.common_config import CommonTrainingConfig, ConfigError

DEFAULT_UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
DEFAULT_TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


class LoraOptions(BaseModel):
    """Adapter shape and what it trains (shared by LoRA/DoRA and pivotal)."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(
        default=16, ge=1, le=256, description="LoRA rank (dimension); higher = more capacity."
    )
    alpha: float | None = Field(
        default=None,
        gt=0.0,
        le=1024.0,
        description="LoRA alpha; the update is scaled by alpha/rank. null = same as rank "
        "(scale 1). Stored in the file as kohya '.alpha'.",
    )
    lora_dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA branch while training."
    )
    unet_target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNET_TARGETS),
        min_length=1,
        description="UNet module names (suffixes) that get an adapter, e.g. attention "
        "projections 'to_q', 'to_k', 'to_v', 'to_out.0'; add 'proj_in', 'proj_out', "
        "'ff.net.0.proj', 'ff.net.2' for more capacity.",
    )
    text_encoder_target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEXT_ENCODER_TARGETS),
        min_length=1,
        description="Text-encoder module names that get an adapter when train_text_encoder.",
    )
    train_text_encoder: bool = Field(
        default=False,
        description="Also train adapters in the text encoder(s) (both on SDXL).",
    )
    unet_learning_rate: float | None = Field(
        default=None, gt=0.0, le=10.0, description="UNet learning rate; null = learning_rate."
    )
    text_encoder_learning_rate: float | None = Field(
        default=None,
        gt=0.0,
        le=10.0,
        description="Text-encoder learning rate; null = half of the UNet learning rate.",
    )

    @model_validator(mode="after")
    def check_lora(self) -> Self:
        if self.text_encoder_learning_rate is not None and not self.train_text_encoder:
            raise ConfigError(
                "text_encoder_learning_rate",
                "text_encoder_learning_rate is set but train_text_encoder is false; enable "
                "train_text_encoder or remove the learning rate."
            )
        return self

    def resolved_alpha(self) -> float:
        """Alpha with the 'same as rank' default applied."""
        return float(self.rank) if self.alpha is None else self.alpha


class LoraConfig(LoraOptions, CommonTrainingConfig):
    """LoRA ('lora') or DoRA ('dora', LoRA with weight decomposition) concept model."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["lora", "dora"] = Field(
        default="lora", description="'lora', or 'dora' for weight-decomposed LoRA."
    )
    learning_rate: float = Field(
        default=1e-4, gt=0.0, le=10.0, description="Base learning rate of the adapters."
    )
    caption_prefix: str | None = Field(
        default=None,
        min_length=1,
        description="Trigger word put in front of every caption (e.g. 'sks person').",
    )

    @model_validator(mode="after")
    def check_text_encoder_cache(self) -> Self:
        if self.train_text_encoder and self.cache_text_encoder_outputs:
            raise ConfigError(
                "cache_text_encoder_outputs",
                "cache_text_encoder_outputs cannot be combined with train_text_encoder: a "
                "trained text encoder gives new outputs every step. Turn one of them off."
            )
        return self

    def text_encoder_trained(self) -> bool:
        return self.train_text_encoder
