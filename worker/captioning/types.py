"""The captioning library's public types (no torch, so anything may import them cheaply)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

CaptionerKind = Literal["sentence", "tags"]
KINDS: tuple[CaptionerKind, ...] = ("sentence", "tags")

DEFAULT_SENTENCE_TOKENS = 40
DEFAULT_MAX_TAGS = 30


class CaptionerLoadError(Exception):
    """A captioner could not be loaded; the message is safe to show an operator."""


@runtime_checkable
class Captioner(Protocol):
    kind: CaptionerKind

    def caption(
        self, images: Sequence[Image.Image], *, max_length: int | None = None
    ) -> list[str]:
        """One caption per image, in order.

        sentence: at most `max_length` tokens (default 40); tags: comma-separated, most confident
        first, at most `max_length` tags (default 30)."""
        ...


def check_max_length(max_length: int | None, default: int) -> int:
    if max_length is None:
        return default
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    return max_length


def first_line(error: BaseException) -> str:
    """An exception's first message line: what a load error may quote (never a traceback)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
