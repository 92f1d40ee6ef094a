"""Exports through the real API, Redis, database and worker: every format converted, run in its own
runtime against the original on the test images, downloadable; a conversion that cannot work fails
with a sentence and the worker goes on; nobody else reaches them."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.api_helpers import launch, upload_dataset
from tests.archives import classification_zip
from tests.conftest import wait_for_job

pytestmark = pytest.mark.worker

FORMATS = ("savedmodel", "tflite", "tflite_float16", "tflite_int8", "onnx")


def trained(client, dataset_id: int, **params) -> dict:
    job = wait_for_job(client, launch(client, {
        "kind": "train", "dataset": dataset_id, "architecture": "mlp",
        "params": {"epochs": 8, "batch_size": 32, "learning_rate": 0.005, "image_size": 8, **params}})["id"],
        timeout=180)
    assert job["status"] == "succeeded", job["error"]
    return job


def export(client, model_id: int, fmt: str) -> dict:
    response = client.post(f"/api/models/{model_id}/exports/", {"format": fmt}, format="json")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["kind"] == "export_model" and job["queue"] == "cpu"
    return wait_for_job(client, job["id"], timeout=240)


def test_every_format_exports_and_answers_like_the_original_in_its_own_runtime(digits, alice_api, bob_api):
    model = trained(alice_api, digits["id"])["model"]

    jobs = {fmt: export(alice_api, model, fmt) for fmt in FORMATS}

    assert {fmt: job["status"] for fmt, job in jobs.items()} == dict.fromkeys(FORMATS, "succeeded"), \
        {fmt: job["error"] for fmt, job in jobs.items()}
    rows = {row["format"]: row for row in alice_api.get(f"/api/models/{model}/exports/").json()}
    assert list(rows) == list(FORMATS)
    for fmt, row in rows.items():
        assert row["status"] == "succeeded" and row["error"] == "", row
        assert row["images"] == digits["split_counts"]["test"]
        assert row["agreement"] >= (0.95 if fmt == "tflite_int8" else 0.99), row
        assert abs(row["accuracy_change"]) <= (0.03 if fmt == "tflite_int8" else 0.01), row
        assert row["latency_ms"] > 0 and row["size"] > 0
    assert rows["tflite_float16"]["size"] < 0.7 * rows["tflite"]["size"]
    assert rows["tflite_int8"]["size"] < 0.45 * rows["tflite"]["size"]

    # Each file downloads as what it says it is.
    files = {}
    for fmt, row in rows.items():
        response = alice_api.get(row["download"])
        assert response.status_code == 200, fmt
        files[fmt] = b"".join(response.streaming_content)
        assert len(files[fmt]) == row["size"]
    assert zipfile.ZipFile(io.BytesIO(files["savedmodel"])).namelist()
    assert all(files[fmt][4:8] == b"TFL3" for fmt in ("tflite", "tflite_float16", "tflite_int8"))
    import onnx

    assert onnx.load_from_string(files["onnx"]).graph.input[0].name == "pixels"

    # The int8 file takes raw uint8 pixels and answers like the model on a digit.
    import numpy as np
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=files["tflite_int8"])
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    assert detail["dtype"] == np.uint8 and tuple(detail["quantization"]) == (1.0, 0)

    # Nobody else reaches them.
    assert bob_api.get(f"/api/models/{model}/exports/").status_code == 404
    assert bob_api.post(f"/api/models/{model}/exports/", {"format": "tflite"}, format="json").status_code == 404
    assert bob_api.get(rows["tflite"]["download"]).status_code == 404
    assert alice_api.post(f"/api/models/{model}/exports/", {"format": "pickle"}, format="json").status_code == 400
    assert alice_api.get(f"/api/models/{model}/exports/pickle/download/").status_code == 404


def test_an_int8_export_without_enough_training_images_fails_with_a_sentence_and_the_worker_goes_on(
        worker, alice_api, tmp_path):
    dataset = upload_dataset(alice_api, classification_zip(tmp_path / "pets.zip", per_class=10), "classification",
                             "pets")
    model = trained(alice_api, dataset["id"], epochs=2, batch_size=4)["model"]

    failed = export(alice_api, model, "tflite_int8")

    assert failed["status"] == "failed"
    assert "calibrated on the model's own training images" in failed["error"] and "at least 20" in failed["error"]
    assert "/" not in failed["error"]  # no server path
    row = alice_api.get(f"/api/models/{model}/exports/").json()[0]
    assert row["status"] == "failed" and row["download"] is None and row["error"] == failed["error"]
    assert alice_api.get(f"/api/models/{model}/exports/tflite_int8/download/").status_code == 404
    assert export(alice_api, model, "tflite")["status"] == "succeeded"  # the worker serves the next one
