"""Caption construction: templates, trigger words, shuffling and dropout (no torch)."""

from __future__ import annotations

import random
from dataclasses import dataclass

OBJECT_TEMPLATES = [
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a good photo of a {}",
]
STYLE_TEMPLATES = [
    "a painting in the style of {}",
    "a rendering in the style of {}",
    "a picture in the style of {}",
    "a cropped painting in the style of {}",
    "the painting in the style of {}",
    "a clean painting in the style of {}",
    "a good painting in the style of {}",
    "an artwork in the style of {}",
]


def placeholder_tokens(placeholder: str, num_vectors: int) -> list[str]:
    """Token names of a multi-vector embedding, named the way diffusers names them on load."""
    return [placeholder] + [f"{placeholder}_{i}" for i in range(1, num_vectors)]


def expand_placeholder(text: str, placeholder: str, num_vectors: int) -> str:
    """Replace `placeholder` by all of its vector tokens (what diffusers does to prompts)."""
    return text.replace(placeholder, " ".join(placeholder_tokens(placeholder, num_vectors)))


@dataclass(frozen=True)
class CaptionRecipe:
    """How a training caption is made from a dataset caption.

    templates: if set, the dataset caption is ignored and a random template is filled with the
    trigger. prefix: the trigger put in front of the caption (or template argument).
    placeholder/num_vectors: a new token expanded into its vector tokens.
    """

    prefix: str | None = None
    templates: tuple[str, ...] | None = None
    delimiter: str | None = None
    dropout: float = 0.0
    placeholder: str | None = None
    num_vectors: int = 1

    def build(self, caption: str | None, rng: random.Random) -> str:
        # Always draw the same random numbers in the same order, so a resumed run makes the
        # same captions as an uninterrupted one.
        drop = rng.random() < self.dropout
        template_pick = rng.random()
        text = self._compose(caption or "", rng, template_pick)
        if self.placeholder is not None:
            text = expand_placeholder(text, self.placeholder, self.num_vectors)
        return "" if drop else text

    def _compose(self, caption: str, rng: random.Random, template_pick: float) -> str:
        trigger = self.prefix or ""
        if self.templates:
            template = self.templates[int(template_pick * len(self.templates))]
            return template.format(trigger)
        if self.delimiter:
            parts = [p.strip() for p in caption.split(self.delimiter) if p.strip()]
            rng.shuffle(parts)
            caption = f"{self.delimiter} ".join(parts)
        if self.placeholder is not None and self.placeholder in caption:
            return caption
        return " ".join(part for part in (trigger, caption) if part)
