"""Every run is a record (issue 12, items 2 and 5): filed in a project, tagged, annotated, with
what it takes to repeat it, and "Run again" makes the same job. Through the real API, Redis and
worker: the record is written by the process that ran the job."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_job
from webapp.experiments.models import Project, Tag
from webapp.jobs.models import Job, JobMetric

pytestmark = pytest.mark.worker


def train(client, dataset_id: int, **params) -> dict:
    body = {"kind": "train", "dataset": dataset_id, "architecture": "mlp", "queue": "cpu",
            "params": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "seed": 7, **params}}
    response = client.post("/api/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def finished(digits, alice_api) -> dict:
    job = wait_for_job(alice_api, train(alice_api, digits["id"])["id"], timeout=180)
    assert job["status"] == "succeeded", job["error"]
    return job


def test_a_finished_run_records_how_to_repeat_it_and_its_summary(finished, digits):
    record = finished["record"]
    assert record["code"].startswith(("git:", "visionlab ")), record
    assert {"python", "django", "tensorflow", "keras", "numpy"} <= set(record["libraries"]), record
    assert record["seed"] == 7 and record["dataset_hash"] == digits["content_hash"]
    assert record["device"] and record["device"] == finished["device"]
    assert finished["project"] == "Default" and finished["tags"] == [] and finished["note"] == ""

    # The summary columns say what the epochs and the result say.
    epochs = finished["metrics"]
    assert finished["epochs_run"] == 3 == len(epochs)
    assert finished["test_accuracy"] == pytest.approx(finished["result"]["test_accuracy"])
    assert finished["best_val_accuracy"] == pytest.approx(max(m["val_accuracy"] for m in epochs))
    assert finished["best_val_loss"] == pytest.approx(min(m["val_loss"] for m in epochs))
    assert finished["best_epoch"] == finished["result"]["best_epoch"]
    assert finished["curve"]["metric"] == "val_accuracy"
    assert [p[0] for p in finished["curve"]["points"]] == [1, 2, 3]


def test_tags_notes_and_projects_are_edited_and_kept_to_their_owner(finished, alice_api, bob_api):
    url = f"/api/jobs/{finished['id']}/"
    answer = alice_api.patch(url, {"tags": ["baseline", " mlp ", "baseline"], "note": "First try.",
                                   "project": "Digits"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["tags"] == ["baseline", "mlp"] and answer.json()["note"] == "First try."
    assert answer.json()["project"] == "Digits"
    assert alice_api.get(url).json()["tags"] == ["baseline", "mlp"]

    # Fields it computed cannot be edited; bad tags get a sentence; another user gets 404.
    assert alice_api.patch(url, {"tags": ["a,b"]}, format="json").status_code == 400
    assert "comma" in str(alice_api.patch(url, {"tags": ["a,b"]}, format="json").json())
    assert alice_api.patch(url, {"project": "  "}, format="json").status_code == 400
    assert alice_api.patch(url, {"note": "x" * 2001}, format="json").status_code == 400
    assert bob_api.patch(url, {"note": "mine now"}, format="json").status_code == 404
    assert alice_api.patch(url, {"test_accuracy": 1.0, "status": "failed"}, format="json").status_code == 200
    job = Job.objects.get(id=finished["id"])
    assert job.status == "succeeded" and job.test_accuracy == pytest.approx(finished["test_accuracy"])
    assert job.note == "First try."
    assert not Tag.objects.filter(owner__username="bob").exists()


def test_projects_list_rename_and_delete_and_default_stays(finished, alice_api, bob_api):
    projects = alice_api.get("/api/projects/").json()
    assert [(p["name"], p["jobs"]) for p in projects if p["name"] == "Default"] == [("Default", 2)]  # + ingestion
    made = alice_api.post("/api/projects/", {"name": "Ablations"}, format="json")
    assert made.status_code == 201 and made.json()["jobs"] == 0
    assert alice_api.post("/api/projects/", {"name": "Ablations"}, format="json").status_code == 409
    assert bob_api.get(f"/api/projects/{made.json()['id']}/").status_code == 404
    assert alice_api.patch(f"/api/jobs/{finished['id']}/", {"project": "Ablations"}, format="json").status_code == 200
    assert alice_api.get(f"/api/projects/{made.json()['id']}/").json()["jobs"] == 1

    renamed = alice_api.patch(f"/api/projects/{made.json()['id']}/", {"name": "Ablation study"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Ablation study"
    assert alice_api.get(f"/api/jobs/{finished['id']}/").json()["project"] == "Ablation study"

    default = next(p for p in projects if p["name"] == "Default")
    assert alice_api.delete(f"/api/projects/{default['id']}/").status_code == 409
    assert alice_api.patch(f"/api/projects/{default['id']}/", {"name": "Mine"}, format="json").status_code == 409
    assert alice_api.delete(f"/api/projects/{made.json()['id']}/").status_code == 204
    assert alice_api.get(f"/api/jobs/{finished['id']}/").json()["project"] == "Default"  # its runs are kept
    assert not Project.objects.filter(name="Ablation study").exists()


def test_run_again_makes_the_same_job_in_the_same_project(finished, alice_api, bob_api):
    alice_api.patch(f"/api/jobs/{finished['id']}/", {"tags": ["baseline"], "project": "Digits"}, format="json")
    assert bob_api.post(f"/api/jobs/{finished['id']}/rerun/").status_code == 404
    answer = alice_api.post(f"/api/jobs/{finished['id']}/rerun/")
    assert answer.status_code == 201, answer.content
    again = wait_for_job(alice_api, answer.json()["id"], timeout=180)
    assert again["status"] == "succeeded", again["error"]
    assert again["params"] == finished["params"] and again["kind"] == finished["kind"]
    assert again["record"]["rerun_of"] == finished["id"] and again["record"]["seed"] == 7
    assert again["project"] == "Digits" and again["tags"] == ["baseline"]
    assert JobMetric.objects.filter(job_id=again["id"]).count() == 3
    print("test accuracy", finished["test_accuracy"], "then", again["test_accuracy"])


def test_run_again_says_why_it_cannot(finished, digits, alice_api):
    ingestion = Job.objects.filter(owner__username="alice", kind="ingest_dataset").first()
    refused = alice_api.post(f"/api/jobs/{ingestion.id}/rerun/")
    assert refused.status_code == 409 and "cannot be run again" in refused.json()["detail"]

    assert alice_api.delete(f"/api/datasets/{digits['id']}/").status_code == 204
    gone = alice_api.post(f"/api/jobs/{finished['id']}/rerun/")
    assert gone.status_code == 409 and gone.json()["detail"] == ("This run's dataset was deleted, so it cannot be "
                                                                 "run again.")
