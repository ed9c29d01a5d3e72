"""File names: cleaning user-supplied names, the names an export uses, and matching caption
files (``cats/001.txt``, data.jsonl ``image`` fields) back to items."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from app.models import DatasetItem

_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f]")
EXT_BY_CONTENT_TYPE = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def clean_filename(name: str, *, keep_dirs: bool = False) -> str:
    """A display name safe to show and to use as an export path: forward slashes, no control
    characters, no empty/``.``/``..`` segments, at most 255 characters (extension kept)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not keep_dirs:
        parts = parts[-1:]
    cleaned = _UNSAFE_CHARS.sub("", "/".join(parts)).strip() or "unnamed"
    if len(cleaned) > 255:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) < 16 else cleaned[:255]
    return cleaned


def split_ext(path: str) -> tuple[str, str]:
    """("cats/001", ".png") — only the last segment's extension counts."""
    stem, ext = posixpath.splitext(path)
    return stem, ext


def stem_key(path: str) -> str:
    """Matching key for caption files: path without extension, case-insensitive."""
    return split_ext(clean_filename(path, keep_dirs=True))[0].casefold()


def export_names(items: Sequence[DatasetItem]) -> dict[str, str]:
    """item id -> path inside the export zip.

    The extension is the verified format's (a JPEG uploaded as ``x.png`` exports as ``x.jpg``)
    and stems are unique case-insensitively, because each image's caption file is
    ``<stem>.txt``: ``a.png`` and ``a.jpg`` would otherwise share ``a.txt``.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for item in items:
        stem = split_ext(clean_filename(item.filename, keep_dirs=True))[0] or "image"
        candidate, n = stem, 2
        while candidate.casefold() in taken or candidate.casefold() == "data":
            candidate, n = f"{stem}-{n}", n + 1
        taken.add(candidate.casefold())
        ext = EXT_BY_CONTENT_TYPE.get(item.content_type, "img")
        names[item.id] = f"{candidate}.{ext}"
    return names


class CaptionMatcher:
    """Finds the item a caption file or data.jsonl line is about.

    Tried in order: the export's name for the item (so export -> import round-trips exactly),
    the item's own filename, then the bare file name (folders ignored) when unique.
    """

    def __init__(self, items: Sequence[DatasetItem]) -> None:
        self._index: dict[str, DatasetItem] = {}
        exported = export_names(items)
        for item in items:
            self._index.setdefault(stem_key(exported[item.id]), item)
        for item in items:
            self._index.setdefault(stem_key(item.filename), item)
        bare: dict[str, list[DatasetItem]] = {}
        for item in items:
            bare.setdefault(stem_key(posixpath.basename(item.filename)), []).append(item)
        self._bare = {key: found[0] for key, found in bare.items() if len(found) == 1}

    def find(self, path: str) -> DatasetItem | None:
        key = stem_key(path)
        return self._index.get(key) or self._bare.get(posixpath.basename(key))
