"""Zip uploads: every image entry becomes an item; same-name ``.txt`` files and ``data.jsonl``
lines become captions; junk is skipped, nested archives and unsafe names are reported.

Entries are streamed one at a time from the archive (which itself stays in Starlette's spooled
temp file), so neither the zip nor its contents ever sit whole in memory.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from app.datasets import limits, zipsafe
from app.datasets.images import Rejected
from app.datasets.ingest import Ingest
from app.datasets.names import clean_filename, stem_key


def _label(zip_name: str, entry: str) -> str:
    return f"{zip_name}:{entry}"


def _collect(
    ing: Ingest, zip_name: str, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]
) -> tuple[list[zipfile.ZipInfo], dict[str, str | None]]:
    """Sort entries into images and captions; report the ones that are neither."""
    images: list[zipfile.ZipInfo] = []
    txt: dict[str, str | None] = {}
    jsonl: dict[str, str | None] = {}
    for info in infos:
        kind = zipsafe.classify(info)
        label = _label(zip_name, info.filename)
        try:
            if kind == zipsafe.UNSAFE:
                raise Rejected("unsafe path in zip (absolute or containing '..'); skipped")
            if kind == zipsafe.ARCHIVE:
                raise Rejected("nested archives are not extracted")
            if kind == zipsafe.CAPTION:
                text = zipsafe.read_text(zf, info, limits.MAX_CAPTION_FILE_BYTES)
                txt[stem_key(info.filename)] = text
            elif kind == zipsafe.JSONL:
                pairs, errors = zipsafe.jsonl_captions(zf, info)
                for path, text in pairs:
                    jsonl.setdefault(stem_key(path), text)
                for error in errors:
                    ing.reject(label, error)
            elif kind == zipsafe.FILE:
                images.append(info)
        except Rejected as exc:
            ing.reject(label, str(exc))
    # A caption file next to the image is the most specific source; data.jsonl fills gaps.
    return images, {**jsonl, **txt}


def ingest_zip(ing: Ingest, zip_name: str, fp: BinaryIO, size: int) -> None:
    if size > limits.MAX_ZIP_BYTES:
        ing.reject(zip_name, f"zip is {size} bytes; the limit is {limits.MAX_ZIP_BYTES} bytes")
        return
    try:
        zf = zipsafe.open_zip(fp)
    except Rejected as exc:
        ing.reject(zip_name, str(exc))
        return
    with zf:
        try:
            infos = zipsafe.checked_entries(zf)
        except Rejected as exc:
            ing.reject(zip_name, str(exc))
            return
        images, captions = _collect(ing, zip_name, zf, infos)
        if not images:
            ing.reject(zip_name, "zip contains no images")
            return
        # Counts real decompressed bytes across entries: the declared total was checked, but
        # headers can lie.
        budget = limits.MAX_ZIP_UNCOMPRESSED_BYTES
        for info in images:
            label = _label(zip_name, info.filename)
            try:
                entry, written = zipsafe.extract(zf, info, min(limits.MAX_FILE_BYTES, budget))
            except Rejected as exc:
                ing.reject(label, str(exc))
                continue
            budget -= written
            name = clean_filename(info.filename, keep_dirs=True)
            with entry:
                ing.add(name, entry, caption=captions.get(stem_key(name)), size=written,
                        label=label)
