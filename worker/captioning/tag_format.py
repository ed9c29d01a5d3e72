"""Choosing and writing WD-tagger tags (no torch, no onnxruntime)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.captioning.types import CaptionerLoadError

TAGS_FILE = "selected_tags.csv"
CSV_COLUMNS = ("tag_id", "name", "category", "count")
# Danbooru categories as the WD taggers' selected_tags.csv numbers them.
GENERAL, CHARACTER, RATING = 0, 4, 9
# Thresholds the WD v3 taggers are usually run at: characters need far more confidence.
GENERAL_THRESHOLD = 0.35
CHARACTER_THRESHOLD = 0.85
# Emoticon tags whose underscores are part of the face, not word separators.
KAOMOJI = frozenset({
    "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3",
    "6_9", ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||",
})


@dataclass(frozen=True)
class TagTable:
    names: list[str]
    categories: list[int]

    def __len__(self) -> int:
        return len(self.names)


def read_tag_table(path: Path) -> TagTable:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("name", "category") if c not in (reader.fieldnames or [])]
            if missing:
                raise CaptionerLoadError(f"{path.name} lacks the column(s) {', '.join(missing)}")
            rows = [(row["name"], int(row["category"])) for row in reader]
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CaptionerLoadError(f"{path.name} could not be read: {error}") from None
    if not rows:
        raise CaptionerLoadError(f"{path.name} lists no tags")
    return TagTable([name for name, _ in rows], [category for _, category in rows])


def tag_text(name: str) -> str:
    """How a tag is written in a caption: underscores become spaces (kaomoji stay as drawn).

    Parentheses are kept as they are, unescaped: the caption is training text that the trainer
    tokenizes verbatim, not an A1111 prompt where "(" would mean emphasis."""
    return name if name in KAOMOJI else name.replace("_", " ")


def select_tags(table: TagTable, probabilities: Sequence[float], limit: int) -> list[str]:
    """General and character tags over their thresholds, most confident first (ratings never)."""
    chosen: list[tuple[float, int]] = []
    for index, (category, probability) in enumerate(
        zip(table.categories, probabilities, strict=True)
    ):
        if category == CHARACTER:
            keep = probability >= CHARACTER_THRESHOLD
        elif category == RATING:
            keep = False
        else:
            keep = probability >= GENERAL_THRESHOLD
        if keep:
            chosen.append((float(probability), index))
    chosen.sort(key=lambda pair: (-pair[0], pair[1]))
    return [tag_text(table.names[index]) for _, index in chosen[:limit]]
