"""Captioning, cached features and the shared demo, through the real API, Redis and worker.

One caption dataset is generated (coloured shapes, five differently worded captions per
image, Flickr8k layout) and uploaded; a feature extractor is uploaded as the user's own
backbone; a caption model is trained on it and must beat the most-common-caption baseline on
test BLEU-4. A second job on the same images and backbone must find the features cached. The
demo link must work without login, reach nothing but its model, and die when revoked. A caption
job cancelled after its first epoch resumes from its last finished epoch, on the cached features.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from jobs.ml.datasets.synthetic import make_shapes_captions_zip
from tests.api_helpers import launch, upload_backbone, upload_dataset
from tests.backbone_files import pixels_backbone
from tests.conftest import wait_for, wait_for_job
from webapp.experiments.backbone_choices import resolve
from webapp.experiments.models import TrainedModel

pytestmark = pytest.mark.worker


def a_test_photo(archive) -> bytes:
    """An image of the dataset's test split, as a person would upload it."""
    with zipfile.ZipFile(archive) as zf:
        test_names = zf.read("shapes-captions/Flickr_8k.testImages.txt").decode().split()
        return zf.read(f"shapes-captions/Images/{test_names[0]}")


@pytest.fixture
def caption_setup(worker, alice_api, tmp_path):
    archive = make_shapes_captions_zip(tmp_path / "captions.zip", n_images=240, size=64, seed=3)
    dataset = upload_dataset(alice_api, archive, "captions", "shape captions")
    backbone = upload_backbone(alice_api, pixels_backbone(tmp_path, block=2))
    return archive, dataset, backbone


def test_a_caption_model_beats_the_baseline_reuses_features_and_its_demo_is_shared_safely(
        caption_setup, alice_api, bob_api):
    archive, dataset, backbone = caption_setup
    assert backbone["output_dim"] == 768 and backbone["input_size"] == 32

    job = launch(alice_api, {"kind": "train_captioner", "dataset": dataset["id"], "params": {
        # A narrower merge model than the default 256 units, so that CPU-only CI trains it in seconds.
        # Ten epochs: with 20 and patience 6 the run stopped at 14 with its best (and scored) epoch 8, the
        # same one these settings keep (greedy BLEU-4 0.293, beam 0.253, baseline 0.0); model seeds 1
        # and 2 score greedy 0.355 / 0.384, beam 0.397 / 0.328 here.
        "backbone": backbone["key"], "epochs": 10, "batch_size": 256, "learning_rate": 0.01, "units": 64,
        "dropout": 0.2, "early_stopping": 4}})
    job = wait_for_job(alice_api, job["id"], timeout=300)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]

    # The model learned the language of the captions: loss fell, and BLEU-4 clearly beats always
    # saying the most common training caption (greedy and beam search alike).
    losses = [m["loss"] for m in job["metrics"]]
    assert losses[-1] < losses[0] * 0.7
    baseline = result["bleu"]["baseline"]["bleu4"]
    print("BLEU", json.dumps(result["bleu"]), "baseline caption:", result["baseline_caption"])  # shown with -s
    assert result["bleu4"] == result["bleu"]["greedy"]["bleu4"]
    assert result["bleu4"] > baseline + 0.1, (result["bleu"], result["baseline_caption"])
    assert result["bleu"]["beam"]["bleu4"] > baseline + 0.1
    assert result["features"]["reused"] is False and result["features"]["feature_dim"] == 768
    assert result["gallery"] and all(entry["greedy"] and entry["references"] for entry in result["gallery"])
    assert "clean_caption" in result["tokenisation"]

    # A second job on the same images and backbone finds the features instead of computing them.
    again = wait_for_job(alice_api, launch(alice_api, {"kind": "extract_features", "dataset": dataset["id"],
                                                       "params": {"backbone": backbone["key"]}})["id"])
    assert again["status"] == "succeeded", again["error"]
    assert again["result"]["reused"] is True
    assert again["result"]["cache"] == result["features"]["cache"]

    # The owner captions a photo through the API; others get 404 for the job and the model.
    model_id = job["model"]
    photo = a_test_photo(archive)
    answer = alice_api.post(f"/api/models/{model_id}/caption/", {"image": io.BytesIO(photo)}, format="multipart")
    assert answer.status_code == 200, answer.content
    assert len(answer.json()["caption"].split()) >= 2
    assert bob_api.get(f"/api/jobs/{job['id']}/").status_code == 404
    assert bob_api.post(f"/api/models/{model_id}/caption/", {"image": io.BytesIO(photo)},
                        format="multipart").status_code == 404
    assert bob_api.post(f"/api/models/{model_id}/share/").status_code == 404
    bad = alice_api.post(f"/api/models/{model_id}/caption/", {"image": io.BytesIO(b"not a photo")},
                         format="multipart")
    assert bad.status_code == 400 and "not an image" in bad.json()["detail"]

    # Sharing: the link works with no account at all, for this model only.
    url = alice_api.post(f"/api/models/{model_id}/share/").json()["url"]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert len(token) >= 32
    assert alice_api.post(f"/api/models/{model_id}/share/").json()["url"] == url  # one link per model
    anonymous = APIClient()
    page = anonymous.get(f"/demo/{token}/")
    assert page.status_code == 200 and b"shape captions" in page.content
    assert b"/api/" not in page.content  # the page links to nothing but its own endpoint
    shared = anonymous.post(f"/demo/{token}/caption/", {"image": io.BytesIO(photo)}, format="multipart")
    assert shared.status_code == 200 and shared.json()["caption"] == answer.json()["caption"]
    assert anonymous.get(f"/demo/{token}/examples/0").status_code == 200
    assert anonymous.get(f"/demo/{token}/examples/99").status_code == 404
    assert anonymous.get(f"/api/models/{model_id}/").status_code == 401
    assert anonymous.get(f"/demo/{token}x/").status_code == 404

    # Revoking takes effect at once: the page, the endpoint and the examples all answer 404.
    assert alice_api.delete(f"/api/models/{model_id}/share/").json() == {"revoked": True}
    assert anonymous.get(f"/demo/{token}/").status_code == 404
    assert anonymous.post(f"/demo/{token}/caption/", {"image": io.BytesIO(photo)},
                          format="multipart").status_code == 404
    assert anonymous.get(f"/demo/{token}/examples/0").status_code == 404


