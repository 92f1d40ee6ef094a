"""Transfer learning and logistic regression on a backbone, through the real API, Redis and worker.

The backbone is the user's own upload (Keras, then the same network as TensorFlow Lite), the
data scikit-learn's handwritten digits. A dense head on the cached features and a logistic
regression must both learn the digits; the second job must find the features the first one
extracted; the transfer model must predict on an uploaded photo like any classifier.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings

from tests.api_helpers import launch, upload_backbone
from tests.backbone_files import pixels_backbone, pixels_backbone_tflite
from tests.conftest import wait_for_job
from tests.test_training_api import digit_png

pytestmark = pytest.mark.worker


def test_a_head_and_a_logistic_regression_learn_from_one_set_of_cached_features(digits, alice_api, bob_api,
                                                                                tmp_path):
    backbone = upload_backbone(alice_api, pixels_backbone(tmp_path))

    head = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": digits["id"], "architecture": "transfer",
        "params": {"backbone": backbone["key"], "epochs": 30, "batch_size": 64, "learning_rate": 0.003}})["id"],
        timeout=300)
    assert head["status"] == "succeeded", head["error"]
    assert head["params"]["image_size"] == 32 and head["params"]["mode"] == "extract"
    assert head["result"]["test_accuracy"] >= 0.85, head["result"]["test_accuracy"]
    assert len(head["metrics"]) >= 2 and head["metrics"][-1]["loss"] < head["metrics"][0]["loss"]
    assert head["result"]["features"]["reused"] is False

    baseline = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": digits["id"], "architecture": "logreg",
        "params": {"backbone": backbone["key"]}})["id"], timeout=300)
    assert baseline["status"] == "succeeded", baseline["error"]
    assert baseline["result"]["features"]["reused"] is True
    assert baseline["result"]["features"]["cache"] == head["result"]["features"]["cache"]
    assert baseline["result"]["test_accuracy"] >= 0.85, baseline["result"]["test_accuracy"]

    # The transfer model is a classifier like any other: it predicts on a photo, for its owner only.
    model = alice_api.get(f"/api/models/{head['model']}/").json()
    assert model["task"] == "classify" and model["backbone"]["name"] == backbone["key"]
    answer = alice_api.post(f"/api/models/{head['model']}/predict/", {"image": io.BytesIO(digit_png(3))},
                            format="multipart")
    assert answer.status_code == 200, answer.content
    assert answer.json()["predictions"][0]["label"] == "3"
    assert bob_api.post(f"/api/models/{head['model']}/predict/", {"image": io.BytesIO(digit_png(3))},
                        format="multipart").status_code == 404

    # A trained model is itself a backbone: logistic regression on the head's hidden layer.
    again = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": digits["id"], "architecture": "logreg",
        "params": {"backbone": f"models/{head['model']}"}})["id"], timeout=300)
    assert again["status"] == "succeeded", again["error"]
    assert again["result"]["features"]["feature_dim"] == 256
    assert again["result"]["test_accuracy"] >= 0.85

    # Features are derived from the images: deleting the dataset deletes them too.
    cache = Path(settings.DATA_DIR) / "features" / head["result"]["features"]["cache"]
    assert cache.is_dir()
    assert alice_api.delete(f"/api/datasets/{digits['id']}/").status_code == 204
    assert not cache.exists()
    assert not (cache.parent / again["result"]["features"]["cache"]).exists()


def test_a_tflite_backbone_extracts_features_and_serves_a_transfer_model(digits, alice_api, tmp_path):
    backbone = upload_backbone(alice_api, pixels_backbone_tflite(tmp_path))
    assert backbone["format"] == "tflite" and backbone["output_dim"] == 192

    refused = alice_api.post("/api/jobs/", {"kind": "train", "dataset": digits["id"], "architecture": "transfer",
                                            "params": {"backbone": backbone["key"], "mode": "finetune"}},
                             format="json")
    assert refused.status_code == 400 and "TensorFlow Lite" in str(refused.json()["params"]["mode"])

    job = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": digits["id"], "architecture": "transfer",
        "params": {"backbone": backbone["key"], "epochs": 30, "batch_size": 64, "learning_rate": 0.003}})["id"],
        timeout=300)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["test_accuracy"] >= 0.85

    # The model keeps its own copy of the TFLite file: deleting the upload does not break it.
    assert alice_api.delete(f"/api/backbones/{backbone['id']}/").status_code == 204
    answer = alice_api.post(f"/api/models/{job['model']}/predict/", {"image": io.BytesIO(digit_png(7))},
                            format="multipart")
    assert answer.status_code == 200, answer.content
    assert answer.json()["predictions"][0]["label"] == "7"


def test_presets_name_their_backbone_and_bad_backbones_get_a_sentence(digits, alice_api):
    def params_errors(architecture: str, **params) -> dict:
        response = alice_api.post("/api/jobs/", {"kind": "train", "dataset": digits["id"],
                                                 "architecture": architecture, "params": params}, format="json")
        assert response.status_code == 400
        return response.json()["params"]

    assert "always uses vgg16_conv" in str(params_errors("vgg16_transfer", backbone="mobilenet_v2")["backbone"])
    assert "no backbone called 'resnet'" in str(params_errors("transfer", backbone="resnet")["backbone"])
    assert "no trained classifier with id 999" in str(params_errors("logreg", backbone="models/999")["backbone"])

    # Without a backbone a preset uses its own, and takes its input size and colour mode from it.
    job = alice_api.post("/api/jobs/", {"kind": "train", "dataset": digits["id"], "architecture": "vgg16_transfer",
                                        "params": {"weights": "random", "mode": "finetune"}}, format="json").json()
    alice_api.post(f"/api/jobs/{job['id']}/cancel/")
    # Let the worker let go of it: the next test's inference calls share this worker.
    assert wait_for_job(alice_api, job["id"])["status"] == "cancelled"
    assert (job["params"]["backbone"], job["params"]["image_size"], job["params"]["color_mode"]) == (
        "vgg16_conv", 150, "rgb")
    assert job["params"]["learning_rate"] == 1e-5 and job["params"]["augment_flip"] is True
