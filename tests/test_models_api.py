"""Renaming and deleting trained models and deleting jobs, through the real API, worker, database and
DATA_DIR: a deleted model's files, exports and demo link go with it and its old demo URL says it was
switched off; a job is deleted with its model and files, singly or in bulk, all or none; whatever a
queued or running job (or a running sweep) still needs is refused with a sentence; nobody else can
touch any of it (404, as for what does not exist)."""

from __future__ import annotations

import pytest

from tests.api_helpers import launch
from tests.conftest import wait_for_job
from webapp.demos.models import ShareLink
from webapp.experiments.models import Project, TrainedModel
from webapp.jobs.models import Job

pytestmark = pytest.mark.worker


def trained(client, dataset_id: int) -> dict:
    """A classifier in a few seconds: the mlp, one epoch on 8x8 digits."""
    job = wait_for_job(client, launch(client, {
        "kind": "train", "dataset": dataset_id, "architecture": "mlp",
        "params": {"epochs": 1, "batch_size": 64, "image_size": 8}})["id"], timeout=120)
    assert job["status"] == "succeeded", job["error"]
    return job


def ended_job(owner, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, **fields) -> Job:
    return Job.objects.create(owner=owner, kind=kind, status=status, project=Project.default_for(owner), **fields)


def test_a_model_is_renamed_and_deleted_with_its_files_unless_a_live_job_reads_it(digits, alice, alice_api, bob_api,
                                                                                   client):
    job = trained(alice_api, digits["id"])
    model_id = job["model"]
    model = TrainedModel.objects.get(id=model_id)
    assert model.file_path.is_file()
    listed = alice_api.get("/api/models/").json()["results"][0]
    assert listed["id"] == model_id and listed["dataset_name"] == digits["name"] and listed["bleu4"] is None

    # Renaming: trimmed, never empty, at most 200 characters; someone else's model is not there.
    renamed = alice_api.patch(f"/api/models/{model_id}/", {"name": "  Digits, first try  "}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Digits, first try"
    empty = alice_api.patch(f"/api/models/{model_id}/", {"name": "   "}, format="json")
    assert empty.status_code == 400 and empty.json()["detail"] == "Give the model a name."
    long = alice_api.patch(f"/api/models/{model_id}/", {"name": "x" * 201}, format="json")
    assert long.status_code == 400 and long.json()["detail"] == "Keep the name to 200 characters or fewer."
    assert bob_api.patch(f"/api/models/{model_id}/", {"name": "mine"}, format="json").status_code == 404
    assert bob_api.delete(f"/api/models/{model_id}/").status_code == 404
    assert TrainedModel.objects.get(id=model_id).name == "Digits, first try"

    # A queued job that reads it as its backbone, or a queued export of it, keeps it alive.
    reader = ended_job(alice, status=Job.Status.QUEUED, params={"backbone": f"models/{model_id}"})
    refused = alice_api.delete(f"/api/models/{model_id}/")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (f"Training #{reader.id} is queued and reads “Digits, first try” as its "
                                        "backbone; cancel it or wait for it to end, then delete the model.")
    Job.objects.filter(id=reader.id).update(status=Job.Status.CANCELLED)
    export = ended_job(alice, kind=Job.Kind.EXPORT_MODEL, status=Job.Status.RUNNING,
                       params={"model": model_id, "format": "tflite"})
    assert "is being exported" in alice_api.delete(f"/api/models/{model_id}/").json()["detail"]
    assert model.file_path.is_file()

    # Once it ended, the model goes with its folder (exports inside it), its export jobs and its demo link
    # (a caption model's, here given to it to see the link go); its training run keeps its record.
    Job.objects.filter(id=export.id).update(status=Job.Status.SUCCEEDED)
    (model.directory / "exports").mkdir()
    (model.directory / "exports" / "model.tflite").write_bytes(b"TFL3")
    TrainedModel.objects.filter(id=model_id).update(task=TrainedModel.Task.CAPTION)
    token = ShareLink.objects.create(model=model).token
    assert client.get(f"/demo/{token}/").status_code == 200
    assert alice_api.delete(f"/api/models/{model_id}/").status_code == 204
    assert not model.directory.exists()
    assert alice_api.get(f"/api/models/{model_id}/").status_code == 404
    assert not Job.objects.filter(id=export.id).exists()
    record = alice_api.get(f"/api/jobs/{job['id']}/").json()
    assert record["status"] == "succeeded" and record["model"] is None

    # The old demo URL says it was switched off (still a 404); a made-up one says there is no demo there.
    gone = client.get(f"/demo/{token}/")
    assert gone.status_code == 404 and "This demo has been switched off by its owner" in gone.content.decode()
    assert "/login/" not in gone.content.decode() and 'class="mainnav"' not in gone.content.decode()
    unknown = client.get("/demo/no-such-token-at-all/")
    assert unknown.status_code == 404 and "There is no demo at this address" in unknown.content.decode()
    assert client.post(f"/demo/{token}/caption/").json()["detail"] == "This demo has been switched off by its owner."


def test_jobs_are_deleted_singly_or_in_bulk_all_or_none_with_their_models_and_files(digits, alice, bob, alice_api,
                                                                                     bob_api, settings):
    from webapp.sweeps.models import Sweep

    # A finished run with its model and files as training leaves them (the first test trains a real one).
    row = ended_job(alice, dataset_id=digits["id"])
    job = {"id": row.id}
    model = TrainedModel.objects.create(owner=alice, job=row, name="mlp", architecture="mlp", image_size=8,
                                        channels=1, class_names=["0", "1"], dataset_id=digits["id"])
    workdir = settings.DATA_DIR / "jobs" / str(row.id)
    for folder in (model.directory, workdir):
        folder.mkdir(parents=True)
        (folder / "model.keras").write_bytes(b"PK")
    plain = ended_job(alice, status=Job.Status.FAILED)
    running = ended_job(alice, status=Job.Status.RUNNING)
    theirs = ended_job(bob)
    sweep = Sweep.objects.create(owner=alice, project=Project.default_for(alice), kind="train", method="grid",
                                 trials=2, metric="val_accuracy", direction="max", study_name="deletion-test")
    trial = ended_job(alice, sweep=sweep, trial_number=0)

    # All or none: another user's id is "not found", a running job must be cancelled first, a running sweep's
    # trial waits for its sweep; and then nothing at all was deleted.
    missing = alice_api.post("/api/jobs/delete/", {"ids": [job["id"], plain.id, theirs.id]}, format="json")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"You have no job #{theirs.id}; nothing was deleted."
    busy = alice_api.post("/api/jobs/delete/", {"ids": [job["id"], running.id, trial.id]}, format="json")
    assert busy.status_code == 409
    assert busy.json()["detail"] == (
        f"Nothing was deleted. Training #{running.id} is still running; cancel it first, then delete it. "
        f"Training #{trial.id} is a trial of sweep #{sweep.id}, which is still running; cancel the sweep or wait "
        "for it to end, then delete the trial.")
    assert alice_api.delete(f"/api/jobs/{running.id}/").status_code == 409
    assert Job.objects.filter(owner=alice).count() == 5 and model.directory.is_dir()
    empty = alice_api.post("/api/jobs/delete/", {"ids": []}, format="json")
    assert empty.status_code == 400 and empty.json()["detail"] == "Choose at least one job to delete."
    assert bob_api.delete(f"/api/jobs/{job['id']}/").status_code == 404
    assert bob_api.post("/api/jobs/delete/", {"ids": [job["id"]]}, format="json").status_code == 404

    # The trained job goes with its model, the model's folder and its working folder (checkpoints).
    done = alice_api.post("/api/jobs/delete/", {"ids": [job["id"], plain.id]}, format="json")
    assert done.status_code == 200 and done.json() == {"deleted": sorted([job["id"], plain.id])}
    assert not TrainedModel.objects.filter(id=model.id).exists()
    assert not model.directory.exists() and not workdir.exists()
    assert alice_api.get(f"/api/jobs/{job['id']}/").status_code == 404

    # One at a time, once its sweep has ended; bob's job was never touched.
    Sweep.objects.filter(id=sweep.id).update(status=Sweep.Status.FINISHED)
    assert alice_api.delete(f"/api/jobs/{trial.id}/").status_code == 204
    assert set(Job.objects.values_list("id", flat=True)) >= {running.id, theirs.id}
    assert not Job.objects.filter(id=trial.id).exists()
