"""The ETA comes from a smoothed, measured rate: a few odd steps barely move it, a lasting
change shows within about half a minute; no estimate before training is measured."""

from __future__ import annotations

from typing import Any

from app.jobs.rendering import eta_seconds
from app.models import TrainingJob
from worker.runner.reporter import JobReporter
from worker.training.types import Progress


def _step(step: int, images_per_second: float, batch: int = 2) -> Progress:
    return Progress(step=step, total_steps=10_000, loss=0.1, lr=1e-4,
                    images_per_second=images_per_second, epoch=0,
                    seconds=batch / images_per_second)


def _reporter() -> JobReporter:
    return JobReporter("job", "org", "worker", storage=None)  # type: ignore[arg-type]


def test_rate_is_smoothed_against_short_bursts() -> None:
    reporter = _reporter()
    rates = [reporter._smooth(_step(1, 0.2))]  # the warm-up step: slow, then forgotten
    rates += [reporter._smooth(_step(i, 4.0)) for i in range(2, 200)]
    assert abs(rates[-1] - 4.0) < 0.01
    burst = [reporter._smooth(_step(i, 1.0)) for i in range(200, 203)]  # 3 slow steps, 6 s
    # Raw, the ETA would quadruple (58 s -> ~4 min); smoothed it grows by under a half.
    assert min(burst) > 4.0 * 0.6, burst
    after = [reporter._smooth(_step(i, 4.0)) for i in range(203, 460)]  # ~2 minutes
    assert after[0] < after[60] < after[-1] and abs(after[-1] - 4.0) < 0.1


def test_lasting_change_shows_within_a_minute() -> None:
    reporter = _reporter()
    for i in range(1, 100):
        reporter._smooth(_step(i, 4.0))
    rate = 4.0
    for i in range(100, 130):  # 60 s at 1 img/s (2 s per step)
        rate = reporter._smooth(_step(i, 1.0))
    assert rate < 1.5, rate


def _job(**values: Any) -> TrainingJob:
    base = {"status": "running", "images_per_second": 4.0, "total_steps": 100,
            "progress_step": 20, "config": {"train_batch_size": 2}, "phase": "training"}
    return TrainingJob(**{**base, **values})


def test_eta_only_once_training_is_measured() -> None:
    assert eta_seconds(_job()) == 40.0
    for phase in ("loading_model", "caching_latents", "rendering_step0"):
        assert eta_seconds(_job(phase=phase)) is None
    assert eta_seconds(_job(images_per_second=None)) is None
    assert eta_seconds(_job(status="succeeded")) is None


def test_eta_counts_the_validations_still_to_come() -> None:
    config = {"train_batch_size": 2, "validate_every_n_steps": 25, "validation_prompts": ["x"]}
    # Steps 25..100 left at step 20: validations at 25, 50, 75, 100, 3 s each.
    job = _job(config=config, validation_seconds=3.0)
    assert eta_seconds(job) == 40.0 + 4 * 3.0
    assert eta_seconds(_job(config={**config, "validate_every_n_steps": None},
                            validation_seconds=3.0)) == 43.0
    assert eta_seconds(_job(config=config, progress_step=100, validation_seconds=3.0)) == 0.0


def test_reporter_measures_each_validation() -> None:
    import time

    reporter = _reporter()
    written: list[dict[str, Any]] = []
    reporter._update = written.append  # type: ignore[method-assign]
    reporter.on_phase("training")
    reporter.on_phase("validating", 0, 2)
    time.sleep(0.05)
    reporter.on_phase("validating", 2, 2)
    reporter.on_phase("training")
    assert [w["phase"] for w in written] == ["training", "validating", "validating", "training"]
    assert written[1]["phase_done"] == 0 and written[1]["phase_total"] == 2
    assert "validation_seconds" not in written[0] and written[-1]["validation_seconds"] >= 0.05
