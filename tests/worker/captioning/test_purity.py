"""The captioning library is pure: no service code, and a cheap import (no torch)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from tests.unit.test_layout import _imports

SERVICE = ("app", "celery", "sqlalchemy", "fastapi", "redis", "boto3", "httpx")


def test_captioning_library_imports_no_service_code() -> None:
    files = _imports("worker/captioning")
    assert files, "worker/captioning has no modules"
    for path, modules in files.items():
        bad = [m for m in modules if m.split(".")[0] in SERVICE]
        assert not bad, f"{path} imports {bad}"


def test_importing_the_package_loads_no_heavy_or_service_modules() -> None:
    code = (
        "import sys\n"
        "import worker.captioning\n"
        "from worker.captioning import CaptionerLoadError, load_captioner, make_tiny_captioner\n"
        "heavy = ('torch', 'transformers', 'onnxruntime', 'onnx', 'app', 'celery',\n"
        "         'sqlalchemy', 'fastapi', 'httpx')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
