"""Request and response bodies of the datasets API (API.md "Datasets")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.datasets import limits

_MAX_CAPTION = limits.MAX_CAPTION_CHARS


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)


class DatasetOut(BaseModel):
    id: str
    name: str
    description: str
    item_count: int
    captioned_count: int
    total_bytes: int
    created_at: datetime
    updated_at: datetime


class SuggestionOut(BaseModel):
    """A caption job's suggestion, shown beside the caption until accepted or discarded."""

    text: str
    caption_job_id: str
    prefix: str | None = Field(description="The job's prefix, put before the text on accept.")
    created_at: datetime


class ItemOut(BaseModel):
    id: str
    dataset_id: str
    filename: str
    width: int
    height: int
    bytes: int
    content_type: str
    sha256: str
    caption: str | None
    url: str = Field(description="Presigned (or signed local) URL of the image.")
    thumbnail_url: str | None = Field(description="Small WebP preview.")
    suggestion: SuggestionOut | None = Field(
        None, description="A caption job's suggestion; the caption is unchanged until accepted.")
    created_at: datetime


class Rejection(BaseModel):
    filename: str
    reason: str


class UploadResult(BaseModel):
    created: list[ItemOut]
    rejected: list[Rejection]


class FileDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=1000)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0, description="Exact size in bytes; checked when completing.")


class PresignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[FileDeclaration] = Field(min_length=1, max_length=limits.MAX_PRESIGN_FILES)


class PresignedUploadOut(BaseModel):
    upload_id: str
    filename: str
    url: str
    method: Literal["POST", "PUT"]
    fields: dict[str, str] = Field(description="Form fields to send with a POST upload.")
    headers: dict[str, str] = Field(description="Headers to send with a PUT upload.")
    expires_at: datetime


class PresignResponse(BaseModel):
    uploads: list[PresignedUploadOut]
    rejected: list[Rejection] = Field(description="Declarations refused before any upload.")


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upload_ids: list[str] = Field(min_length=1, max_length=limits.MAX_PRESIGN_FILES)


class CaptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    caption: str | None = Field(max_length=_MAX_CAPTION)


class CaptionEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    caption: str | None = Field(max_length=_MAX_CAPTION)


class BulkCaptionEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[CaptionEdit] = Field(min_length=1, max_length=limits.MAX_BULK_ITEMS)


class BulkEditResult(BaseModel):
    updated: int
    items: list[ItemOut]


class BulkCaptionOp(BaseModel):
    """prepend/append ``text`` (joined with ``separator``), replace ``find`` by ``replace``
    (literal, case-sensitive), or clear. Applies to ``item_ids``, or to every item."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["prepend", "append", "replace", "clear"]
    text: str = Field("", max_length=_MAX_CAPTION)
    separator: str = Field(" ", max_length=20)
    find: str = Field("", max_length=_MAX_CAPTION)
    replace: str = Field("", max_length=_MAX_CAPTION)
    item_ids: list[str] | None = Field(None, max_length=limits.MAX_BULK_ITEMS)

    @model_validator(mode="after")
    def _needs(self) -> BulkCaptionOp:
        if self.op in ("prepend", "append") and not self.text:
            raise ValueError(f"'{self.op}' needs a non-empty 'text'")
        if self.op == "replace" and not self.find:
            raise ValueError("'replace' needs a non-empty 'find'")
        return self


class BulkOpResult(BaseModel):
    updated: int


class CaptionImportResult(BaseModel):
    updated: int
    unmatched: list[str] = Field(description="Image names that match no item.")
    errors: list[str] = Field(description="Lines or files that could not be read.")
