"""Model names (unique within an org) and the file names a download gets.

Other tools take meaning from file names: A1111 and ComfyUI use an embedding's file name as the
word to type in a prompt, and ``<lora:NAME:1>`` names the LoRA file. So a download is named from
the model (``tabby-lora-v2-step-40.safetensors``) and an embedding from its trigger word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.library.schemas import MAX_NAME
from app.models import Model

EMBEDDING_FILE = "embedding.safetensors"
LORA_FILE = "lora.safetensors"
MAX_STEM = 120
_NOT_WORD = re.compile(r"[^\w]+")
# Characters no common file system accepts in a name, plus the angle brackets of '<token>'.
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\s]+')


def slug(text: str) -> str:
    """'Tabby LoRA v2 · step 40' -> 'tabby-lora-v2-step-40' (accents dropped, letters of any
    script kept)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_WORD.sub("-", plain.lower()).strip("-_")[:MAX_STEM].strip("-_")


def token_stem(trigger: str) -> str:
    """'<tabby>' -> 'tabby': the word A1111/ComfyUI will know the embedding by."""
    return _UNSAFE.sub("-", trigger.strip().strip("<>")).strip("-.")[:MAX_STEM]


def download_name(model: Model, stored_name: str) -> str:
    """The name a file of ``model`` is downloaded under."""
    ext = stored_name.rsplit(".", 1)[-1] if "." in stored_name else "safetensors"
    if stored_name == EMBEDDING_FILE and model.trigger and token_stem(model.trigger):
        return f"{token_stem(model.trigger)}.{ext}"
    if stored_name in (LORA_FILE, EMBEDDING_FILE):
        return f"{slug(model.name) or f'model-step-{model.step}'}.{ext}"
    return stored_name


def file_entry(model: Model, name: str) -> dict[str, Any] | None:
    """A stored file of ``model`` by its stored name or by the name it downloads under."""
    for f in model.files:
        if name in (f["name"], download_name(model, f["name"])):
            return f
    return None


def taken(db: Session, org_id: str, names: Iterable[str], *, exclude: str | None = None
          ) -> set[str]:
    """Which of ``names`` already name a model of the org (other than ``exclude``)."""
    wanted = list(set(names))
    if not wanted:
        return set()
    stmt = select(Model.name).where(Model.org_id == org_id, Model.name.in_(wanted))
    if exclude is not None:
        stmt = stmt.where(Model.id != exclude)
    return set(db.scalars(stmt))


def name_clash(names: Sequence[str]) -> Conflict:
    listed = ", ".join(f"“{n}”" for n in names)
    one = len(names) == 1
    return Conflict(
        f"{'A model named' if one else 'Models named'} {listed} already "
        f"{'exists' if one else 'exist'} in your library; model names are unique within an "
        "organization. Choose another name.",
        extra={"taken_names": list(names)},
    )


def free_name(base: str, used: set[str]) -> str:
    """``base``, or ``base (2)``, ``base (3)``... whichever is not in ``used``."""
    name, n = base[:MAX_NAME], 1
    while name in used:
        n += 1
        suffix = f" ({n})"
        name = f"{base[:MAX_NAME - len(suffix)]}{suffix}"
    return name
