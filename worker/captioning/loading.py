"""load_captioner: one entry point for both kinds, errors as CaptionerLoadError."""

from __future__ import annotations

from worker.captioning.sources import resolve_source
from worker.captioning.types import KINDS, Captioner, CaptionerKind, CaptionerLoadError


def load_captioner(source: str, kind: CaptionerKind, *, device: str | None = None) -> Captioner:
    """Load the captioner at `source` (a folder, or a hub id in the local HF cache).

    device None means cuda if available, else cpu."""
    if kind not in KINDS:
        raise CaptionerLoadError(f"unknown captioner kind {kind!r}; use one of {', '.join(KINDS)}")
    folder = resolve_source(source)
    if kind == "sentence":
        from worker.captioning.sentence import BlipCaptioner

        return BlipCaptioner(folder, device)
    from worker.captioning.tags import WdTagger

    return WdTagger(folder, device)
