"""Request and response bodies of finalize and the model library."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ModelType = Literal["lora", "dora", "textual_inversion", "pivotal"]
Architecture = Literal["sd15", "sdxl"]
MAX_NAME = 200


def _clean_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class FinalizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[int] = Field(
        min_length=1, max_length=100,
        description="Checkpoint steps to keep; each becomes one model in the library.",
    )
    names: list[str] | None = Field(
        None, description="One model name per step, in the same order; default "
        "'<job name> · step N'.",
    )

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[int]) -> list[int]:
        duplicates = sorted({s for s in steps if steps.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate steps: {duplicates}")
        return steps

    @field_validator("names")
    @classmethod
    def _clean_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        cleaned = [_clean_name(n) for n in names]
        if any(len(n) > MAX_NAME for n in cleaned):
            raise ValueError(f"names are at most {MAX_NAME} characters")
        return cleaned

    @model_validator(mode="after")
    def _names_match_steps(self) -> Self:
        if self.names is not None and len(self.names) != len(self.steps):
            raise ValueError(
                f"names has {len(self.names)} entries but steps has {len(self.steps)}; "
                "give one name per step or none"
            )
        return self


class ModelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, description="New model name.")

    @field_validator("name")
    @classmethod
    def _strip(cls, name: str) -> str:
        return _clean_name(name)


class ModelFileOut(BaseModel):
    name: str
    bytes: int
    sha256: str
    url: str = Field(description="Short-lived download URL.")


class PreviewImageOut(BaseModel):
    url: str
    prompt: str
    prompt_index: int
    index: int
    seed: int


class ModelOut(BaseModel):
    id: str
    name: str
    type: str
    architecture: str
    base_model: str
    trigger: str | None = Field(description="Caption prefix (LoRA/DoRA) or placeholder token.")
    step: int
    job_id: str | None
    dataset_id: str | None
    bytes: int = Field(description="Size of the model's files.")
    storage_bytes: int = Field(description="Storage held: files plus preview images.")
    files: list[ModelFileOut]
    preview_images: list[PreviewImageOut]
    config: dict[str, Any] = Field(description="The training settings the model came from.")
    created_at: datetime


class FinalizeOut(BaseModel):
    models: list[ModelOut]
