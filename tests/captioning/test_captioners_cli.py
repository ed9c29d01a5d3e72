"""`atelier captioners add|list` register what GET /v1/captioners offers."""

from __future__ import annotations

import json
import secrets

from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import cli
from tests.conftest import Tenant


def test_add_then_list_and_reregister(client: TestClient, tenant: Tenant) -> None:
    key = f"cli-tags-{secrets.token_hex(3)}"
    runner = CliRunner()
    r = runner.invoke(cli, ["captioners", "add", key, "--source", "SmilingWolf/wd-vit-tagger-v3",
                            "--kind", "tags", "--name", "WD tagger"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["captioners", "add", key, "--source", "/models/wd", "--kind", "tags"])
    assert r.exit_code == 0, r.output  # re-registering moves the source, keeps the name
    listed = json.loads(runner.invoke(cli, ["captioners", "list", "--json"]).output)
    assert {"key": key, "name": "WD tagger", "kind": "tags", "source": "/models/wd"} in listed
    r = runner.invoke(cli, ["captioners", "add", key, "--source", "x", "--kind", "poems"])
    assert r.exit_code != 0 and "poems" in r.output
    api = client.get("/v1/captioners", headers=tenant.auth).json()["items"]
    assert {"key": key, "name": "WD tagger", "kind": "tags"} in api


def test_make_tiny_builds_under_the_data_dir(service_env: dict[str, str]) -> None:
    from pathlib import Path

    key = f"cli-tiny-{secrets.token_hex(3)}"
    r = CliRunner().invoke(cli, ["captioners", "make-tiny", key, "--kind", "tags", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["kind"] == "tags" and out["name"] == "Tiny tags captioner (demo)"
    source = Path(out["source"])
    assert source.is_relative_to(Path(service_env["ATELIER_DATA_DIR"]).resolve() / "captioners")
    assert any(source.iterdir())
