"""Integration knobs, read from the settings on every call (tests clear the settings cache)."""

from __future__ import annotations

from app.core.settings import get_settings


def value(name: str) -> str:
    return str(getattr(get_settings(), name))


def number(name: str) -> float:
    return float(value(name))
