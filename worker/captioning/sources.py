"""Where a captioner's files are: a local folder, or a hub id already in the local HF cache."""

from __future__ import annotations

from pathlib import Path

from worker.captioning.types import CaptionerLoadError


def resolve_source(source: str) -> Path:
    """The folder holding the captioner's files; never touches the network."""
    if not source or not source.strip():
        raise CaptionerLoadError("captioner source is empty")
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CaptionerLoadError(f"captioner source {source} is a file, not a folder")
    if _looks_like_path(source):
        raise CaptionerLoadError(f"captioner folder {source} does not exist")
    return _from_hub_cache(source)


def _looks_like_path(source: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else can only have meant a folder.
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


def _from_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except HFValidationError:
        raise CaptionerLoadError(
            f"captioner source {repo_id} is neither a folder nor a valid hub id"
        ) from None
    except Exception:
        # Workers have no network: only what is already in the cache can be used.
        raise CaptionerLoadError(
            f"captioner {repo_id} is not a local folder and is not in this worker's hub cache "
            "(download it into the cache, or pass a folder)"
        ) from None
