"""`atelier orgs create`: the operator's password follows the policy, and an existing account
is never given a password it does not know (nor is one printed that would not work)."""

from __future__ import annotations

import json
import secrets

from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli.main import cli


def _create(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["orgs", "create", *args])
    return result.exit_code, result.output


def test_weak_admin_password_is_refused(service_env: dict[str, str]) -> None:
    email = f"weak-{secrets.token_hex(3)}@example.com"
    for weak in ("password", "12345678", "password123"):
        code, out = _create("Weak Org", "--admin-email", email, "--admin-password", weak)
        assert code == 2, out
        assert "--admin-password" in out


def test_existing_account_keeps_its_password(client: TestClient) -> None:
    email = f"twice-{secrets.token_hex(3)}@example.com"
    code, out = _create("First Org", "--admin-email", email, "--json")
    assert code == 0, out
    first_password = json.loads(out)["admin_password"]

    code, out = _create("Second Org", "--admin-email", email, "--json")
    assert code == 0, out
    assert "admin_password" not in json.loads(out)  # nothing printed that would not work
    r = client.post("/v1/auth/login", json={"email": email, "password": first_password,
                                            "org_id": json.loads(out)["id"]})
    assert r.status_code == 200, r.text
