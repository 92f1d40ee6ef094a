"""The datasets and uploads API without a worker: protocol, limits, ownership, deletion."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from tests import archives
from webapp.datasets.models import Dataset, Upload
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def start(client, size: int, filename: str = "pets.zip"):
    return client.post("/api/uploads/", {"filename": filename, "size": size}, format="json")


def put(client, upload_id, data: bytes, start_at: int, total: int):
    return client.put(f"/api/uploads/{upload_id}/", data=data, content_type="application/octet-stream",
                      HTTP_CONTENT_RANGE=f"bytes {start_at}-{start_at + len(data) - 1}/{total}")


def send_in_chunks(client, payload: bytes, chunk: int = 1000) -> str:
    upload_id = start(client, len(payload)).json()["id"]
    for offset in range(0, len(payload), chunk):
        assert put(client, upload_id, payload[offset:offset + chunk], offset, len(payload)).status_code == 200
    return upload_id


@pytest.mark.parametrize("method, path", [("get", "/api/datasets/"), ("post", "/api/datasets/"),
                                          ("post", "/api/uploads/"), ("post", "/api/datasets/reference/")])
def test_anonymous_dataset_calls_are_refused(method, path):
    assert getattr(APIClient(), method)(path).status_code == 401


def test_a_chunked_upload_resumes_from_the_server_offset(alice_api):
    payload = bytes(range(256)) * 20
    upload_id = start(alice_api, len(payload)).json()["id"]

    assert put(alice_api, upload_id, payload[:1000], 0, len(payload)).json()["offset"] == 1000
    skipped_ahead = put(alice_api, upload_id, payload[2000:3000], 2000, len(payload))
    assert skipped_ahead.status_code == 409 and skipped_ahead.json()["offset"] == 1000
    assert alice_api.get(f"/api/uploads/{upload_id}/").json()["offset"] == 1000

    put(alice_api, upload_id, payload[1000:], 1000, len(payload))

    status = alice_api.get(f"/api/uploads/{upload_id}/").json()
    assert status["complete"] and status["offset"] == len(payload)
    assert Upload.objects.get(id=upload_id).path.read_bytes() == payload


def test_a_chunk_without_content_range_is_refused_with_the_header_to_use(alice_api):
    upload_id = start(alice_api, 10).json()["id"]

    response = alice_api.put(f"/api/uploads/{upload_id}/", data=b"0123456789",
                             content_type="application/octet-stream")

    assert response.status_code == 400 and "Content-Range" in response.json()["detail"]


def test_uploads_over_the_limit_are_refused_before_any_byte_is_sent(alice_api, settings):
    settings.MAX_UPLOAD_SIZE = 10 * 1024

    response = start(alice_api, 11 * 1024)

    assert response.status_code == 413
    assert response.json()["detail"] == ("This file is 11.0 KiB; the largest upload allowed here is 10.0 KiB.")
    assert not Upload.objects.exists()


def test_a_multipart_upload_over_the_limit_is_refused(alice_api, settings):
    settings.MAX_UPLOAD_SIZE = 1000

    response = alice_api.post("/api/datasets/", {"kind": "classification", "file": io.BytesIO(b"x" * 5000)},
                              format="multipart")

    assert response.status_code == 413 and "largest upload allowed" in response.json()["detail"]
    assert not Dataset.objects.exists()


def test_a_finished_upload_becomes_a_dataset_with_an_ingestion_job(alice, alice_api, tmp_path):
    payload = archives.classification_zip(tmp_path / "pets.zip").read_bytes()
    upload_id = send_in_chunks(alice_api, payload)

    response = alice_api.post("/api/datasets/", {"upload": upload_id, "kind": "classification"}, format="json")

    assert response.status_code == 201
    data = response.json()
    assert {"id", "status"} <= set(data) and data["status"] == "pending" and data["name"] == "pets"
    dataset = Dataset.objects.get(id=data["id"])
    assert dataset.archive_path.read_bytes() == payload
    assert not Upload.objects.filter(id=upload_id).exists()
    job = Job.objects.get(dataset=dataset)
    assert job.kind == "ingest_dataset" and job.status == "queued" and job.owner == alice
    assert data["job"]["id"] == job.id


def test_an_unfinished_upload_cannot_become_a_dataset(alice_api):
    upload_id = start(alice_api, 5000).json()["id"]
    put(alice_api, upload_id, b"x" * 1000, 0, 5000)

    response = alice_api.post("/api/datasets/", {"upload": upload_id, "kind": "classification"}, format="json")

    assert response.status_code == 400 and "not finished yet" in response.json()["detail"]


def test_ingestion_jobs_cannot_be_launched_through_the_jobs_api(alice_api):
    response = alice_api.post("/api/jobs/", {"kind": "ingest_dataset"}, format="json")

    assert response.status_code == 400 and "start by themselves" in str(response.json()["kind"])


def test_another_users_dataset_and_upload_answer_404(alice, bob_api, alice_api, client, bob):
    dataset = Dataset.objects.create(owner=alice, name="private", kind="classification", status="ready")
    upload_id = start(alice_api, 100).json()["id"]
    client.force_login(bob)

    assert bob_api.get(f"/api/datasets/{dataset.id}/").status_code == 404
    assert bob_api.get(f"/api/datasets/{dataset.id}/items/").status_code == 404
    assert bob_api.delete(f"/api/datasets/{dataset.id}/").status_code == 404
    assert bob_api.get(f"/api/uploads/{upload_id}/").status_code == 404
    assert bob_api.post("/api/datasets/", {"upload": upload_id, "kind": "classification"},
                        format="json").status_code == 404
    assert bob_api.get("/api/datasets/").json()["results"] == []
    assert client.get(f"/datasets/{dataset.id}/").status_code == 404
    assert client.get(f"/datasets/{dataset.id}/thumbs/x.jpg").status_code == 404
    assert Dataset.objects.filter(id=dataset.id).exists()


def test_thumbnail_paths_cannot_leave_the_dataset_folder(alice, client):
    dataset = Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready")
    dataset.thumbs_dir.mkdir(parents=True)
    (dataset.thumbs_dir / "ok.jpg").write_bytes(archives.image_bytes("JPEG"))
    (dataset.directory / "secret.txt").write_text("not a thumbnail")
    client.force_login(alice)

    assert client.get(f"/datasets/{dataset.id}/thumbs/ok.jpg").status_code == 200
    assert client.get(f"/datasets/{dataset.id}/thumbs/../secret.txt").status_code == 404
    assert client.get(f"/datasets/{dataset.id}/thumbs/%2E%2E/secret.txt").status_code == 404


def test_deleting_a_dataset_removes_its_files_and_keeps_job_records(alice, alice_api):
    dataset = Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready")
    dataset.images_dir.mkdir(parents=True)
    (dataset.images_dir / "a.png").write_bytes(b"x")
    job = Job.objects.create(owner=alice, kind="system_check", dataset=dataset, status="succeeded",
                             params={"dataset_name": "d"})

    assert alice_api.delete(f"/api/datasets/{dataset.id}/").status_code == 204

    assert not dataset.directory.exists()
    job.refresh_from_db()
    assert job.dataset is None and job.params["dataset_name"] == "d"


def test_unknown_reference_dataset_names_list_the_known_ones(alice_api):
    response = alice_api.post("/api/datasets/reference/", {"name": "imagenet-22k"}, format="json")

    assert response.status_code == 400 and "digits" in str(response.json()["name"])


def test_abandoned_uploads_are_removed_when_their_owner_starts_another(alice, alice_api):
    from datetime import timedelta

    from django.utils import timezone

    old_id = start(alice_api, 100).json()["id"]
    old = Upload.objects.get(id=old_id)
    Upload.objects.filter(id=old_id).update(updated_at=timezone.now() - timedelta(days=8))

    start(alice_api, 100)

    assert not Upload.objects.filter(id=old_id).exists() and not old.path.exists()


def test_the_dataset_list_leaves_out_the_long_reports(alice, alice_api):
    Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready",
                           skipped=[{"path": "x", "reason": "y"}])

    listed = alice_api.get("/api/datasets/").json()["results"][0]

    assert "skipped" not in listed and "stats" not in listed and listed["name"] == "d"
