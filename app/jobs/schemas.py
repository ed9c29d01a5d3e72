from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobType = Literal["lora", "dora", "textual_inversion", "pivotal"]
JobStatus = Literal["queued", "running", "succeeded", "finalized", "cancelling", "cancelled",
                    "failed"]


class JobCreate(BaseModel):
    """The hosted-training form. `advanced` takes every other training option."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Name of the model to train.")
    dataset_id: str
    type: JobType
    base_model: str = Field(description="Key from GET /v1/base-models.")
    template: str | None = Field(None, description="Key from GET /v1/training-templates.")
    caption_prefix: str | None = Field(
        None, max_length=200, description="Trigger word put before every caption (concepts)."
    )
    initial_phrase: str | None = Field(
        None, min_length=1, max_length=8,
        description="At most 8 characters; starts the embedding (TI/pivotal).",
    )
    placeholder_token: str | None = Field(None, description="The new token (TI/pivotal).")
    learning_rate: float | None = Field(None, gt=0, le=1)
    max_train_steps: int | None = Field(None, ge=1, le=100_000)
    validation_prompts: list[str] | None = Field(None, max_length=16)
    validate_every_n_steps: int | None = Field(None, ge=1)
    save_every_n_steps: int | None = Field(None, ge=1)
    advanced: dict[str, Any] = Field(default_factory=dict,
                                     description="Every other training option, validated.")


JobPhase = Literal["loading_model", "caching_latents", "rendering_step0", "training", "saving",
                   "validating"]


class Progress(BaseModel):
    step: int
    total_steps: int
    loss: float | None
    eta_seconds: float | None = Field(
        None, description="Seconds left, from the smoothed measured rate; null while "
        "estimating (before training steps are measured) or when not running.")
    images_per_second: float | None = None
    percent: float
    phase: JobPhase | None = Field(
        None, description="What the running job is doing now; null when not running.")
    phase_done: int | None = Field(None, description="Items of the phase done (n of N).")
    phase_total: int | None = Field(None, description="Items in the phase (N).")
    gpu_seconds: float = Field(0.0, description="GPU time used so far, growing while it runs.")


class JobOut(BaseModel):
    id: str
    name: str
    type: JobType
    status: JobStatus
    base_model: str
    architecture: str
    template: str | None
    dataset_id: str | None
    config: dict[str, Any]
    progress: Progress
    queue_position: int | None
    error: str | None
    attempts: int
    gpu_seconds: float
    retry_of: str | None
    item_count: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BaseModelOut(BaseModel):
    key: str
    name: str
    architecture: Literal["sd15", "sdxl"]
    resolution: int = Field(description="Native size in pixels; job defaults take it.")


class TemplateOut(BaseModel):
    key: str
    name: str
    type: JobType
    architecture: Literal["sd15", "sdxl"]
    description: str
    defaults: dict[str, Any]


class FileOut(BaseModel):
    name: str
    bytes: int
    url: str


class ValidationImageOut(BaseModel):
    prompt: str
    prompt_index: int
    index: int
    seed: int
    url: str


class CheckpointOut(BaseModel):
    step: int
    bytes: int
    files: list[FileOut]
    validation_images: list[ValidationImageOut]


class MetricsOut(BaseModel):
    steps: list[int]
    loss: list[float]
    lr: list[float]
