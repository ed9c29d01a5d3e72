"""bench/api_load.py keeps working: its smoke mode seeds, serves and loads every route."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, child_env

ROUTES = ("jobs", "jobs_page2", "datasets", "models", "checkpoints")


@pytest.mark.slow
def test_api_load_smoke(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    env = {k: v for k, v in child_env().items() if not k.startswith("ATELIER_")
           or k.startswith("ATELIER_TEST_")}
    run = subprocess.run([sys.executable, "bench/api_load.py", "--smoke", "--json", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    written = json.loads(out.read_text())
    figures = written["routes"]
    for route in ROUTES:  # --smoke checks every body: a 200 with no items is an error
        assert figures[route]["requests"] > 0, route
        assert figures[route]["errors"] == 0, (route, figures[route]["error_samples"])
    assert "p99 ms" in run.stdout
    # Counted from PostgreSQL's own statistics: a negative count means a reading went wrong.
    assert written["runs"][0]["run"]["db_sessions_opened"] >= 0
