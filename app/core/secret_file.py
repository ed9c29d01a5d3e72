"""The per-deployment secret of the embedded install, kept in ``<data_dir>/secret_key``.

There is no built-in default secret: a development install makes a random one on first start
and every process that shares the data dir (API, worker, CLI) reads the same file. Creation is
atomic — the secret is written to a private temp file and hard-linked into place, which fails
if another process won the race, so two processes starting together always agree.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

SECRET_FILE = "secret_key"
MIN_SECRET_CHARS = 32
log = logging.getLogger("atelier.settings")


class SecretFileError(ValueError):
    """The secret file exists but cannot be used (unreadable, empty, too short)."""


def load_or_create_secret(data_dir: Path) -> str:
    path = data_dir.resolve() / SECRET_FILE
    if not path.exists():
        _create(path)
    return _read(path)


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic create-if-absent with the full content already there
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        os.unlink(tmp)


def _read(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            # Someone loosened it (copied with a default umask): owner-only again.
            log.warning("secret file %s had mode %o; setting 0600", path, mode)
            path.chmod(0o600)
        value = path.read_text().strip()
    except OSError as exc:
        raise SecretFileError(f"cannot read the secret file {path}: {exc.strerror}") from exc
    if len(value) < MIN_SECRET_CHARS:
        raise SecretFileError(
            f"the secret file {path} holds fewer than {MIN_SECRET_CHARS} characters; "
            "delete it to have a new one generated"
        )
    return value
