"""Integration knobs, read per call so tests (and operators) can change them without a restart.

Each value comes from a ``Settings`` field when one exists, else from the ``ATELIER_*``
environment variable of the same name, else the default here.
"""

from __future__ import annotations

import os

from app.core.settings import get_settings

DEFAULTS: dict[str, str] = {
    "rate_limit_per_key": "600/minute",
    "rate_limit_per_org": "1200/minute",
    "rate_limit_backend": "auto",  # auto (redis when redis_url is set) | redis | memory
    "webhook_max_attempts": "8",
    "webhook_backoff_base_s": "30",  # 30 s, 1, 2, 4 ... min: ~1 h in all
    "webhook_backoff_cap_s": "3600",
    "webhook_timeout_s": "10",
}


def value(name: str) -> str:
    field = getattr(get_settings(), name, None)
    if field is not None:
        return str(field)
    return os.environ.get(f"ATELIER_{name.upper()}", DEFAULTS[name])


def number(name: str) -> float:
    return float(value(name))