def test_a_cancelled_caption_job_resumes_from_its_last_epoch_on_the_cached_features(caption_setup, alice_api):
    from webapp.jobs.models import Job, JobMetric

    _, dataset, backbone = caption_setup
    epochs = 8
    job = launch(alice_api, {"kind": "train_captioner", "dataset": dataset["id"], "params": {
        "backbone": backbone["key"], "epochs": epochs, "batch_size": 64, "learning_rate": 0.005, "units": 64,
        "dropout": 0.2, "early_stopping": None, "beam_width": 1}})
    wait_for(lambda: alice_api.get(f"/api/jobs/{job['id']}/").json()["metrics"], timeout=180,
             what="the first epoch")
    assert alice_api.post(f"/api/jobs/{job['id']}/cancel/").status_code == 202
    cancelled = wait_for_job(alice_api, job["id"], timeout=30)
    assert cancelled["status"] == "cancelled"
    done_before = len(cancelled["metrics"])
    assert 1 <= done_before < epochs
    before = {m.epoch: m.recorded_at for m in JobMetric.objects.filter(job_id=job["id"])}

    assert alice_api.post(f"/api/jobs/{job['id']}/resume/").status_code == 202
    done = wait_for_job(alice_api, job["id"], timeout=240)

    assert done["status"] == "succeeded", done["error"]
    assert [m["epoch"] for m in done["metrics"]] == list(range(1, epochs + 1))
    assert all(set(m) >= {"loss", "accuracy", "val_loss", "val_accuracy"} for m in done["metrics"])
    kept = {m.epoch: m.recorded_at for m in JobMetric.objects.filter(job_id=job["id"], epoch__in=before)}
    assert kept == before, "epochs finished before the cancel were not trained again"
    result = done["result"]
    assert result["resumed_from"] == done_before and result["epochs_run"] == epochs - done_before
    assert result["features"]["reused"] is True  # the features the first run extracted
    assert 1 <= result["best_epoch"] <= epochs and result["bleu4"] > 0
    assert Job.objects.get(id=job["id"]).params["resume"] is True


