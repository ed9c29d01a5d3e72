"""Request and response bodies of the captioning API (docs/captioning.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.datasets import limits
from app.datasets.schemas import ItemOut, SuggestionOut

CaptionStyle = Literal["sentence", "tags"]
CaptionMode = Literal["uncaptioned", "all"]
CaptionJobStatus = Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed"]
MAX_PREFIX = 200
MAX_LENGTH = 256


class CaptionerOut(BaseModel):
    key: str
    name: str
    kind: CaptionStyle


class CaptionerList(BaseModel):
    items: list[CaptionerOut]


class CaptionJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    captioner: str = Field(min_length=1, max_length=100,
                           description="Key from GET /v1/captioners.")
    mode: CaptionMode = Field("uncaptioned", description="Caption only the images without a "
                              "caption, or every image (their captions stay until accepted).")
    style: CaptionStyle | None = Field(None, description="Default: the captioner's kind; must "
                                       "equal it.")
    prefix: str | None = Field(None, max_length=MAX_PREFIX,
                               description="Trigger word put before each caption on accept.")
    max_length: int | None = Field(None, ge=1, le=MAX_LENGTH, description="At most this many "
                                   "tokens (sentence, default 40) or tags (tags, default 30).")


class CaptionProgress(BaseModel):
    done: int
    total: int


class CaptionJobOut(BaseModel):
    id: str
    dataset_id: str | None
    captioner: str
    mode: CaptionMode
    style: CaptionStyle
    prefix: str | None
    max_length: int | None
    status: CaptionJobStatus
    progress: CaptionProgress
    gpu_seconds: float
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SuggestionRow(BaseModel):
    item_id: str
    caption: str | None
    suggestion: SuggestionOut


class SuggestionList(BaseModel):
    items: list[SuggestionRow]


class AcceptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(max_length=64)
    caption: str | None = Field(None, max_length=limits.MAX_CAPTION_CHARS,
                                description="Edited text accepted instead of the suggestion.")


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AcceptEntry] | None = Field(None, min_length=1,
                                            max_length=limits.MAX_BULK_ITEMS)
    all: bool = Field(False, description="Accept every suggestion of the dataset.")
    prefix: str | None = Field(None, max_length=MAX_PREFIX, description="Put before each "
                               "accepted caption (default: the job's prefix).")

    @model_validator(mode="after")
    def _one_target(self) -> AcceptRequest:
        if (self.items is None) == (not self.all):
            raise ValueError("give either 'items' or 'all': true (not both)")
        return self


class AcceptResult(BaseModel):
    accepted: int
    items: list[ItemOut]


class DiscardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[str] | None = Field(None, min_length=1, max_length=limits.MAX_BULK_ITEMS)
    all: bool = Field(False, description="Discard every suggestion of the dataset.")

    @model_validator(mode="after")
    def _one_target(self) -> DiscardRequest:
        if (self.item_ids is None) == (not self.all):
            raise ValueError("give either 'item_ids' or 'all': true (not both)")
        return self


class DiscardResult(BaseModel):
    discarded: int
