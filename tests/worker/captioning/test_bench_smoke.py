"""bench/caption_throughput.py is not a pass/fail test; this only keeps it from rotting."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_caption_benchmark_runs_in_smoke_mode() -> None:
    out = subprocess.run([sys.executable, "bench/caption_throughput.py", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for kind in ("sentence", "tags"):
        line = re.search(rf"kind={kind} model=tiny device=cpu .* images_per_s=([\d.]+)",
                         out.stdout)
        assert line and float(line.group(1)) > 0, out.stdout
