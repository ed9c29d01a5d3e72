"""The training config union and its parser (no torch: the API validates requests with it)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from worker.training.lora.config import LoraConfig
from worker.training.pivotal.config import PivotalConfig
from worker.training.textual_inversion.config import TextualInversionConfig

TrainingConfig = Annotated[
    TextualInversionConfig | LoraConfig | PivotalConfig,
    Field(discriminator="type"),
]
"""Any training config, told apart by its `type` field."""

_ADAPTER: TypeAdapter[TrainingConfig] = TypeAdapter(TrainingConfig)

TRAINING_TYPES = ("textual_inversion", "lora", "dora", "pivotal")


def parse_config(data: dict[str, Any]) -> TrainingConfig:
    """Validate a config dict; raises pydantic.ValidationError with user-readable messages."""
    return _ADAPTER.validate_python(data)


def config_json_schema() -> dict[str, Any]:
    """JSON schema of the union (field descriptions included), e.g. for API docs."""
    return _ADAPTER.json_schema()
