"""Real pretrained backbones through the running stack: upload, sanity check, scaling, transfer, predict.

The published quantized MobileNet and a float twin with its real weights (tests/real_models.py)
go through the real API, Redis and worker as a user's files would. Their features must carry
what the photo shows: a head on them learns the generated shapes, and a classifier trained on
them predicts the sample photos, also from the downloaded .keras file with nothing but Keras.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from jobs.ml.datasets.synthetic import make_shapes_classification_zip
from tests.api_helpers import launch, upload_backbone, upload_dataset
from tests.conftest import wait_for_job
from tests.real_models import EMBEDDING_TENSOR, QUANT_TFLITE, SAMPLES, save_float_keras

pytestmark = [pytest.mark.worker,
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]

PHOTOS = {"cat": SAMPLES / "cat_720p.jpg", "hot_dog": SAMPLES / "hot_dog.jpg"}


def _sklearn_photos() -> dict[str, Path]:
    import sklearn

    folder = Path(sklearn.__file__).parent / "datasets" / "images"
    return {"palace": folder / "china.jpg", "flower": folder / "flower.jpg"}


def photo_crops_zip(path: Path, per_class: int = 14, seed: int = 0) -> Path:
    """A class-folder zip of random crops, flips and lighting changes of four real photos."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in {**PHOTOS, **_sklearn_photos()}.items():
            with Image.open(source) as photo:
                photo = photo.convert("RGB")
                width, height = photo.size
                for i in range(per_class):
                    side = int(min(width, height) * rng.uniform(0.55, 0.95))
                    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
                    crop = photo.crop((left, top, left + side, top + side)).resize((128, 128))
                    if rng.random() < 0.5:
                        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.7, 1.3)))
                    buffer = io.BytesIO()
                    crop.save(buffer, "JPEG", quality=90)
                    archive.writestr(f"photos/{name}/{i:02d}.jpg", buffer.getvalue())
    return path


def predict(client, model_id: int, photo: Path) -> str:
    answer = client.post(f"/api/models/{model_id}/predict/", {"image": io.BytesIO(photo.read_bytes())},
                         format="multipart")
    assert answer.status_code == 200, answer.content
    return answer.json()["predictions"][0]["label"]


def test_the_published_quantized_model_uploads_checks_and_learns_shapes(worker, alice_api, bob_api, tmp_path):
    backbone = upload_backbone(alice_api, QUANT_TFLITE, output=EMBEDDING_TENSOR)
    assert backbone["input_scaling"] == {"kind": "raw"} and "quantized" in backbone["scaling_source"]
    assert backbone["output_dim"] == 512 and backbone["input_size"] == 160
    sanity = backbone["sanity"]
    assert sanity["status"] == "ok" and sanity["recognised"] == 2, sanity["messages"]
    cat = next(photo for photo in sanity["photos"] if photo["name"] == "cat")
    assert cat["top5"][0]["label"] == "Egyptian cat"  # the model's own labels, from its TFLite metadata
    assert str(tmp_path) not in str(backbone) and "/backbones/" not in str(sanity)

    shapes = upload_dataset(alice_api, make_shapes_classification_zip(tmp_path / "shapes.zip", per_class=40),
                            "classification", "shapes")
    job = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": shapes["id"], "architecture": "transfer",
        "params": {"backbone": backbone["key"], "epochs": 30, "batch_size": 32}})["id"], timeout=300)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["test_accuracy"] >= 0.9, job["result"]["test_accuracy"]  # 0.36 (chance) the old way
    assert job["result"]["features"]["image_size"] == 160

    # Someone else can neither see nor re-scale it.
    assert bob_api.patch(f"/api/backbones/{backbone['id']}/", {"input_scaling": "unit"},
                         format="json").status_code == 404


