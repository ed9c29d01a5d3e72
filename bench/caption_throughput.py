"""Images captioned per second by the captioning library, for both kinds of captioner.

    python bench/caption_throughput.py                     # tiny captioners on the CPU
    python bench/caption_throughput.py --real-shape --device cuda   # GPU suite: BLIP-base and a
                                                           # WD-ViT-B/16-448 tagger, random weights
    python bench/caption_throughput.py --smoke             # seconds; what the unit test runs

Random weights: the real-shaped BLIP never says [SEP] early, so every caption runs to max_length
tokens (the slowest case); the real-shaped tagger scores all 10,861 tags.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.captioning import load_captioner  # noqa: E402
from worker.captioning.tiny import write_random_captioner  # noqa: E402


def _images(count: int, size: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    # Varied aspect ratios, like a real dataset; every captioner resizes them itself.
    shapes = [(size, size), (size, size * 3 // 4), (size * 2 // 3, size)]
    return [Image.fromarray(rng.integers(0, 256, (*shapes[i % 3], 3), dtype=np.uint8))
            for i in range(count)]


def bench_kind(kind: str, args: argparse.Namespace, root: Path) -> None:
    started = time.perf_counter()
    folder = write_random_captioner(root / kind, kind, real_shape=args.real_shape)  # type: ignore[arg-type]
    built = time.perf_counter() - started
    started = time.perf_counter()
    captioner = load_captioner(str(folder), kind, device=args.device)  # type: ignore[arg-type]
    loaded = time.perf_counter() - started
    images = _images(args.images, args.image_size)
    max_length = args.max_length or (40 if kind == "sentence" else 30)
    captioner.caption(images[: args.batch], max_length=max_length)  # warm-up
    started = time.perf_counter()
    captions: list[str] = []
    for start in range(0, len(images), args.batch):
        captions += captioner.caption(images[start:start + args.batch], max_length=max_length)
    elapsed = time.perf_counter() - started
    assert len(captions) == len(images) and all(captions), "a caption came back empty"
    shape = "real-shape" if args.real_shape else "tiny"
    device = getattr(captioner, "device", args.device)
    print(f"caption_throughput kind={kind} model={shape} device={device} images={len(images)} "
          f"batch={args.batch} max_length={max_length} build_s={built:.2f} load_s={loaded:.2f} "
          f"seconds={elapsed:.2f} images_per_s={len(images) / elapsed:.2f}")
    print(f"  sample: {captions[0][:100]!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("sentence", "tags", "both"), default="both")
    parser.add_argument("--real-shape", action="store_true",
                        help="BLIP-base and WD-ViT-B/16-448 shapes with random weights")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny, 2 images, 8 tokens")
    args = parser.parse_args(argv)
    if args.smoke:
        args.real_shape, args.images, args.batch, args.image_size = False, 2, 2, 48
        args.max_length = args.max_length or 8
    kinds = ("sentence", "tags") if args.kind == "both" else (args.kind,)
    with tempfile.TemporaryDirectory(prefix="caption-bench-") as root:
        for kind in kinds:
            bench_kind(kind, args, Path(root))


if __name__ == "__main__":
    main()
