"""Captions: edit one or many, bulk operations, import from data.jsonl or a zip of .txt files.

An empty or blank caption is stored as NULL, so "uncaptioned" is one simple filter and
``captioned_count`` is a plain COUNT(caption).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

from sqlalchemy.orm import Session

from app.core.errors import Unprocessable
from app.datasets import limits, repository, zipsafe
from app.datasets.images import Rejected, file_size
from app.datasets.names import CaptionMatcher
from app.models import Dataset, DatasetItem

BulkOp = Literal["prepend", "append", "replace", "clear"]


def normalize_caption(text: str | None) -> str | None:
    if text is None:
        return None
    # Captions from files (zip .txt, data.jsonl, imports) may carry NULs, which PostgreSQL text
    # cannot store; JSON requests with one are refused before this (app/core/text_guard.py).
    text = text.replace("\x00", "").strip()
    return text[: limits.MAX_CAPTION_CHARS] or None


def set_captions(
    db: Session, dataset: Dataset, updates: list[tuple[str, str | None]]
) -> list[DatasetItem]:
    """All or nothing: an id that is not in this dataset fails the whole edit (422)."""
    found = repository.items_by_ids(db, dataset, (item_id for item_id, _ in updates))
    missing = [i for i, (item_id, _) in enumerate(updates) if item_id not in found]
    if missing:
        raise Unprocessable(
            f"{len(missing)} item(s) are not in this dataset.",
            errors=[{"loc": ["body", "items", str(i), "id"], "msg": "no such item in dataset"}
                    for i in missing],
        )
    for item_id, caption in updates:
        found[item_id].caption = normalize_caption(caption)
    return [found[item_id] for item_id in dict.fromkeys(i for i, _ in updates)]


def apply_op(
    caption: str | None, op: BulkOp, *, text: str = "", find: str = "", replace: str = "",
    separator: str = " ",
) -> str | None:
    if op == "clear":
        return None
    if op == "replace":
        return normalize_caption((caption or "").replace(find, replace)) if find else caption
    if not text:
        return caption
    if op == "prepend":
        return normalize_caption(f"{text}{separator}{caption}" if caption else text)
    return normalize_caption(f"{caption}{separator}{text}" if caption else text)


def bulk_op(
    db: Session, dataset: Dataset, op: BulkOp, *, item_ids: list[str] | None, **kwargs: Any
) -> int:
    """Apply ``op`` to the given items (all of the dataset's when None); returns how many
    captions changed."""
    if item_ids is None:
        items: Iterable[DatasetItem] = repository.all_items(db, dataset)
    else:
        found = repository.items_by_ids(db, dataset, item_ids)
        if missing := [i for i in item_ids if i not in found]:
            raise Unprocessable(
                f"{len(missing)} item(s) are not in this dataset.",
                errors=[{"loc": ["body", "item_ids"], "msg": f"no such item: {i}"}
                        for i in missing[:20]],
            )
        items = found.values()
    changed = 0
    for item in items:
        new = apply_op(item.caption, op, **kwargs)
        if new != item.caption:
            item.caption = new
            changed += 1
    return changed


@dataclass
class ImportResult:
    updated: int = 0
    unmatched: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _pairs_from_zip(fp: BinaryIO, result: ImportResult) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    with zipsafe.open_zip(fp) as zf:
        for info in zipsafe.checked_entries(zf):
            kind = zipsafe.classify(info)
            try:
                if kind == zipsafe.CAPTION:
                    text = zipsafe.read_text(zf, info, limits.MAX_CAPTION_FILE_BYTES)
                    pairs.append((info.filename, text))
                elif kind == zipsafe.JSONL:
                    found, errors = zipsafe.jsonl_captions(zf, info)
                    result.errors += [f"{info.filename}: {e}" for e in errors]
                    # .txt files win over jsonl lines for the same image, as in zip uploads.
                    pairs[:0] = found
            except Rejected as exc:
                result.errors.append(f"{info.filename}: {exc}")
    return pairs


def _pairs_from_jsonl(fp: BinaryIO, result: ImportResult) -> list[tuple[str, str | None]]:
    fp.seek(0)
    pairs: list[tuple[str, str | None]] = []
    for entry in zipsafe.parse_jsonl(fp):  # a file object iterates line by line
        if isinstance(entry, Rejected):
            result.errors.append(str(entry))
        else:
            pairs.append((entry.image, entry.text))
    return pairs


def import_captions(db: Session, dataset: Dataset, fp: BinaryIO) -> ImportResult:
    """Captions from a data.jsonl file or a zip (of .txt files and/or data.jsonl), matched to
    items by name (see ``CaptionMatcher``). Images inside a zip are ignored here."""
    size = file_size(fp)
    if size > limits.MAX_CAPTIONS_IMPORT_BYTES and not _is_zip(fp):
        raise Unprocessable(
            f"caption file is {size} bytes; the limit is {limits.MAX_CAPTIONS_IMPORT_BYTES}"
        )
    result = ImportResult()
    try:
        pairs = _pairs_from_zip(fp, result) if _is_zip(fp) else _pairs_from_jsonl(fp, result)
    except Rejected as exc:
        raise Unprocessable(str(exc)) from exc
    matcher = CaptionMatcher(repository.all_items(db, dataset))
    captions: dict[str, tuple[DatasetItem, str | None]] = {}
    for path, text in pairs:
        item = matcher.find(path)
        if item is None:
            result.unmatched.append(path)
        else:
            captions[item.id] = (item, text)  # the last word for an image wins
    for item, text in captions.values():
        new = normalize_caption(text)
        if new != item.caption:
            item.caption = new
            result.updated += 1
    return result


def _is_zip(fp: BinaryIO) -> bool:
    fp.seek(0)
    head = fp.read(4)
    fp.seek(0)
    return head in (b"PK\x03\x04", b"PK\x05\x06")
