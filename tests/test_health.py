"""/healthz and what pages say when Redis is gone."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from webapp.datasets.models import Dataset
from webapp.experiments.models import TrainedModel
from webapp.jobs.models import Job
from webapp.ops.stack import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    """Point the web process at a port where no Redis listens."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"


def test_healthz_reports_ok_with_the_live_worker_count(worker, client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "db": "ok", "redis": "ok", "workers": 1}


def test_healthz_answers_anonymous_callers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert isinstance(response.json()["workers"], int)


def test_healthz_is_503_naming_redis_when_redis_is_down(client, redis_down):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["db"] == "ok"
    assert body["redis"].startswith("error: ")


def test_healthz_is_503_naming_the_database_when_it_is_down(client, monkeypatch):
    from webapp.ops import health

    def broken_cursor():
        raise RuntimeError("unable to open database file")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["db"] == "error: RuntimeError"
    assert "database file" not in response.content.decode()  # details go to the log only


def test_the_jobs_page_says_jobs_cannot_start_while_redis_is_down(alice, client, redis_down):
    client.force_login(alice)

    page = client.get("/jobs/").content.decode()

    assert "Jobs cannot be started right now" in page
    assert 'id="queue-problem" class="alert alert-error" role="alert" hidden' not in page


def test_launching_from_the_page_while_redis_is_down_explains_and_starts_nothing(alice, client, redis_down):
    client.force_login(alice)

    response = client.post("/jobs/", {"queue": "cpu"}, follow=True)

    assert response.status_code == 200
    assert "The job queue is not reachable" in response.content.decode()
    assert not Job.objects.exists()


def test_launching_through_the_api_while_redis_is_down_is_503_and_starts_nothing(alice_api, redis_down):
    response = alice_api.post("/api/jobs/", {"kind": "system_check"}, format="json")

    assert response.status_code == 503
    assert "Redis is down or unreachable" in response.json()["detail"]
    assert not Job.objects.exists()


QUEUE_DOWN = ("The job queue is not reachable (Redis is down or unreachable), so the job was not started. "
              "Ask the administrator to check Redis, then try again.")


@pytest.fixture
def alices_model(alice):
    dataset = Dataset.objects.create(owner=alice, name="d", kind="classification", status="ready")
    job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, finished_at=timezone.now())
    return TrainedModel.objects.create(owner=alice, job=job, dataset=dataset, name="m", architecture="x",
                                       class_names=["a", "b"], image_size=32, channels=3)


@pytest.mark.parametrize("path", ["/api/datasets/reference/", "/api/models/{model}/exports/",
                                  "/api/models/{model}/predict/"])
def test_every_api_that_needs_the_queue_answers_503_with_the_same_sentence_while_redis_is_down(
        alice_api, alices_model, redis_down, path):
    """One exception handler (webapp/api_errors.py) answers for every view, in the shape /api/jobs/ has."""
    bodies = {"/api/datasets/reference/": {"name": "shapes"}, "/api/models/{model}/exports/": {"format": "tflite"}}
    url = path.format(model=alices_model.id)
    if path.endswith("predict/"):
        response = alice_api.post(url, {"image": SimpleUploadedFile("a.png", b"png", "image/png")}, format="multipart")
    else:
        response = alice_api.post(url, bodies[path], format="json")

    assert response.status_code == 503, response.content
    assert response.json() == {"detail": QUEUE_DOWN}
    assert not Job.objects.exclude(id=alices_model.job_id).exists()


def test_an_inference_worker_that_does_not_answer_is_503_with_its_sentence(alice_api, alices_model, monkeypatch):
    from webapp.experiments import models_api
    from webapp.jobs import inference

    def silent(*args, **kwargs):
        raise inference.InferenceUnavailable("No inference worker answered in time.")

    monkeypatch.setattr(models_api, "ask", silent)
    image = SimpleUploadedFile("a.png", b"png", "image/png")
    response = alice_api.post(f"/api/models/{alices_model.id}/predict/", {"image": image}, format="multipart")

    assert response.status_code == 503
    assert response.json() == {"detail": "No inference worker answered in time."}


def test_the_workers_page_and_api_say_redis_is_down(alice, client, redis_down):
    client.force_login(alice)

    assert client.get("/api/workers/").json()["redis_error"].startswith("Redis is not answering")
    assert client.get("/workers/").status_code == 200


def test_the_queue_status_says_whether_jobs_can_start(alice_api, settings):
    assert alice_api.get("/api/queue-status/").json() == {"ok": True, "problem": None}

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    down = alice_api.get("/api/queue-status/").json()

    assert down["ok"] is False and "Error" in down["problem"]
