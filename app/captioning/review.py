"""Reviewing suggestions: list, accept (as suggested or edited, with the prefix), discard.

Accept is the only way a suggestion becomes a caption. Both are all or nothing: an item that
is not in the dataset (or, to accept, has no suggestion) fails the request, 422 naming it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.captioning.schemas import AcceptEntry
from app.core.errors import Unprocessable
from app.datasets import repository
from app.datasets.captions import normalize_caption
from app.models import CaptionSuggestion, Dataset, DatasetItem


def clean_prefix(prefix: str | None) -> str | None:
    return (prefix or "").strip() or None


def with_prefix(text: str, prefix: str | None) -> str | None:
    """``PREFIX, text`` unless the text already starts with the prefix."""
    text, prefix = text.strip(), clean_prefix(prefix)
    if prefix is None or text.startswith(prefix):
        return normalize_caption(text)
    return normalize_caption(f"{prefix}, {text}" if text else prefix)


def suggested_items(db: Session, dataset: Dataset) -> list[DatasetItem]:
    """The dataset's items that have a suggestion, oldest first."""
    return list(db.scalars(repository.items_stmt(dataset).join(
        CaptionSuggestion, CaptionSuggestion.item_id == DatasetItem.id).order_by(DatasetItem.id)))


def _items(db: Session, dataset: Dataset, ids: list[str], *, accepting: bool) -> list[DatasetItem]:
    found = repository.items_by_ids(db, dataset, ids)
    problems = []
    for i, item_id in enumerate(ids):
        item = found.get(item_id)
        if item is None:
            problems.append((i, item_id, "no such item in this dataset"))
        elif accepting and item.suggestion is None:
            problems.append((i, item_id, "this item has no suggestion to accept"))
    if problems:
        names = ", ".join(f"{item_id[:40]} ({msg})" for _, item_id, msg in problems[:5])
        field = ["items", "{i}", "item_id"] if accepting else ["item_ids", "{i}"]
        raise Unprocessable(
            f"{len(problems)} item(s) cannot be {'accepted' if accepting else 'discarded'}: "
            f"{names}. Nothing was changed.",
            errors=[{"loc": ["body", *(p.format(i=i) for p in field)], "msg": msg}
                    for i, _, msg in problems[:50]])
    return [found[item_id] for item_id in dict.fromkeys(ids)]


def accept(db: Session, dataset: Dataset, entries: list[AcceptEntry] | None,
           prefix: str | None) -> list[DatasetItem]:
    """Write the suggestion (or the entry's edited caption) as the caption, with the
    request's prefix, else the job's; every suggestion of the dataset when ``entries`` is
    None. The accepted suggestions are gone afterwards."""
    if entries is None:
        items, edits = suggested_items(db, dataset), {}
    else:
        items = _items(db, dataset, [e.item_id for e in entries], accepting=True)
        edits = {e.item_id: e.caption for e in entries if e.caption is not None}
    for item in items:
        suggestion = item.suggestion
        assert suggestion is not None
        item.caption = with_prefix(edits.get(item.id, suggestion.text),
                                   clean_prefix(prefix) or suggestion.prefix)
        item.suggestion = None
    db.flush()
    return items


def discard(db: Session, dataset: Dataset, item_ids: list[str] | None) -> int:
    """Drop suggestions (every one of the dataset when ``item_ids`` is None); captions stay."""
    if item_ids is None:
        items = suggested_items(db, dataset)
    else:
        items = [i for i in _items(db, dataset, item_ids, accepting=False) if i.suggestion]
    for item in items:
        item.suggestion = None
    db.flush()
    return len(items)
