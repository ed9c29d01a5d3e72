"""The captioning API without a worker: jobs freeze exactly the requested items, bad input is
a clear 4xx, review (accept / edit / prefix / discard) is the only way captions change, and
another org sees none of it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.db import session_scope
from app.models import CaptionJob, DatasetItem, Organization
from tests.captioning.conftest import create_job, dataset_with, items_of, make_dataset, suggest
from tests.conftest import Tenant


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing reaches the shared broker: another test's worker would run these jobs.
    monkeypatch.setattr("app.jobs.dispatch.send", lambda ids: None)


def _frozen(job_id: str) -> list[str]:
    with session_scope() as db:
        job = db.get(CaptionJob, job_id)
        assert job is not None
        return list(job.item_ids)


def test_captioners_are_listed(client: TestClient, tenant: Tenant,
                               registered: dict[str, str]) -> None:
    r = client.get("/v1/captioners", headers=tenant.auth)
    assert r.status_code == 200
    listed = {c["key"]: c for c in r.json()["items"]}
    for kind, key in registered.items():
        assert listed[key] == {"key": key, "name": key, "kind": kind}


def test_job_freezes_exactly_the_requested_items(client: TestClient, tenant: Tenant,
                                                 registered: dict[str, str]) -> None:
    ds, ids = dataset_with(tenant, ["a cat", None, "a dog", None])
    job = create_job(client, tenant, ds, captioner=registered["tags"], prefix="  zkw ")
    assert job["status"] == "queued" and job["mode"] == "uncaptioned"
    assert job["style"] == "tags" and job["prefix"] == "zkw"  # style defaults to the kind
    assert job["progress"] == {"done": 0, "total": 2}
    assert _frozen(job["id"]) == [ids[1], ids[3]]
    assert set(job) == {"id", "dataset_id", "captioner", "mode", "style", "prefix",
                        "max_length", "status", "progress", "gpu_seconds", "error",
                        "created_at", "started_at", "finished_at"}
    # One active job per dataset: a second would overwrite the first one's suggestions.
    r = client.post(f"/v1/datasets/{ds}/caption-jobs", json={"captioner": registered["tags"]},
                    headers=tenant.auth)
    assert r.status_code == 409 and job["id"] in r.json()["detail"]
    assert client.post(f"/v1/caption-jobs/{job['id']}/cancel",
                       headers=tenant.auth).json()["status"] == "cancelled"
    every = create_job(client, tenant, ds, captioner=registered["sentence"], mode="all",
                       style="sentence", max_length=12)
    assert every["progress"]["total"] == 4 and _frozen(every["id"]) == ids
    assert every["max_length"] == 12
    listed = client.get(f"/v1/datasets/{ds}/caption-jobs", headers=tenant.auth).json()
    assert [j["id"] for j in listed["items"]] == [every["id"], job["id"]]  # newest first
    assert client.get(f"/v1/caption-jobs/{every['id']}", headers=tenant.auth).json() == every
    with session_scope() as db:  # nothing touched a caption
        captions = [db.get(DatasetItem, i).caption for i in ids]  # type: ignore[union-attr]
    assert captions == ["a cat", None, "a dog", None]


def test_bad_inputs_get_clear_answers(client: TestClient, tenant: Tenant,
                                      other_tenant: Tenant, registered: dict[str, str]) -> None:
    ds, _ = dataset_with(tenant, [None, "done"])

    def post(dataset_id: str, body: dict, who: Tenant = tenant) -> tuple[int, str]:
        r = client.post(f"/v1/datasets/{dataset_id}/caption-jobs", json=body, headers=who.auth)
        return r.status_code, r.text

    code, text = post(ds, {"captioner": "no-such-captioner"})
    assert code == 422 and "no-such-captioner" in text and "does not exist" in text
    code, text = post(ds, {"captioner": registered["tags"], "style": "sentence"})
    assert code == 422 and "writes tags, not sentence" in text and registered["sentence"] in text
    assert post(ds, {"captioner": registered["tags"], "prefix": "x" * 201})[0] == 422
    code, text = post(ds, {"captioner": registered["tags"], "prefix": "zkw\u0000"})
    assert code == 422 and "NUL" in text
    assert post(ds, {"captioner": registered["tags"], "max_length": 0})[0] == 422
    assert post(ds, {"captioner": registered["tags"], "mode": "some"})[0] == 422
    assert post(ds, {"captioner": registered["tags"], "surprise": 1})[0] == 422
    code, text = post(ds, {"captioner": registered["tags"]}, who=other_tenant)
    assert code == 404 and "Dataset" in text  # another org's dataset does not exist for it
    empty = client.post("/v1/datasets", json={"name": "empty"}, headers=tenant.auth).json()
    code, text = post(empty["id"], {"captioner": registered["tags"]})
    assert code == 422 and "no images" in text
    captioned = make_dataset(tenant, 2, captions=True)
    code, text = post(captioned, {"captioner": registered["tags"]})
    assert code == 422 and "already have a caption" in text and "'all'" in text
    with session_scope() as db:
        assert db.query(CaptionJob).filter_by(org_id=tenant.org_id).count() == 0


def test_a_quota_exhausted_org_cannot_start_one(client: TestClient, tenant: Tenant,
                                                registered: dict[str, str]) -> None:
    ds, _ = dataset_with(tenant, [None])
    with session_scope() as db:
        db.get(Organization, tenant.org_id).monthly_gpu_seconds_limit = 0  # type: ignore[union-attr]
    r = client.post(f"/v1/datasets/{ds}/caption-jobs", json={"captioner": registered["tags"]},
                    headers=tenant.auth)
    assert r.status_code == 429 and "monthly_gpu_seconds_limit" in r.json()["detail"]


def test_cancel_a_queued_job_and_refuse_an_ended_one(client: TestClient, tenant: Tenant,
                                                     registered: dict[str, str]) -> None:
    ds, _ = dataset_with(tenant, [None])
    job = create_job(client, tenant, ds, captioner=registered["tags"])
    r = client.post(f"/v1/caption-jobs/{job['id']}/cancel", headers=tenant.auth)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["finished_at"]
    with session_scope() as db:
        db.get(CaptionJob, job["id"]).status = "succeeded"  # type: ignore[union-attr]
    r = client.post(f"/v1/caption-jobs/{job['id']}/cancel", headers=tenant.auth)
    assert r.status_code == 409 and "already succeeded" in r.json()["detail"]


def test_accept_one_edit_then_accept_accept_all_with_prefix_discard_all(
    client: TestClient, tenant: Tenant, registered: dict[str, str],
) -> None:
    ds, ids = dataset_with(tenant, [None, None, "mine", None, None])
    job = create_job(client, tenant, ds, captioner=registered["tags"], mode="all",
                     prefix="zkw")
    suggest(job["id"], {ids[0]: "1girl, solo", ids[1]: "a hat", ids[2]: "zkw, already",
                        ids[3]: "cat", ids[4]: "dog"})
    items = items_of(client, tenant, ds)
    assert items[ids[2]]["caption"] == "mine", "a suggestion never changes the caption"
    assert items[ids[0]]["caption"] is None
    shown = items[ids[0]]["suggestion"]
    assert shown["text"] == "1girl, solo" and shown["caption_job_id"] == job["id"]
    assert shown["prefix"] == "zkw" and shown["created_at"]
    listed = client.get(f"/v1/datasets/{ds}/suggestions", headers=tenant.auth).json()["items"]
    assert [(s["item_id"], s["caption"]) for s in listed] == [
        (ids[0], None), (ids[1], None), (ids[2], "mine"), (ids[3], None), (ids[4], None)]

    def accept(body: dict) -> dict:
        r = client.post(f"/v1/datasets/{ds}/suggestions/accept", json=body, headers=tenant.auth)
        assert r.status_code == 200, r.text
        return r.json()

    one = accept({"items": [{"item_id": ids[0]}]})  # the job's prefix applies
    assert one["accepted"] == 1 and one["items"][0]["caption"] == "zkw, 1girl, solo"
    assert one["items"][0]["suggestion"] is None
    edited = accept({"items": [{"item_id": ids[1], "caption": "a red hat "}]})
    assert edited["items"][0]["caption"] == "zkw, a red hat"
    # An item without a suggestion fails the whole request, naming it; nothing is applied.
    r = client.post(f"/v1/datasets/{ds}/suggestions/accept", headers=tenant.auth,
                    json={"items": [{"item_id": ids[3]}, {"item_id": ids[0]}]})
    assert r.status_code == 422 and ids[0] in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["body", "items", "1", "item_id"]
    assert items_of(client, tenant, ds)[ids[3]]["caption"] is None
    rest = accept({"all": True, "prefix": "sks"})  # the request's prefix wins over the job's
    assert rest["accepted"] == 3
    captions = {i["id"]: i["caption"] for i in rest["items"]}
    assert captions == {ids[2]: "sks, zkw, already", ids[3]: "sks, cat", ids[4]: "sks, dog"}
    assert client.get(f"/v1/datasets/{ds}/suggestions",
                      headers=tenant.auth).json()["items"] == []

    suggest(job["id"], {ids[0]: "zkw, again", ids[3]: "other"})
    r = client.post(f"/v1/datasets/{ds}/suggestions/accept", headers=tenant.auth,
                    json={"items": [{"item_id": ids[0]}]})
    assert r.json()["items"][0]["caption"] == "zkw, again", "the prefix is not doubled"
    r = client.post(f"/v1/datasets/{ds}/suggestions/discard", json={"all": True},
                    headers=tenant.auth)
    assert r.status_code == 200 and r.json() == {"discarded": 1}
    after = items_of(client, tenant, ds)
    assert after[ids[3]]["caption"] == "sks, cat" and after[ids[3]]["suggestion"] is None


def test_discard_some_and_refuse_bad_review_requests(client: TestClient, tenant: Tenant,
                                                     registered: dict[str, str]) -> None:
    ds, ids = dataset_with(tenant, [None, None, None])
    other_ds, other_ids = dataset_with(tenant, [None])
    job = create_job(client, tenant, ds, captioner=registered["tags"])
    suggest(job["id"], {ids[0]: "a", ids[1]: "b"})
    url = f"/v1/datasets/{ds}/suggestions"
    for body in ({}, {"all": True, "item_ids": [ids[0]]}, {"item_ids": []}):
        assert client.post(f"{url}/discard", json=body, headers=tenant.auth).status_code == 422
    for body in ({}, {"all": True, "items": [{"item_id": ids[0]}]},
                 {"all": True, "prefix": "p" * 201},
                 {"items": [{"item_id": ids[0], "caption": "x\u0000"}]}):
        assert client.post(f"{url}/accept", json=body, headers=tenant.auth).status_code == 422
    r = client.post(f"{url}/discard", json={"item_ids": [ids[0], other_ids[0]]},
                    headers=tenant.auth)
    assert r.status_code == 422 and other_ids[0] in r.json()["detail"]  # not in this dataset
    r = client.post(f"{url}/discard", json={"item_ids": [ids[0], ids[2]]}, headers=tenant.auth)
    assert r.json() == {"discarded": 1}  # ids[2] had none: nothing to drop there
    left = client.get(url, headers=tenant.auth).json()["items"]
    assert [s["item_id"] for s in left] == [ids[1]]
    assert other_ds != ds


def test_another_org_cannot_see_accept_or_discard(client: TestClient, tenant: Tenant,
                                                  other_tenant: Tenant,
                                                  registered: dict[str, str]) -> None:
    ds, ids = dataset_with(tenant, [None])
    job = create_job(client, tenant, ds, captioner=registered["tags"])
    suggest(job["id"], {ids[0]: "secret tags"})
    theirs, their_ids = dataset_with(other_tenant, [None])
    stranger = other_tenant.auth
    for method, url, body in (
        ("GET", f"/v1/caption-jobs/{job['id']}", None),
        ("GET", f"/v1/caption-jobs/{job['id']}/events", None),
        ("POST", f"/v1/caption-jobs/{job['id']}/cancel", None),
        ("GET", f"/v1/datasets/{ds}/caption-jobs", None),
        ("GET", f"/v1/datasets/{ds}/suggestions", None),
        ("POST", f"/v1/datasets/{ds}/suggestions/accept", {"all": True}),
        ("POST", f"/v1/datasets/{ds}/suggestions/discard", {"all": True}),
    ):
        r = client.request(method, url, json=body, headers=stranger)
        assert r.status_code == 404, (method, url, r.status_code)
        assert "secret" not in r.text
    # Naming the other org's item under its own dataset: not in that dataset.
    r = client.post(f"/v1/datasets/{theirs}/suggestions/accept", headers=stranger,
                    json={"items": [{"item_id": ids[0]}]})
    assert r.status_code == 422
    assert client.get(f"/v1/datasets/{theirs}/suggestions", headers=stranger).json() == {
        "items": []}
    assert their_ids
    mine = client.get(f"/v1/datasets/{ds}/suggestions", headers=tenant.auth).json()["items"]
    assert [s["suggestion"]["text"] for s in mine] == ["secret tags"]  # untouched
    assert client.get(f"/v1/caption-jobs/{job['id']}",
                      headers=tenant.auth).json()["status"] == "queued"


def test_caption_gpu_seconds_count_in_usage(client: TestClient, tenant: Tenant,
                                            registered: dict[str, str]) -> None:
    ds, _ = dataset_with(tenant, [None])
    before = client.get("/v1/usage", headers=tenant.auth).json()
    job = create_job(client, tenant, ds, captioner=registered["tags"])
    queued = client.get("/v1/usage", headers=tenant.auth).json()
    assert queued["queued_jobs"] == before["queued_jobs"] + 1  # one GPU queue, both kinds
    with session_scope() as db:
        row = db.get(CaptionJob, job["id"])
        assert row is not None
        row.status, row.gpu_seconds = "succeeded", 12.5
    after = client.get("/v1/usage", headers=tenant.auth).json()
    assert after["gpu_seconds_this_month"] == pytest.approx(
        before["gpu_seconds_this_month"] + 12.5)
    assert client.get(f"/v1/caption-jobs/{job['id']}",
                      headers=tenant.auth).json()["gpu_seconds"] == 12.5


def test_a_job_whose_org_ran_out_of_gpu_time_fails_at_the_claim(
    client: TestClient, tenant: Tenant, registered: dict[str, str],
) -> None:
    from worker.runner.run_caption_job import run_caption_job

    ds, _ = dataset_with(tenant, [None])
    job = create_job(client, tenant, ds, captioner=registered["tags"])
    with session_scope() as db:  # the month's seconds went to other jobs since
        db.get(Organization, tenant.org_id).monthly_gpu_seconds_limit = 0  # type: ignore[union-attr]
    assert run_caption_job(job["id"]) == "skipped"  # the worker's claim, in this process
    done = client.get(f"/v1/caption-jobs/{job['id']}", headers=tenant.auth).json()
    assert done["status"] == "failed" and done["error"].startswith("GPU quota reached")
    assert done["progress"]["done"] == 0
