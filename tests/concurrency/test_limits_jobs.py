"""Job creation against a real server on PostgreSQL and SQLite: creating a job racing the
deletion of its dataset has exactly one clean winner, and the plan bounds a job's size."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from app.models import Dataset, DatasetItem, TrainingJob
from tests.concurrency.limits_support import Server, at_once, png, server_fixture  # noqa: F401
from tests.jobs.conftest import job_body

ROUNDS = 12


def _dataset_with_images(api: httpx.Client, auth: dict[str, str], n: int = 2) -> str:
    r = api.post("/v1/datasets", json={"name": "race"}, headers=auth)
    assert r.status_code == 201, r.text
    ds = str(r.json()["id"])
    files = [("files", (f"{i}.png", png(16), "image/png")) for i in range(n)]
    r = api.post(f"/v1/datasets/{ds}/items", headers=auth, files=files)
    assert r.status_code == 200 and len(r.json()["created"]) == n, r.text
    return ds


def _cancel_all(api: httpx.Client, auth: dict[str, str], job_ids: list[str]) -> None:
    for job_id in job_ids:  # leave nothing queued in the shared database
        api.post(f"/v1/jobs/{job_id}/cancel", headers=auth)


def test_job_create_racing_dataset_delete_has_one_clean_winner(server: Server) -> None:
    tenant = server.tenant(max_concurrent_jobs=50)
    base = server.base_model()
    outcomes: list[tuple[int, int]] = []
    jobs: list[str] = []
    with server.client() as api:
        for _ in range(ROUNDS):
            ds = _dataset_with_images(api, tenant.auth)
            body = job_body(ds, base, caption_prefix="zkw")

            def create(body: dict[str, Any] = body) -> httpx.Response:
                with server.client() as c:
                    return c.post("/v1/jobs", json=body, headers=tenant.auth)

            def delete(ds: str = ds) -> httpx.Response:
                with server.client() as c:
                    return c.delete(f"/v1/datasets/{ds}", headers=tenant.auth)

            made, gone = at_once([create, delete])
            assert not isinstance(made, Exception) and not isinstance(gone, Exception)
            outcomes.append((made.status_code, gone.status_code))
            with server.session() as db:
                dataset_rows = db.scalar(select(func.count()).select_from(Dataset)
                                         .where(Dataset.id == ds))
                items = db.scalar(select(func.count()).select_from(DatasetItem)
                                  .where(DatasetItem.dataset_id == ds))
                job_rows = db.scalar(select(func.count()).select_from(TrainingJob)
                                     .where(TrainingJob.org_id == tenant.org_id,
                                            TrainingJob.dataset_id == ds))
            if made.status_code == 201:
                jobs.append(made.json()["id"])
                # The job won: the dataset and every image it froze are still there.
                assert gone.status_code == 409, (gone.status_code, gone.text)
                assert made.json()["id"] in gone.json()["job_ids"]
                assert dataset_rows == 1 and items == 2 and job_rows == 1
            else:
                # The delete won: the create was answered as for a dataset that does not exist.
                assert gone.status_code == 204, (made.text, gone.text)
                assert made.status_code in (404, 409, 422), made.text
                assert "does not exist" in made.json()["detail"]
                assert dataset_rows == 0 and items == 0 and job_rows == 0
        _cancel_all(api, tenant.auth, jobs)
    print("create/delete outcomes:", outcomes)


def test_plan_bounds_job_size(server: Server) -> None:
    tenant = server.tenant(max_train_steps_limit=500, max_validation_images_limit=20)
    base = server.base_model()
    with server.client() as api:
        ds = _dataset_with_images(api, tenant.auth)
        over = job_body(ds, base, caption_prefix="zkw", steps=501, every=500)
        r = api.post("/v1/jobs", json=over, headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert "max_train_steps_limit" in r.json()["detail"] and "500" in r.json()["detail"]
        # 1,000,000 steps in advanced is bounded the same way.
        huge = job_body(ds, base, caption_prefix="zkw", steps=None, every=500)
        huge.pop("max_train_steps")
        huge["advanced"]["max_train_steps"] = 1_000_000
        r = api.post("/v1/jobs", json=huge, headers=tenant.auth)
        assert r.status_code == 422 and "max_train_steps_limit" in r.json()["detail"], r.text
        # 4 prompts x 2 images x (step 0 + 100 renders + last) validation images > 20.
        many = job_body(ds, base, caption_prefix="zkw", steps=500, every=5,
                        validation_prompts=["a", "b", "c", "d"])
        many["advanced"]["num_validation_images"] = 2
        r = api.post("/v1/jobs", json=many, headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert "max_validation_images_limit" in r.json()["detail"]
        ok = api.post("/v1/jobs", json=job_body(ds, base, caption_prefix="zkw", steps=500,
                                                every=250), headers=tenant.auth)
        assert ok.status_code == 201, ok.text
        _cancel_all(api, tenant.auth, [ok.json()["id"]])


def test_retry_after_its_images_were_deleted_is_refused(server: Server) -> None:
    tenant = server.tenant()
    base = server.base_model()
    with server.client() as api:
        ds = _dataset_with_images(api, tenant.auth)
        job = api.post("/v1/jobs", json=job_body(ds, base, caption_prefix="zkw"),
                       headers=tenant.auth).json()
        assert api.post(f"/v1/jobs/{job['id']}/cancel", headers=tenant.auth).status_code == 200
        assert api.delete(f"/v1/datasets/{ds}", headers=tenant.auth).status_code == 204
        r = api.post(f"/v1/jobs/{job['id']}/retry", headers=tenant.auth)
        # A retry would train on images that are gone: refused, not queued to fail later.
        assert r.status_code == 409 and "deleted" in r.json()["detail"], r.text
