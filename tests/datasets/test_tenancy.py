"""Another org's datasets and items are 404 on every route, whatever the body says."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.datasets.helpers import create_dataset, image_bytes, list_items, upload

ROUTES = [
    ("GET", "/v1/datasets/{d}"),
    ("PATCH", "/v1/datasets/{d}"),
    ("DELETE", "/v1/datasets/{d}"),
    ("GET", "/v1/datasets/{d}/items"),
    ("POST", "/v1/datasets/{d}/items"),
    ("PATCH", "/v1/datasets/{d}/items"),
    ("GET", "/v1/datasets/{d}/items/{i}"),
    ("PATCH", "/v1/datasets/{d}/items/{i}"),
    ("DELETE", "/v1/datasets/{d}/items/{i}"),
    ("POST", "/v1/datasets/{d}/uploads"),
    ("POST", "/v1/datasets/{d}/uploads/complete"),
    ("POST", "/v1/datasets/{d}/captions/bulk"),
    ("POST", "/v1/datasets/{d}/captions/import"),
    ("GET", "/v1/datasets/{d}/export"),
    ("POST", "/v1/datasets/{d}/caption-jobs"),
    ("GET", "/v1/datasets/{d}/caption-jobs"),
    ("GET", "/v1/datasets/{d}/suggestions"),
    ("POST", "/v1/datasets/{d}/suggestions/accept"),
    ("POST", "/v1/datasets/{d}/suggestions/discard"),
]


def test_every_route_is_404_for_another_org(client: TestClient, tenant: Tenant,
                                             other_tenant: Tenant) -> None:
    ds = create_dataset(client, tenant)
    item = upload(client, tenant, ds["id"], [("a.png", image_bytes())])["created"][0]
    mine = create_dataset(client, other_tenant)
    mine_item = upload(client, other_tenant, mine["id"], [("b.png", image_bytes())])["created"][0]
    covered = {(m, p) for m, p in ROUTES}
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    served = {(method.upper(), path.replace("{dataset_id}", "{d}").replace("{item_id}", "{i}"))
              for path, ops in paths.items() if "{dataset_id}" in path for method in ops}
    assert served == covered, "a dataset route is missing from the tenancy test"

    for method, template in ROUTES:
        for d, i in ((ds["id"], item["id"]), (mine["id"], item["id"])):
            if (d, i) == (mine["id"], item["id"]) and "{i}" not in template:
                continue
            url = template.format(d=d, i=i)
            # Bodies are deliberately junk: the 404 must come before validation.
            r = client.request(method, url, headers=other_tenant.auth, json={"junk": True})
            assert r.status_code == 404, (method, template, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    # An item of the same org addressed under another of its datasets is not found there.
    own2 = create_dataset(client, other_tenant)
    r = client.get(f"/v1/datasets/{own2['id']}/items/{mine_item['id']}",
                   headers=other_tenant.auth)
    assert r.status_code == 404
    # Lists show only the caller's own, and the victim's data is untouched.
    listed = client.get("/v1/datasets", headers=other_tenant.auth).json()["items"]
    assert {d["id"] for d in listed} == {mine["id"], own2["id"]}
    assert [i["id"] for i in list_items(client, tenant, ds["id"])] == [item["id"]]
