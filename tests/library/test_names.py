"""Names that travel: chosen at finalize, unique within an org, and the names files download
under (from the model; an embedding by its trigger word)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.library.naming import slug, token_stem
from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import make_job

LOCAL = pytest.mark.parametrize("backend", ["local"], indirect=True)


def _finalize(api: TestClient, tenant: Tenant, job_id: str, **body: object):
    return api.post(f"/v1/jobs/{job_id}/finalize", json=body, headers=tenant.auth)


def _disposition(api: TestClient, tenant: Tenant, model_id: str, query: str = "") -> str:
    r = api.get(f"/v1/models/{model_id}/download{query}", headers=tenant.auth,
                follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    got = api.get(location) if location.startswith("http://testserver/") else None
    if got is not None:
        return got.headers["content-disposition"]
    import httpx

    return httpx.get(location, timeout=10).headers["content-disposition"]


def test_slugs_and_token_stems() -> None:
    assert slug("Tabby LoRA v2 · step 40") == "tabby-lora-v2-step-40"
    assert slug("Café  crème!") == "cafe-creme"
    assert slug("猫 · step 3") == "猫-step-3"
    assert slug(" · ") == ""
    assert token_stem("<tabby>") == "tabby"
    assert token_stem("<a/b:c>") == "a-b-c"


def test_typed_names_per_step_and_downloads_named_from_them(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    fx = make_job(storage, tenant.org_id, steps=[20, 40], name="Tabby")
    r = _finalize(api, tenant, fx.job_id, steps=[20, 40],
                  names={"40": "Tabby LoRA v2 · step 40", "20": "Tabby early"})
    assert r.status_code == 200, r.text
    by_step = {m["step"]: m for m in r.json()["models"]}
    assert by_step[40]["name"] == "Tabby LoRA v2 · step 40"
    assert by_step[20]["name"] == "Tabby early"
    (f,) = by_step[40]["files"]
    assert (f["name"], f["download_name"]) == ("lora.safetensors",
                                               "tabby-lora-v2-step-40.safetensors")
    assert 'filename="tabby-lora-v2-step-40.safetensors"' in _disposition(
        api, tenant, by_step[40]["id"])
    # The file is still addressable by its stored name and by the name it downloads under.
    for query in ("?file=lora.safetensors", "?file=tabby-early.safetensors"):
        assert "tabby-early.safetensors" in _disposition(api, tenant, by_step[20]["id"], query)
    # A rename renames the download too.
    r = api.patch(f"/v1/models/{by_step[20]['id']}", json={"name": "Tabby v1"},
                  headers=tenant.auth)
    assert r.status_code == 200 and r.json()["files"][0]["download_name"] == "tabby-v1.safetensors"


@LOCAL
def test_embedding_files_are_named_by_their_trigger_word(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    config = {"type": "pivotal", "placeholder_token": "<tabby>", "caption_prefix": "<tabby>"}
    fx = make_job(storage, tenant.org_id, steps=[5], type="pivotal", config=config)
    r = _finalize(api, tenant, fx.job_id, steps=[5], names=["Tabby pivotal"])
    assert r.status_code == 200, r.text
    (model,) = r.json()["models"]
    assert {f["name"]: f["download_name"] for f in model["files"]} == {
        "lora.safetensors": "tabby-pivotal.safetensors",
        "embedding.safetensors": "tabby.safetensors"}
    assert 'filename="tabby.safetensors"' in _disposition(
        api, tenant, model["id"], "?file=embedding.safetensors")
    assert 'filename="tabby.safetensors"' in _disposition(
        api, tenant, model["id"], "?file=tabby.safetensors")


@LOCAL
def test_model_names_are_unique_within_an_org(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    first = make_job(storage, tenant.org_id, steps=[1, 2], name="Cat")
    assert _finalize(api, tenant, first.job_id, steps=[1, 2],
                     names=["Cat", "Cat v2"]).status_code == 200
    second = make_job(storage, tenant.org_id, steps=[3, 4], name="Cat")
    r = _finalize(api, tenant, second.job_id, steps=[3, 4], names=["Cat v3", "Cat"])
    assert r.status_code == 409, r.text
    assert "“Cat” already exists" in r.json()["detail"] and r.json()["taken_names"] == ["Cat"]
    # Nothing happened: the job is still finalizable, with other names.
    r = _finalize(api, tenant, second.job_id, steps=[3, 4], names=["Cat v3", "Cat v4"])
    assert r.status_code == 200, r.text

    # Another org may use the same names.
    other = make_tenant()
    theirs = make_job(storage, other.org_id, steps=[1], name="Cat")
    assert _finalize(api, other, theirs.job_id, steps=[1], names=["Cat"]).status_code == 200

    # Rename onto a taken name is a 409 too; renaming to its own name is fine.
    models = api.get("/v1/models?q=Cat v4", headers=tenant.auth).json()["items"]
    model_id = models[0]["id"]
    r = api.patch(f"/v1/models/{model_id}", json={"name": "Cat v2"}, headers=tenant.auth)
    assert r.status_code == 409 and "unique within an organization" in r.json()["detail"]
    r = api.patch(f"/v1/models/{model_id}", json={"name": "Cat v4"}, headers=tenant.auth)
    assert r.status_code == 200


@LOCAL
def test_default_names_never_clash(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    for expected in ("Dog · step 1", "Dog · step 1 (2)"):
        fx = make_job(storage, tenant.org_id, steps=[1], name="Dog")
        r = _finalize(api, tenant, fx.job_id, steps=[1])
        assert r.status_code == 200, r.text
        assert r.json()["models"][0]["name"] == expected
    # A partial {step: name} map: the unnamed step gets the default.
    fx = make_job(storage, tenant.org_id, steps=[7, 8], name="Dog")
    r = _finalize(api, tenant, fx.job_id, steps=[7, 8], names={"8": "Dog best"})
    assert [m["name"] for m in r.json()["models"]] == ["Dog · step 7", "Dog best"]


@LOCAL
def test_name_errors_are_422(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    fx = make_job(storage, tenant.org_id, steps=[1, 2], name="Eel")
    for body, needle in [
        ({"steps": [1, 2], "names": ["Same", "Same"]}, "'Same' is used twice"),
        ({"steps": [1], "names": {"3": "x"}}, "steps [3], which are not being kept"),
        ({"steps": [1], "names": {"1": " "}}, "blank"),
        ({"steps": [1], "names": ["x" * 201]}, "at most 200 characters"),
    ]:
        r = _finalize(api, tenant, fx.job_id, **body)
        assert r.status_code == 422, (body, r.text)
        assert needle in r.text, (body, r.text)


def test_migration_renames_existing_duplicates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """0005 makes room for the constraint: a repeated name gets ' (2)', the oldest keeps it."""
    from sqlalchemy import create_engine, text

    from app.core.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i, (name, when) in enumerate([("Cat", "2026-01-01"), ("Cat", "2026-01-02"),
                                          ("Cat (2)", "2026-01-03"), ("Cat", "2026-01-04")]):
            conn.execute(text(
                "INSERT INTO models (id, org_id, name, type, architecture, base_model, step, "
                "config, files, preview_images, bytes, created_at) VALUES (:id, 'o1', :name, "
                "'lora', 'sd15', 'b', 1, '{}', '[]', '[]', 0, :when)"),
                {"id": f"m{i}", "name": name, "when": when})
    upgrade(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, name FROM models")).fetchall())
    engine.dispose()
    assert rows == {"m0": "Cat", "m1": "Cat (3)", "m2": "Cat (2)", "m3": "Cat (4)"}
