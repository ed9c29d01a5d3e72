"""Export: a zip of images + same-name ``.txt`` captions + ``data.jsonl`` (invoke-training's
``{"image", "text"}`` layout), streamed as it is built.

The zip is written to a sink that is drained after every chunk, so memory stays at about one
storage chunk whatever the dataset's size. Images are stored, not deflated: they are already
compressed and deflating them would only burn CPU.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from app.datasets.names import export_names, split_ext
from app.models import DatasetItem
from app.storage.base import Storage, StorageError

log = logging.getLogger("atelier.datasets")


@dataclass(frozen=True)
class ExportEntry:
    arcname: str
    key: str
    size: int
    caption: str | None


def plan(items: list[DatasetItem]) -> list[ExportEntry]:
    """Plain values, read before streaming starts: the response outlives the request's
    database session."""
    names = export_names(items)
    return [ExportEntry(names[i.id], i.storage_key, i.bytes, i.caption) for i in items]


class _Sink(io.RawIOBase):
    """A write-only, unseekable buffer; zipfile then writes data descriptors instead of
    seeking back to patch headers, which is what makes streaming possible."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def stream_zip(storage: Storage, entries: list[ExportEntry]) -> Iterator[bytes]:
    sink = _Sink()
    lines: list[str] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for entry in entries:
            try:
                chunks = storage.stream(entry.key)
            except StorageError:
                # Skip rather than cut the download short: the rest is still useful.
                log.exception("export: object %s missing", entry.key)
                continue
            info = zipfile.ZipInfo(entry.arcname)
            info.file_size = entry.size  # lets zipfile pick zip64 only when needed
            with zf.open(info, "w") as out:
                for chunk in chunks:
                    out.write(chunk)
                    yield sink.drain()
            if entry.caption:
                txt = split_ext(entry.arcname)[0] + ".txt"
                zf.writestr(txt, entry.caption.encode(), compress_type=zipfile.ZIP_DEFLATED)
            lines.append(json.dumps({"image": entry.arcname, "text": entry.caption or ""},
                                    ensure_ascii=False))
            yield sink.drain()
        jsonl = "".join(line + "\n" for line in lines).encode()
        zf.writestr("data.jsonl", jsonl, compress_type=zipfile.ZIP_DEFLATED)
    yield sink.drain()