def test_the_demo_endpoint_is_rate_limited_per_client_and_caps_the_photo_size(alice, settings):
    from django.utils import timezone

    from webapp.demos.models import ShareLink
    from webapp.jobs.models import Job

    job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN_CAPTIONER, status=Job.Status.SUCCEEDED,
                             finished_at=timezone.now())
    model = TrainedModel.objects.create(owner=alice, job=job, task=TrainedModel.Task.CAPTION, name="captions",
                                        architecture="merge", image_size=32, channels=3)
    link = ShareLink.objects.create(model=model)
    settings.DEMO_RATE_PER_MINUTE, settings.DEMO_MAX_BYTES = 3, 1000
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    other = APIClient(REMOTE_ADDR="203.0.113.8")

    # Each request is refused for its size (413) but still counts against the client's minute.
    answers = [client.post(f"/demo/{link.token}/caption/", {"image": io.BytesIO(b"x" * 2000)},
                           format="multipart") for _ in range(4)]

    assert [a.status_code for a in answers] == [413, 413, 413, 429]
    assert "too large" in answers[0].json()["detail"]
    assert "wait" in answers[3].json()["detail"] and answers[3]["Retry-After"] == "60"
    assert other.post(f"/demo/{link.token}/caption/", {"image": io.BytesIO(b"x" * 2000)},
                      format="multipart").status_code == 413  # another client has its own allowance


def test_an_uploaded_backbone_is_checked_owned_and_deleted_with_its_file(worker, alice, bob, alice_api, bob_api,
                                                                         tmp_path):
    backbone = upload_backbone(alice_api, pixels_backbone(tmp_path), output="blocks")
    assert backbone["output"] == "blocks" and backbone["feature_shape"] == [8, 8, 3]
    assert [b["id"] for b in alice_api.get("/api/backbones/").json()["results"]] == [backbone["id"]]
    assert bob_api.get("/api/backbones/").json()["results"] == []
    assert bob_api.get(f"/api/backbones/{backbone['id']}/").status_code == 404

    # Bob cannot name Alice's backbone in a job either: it is as if it did not exist.
    with pytest.raises(ValidationError, match="no uploaded backbone with id"):
        resolve(backbone["key"], bob)
    assert resolve(backbone["key"], alice).image_size == 32

    folders = Path(settings.DATA_DIR) / "backbones"
    before = sorted(p.name for p in folders.iterdir())
    text = tmp_path / "notes.keras"
    text.write_text("this is not a model")
    with open(text, "rb") as handle:
        bad = alice_api.post("/api/backbones/", {"file": handle}, format="multipart")
    assert bad.status_code == 400 and bad.json()["file"][0].startswith("notes.keras could not be opened")
    unknown_layer = alice_api.post("/api/backbones/", {"file": open(pixels_backbone(tmp_path), "rb"),
                                                       "output": "no_such_layer"}, format="multipart")
    assert unknown_layer.status_code == 400 and "no_such_layer" in unknown_layer.json()["file"][0]
    wrong_type = alice_api.post("/api/backbones/", {"file": io.BytesIO(b"x")}, format="multipart")
    assert wrong_type.status_code == 400
    assert alice_api.get("/api/backbones/").json()["results"][0]["id"] == backbone["id"]
    assert sorted(p.name for p in folders.iterdir()) == before  # refused uploads left no file behind

    folder = folders / str(backbone["id"])
    assert folder.is_dir()
    assert alice_api.delete(f"/api/backbones/{backbone['id']}/").status_code == 204
    assert not folder.exists()


def test_a_caption_model_whose_files_are_damaged_answers_with_a_sentence(worker, alice, alice_api):
    from django.utils import timezone

    from webapp.jobs.models import Job

    job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN_CAPTIONER, status=Job.Status.SUCCEEDED,
                             finished_at=timezone.now())
    model = TrainedModel.objects.create(owner=alice, job=job, task=TrainedModel.Task.CAPTION, name="broken",
                                        architecture="merge", image_size=32, channels=3)
    model.directory.mkdir(parents=True, exist_ok=True)
    model.file_path.write_bytes(b"not a keras archive")
    (model.directory / "metadata.json").write_text("{}")

    answer = alice_api.post(f"/api/models/{model.id}/caption/", {"image": io.BytesIO(b"x")}, format="multipart")

    assert answer.status_code == 400
    assert answer.json()["detail"] == "This model cannot be loaded on the server: its files are damaged or missing."
