"""Small API steps the worker tests share: upload a dataset or a backbone, launch a job."""

from __future__ import annotations

from tests.conftest import wait_for


def upload_dataset(client, archive, kind: str, name: str) -> dict:
    with open(archive, "rb") as handle:
        response = client.post("/api/datasets/", {"name": name, "kind": kind, "file": handle}, format="multipart")
    assert response.status_code == 201, response.content

    def ready():
        data = client.get(f"/api/datasets/{response.json()['id']}/").json()
        assert data["status"] != "failed", data["error"]
        return data if data["status"] == "ready" else None

    return wait_for(ready, timeout=120, what=f"the {name} dataset")


def upload_backbone(client, path, **fields) -> dict:
    with open(path, "rb") as handle:
        response = client.post("/api/backbones/", {"name": path.stem, "file": handle, **fields}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def launch(client, body: dict) -> dict:
    response = client.post("/api/jobs/", {"queue": "cpu", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()
