"""The benches' smoke modes still run end to end (tiny model), so `make bench` never rots.

Figures are printed by the benches, never asserted here; these only check that each contender
trained every step and that the report holds its columns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = ROOT.parent / "shared" / "peer"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not PEER_DIR.exists(), reason="the peer scripts live in ../shared/peer")
def test_peer_compare_smoke(tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the bench extra (datasets) is not installed")
    rows_path = tmp_path / "rows.json"
    command = [sys.executable, str(ROOT / "bench" / "peer_compare.py"), "--smoke",
               "--methods", "lora,textual_inversion", "--steps", "2",
               "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"),
               "--json", str(rows_path)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = json.loads(rows_path.read_text())
    assert [row["method"] for row in rows] == ["lora", "textual_inversion"]
    for row in rows:
        for who in ("peer", "atelier"):
            assert row[who]["steps"] == 2
            assert row[who]["step_s"] > 0 and row[who]["wall_s"] > row[who]["step_s"]
            assert row[who]["rss_gb"] > 0
        assert row["speed_ratio"] > 0
    assert "ratio peer/Atelier" in done.stdout


def test_gpu_suite_smoke(tmp_path: Path) -> None:
    """bench/gpu/run.sh --smoke: the whole GPU check on the CPU with a tiny model."""
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu" / "run.sh"), "--smoke"],
        capture_output=True, text=True, timeout=280,
        env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path), "PYTHON": sys.executable,
             "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu_figures.json").read_text())
    methods = {(row["model"], row["method"]) for row in figures["engine"]}
    assert methods == {(m, k) for m in ("sd15", "sdxl") for k in
                       ("lora", "dora", "textual_inversion", "pivotal")}  # fmt: skip
    for row in figures["engine"]:
        assert row["images_per_s"] > 0 and row["train_flops_per_image"] > 0
        assert row["latent_cache_s"] is not None and row["step0_sampling_s"] > 0
    assert (tmp_path / "gpu_report.txt").read_text().strip()
