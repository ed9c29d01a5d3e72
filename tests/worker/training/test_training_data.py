"""Data pieces: buckets, captions, batch order, crops, atomic state directories."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from worker.training.buckets import make_buckets, nearest_bucket
from worker.training.captions import CaptionRecipe, expand_placeholder
from worker.training.checkpointing import load_training_state, save_training_state
from worker.training.config import parse_config
from worker.training.data import BatchPlan, TrainingData, prepare_image
from worker.training.types import TrainingExample


def test_buckets_keep_area_and_pick_nearest_aspect() -> None:
    buckets = make_buckets(512)
    assert (512, 512) in buckets
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 512 * 512 for w, h in buckets)
    wide = nearest_bucket(1600, 900, buckets)
    assert wide[0] > wide[1] and abs(wide[0] / wide[1] - 16 / 9) < 0.2
    assert nearest_bucket(500, 500, buckets) == (512, 512)


def test_caption_recipes() -> None:
    rng = random.Random(0)
    assert expand_placeholder("a <t> dog", "<t>", 3) == "a <t> <t>_1 <t>_2 dog"
    lora = CaptionRecipe(prefix="sks", delimiter=",")
    for _ in range(5):
        caption = lora.build("red, square, small", rng)
        assert caption.startswith("sks ") and sorted(caption[4:].split(", ")) == [
            "red",
            "small",
            "square",
        ]
    ti = CaptionRecipe(prefix="<t>", templates=("a photo of {}",), placeholder="<t>", num_vectors=2)
    assert ti.build("ignored", rng) == "a photo of <t> <t>_1"
    own = CaptionRecipe(prefix="<t>", placeholder="<t>", num_vectors=1)
    assert own.build("a <t> on a table", rng) == "a <t> on a table"
    assert own.build(None, rng) == "<t>"
    dropped = CaptionRecipe(prefix="sks", dropout=0.999)
    assert dropped.build("x", rng) == ""


def test_batch_plan_is_deterministic_and_covers_each_epoch() -> None:
    buckets = [(64, 64)] * 5 + [(96, 32)] * 3
    plan = BatchPlan(buckets, batch_size=2, seed=3)
    assert plan.batches_per_epoch == 3 + 2
    epoch0 = [plan.batch(n) for n in range(plan.batches_per_epoch)]
    assert sorted(i for _, batch in epoch0 for i in batch) == list(range(8))
    assert all(len({buckets[i] for i in batch}) == 1 for _, batch in epoch0)
    again = BatchPlan(buckets, batch_size=2, seed=3)
    assert [again.batch(n) for n in range(12)] == [plan.batch(n) for n in range(12)]
    assert plan.batch(plan.batches_per_epoch)[0] == 1


def test_prepare_image_crops_flips_and_scales(tmp_path: Path) -> None:
    image = Image.new("RGB", (60, 30), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 30))  # blue left edge
    prepared = prepare_image(image, (30, 60), (60, 30), (0.5, 0.5), flip=True)
    assert prepared.pixels.shape == (3, 30, 60)
    assert prepared.pixels.min() >= -1 and prepared.pixels.max() <= 1
    assert prepared.pixels[2, 0, -1] > 0.9  # the blue edge moved right


def test_training_data_with_buckets(tmp_path: Path, make_config: Any) -> None:
    examples = []
    for i, size in enumerate([(64, 32), (32, 64), (48, 48)]):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", size, (i * 50, 0, 0)).save(path)
        examples.append(TrainingExample(path, f"caption {i}"))
    config = parse_config(
        make_config("lora", "sd15", aspect_ratio_buckets=True, train_batch_size=1)
    )
    data = TrainingData(examples, config, CaptionRecipe(prefix="sks"))
    assert data.buckets[0][0] > data.buckets[0][1] and data.buckets[1][0] < data.buckets[1][1]
    _, samples = data.samples(0)
    sample = samples[0]
    prepared = data.prepare(sample.index, sample.flip, sample.crop_fraction)
    width, height = data.buckets[sample.index]
    assert prepared.pixels.shape == (3, height, width)
    assert sample.caption == f"sks caption {sample.index}"


def test_state_is_written_atomically_and_recovered(tmp_path: Path) -> None:
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    param.grad = torch.ones(3)
    optimizer.step()
    save_training_state(tmp_path, 5, {"p": param.detach()}, optimizer, scheduler, None)
    save_training_state(tmp_path, 7, {"p": param.detach() * 2}, optimizer, scheduler, None)
    assert not list(tmp_path.glob(".state-*"))
    # Simulate a crash between "state -> .state-old" and "tmp -> state".
    (tmp_path / "state").rename(tmp_path / ".state-old")
    (tmp_path / ".state-tmp-dead").mkdir()
    state = load_training_state(tmp_path, torch.device("cpu"))
    assert state is not None and state.step == 7
    torch.testing.assert_close(state.trainable["p"], param.detach() * 2)
    assert (tmp_path / "state").exists() and not (tmp_path / ".state-tmp-dead").exists()
    assert load_training_state(tmp_path / "missing", torch.device("cpu")) is None
