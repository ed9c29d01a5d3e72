"""Uvicorn logging with presigned-URL credentials taken out of the access log.

A ``/storage/<token>`` path is a bearer credential (like an S3 signature), and so is any
``token``/``signature`` query parameter; the access log keeps the route, never the secret.
Installed through uvicorn's ``log_config`` so every server process (``--workers N`` included)
gets it.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "[redacted]"
_STORAGE_PATH = re.compile(r"(/storage/)[^/?#\s\"]+")
_SECRET_QUERY = re.compile(
    r"([?&](?:token|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#\s\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", _STORAGE_PATH.sub(rf"\g<1>{REDACTED}", text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
