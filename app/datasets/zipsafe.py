"""Reading untrusted zips safely: entry classification, caps, bounded extraction.

Nothing is ever extracted to a path built from an entry name (entries go to anonymous temp
files), so traversal cannot write anywhere; names with ``..`` or absolute paths are still
refused, and reported, because they signal a hostile or broken archive.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from app.datasets import limits
from app.datasets.images import Rejected

_JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
_ARCHIVE_EXTS = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz4")
_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20

DIR, JUNK, UNSAFE, ARCHIVE, CAPTION, JSONL, FILE = (
    "dir", "junk", "unsafe", "archive", "caption", "jsonl", "file",
)


def is_unsafe(name: str) -> bool:
    normalized = name.replace("\\", "/")
    return (
        normalized.startswith("/")
        or bool(_DRIVE.match(normalized))
        or ".." in normalized.split("/")
        or any(ord(c) < 0x20 for c in normalized)
    )


def classify(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if info.is_dir():
        return DIR
    if is_unsafe(name):
        return UNSAFE
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    # macOS resource forks (__MACOSX/, ._x), .DS_Store, hidden folders, Windows thumbnails.
    if not parts or any(p.startswith(".") or p.casefold() in _JUNK_NAMES for p in parts):
        return JUNK
    lower = parts[-1].casefold()
    if lower.endswith(_ARCHIVE_EXTS):
        return ARCHIVE
    if lower == "data.jsonl" or lower.endswith(".jsonl"):
        return JSONL
    if lower.endswith(".txt"):
        return CAPTION
    return FILE


def open_zip(fp: BinaryIO) -> zipfile.ZipFile:
    fp.seek(0)
    try:
        return zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise Rejected(f"not a valid zip archive: {exc}") from exc


def checked_entries(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The entries, after the whole-archive caps (count, declared uncompressed total)."""
    infos = zf.infolist()
    if len(infos) > limits.MAX_ZIP_ENTRIES:
        raise Rejected(
            f"zip has {len(infos)} entries; the limit is {limits.MAX_ZIP_ENTRIES} "
            "(refused as a possible zip bomb)"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
        raise Rejected(
            f"zip expands to {total} bytes; the limit is {limits.MAX_ZIP_UNCOMPRESSED_BYTES} "
            "bytes (refused as a possible zip bomb)"
        )
    return infos


def _check_entry(info: zipfile.ZipInfo, limit: int) -> None:
    if info.flag_bits & 0x1:
        raise Rejected("encrypted zip entries are not supported")
    if (
        info.file_size >= limits.RATIO_CHECK_MIN_BYTES
        and info.file_size > limits.MAX_ZIP_RATIO * max(info.compress_size, 1)
    ):
        ratio = info.file_size // max(info.compress_size, 1)
        raise Rejected(
            f"compression ratio {ratio}:1 is over {limits.MAX_ZIP_RATIO}:1 "
            "(refused as a possible zip bomb)"
        )
    if info.file_size > limit:
        raise Rejected(f"entry is {info.file_size} bytes; the limit is {limit} bytes")


def _copy_bounded(src: IO[bytes], dst: IO[bytes], limit: int) -> int:
    """Copy at most ``limit`` bytes; headers can lie about sizes, so count what really
    decompresses and stop as soon as it passes the limit."""
    written = 0
    while chunk := src.read(_COPY_CHUNK):
        written += len(chunk)
        if written > limit:
            raise Rejected(f"entry expands past {limit} bytes (refused as a possible zip bomb)")
        dst.write(chunk)
    return written


def extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> tuple[IO[bytes], int]:
    """One entry into a spooled temp file (in memory while small, on disk after)."""
    _check_entry(info, limit)
    out = tempfile.SpooledTemporaryFile(max_size=4 * limits.MB)
    try:
        with zf.open(info) as src:
            size = _copy_bounded(src, out, limit)
    except Rejected:
        out.close()
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        out.close()
        raise Rejected(f"corrupt zip entry: {exc}") from exc
    out.seek(0)
    return out, size


def read_text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> str:
    fp, _ = extract(zf, info, limit)
    with fp:
        return fp.read().decode("utf-8-sig", errors="replace")


@dataclass
class JsonlLine:
    line: int
    image: str
    text: str | None


def parse_jsonl(lines: Iterable[bytes | str]) -> Iterator[JsonlLine | Rejected]:
    """invoke-training's caption file: one ``{"image": path, "text": caption}`` per line
    (``caption`` accepted for ``text``). Bad lines come out as ``Rejected`` with the line."""
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError as exc:
            yield Rejected(f"line {number}: not JSON ({exc.args[0] if exc.args else exc})")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("image"), str):
            yield Rejected(f"line {number}: expected an object with an \"image\" path")
            continue
        caption = row.get("text", row.get("caption"))
        if caption is not None and not isinstance(caption, str):
            yield Rejected(f"line {number}: \"text\" must be a string")
            continue
        yield JsonlLine(number, row["image"], caption)


def jsonl_captions(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(path relative to the archive root, caption) pairs and errors of a data.jsonl entry;
    ``image`` paths are relative to the folder holding the jsonl file."""
    base = posixpath.dirname(info.filename.replace("\\", "/"))
    pairs: list[tuple[str, str | None]] = []
    errors: list[str] = []
    for entry in parse_jsonl(read_text(zf, info, limits.MAX_CAPTIONS_IMPORT_BYTES).splitlines()):
        if isinstance(entry, Rejected):
            errors.append(str(entry))
        else:
            pairs.append((posixpath.join(base, entry.image), entry.text))
    return pairs, errors
