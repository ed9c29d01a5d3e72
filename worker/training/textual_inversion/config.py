"""Configuration of textual-inversion training (no torch)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.training.common_config import CommonTrainingConfig, ConfigError

CaptionTemplates = Literal["object", "style", "own_captions"]

MAX_INITIAL_PHRASE_CHARS = 8


class EmbeddingOptions(BaseModel):
    """The new token and how its vectors start (shared by textual inversion and pivotal)."""

    model_config = ConfigDict(extra="forbid")

    placeholder_token: str = Field(
        default="<concept>",
        min_length=1,
        max_length=40,
        description="The new word to train, used in prompts (e.g. '<my-cat>'). With several "
        "vectors it expands to '<my-cat> <my-cat>_1 ...' exactly as diffusers does on load.",
    )
    num_vectors: int = Field(
        default=4, ge=1, le=16, description="Embedding vectors behind the placeholder token."
    )
    initial_phrase: str | None = Field(
        default=None,
        min_length=1,
        description="A short phrase (at most 8 characters, e.g. 'cat') whose token embeddings "
        "initialise the vectors.",
    )
    initializer_token: str | None = Field(
        default=None,
        min_length=1,
        description="One existing token whose embedding initialises every vector. If neither "
        "this nor initial_phrase is given, vectors start at the mean token embedding.",
    )

    @field_validator("placeholder_token")
    @classmethod
    def no_whitespace(cls, value: str) -> str:
        if any(char.isspace() for char in value):
            raise ValueError("placeholder_token must be one word without spaces, e.g. '<my-cat>'")
        return value

    @model_validator(mode="after")
    def check_initialisation(self) -> Self:
        if self.initial_phrase is not None and self.initializer_token is not None:
            raise ConfigError(
                "initializer_token",
                "give either initial_phrase or initializer_token, not both: both say how the "
                "new embedding starts."
            )
        if self.initial_phrase is not None and len(self.initial_phrase) > MAX_INITIAL_PHRASE_CHARS:
            raise ConfigError(
                "initial_phrase",
                f"the initial phrase has at most {MAX_INITIAL_PHRASE_CHARS} characters "
                f"({self.initial_phrase!r} has {len(self.initial_phrase)}); use a short word "
                "close to the concept, e.g. 'cat'.",
            )
        return self


class TextualInversionConfig(EmbeddingOptions, CommonTrainingConfig):
    """Textual inversion: only the new token's embedding vectors are trained."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["textual_inversion"] = Field(
        default="textual_inversion", description="Training method."
    )
    learning_rate: float = Field(
        default=5e-3, gt=0.0, le=10.0, description="Learning rate of the embedding vectors."
    )
    caption_templates: CaptionTemplates = Field(
        default="object",
        description="'object' or 'style' use built-in prompt templates around the token "
        "('a photo of a <token>' / 'a painting in the style of <token>'); 'own_captions' uses "
        "the dataset's captions with the token put in front unless they already contain it.",
    )
    validate_every_n_steps: int | None = Field(
        default=500, ge=1, description="Render validation images every N steps."
    )
    save_every_n_steps: int | None = Field(
        default=500, ge=1, description="Save a checkpoint and resumable state every N steps."
    )
    max_train_steps: int = Field(
        default=2000, ge=1, le=1_000_000, description="Number of optimizer steps to train."
    )

    @model_validator(mode="after")
    def check_ti(self) -> Self:
        if self.cache_text_encoder_outputs:
            raise ConfigError(
                "cache_text_encoder_outputs",
                "cache_text_encoder_outputs cannot be used with textual inversion: the "
                "embedding being trained lives inside the text encoder, so its outputs change "
                "every step."
            )
        if self.caption_templates != "own_captions":
            for name in ("shuffle_caption_delimiter",):
                if getattr(self, name) is not None:
                    raise ConfigError(
                        name,
                        f"{name} only applies to the dataset's own captions; set "
                        "caption_templates: own_captions or remove it."
                    )
        return self

    def text_encoder_trained(self) -> bool:
        return True
