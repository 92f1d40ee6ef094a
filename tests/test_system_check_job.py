"""A system check through the real API, Redis and Celery worker, from the API and the page."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, wait_for_job

pytestmark = pytest.mark.worker


def test_a_system_check_launched_with_a_token_runs_on_the_worker_with_live_progress(worker, alice_api):
    created = alice_api.post("/api/jobs/", {"kind": "system_check", "params": {"seconds_per_device": 3}},
                             format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "queued"

    seen = []
    job = wait_for_job(alice_api, created.json()["id"], seen=seen)

    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 1.0
    assert job["worker"] == "test-jobs"  # which kind of worker; the host in its name is for staff only
    assert job["device"].startswith("CPU")
    cpu = job["result"]["devices"][0]
    assert cpu["type"] == "CPU" and cpu["gflops"] > 0 and cpu["matmul_runs"] > 0
    assert job["result"]["tensorflow"].startswith("2.")
    # While it ran, polling saw intermediate progress published through Redis.
    running = [s["progress"] for s in seen if s["status"] == "running"]
    assert any(0 < p < 1 for p in running), running
    assert running == sorted(running)


def test_a_system_check_launched_from_the_jobs_page_redirects_to_its_live_page(worker, client, alice):
    client.login(username="alice", password=PASSWORD)

    response = client.post("/jobs/", {"queue": "cpu"})

    assert response.status_code == 302
    job_id = int(response["Location"].rstrip("/").split("/")[-1])
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"System check #" in page.content
    assert client.get(f"/api/jobs/{job_id}/").json()["queue"] == "cpu"
    assert wait_for_job(client, job_id)["status"] == "succeeded"


def test_cancelling_a_running_job_stops_it_within_seconds(worker, alice_api):
    job_id = alice_api.post("/api/jobs/", {"kind": "system_check", "params": {"seconds_per_device": 30}},
                            format="json").json()["id"]
    from tests.conftest import wait_for

    wait_for(lambda: alice_api.get(f"/api/jobs/{job_id}/").json()["progress"] > 0.2, timeout=60,
             what="the benchmark to start")

    response = alice_api.post(f"/api/jobs/{job_id}/cancel/")

    assert response.status_code == 202
    job = wait_for_job(alice_api, job_id, timeout=15)
    assert job["status"] == "cancelled"
    assert job["duration_seconds"] < 30