def test_a_float_model_is_caught_then_rescaled_and_its_models_carry_the_scaling(worker, alice_api, tmp_path):
    import keras

    from jobs.ml.predict import read_image

    upload = save_float_keras(tmp_path, output="logits")
    backbone = upload_backbone(alice_api, upload)
    assert backbone["input_scaling"] == {"kind": "raw"}
    assert backbone["sanity"]["status"] == "warning" and backbone["sanity"]["recognised"] == 0
    assert backbone["sanity"]["suggested"] is not None

    bad = alice_api.patch(f"/api/backbones/{backbone['id']}/", {"input_scaling": "mean_std", "input_mean": "127.5"},
                          format="json")
    assert bad.status_code == 400 and "needs both a mean and a std" in str(bad.json()["input_scaling"])
    fixed = alice_api.patch(f"/api/backbones/{backbone['id']}/", {"input_scaling": "mean_std", "input_mean": "127.5",
                                                                  "input_std": "127.5"}, format="json")
    assert fixed.status_code == 200, fixed.content
    fixed = fixed.json()
    assert fixed["input_scaling"] == {"kind": "mean_std", "mean": [127.5], "std": [127.5]}
    assert fixed["scaling_source"] == "chosen by its owner"
    assert fixed["sanity"]["status"] == "ok" and fixed["sanity"]["recognised"] == 2

    photos = upload_dataset(alice_api, photo_crops_zip(tmp_path / "photos.zip"), "classification", "photos")
    # The owner's own images join the check, spread over the classes, and stay in it for later re-checks.
    mine = alice_api.patch(f"/api/backbones/{backbone['id']}/", {"input_scaling": "symmetric",
                                                                 "dataset": photos["id"]}, format="json").json()
    assert mine["sanity"]["dataset"] == {"id": photos["id"], "name": "photos"}
    assert len(mine["sanity"]["photos"]) == 4 + 12 and mine["sanity"]["status"] == "ok"
    again = alice_api.patch(f"/api/backbones/{backbone['id']}/", {"input_scaling": "symmetric"}, format="json").json()
    assert len(again["sanity"]["photos"]) == 16 and again["sanity"]["dataset"]["id"] == photos["id"]
    job = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": photos["id"], "architecture": "logreg",
        "params": {"backbone": backbone["key"]}})["id"], timeout=300)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["test_accuracy"] >= 0.9, job["result"]["test_accuracy"]
    model = job["model"]
    for label, photo in {**PHOTOS, **_sklearn_photos()}.items():
        assert predict(alice_api, model, photo) == label

    # The downloaded file takes raw pixels: the backbone's -1..1 scaling is inside it.
    download = alice_api.get(f"/api/models/{model}/download/")
    assert download.status_code == 200
    saved = tmp_path / "downloaded.keras"
    saved.write_bytes(b"".join(download.streaming_content) if download.streaming else download.content)
    standalone = keras.models.load_model(saved, compile=False, safe_mode=True)
    names = job["result"]["classes"]
    cat = read_image(PHOTOS["cat"].read_bytes(), 160, 3)[None]
    assert names[int(np.argmax(standalone.predict_on_batch(cat)))] == "cat"


def test_a_quantized_backbone_serves_its_trained_models_predictions(worker, alice_api, tmp_path):
    backbone = upload_backbone(alice_api, QUANT_TFLITE, output=EMBEDDING_TENSOR, input_scaling="auto")
    photos = upload_dataset(alice_api, photo_crops_zip(tmp_path / "photos.zip", seed=1), "classification", "photos")
    job = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": photos["id"], "architecture": "logreg",
        "params": {"backbone": backbone["key"]}})["id"], timeout=300)
    assert job["status"] == "succeeded", job["error"]
    for label, photo in {**PHOTOS, **_sklearn_photos()}.items():
        assert predict(alice_api, job["model"], photo) == label  # the .tflite runs first, fed as it was in training


def test_scaling_requests_are_checked_before_anything_runs(worker, alice_api, bob_api, tmp_path):
    def refused(**fields) -> dict:
        with open(QUANT_TFLITE, "rb") as handle:
            response = alice_api.post("/api/backbones/", {"file": handle, **fields}, format="multipart")
        assert response.status_code == 400, response.content
        return response.json()

    assert "not a valid choice" in str(refused(input_scaling="bgr")["input_scaling"])
    assert "go with the mean_std scaling" in str(refused(input_scaling="unit", input_mean="3")["input_scaling"])
    assert "positive number" in str(refused(input_scaling="mean_std", input_mean="1", input_std="-2")["input_scaling"])
    theirs = bob_api.get("/api/datasets/").json()["results"]
    assert "no ready dataset" in str(refused(dataset=987654)["dataset"]), theirs
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"\0" * 10)
    with open(labels, "rb") as lab, open(QUANT_TFLITE, "rb") as handle:
        response = alice_api.post("/api/backbones/", {"file": handle, "labels": lab}, format="multipart")
    assert response.status_code == 400 and "one class name per line" in str(response.json()["labels"])
