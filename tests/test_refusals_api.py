"""Refuse what cannot work before it runs (issue 15, items 5, 7, 8 and 11), through the API.

A class too small for the train/validation/test split is warned about at ingestion and a training
launch on it is refused with a sentence; Resume is accepted only where it can help; a class-folder zip
uploaded as captions is recognised and read again as classification without a second upload; "Add" on
a built-in already there answers with that one; a queued job says where it stands in its queue
without naming other users' jobs; and a bad model file is refused naming the user's file and the real
reason, with no server path in any error.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests import archives
from tests.conftest import wait_for
from webapp.datasets.models import Dataset
from webapp.experiments.models import Project
from webapp.jobs.models import Job

# --- datasets: too few images per class, and class folders uploaded as captions ------------------------


def upload(client, path: Path, kind: str) -> dict:
    with open(path, "rb") as handle:
        response = client.post("/api/datasets/", {"name": path.stem, "kind": kind, "file": handle}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def outcome(client, dataset_id: int) -> dict:
    def ended():
        data = client.get(f"/api/datasets/{dataset_id}/").json()
        return data if data["status"] in ("ready", "failed") else None

    return wait_for(ended, timeout=120, interval=0.2, what=f"dataset {dataset_id} to be read")


def pets(path: Path, counts: dict[str, int]) -> Path:
    """A class-folder zip with `counts` images per class, each image different."""
    return archives.write_zip(path, {f"pets/{name}/{name}_{i}.png": archives.image_bytes(seed=100 * c + i)
                                     for c, (name, n) in enumerate(counts.items()) for i in range(n)})


@pytest.mark.worker
def test_small_classes_are_warned_and_refused_and_class_folders_sent_as_captions_are_read_again(
        worker, alice_api, bob_api, tmp_path):
    # Ingestion warns: "dog" has 2 images, and a class needs 3 (one each for train, validation, test).
    small = outcome(alice_api, upload(alice_api, pets(tmp_path / "small.zip", {"cat": 5, "dog": 2}),
                                      "classification")["id"])
    assert small["status"] == "ready", small["error"]
    (warning,) = small["warnings"]
    assert warning["code"] == "too_few_images" and warning["needed"] == 3
    assert warning["classes"] == [{"name": "dog", "count": 2}]
    assert "“dog” has only 2 images" in warning["message"] and "at least 3 images" in warning["message"]

    # A training launch on it is refused with that sentence, before any worker spends time on it.
    refused = alice_api.post("/api/jobs/", {"kind": "train", "dataset": small["id"], "architecture": "mlp",
                                            "queue": "cpu", "params": {"epochs": 1}}, format="json")
    assert refused.status_code == 400, refused.content
    assert refused.json()["dataset"] == [warning["message"]]
    assert not Job.objects.filter(kind=Job.Kind.TRAIN).exists()

    # Class folders uploaded as captions: recognised, and the archive kept to be read as classification.
    folders = outcome(alice_api, upload(alice_api, pets(tmp_path / "animals.zip", {"cat": 3, "dog": 3, "owl": 3}),
                                        "captions")["id"])
    assert folders["status"] == "failed"
    assert "3 class folders (cat, dog, owl)" in folders["error"] and "Read it as Classification" in folders["error"]
    assert [w["code"] for w in folders["warnings"]] == ["looks_like_classification"]
    assert bob_api.post(f"/api/datasets/{folders['id']}/reread/", {"kind": "classification"},
                        format="json").status_code == 404
    again = alice_api.post(f"/api/datasets/{folders['id']}/reread/", {"kind": "classification"}, format="json")
    assert again.status_code == 202, again.content
    read = outcome(alice_api, folders["id"])
    assert read["status"] == "ready" and read["kind"] == "classification", read["error"]
    assert [c["name"] for c in read["classes"]] == ["cat", "dog", "owl"] and read["warnings"] == []
    # Its archive is gone once read: nothing is left to read again.
    assert alice_api.post(f"/api/datasets/{folders['id']}/reread/", {"kind": "captions"},
                          format="json").status_code == 409


def test_the_split_needs_as_many_images_per_class_as_the_web_says():
    from jobs.ml.datasets.splits import images_needed
    from webapp.datasets.checks import NEEDED_PER_CLASS

    assert images_needed() == NEEDED_PER_CLASS == 3


# --- resume only where it can help -----------------------------------------------------------------


def stopped_job(owner, status=Job.Status.FAILED, failure="", checkpoint=True, kind=Job.Kind.TRAIN) -> Job:
    job = Job.objects.create(owner=owner, kind=kind, status=status, failure=failure, queue="cpu",
                             params={"architecture": "mlp", "epochs": 3}, project=Project.default_for(owner),
                             error="It stopped." if status == Job.Status.FAILED else "")
    if checkpoint:
        folder = Path(settings.DATA_DIR) / "jobs" / str(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("checkpoint.keras", "state.json"):
            (folder / name).write_bytes(b"{}")
    return job


def test_resume_is_refused_where_it_would_fail_the_same_way_and_accepted_where_it_helps(alice, alice_api, bob_api):
    from jobs.runner import UserFacingError, run_job

    # A run whose inputs were refused: the runner files the failure as "inputs".
    refused = stopped_job(alice, status=Job.Status.QUEUED)

    def work(job, reporter):
        raise UserFacingError("The dataset's training split is empty.")

    assert run_job(refused.id, "test@host", work) == Job.Status.FAILED
    data = alice_api.get(f"/api/jobs/{refused.id}/").json()
    assert data["failure"] == "inputs" and data["resumable"] is False
    assert "because of its inputs" in data["resume_refusal"]
    answer = alice_api.post(f"/api/jobs/{refused.id}/resume/")
    assert answer.status_code == 400 and answer.json()["detail"] == data["resume_refusal"]

    # A run that died before its first checkpoint has nothing to continue from.
    early = stopped_job(alice, failure=Job.Failure.WORKER_LOST, checkpoint=False)
    answer = alice_api.post(f"/api/jobs/{early.id}/resume/")
    assert answer.status_code == 400 and "Run again" in answer.json()["detail"]

    # A cancelled run with a checkpoint resumes; another user's answers 404.
    cancelled = stopped_job(alice, status=Job.Status.CANCELLED)
    assert alice_api.get(f"/api/jobs/{cancelled.id}/").json()["resumable"] is True
    assert bob_api.post(f"/api/jobs/{cancelled.id}/resume/").status_code == 404
    answer = alice_api.post(f"/api/jobs/{cancelled.id}/resume/")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "queued" and answer.json()["failure"] == ""


# --- no silent duplicates ----------------------------------------------------------------------------


def test_adding_a_builtin_already_there_opens_that_one(alice, alice_api, client):
    first = alice_api.post("/api/datasets/reference/", {"name": "shapes"}, format="json")
    assert first.status_code == 201
    again = alice_api.post("/api/datasets/reference/", {"name": "shapes"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    client.force_login(alice)
    page = client.post("/datasets/add/", {"name": "shapes"}, follow=True)
    assert page.redirect_chain[-1][0] == f"/datasets/{first.json()['id']}/"
    assert "You already have Shapes" in page.content.decode()
    assert Dataset.objects.filter(owner=alice).count() == 1

    # A failed one does not count: adding again tries again.
    Dataset.objects.filter(id=first.json()["id"]).update(status=Dataset.Status.FAILED)
    retried = alice_api.post("/api/datasets/reference/", {"name": "shapes"}, format="json")
    assert retried.status_code == 201 and retried.json()["id"] != first.json()["id"]


# --- where a queued job stands --------------------------------------------------------------------------


def test_a_queued_job_says_its_place_and_what_runs_before_it_without_naming_other_users_jobs(
        alice, bob, alice_api, bob_api):
    start = timezone.now() - timedelta(minutes=10)

    def job(owner, status, minutes, queue="cpu"):
        return Job.objects.create(owner=owner, kind=Job.Kind.TRAIN, status=status, queue=queue,
                                  created_at=start + timedelta(minutes=minutes), params={"architecture": "mlp"},
                                  project=Project.default_for(owner))

    bobs_running = job(bob, Job.Status.RUNNING, 0)
    mine_running = job(alice, Job.Status.RUNNING, 1)
    job(alice, Job.Status.SUCCEEDED, 2)  # ended: not in the way
    bobs_queued = job(bob, Job.Status.QUEUED, 3)
    job(alice, Job.Status.QUEUED, 4, queue="gpu")  # another queue
    waiting = job(alice, Job.Status.QUEUED, 5)
    job(bob, Job.Status.QUEUED, 6)  # after it

    place = alice_api.get(f"/api/jobs/{waiting.id}/").json()["queue_position"]
    assert place["queue"] == "cpu" and place["position"] == 4
    assert place["ahead"] == [{"status": "running", "yours": False},
                              {"id": mine_running.id, "kind": "train", "status": "running", "yours": True},
                              {"status": "queued", "yours": False}]
    assert place["text"] == (f"4th in the cpu queue, after job {mine_running.id} (running, yours) and "
                             "2 jobs of other users (1 running).")

    assert alice_api.get(f"/api/jobs/{mine_running.id}/").json()["queue_position"] is None
    assert bob_api.get(f"/api/jobs/{waiting.id}/").status_code == 404
    first = bob_api.get(f"/api/jobs/{bobs_queued.id}/").json()["queue_position"]
    assert first["position"] == 3 and first["ahead"][0] == {"id": bobs_running.id, "kind": "train",
                                                             "status": "running", "yours": True}


# --- errors name the user's file, never a server path ------------------------------------------------


@pytest.mark.parametrize(("name", "content", "words"), [
    ("fake.keras", b"not a model, just notes", "a .keras file is a zip archive, and this one is a text file"),
    ("photo.h5", archives.image_bytes("JPEG"), "an .h5 file is an HDF5 file, and this one is a JPEG image"),
    ("junk.tflite", b"\0" * 64, "could not be opened as a TensorFlow Lite model: it is an unknown kind of file"),
], ids=["keras", "h5", "tflite"])
def test_a_bad_model_file_is_refused_naming_the_file_and_the_real_reason(alice_api, tmp_path, name, content, words):
    from jobs.ml.backbones import inspect_file
    from webapp.experiments.models import Backbone

    path = tmp_path / name
    path.write_bytes(content)
    with open(path, "rb") as handle:
        answer = alice_api.post("/api/backbones/", {"name": "mine", "file": handle}, format="multipart")
    assert answer.status_code == 400, answer.content
    (sentence,) = answer.json()["file"]
    assert sentence.startswith(name) and words in sentence, sentence
    assert str(settings.DATA_DIR) not in sentence and "filepath" not in sentence and "/" not in sentence
    assert not Backbone.objects.exists()
    with pytest.raises(ValueError) as caught:  # the core says the same, for scripts
        inspect_file(path)
    assert str(caught.value) == sentence


def test_errors_shown_to_users_hold_no_server_path_and_builtin_errors_end_with_advice(alice, alice_api):
    from jobs.ingestion import _fail
    from jobs.runner import UserFacingError

    root, data = str(settings.BASE_DIR), str(settings.DATA_DIR)
    error = f"Could not read {data}/jobs/7/checkpoint.keras ({root}/jobs/ml/training.py)."
    job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN, status=Job.Status.FAILED,
                             project=Project.default_for(alice), error=error)
    shown = alice_api.get(f"/api/jobs/{job.id}/").json()["error"]
    assert shown == "Could not read DATA_DIR/jobs/7/checkpoint.keras (jobs/ml/training.py)."

    mnist = Dataset.objects.create(owner=alice, name="MNIST", kind="classification", source="reference:mnist")
    offline = UserFacingError(f"Could not download MNIST from https://example.org/mnist.npz: this machine cannot reach "
                              f"the internet (Name or service not known). On an air-gapped machine, place mnist.npz "
                              f"in {data}/keras/datasets/ or set VISIONLAB_DATASET_MIRROR.")
    _fail(mnist, offline)
    error = alice_api.get(f"/api/datasets/{mnist.id}/").json()["error"]
    assert "DATA_DIR/keras/datasets/" in error and data not in error
    assert error.endswith("This server cannot reach the internet: upload the dataset as a zip of class folders "
                          "instead.")

    shapes = Dataset.objects.create(owner=alice, name="Shapes", kind="classification", source="builtin:shapes")
    _fail(shapes, RuntimeError("disk full"))
    assert alice_api.get(f"/api/datasets/{shapes.id}/").json()["error"].endswith(
        "ask the administrator to look at the worker's log.")
