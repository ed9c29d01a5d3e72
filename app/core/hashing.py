"""SHA-256 of files and streams, read in chunks so large files never sit whole in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


def stream_sha256(fp: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := fp.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as fp:
        return stream_sha256(fp)
