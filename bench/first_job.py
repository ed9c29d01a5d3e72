"""The demo's first job: a template on the tiny default base model, timed phase by phase.

Resolves the template as the service does for the tiny model (its 64 px native size, prompts
from the trigger) and runs the training library directly (no database or worker), printing
when each phase starts and the total. The end-to-end figure, through a real worker, is
tests/jobs/test_first_job.py.

    python bench/first_job.py                          # sd15-lora-object, 10 images
    python bench/first_job.py --template sd15-lora-style --images 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.training.callbacks import TrainingCallbacks  # noqa: E402
from worker.training.config import parse_config  # noqa: E402
from worker.training.run import run_training  # noqa: E402
from worker.training.templates import (  # noqa: E402
    default_validation_prompts,
    get_template,
    resolution_for,
)
from worker.training.tiny_models import TINY_RESOLUTION, build_tiny_model  # noqa: E402
from worker.training.types import TrainingExample  # noqa: E402


class PhaseClock(TrainingCallbacks):
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phase: str | None = None

    def on_phase(self, phase: str, done: int = 0, total: int = 0) -> None:
        if phase != self.phase:
            self.phase = phase
            print(f"{time.perf_counter() - self.started:7.2f} s  {phase}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="sd15-lora-object")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="override the template's")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="atelier-first-job-"))
    template = get_template(args.template)
    model = build_tiny_model(root / "model", template.architecture)
    data = []
    for i in range(args.images):
        path = root / f"photo-{i}.png"
        Image.new("RGB", (512, 512), (200, (40 * i) % 256, 30)).save(path)
        data.append(TrainingExample(path, "a red square"))
    raw = template.config()
    raw["resolution"] = resolution_for(raw.get("resolution", 512), template.architecture,
                                       TINY_RESOLUTION)
    if args.steps:
        raw["max_train_steps"] = args.steps
        raw["lr_warmup_steps"] = min(raw.get("lr_warmup_steps", 0), args.steps)
    if template.type in ("textual_inversion", "pivotal"):
        raw["placeholder_token"] = "<first-job>"
    raw["validation_prompts"] = default_validation_prompts(raw)
    config = parse_config(raw)
    print(f"{args.template}: {config.max_train_steps} steps, {args.images} images, "
          f"{config.resolution} px, prompts {config.validation_prompts}")
    clock = PhaseClock()
    result = run_training(config, data, clock, model_source=str(model), output_dir=root / "out")
    print(f"{time.perf_counter() - clock.started:7.2f} s  done at step {result.last_step}")


if __name__ == "__main__":
    main()
