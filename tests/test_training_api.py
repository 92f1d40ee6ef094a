"""Training through the real API, Redis and worker: accuracy, live metrics, cancel, a killed
worker and resume, prediction, download, and ownership."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from tests.conftest import ROOT, wait_for, wait_for_job
from webapp.jobs.models import Job, JobMetric

pytestmark = pytest.mark.worker


def launch(client, dataset_id: int, queue: str = "cpu", **params) -> dict:
    body = {"kind": "train", "dataset": dataset_id, "architecture": params.pop("architecture", "lenet5"),
            "queue": queue, "params": {"epochs": 10, "batch_size": 16, "optimizer": "adam", "learning_rate": 0.005,
                                   **params}}
    response = client.post("/api/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def digit_png(value: int) -> bytes:
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = int(np.flatnonzero(digits.target == value)[-1])
    image = Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8), "L").resize((28, 28))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_lenet5_learns_the_digits_with_live_metrics_and_its_model_predicts(digits, alice_api, bob_api):
    job = launch(alice_api, digits["id"])
    seen = []

    job = wait_for_job(alice_api, job["id"], timeout=300, seen=seen)

    assert job["status"] == "succeeded", job["error"]
    assert any(s["status"] == "running" and s["metrics"] for s in seen), "metrics appear while it runs"
    assert [m["epoch"] for m in job["metrics"]] == list(range(1, 11))
    assert job["metrics"][-1]["loss"] < job["metrics"][0]["loss"]
    result = job["result"]
    assert result["test_accuracy"] >= 0.85, result["test_accuracy"]
    assert result["classes"] == [str(d) for d in range(10)]
    assert len(result["confusion_matrix"]) == 10
    assert sum(map(sum, result["confusion_matrix"])) == digits["split_counts"]["test"]
    assert result["summary"]["total_params"] == 44_426
    assert result["verdict"]["level"] in ("good", "fair") and "on images it never saw" in result["verdict"]["headline"]

    model_id = job["model"]
    prediction = alice_api.post(f"/api/models/{model_id}/predict/", {"image": io.BytesIO(digit_png(7))},
                                format="multipart")
    assert prediction.status_code == 200, prediction.content
    top = prediction.json()["predictions"]
    assert len(top) == 5 and top[0]["label"] == "7"
    bad = alice_api.post(f"/api/models/{model_id}/predict/", {"image": io.BytesIO(b"not a photo")},
                         format="multipart")
    assert bad.status_code == 400 and bad.json()["detail"].endswith(".")
    download = alice_api.get(f"/api/models/{model_id}/download/")
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as keras_file:
        embedded = json.loads(keras_file.read("visionlab.json"))  # the label map travels with the file
    assert embedded["class_names"] == result["classes"] and embedded["image_size"] == 28

    for path in (f"/api/jobs/{job['id']}/", f"/api/models/{model_id}/", f"/api/models/{model_id}/download/"):
        assert bob_api.get(path).status_code == 404
    assert bob_api.post(f"/api/models/{model_id}/predict/", {"image": io.BytesIO(digit_png(1))},
                        format="multipart").status_code == 404


def test_cancelling_a_training_job_stops_it_within_seconds(digits, alice_api):
    job = launch(alice_api, digits["id"], epochs=200)
    wait_for(lambda: alice_api.get(f"/api/jobs/{job['id']}/").json()["metrics"], timeout=120,
             what="the first epoch")

    assert alice_api.post(f"/api/jobs/{job['id']}/cancel/").status_code == 202

    ended = wait_for_job(alice_api, job["id"], timeout=20)
    assert ended["status"] == "cancelled" and len(ended["metrics"]) < 200


def test_a_killed_worker_fails_its_job_and_resume_continues_from_the_last_checkpoint(digits, alice_api):
    from webapp.ops import stack

    def gpu_worker():
        # Its own worker on the otherwise unserved gpu queue, so killing it spares the session's.
        return stack.worker_service("test-gpu", ["gpu"], 1, log_file=settings.DATA_DIR / "logs" / "gpu.log",
                                    env={"DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['NAME']}",
                                         "PYTHONPATH": str(ROOT)})

    first = gpu_worker()
    first.start()
    job = launch(alice_api, digits["id"], queue="gpu", epochs=6, architecture="mlp")
    wait_for(lambda: len(alice_api.get(f"/api/jobs/{job['id']}/").json()["metrics"]) >= 2, timeout=180,
             what="two epochs")
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    before = {m.epoch: m.recorded_at for m in JobMetric.objects.filter(job_id=job["id"])}

    second = gpu_worker()  # the restarted worker (same name) reports what its predecessor left
    second.start()
    try:
        failed = wait_for_job(alice_api, job["id"], timeout=90)
        assert failed["status"] == "failed" and "restarted" in failed["error"]

        assert alice_api.post(f"/api/jobs/{job['id']}/resume/").status_code == 202
        done = wait_for_job(alice_api, job["id"], timeout=180)
    finally:
        second.stop()

    assert done["status"] == "succeeded", done["error"]
    assert [m["epoch"] for m in done["metrics"]] == [1, 2, 3, 4, 5, 6]
    kept = {m.epoch: m.recorded_at for m in JobMetric.objects.filter(job_id=job["id"], epoch__in=before)}
    assert kept == before, "epochs finished before the kill were not trained again"
    assert Job.objects.get(id=job["id"]).params["resume"] is True


def test_training_requests_are_checked_field_by_field(alice, alice_api, bob):
    from webapp.datasets.models import Dataset

    captions = Dataset.objects.create(owner=alice, name="c", kind="captions", status="ready")
    theirs = Dataset.objects.create(owner=bob, name="b", kind="classification", status="ready",
                                    classes=[{"name": "a", "count": 3}, {"name": "b", "count": 3}])
    pending = Dataset.objects.create(owner=alice, name="p", kind="classification")

    def errors(**body):
        response = alice_api.post("/api/jobs/", {"kind": "train", **body}, format="json")
        assert response.status_code == 400
        return response.json()

    assert "holds captions" in str(errors(dataset=captions.id, architecture="lenet5")["dataset"])
    assert "no dataset with this id" in str(errors(dataset=theirs.id, architecture="lenet5")["dataset"])
    assert "not ready yet" in str(errors(dataset=pending.id, architecture="lenet5")["dataset"])
    assert "architecture" in errors(dataset=captions.id, architecture="resnet9000")
    ok = Dataset.objects.create(owner=alice, name="ok", kind="classification", status="ready",
                                classes=[{"name": "a", "count": 3}, {"name": "b", "count": 3}])
    small = errors(dataset=ok.id, architecture="lenet5", params={"image_size": 12})
    assert "at least 16x16" in str(small["params"]["image_size"])
    assert "optimizer" in errors(dataset=ok.id, architecture="lenet5", params={"optimizer": "magic"})["params"]


def test_the_architectures_list_has_the_reference_parameter_counts(alice_api):
    listed = {a["name"]: a for a in alice_api.get("/api/architectures/").json()}

    assert listed["mlp"]["params"] == 101_770 and listed["lenet5"]["params"] == 44_426
    assert listed["vgg16"]["params"] == 138_357_544 and listed["vgg19"]["params"] == 143_667_240
    assert listed["lenet5"]["reference"] == {"input_shape": [28, 28, 1], "classes": 10}
