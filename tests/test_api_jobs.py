"""The jobs API without a worker: authentication, ownership, validation, cancel of queued jobs."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def make_job(owner, **fields) -> Job:
    return Job.objects.create(owner=owner, kind=Job.Kind.SYSTEM_CHECK,
                              params={"seconds_per_device": 1.0}, **fields)


@pytest.mark.parametrize("method, path", [
    ("get", "/api/jobs/"), ("post", "/api/jobs/"), ("get", "/api/jobs/1/"),
    ("post", "/api/jobs/1/cancel/"), ("get", "/api/workers/"),
])
def test_anonymous_api_calls_are_refused(method, path):
    response = getattr(APIClient(), method)(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get("/api/jobs/").status_code == 401


def test_a_user_lists_only_their_own_jobs(alice, bob, alice_api):
    mine = make_job(alice)
    make_job(bob)

    listed = alice_api.get("/api/jobs/").json()["results"]

    assert [job["id"] for job in listed] == [mine.id]


def test_another_users_job_answers_404_to_read_and_cancel(alice, bob, bob_api):
    job = make_job(alice)

    assert bob_api.get(f"/api/jobs/{job.id}/").status_code == 404
    assert bob_api.post(f"/api/jobs/{job.id}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested


def test_another_users_job_page_answers_404(alice, bob, client):
    job = make_job(alice)
    client.force_login(bob)

    assert client.get(f"/jobs/{job.id}/").status_code == 404
    assert client.post(f"/jobs/{job.id}/cancel/").status_code == 404


def test_the_job_detail_has_the_contract_fields(alice, alice_api):
    job = make_job(alice)

    data = alice_api.get(f"/api/jobs/{job.id}/").json()

    for field in ("id", "kind", "status", "progress", "metrics", "result", "error", "model"):
        assert field in data
    assert data["status"] == "queued" and data["progress"] == 0.0 and data["metrics"] == []


def test_epoch_metrics_appear_in_the_job(alice, alice_api):
    job = make_job(alice)
    job.metrics.create(epoch=1, values={"loss": 0.9, "accuracy": 0.5})
    job.metrics.create(epoch=2, values={"loss": 0.4, "accuracy": 0.8})

    metrics = alice_api.get(f"/api/jobs/{job.id}/").json()["metrics"]

    assert metrics == [{"epoch": 1, "loss": 0.9, "accuracy": 0.5}, {"epoch": 2, "loss": 0.4, "accuracy": 0.8}]


@pytest.mark.parametrize("body, field, words", [
    ({}, "kind", "required"),
    ({"kind": "knit_a_sweater"}, "kind", "not a valid choice"),
    ({"kind": "extract_features"}, "dataset", "required"),
    ({"kind": "ingest_dataset"}, "kind", "start by themselves"),
    ({"kind": "system_check", "params": {"seconds_per_device": -1}}, "params", "greater than or equal"),
    ({"kind": "system_check", "params": {"seconds_per_device": "soon"}}, "params", "valid number"),
    ({"kind": "system_check", "queue": "moon"}, "queue", "not a valid choice"),
])
def test_bad_job_requests_get_a_clear_message_per_field(alice_api, body, field, words):
    response = alice_api.post("/api/jobs/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert words in str(response.json()[field])
    assert not Job.objects.exists()


def test_a_queued_job_is_cancelled_at_once_and_cannot_be_cancelled_twice(alice, alice_api):
    job = make_job(alice)

    first = alice_api.post(f"/api/jobs/{job.id}/cancel/")
    second = alice_api.post(f"/api/jobs/{job.id}/cancel/")

    assert first.status_code == 202 and first.json()["status"] == "cancelled"
    assert second.status_code == 409
    assert "already ended" in second.json()["detail"]


def test_cancelling_a_running_job_flags_it_for_the_worker(alice, alice_api):
    from webapp.jobs import live

    job = make_job(alice, status=Job.Status.RUNNING, worker="w@host")

    response = alice_api.post(f"/api/jobs/{job.id}/cancel/")

    assert response.status_code == 202
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.cancel_requested
    assert live.is_cancel_requested(job.id)


def test_the_schema_and_docs_pages_are_served(alice, client):
    client.force_login(alice)

    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200 and b"/api/jobs/" in schema.content
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
