"""What a tenant may read about a failure, and the error id that ties it to the server log.

Tenants read job logs and ``job.error`` (API, event stream, dashboard, webhooks); the worker's
own log holds the traceback. ``scrub`` replaces what would describe our infrastructure (server
paths, storage keys, URLs, host:port pairs, addresses, this machine's name) with placeholders.
"""

from __future__ import annotations

import re
import socket
import uuid
from functools import lru_cache

MAX_SUMMARY = 300

_STOP = r"[^\s'\"<>,;)\]]"  # what a path or key runs on with
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://anything up to a space or a quote: presigned URLs, broker and database URLs
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"), "<url>"),
    # absolute, home and relative-up paths; a path starts a word or follows a quote, bracket,
    # "=", ":" or ","
    (re.compile(rf"(?:^|(?<=[\s'\"(\[=:,]))(?:~|\.{{1,2}})?/{_STOP}+"), "<path>"),
    (re.compile(rf"\b[A-Za-z]:\\{_STOP}+"), "<path>"),
    # storage keys (orgs/{org}/...), also behind a bucket or prefix
    (re.compile(rf"\b(?:[\w.-]+/)*orgs/{_STOP}+"), "<storage key>"),
    # host:port (a name starting with a letter, or an IPv4 address)
    (re.compile(r"\b(?:[A-Za-z][\w-]*(?:\.[\w-]+)*|\d{1,3}(?:\.\d{1,3}){3}):\d{2,5}\b"),
     "<host>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<address>"),
    # IPv6: has "::" or at least four colons (a time such as 12:30:45 is left alone)
    (re.compile(r"(?<![\w:])(?=[0-9a-fA-F:]*::|(?:[0-9a-fA-F]{1,4}:){4})"
                r"[0-9a-fA-F:]{2,39}(?:%\w+)?(?![\w:])"), "<address>"),
)


@lru_cache(maxsize=1)
def _machine_names() -> tuple[str, ...]:
    names = {socket.gethostname(), socket.getfqdn()}
    # Short names ("vm") would eat ordinary words; only names worth hiding are kept.
    return tuple(sorted((n for n in names if n and len(n) >= 4 and n != "localhost"),
                        key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with paths, storage keys, URLs, hosts and addresses replaced by placeholders."""
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    for name in _machine_names():
        text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", "<host>", text)
    return text


def new_error_id() -> str:
    return uuid.uuid4().hex[:12]


def summary(exc: BaseException) -> str:
    """``ExceptionClass: message`` without internals, on one line, bounded."""
    message = " ".join(scrub(str(exc)).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 1] + "…"
