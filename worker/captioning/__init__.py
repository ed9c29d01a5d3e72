"""Captioning library: sentence captions (BLIP) and tags (WD taggers) for training datasets.

Pure: no database, Celery or HTTP code. Importing the package is cheap; torch, transformers and
onnxruntime load only when a captioner is loaded or built.
"""

from __future__ import annotations

from pathlib import Path

from worker.captioning.loading import load_captioner
from worker.captioning.types import Captioner, CaptionerKind, CaptionerLoadError


def make_tiny_captioner(out_dir: Path, kind: CaptionerKind) -> Path:
    """Write a tiny random captioner of `kind` (real architecture) into `out_dir`."""
    from worker.captioning.tiny import make_tiny_captioner as build

    return build(out_dir, kind)


__all__ = [
    "Captioner",
    "CaptionerKind",
    "CaptionerLoadError",
    "load_captioner",
    "make_tiny_captioner",
]
