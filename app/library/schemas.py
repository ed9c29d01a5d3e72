"""Request and response bodies of finalize and the model library."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ModelType = Literal["lora", "dora", "textual_inversion", "pivotal"]
Architecture = Literal["sd15", "sdxl"]
MAX_NAME = 200
LINK_DEFAULT_DAYS = 90
LINK_MAX_DAYS = 365  # long-lived, yet a forgotten link still ends


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
    names: list[str] | dict[int, str] | None = Field(
        None, description="Model names: one per step in the same order, or an object "
        "{step: name} naming some of them. Unnamed steps get '<job name> · step N' (with "
        "' (2)'... added if that name is taken). Names are unique within the organization: "
        "a name already in the library is a 409.",
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
    def _clean_names(
        cls, names: list[str] | dict[int, str] | None
    ) -> list[str] | dict[int, str] | None:
        if names is None:
            return None
        values = names.values() if isinstance(names, dict) else names
        if any(len(n.strip()) > MAX_NAME for n in values):
            raise ValueError(f"a model name has at most {MAX_NAME} characters")
        if isinstance(names, dict):
            return {step: _clean_name(n) for step, n in names.items()}
        return [_clean_name(n) for n in names]

    @model_validator(mode="after")
    def _names_match_steps(self) -> Self:
        if isinstance(self.names, list) and len(self.names) != len(self.steps):
            raise ValueError(
                f"names has {len(self.names)} entries but steps has {len(self.steps)}; "
                "give one name per step or none"
            )
        if isinstance(self.names, dict):
            stray = sorted(set(self.names) - set(self.steps))
            if stray:
                raise ValueError(f"names are given for steps {stray}, which are not being kept")
        given = self.given_names()
        twice = sorted({n for n in given.values() if list(given.values()).count(n) > 1})
        if twice:
            raise ValueError(f"each model needs its own name; {twice[0]!r} is used twice")
        return self

    def given_names(self) -> dict[int, str]:
        """The names the caller chose, by step."""
        if isinstance(self.names, dict):
            return dict(self.names)
        return dict(zip(self.steps, self.names or [], strict=False))


class ModelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, description="New model name.")

    @field_validator("name")
    @classmethod
    def _strip(cls, name: str) -> str:
        return _clean_name(name)


class ModelFileOut(BaseModel):
    name: str = Field(description="The file's name in the model (pass it as ?file=).")
    download_name: str = Field(
        description="The name the file downloads under: from the model's name, or for an "
        "embedding its trigger word (A1111 and ComfyUI use it as the prompt word).")
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


class ModelLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=MAX_NAME,
                      description="What the link is for (e.g. 'studio InvokeAI').")
    expires_in_days: int = Field(
        LINK_DEFAULT_DAYS, ge=1, le=LINK_MAX_DAYS,
        description=f"Days until the link stops working (1-{LINK_MAX_DAYS}).")


class ModelLinkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    model_id: str
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ModelLinkFile(BaseModel):
    name: str = Field(description="The file's name in the model.")
    download_name: str = Field(description="The name the file downloads under.")
    url: str = Field(description="Public URL of this file (the token is the credential).")


class ModelLinkCreated(ModelLinkOut):
    files: list[ModelLinkFile] = Field(
        description="One URL per file; shown only now (only the token's hash is stored).")
