"""Uploaded models run in a sandbox (issue 11, item 10): hostile files cost their owner, not the worker.

Each file goes through the real API to the real inference worker, which opens it only in a
child process with a wall-clock and a memory limit (jobs.sandbox). The upload fails with a
sentence, the Lambda's file is never written, and the shared inference worker answers the next
question at once.
"""

from __future__ import annotations

import time

import pytest

from tests.hostile_models import endless_tflite, lambda_h5, memory_bomb_keras
from webapp.experiments.inference import ask

pytestmark = [pytest.mark.worker,
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]


def refused(client, path) -> str:
    with open(path, "rb") as handle:
        response = client.post("/api/backbones/", {"file": handle}, format="multipart")
    assert response.status_code == 400, response.content
    assert client.get("/api/backbones/").json() in ([], {"count": 0, "next": None, "previous": None, "results": []})
    return str(response.json()["file"])


def still_serving() -> None:
    started = time.monotonic()
    answer = ask("inference.describe_architecture", "mlp", timeout=20)
    assert answer["total_params"] == 101_770 and time.monotonic() - started < 15


def test_a_lambda_layer_never_runs(worker, alice_api, tmp_path):
    marker = tmp_path / "pwned.txt"
    hostile = lambda_h5(tmp_path, marker)
    marker.unlink(missing_ok=True)  # Keras may trace the lambda once while building it here
    error = refused(alice_api, hostile)
    assert "Lambda layer" in error and "innocent.h5" in error
    assert not marker.exists()
    still_serving()


def test_a_model_that_never_finishes_is_stopped(worker, alice_api, tmp_path, settings):
    settings.SANDBOX_SECONDS = 12
    started = time.monotonic()
    error = refused(alice_api, endless_tflite(tmp_path))
    assert "did not finish" in error and "12 seconds" in error
    assert time.monotonic() - started < 40
    still_serving()


def test_a_model_that_asks_for_gigabytes_is_stopped(worker, alice_api, tmp_path, settings):
    settings.SANDBOX_MEMORY_BYTES = 1 << 30
    bomb = memory_bomb_keras(tmp_path)
    assert bomb.stat().st_size < 10_000
    error = refused(alice_api, bomb)
    assert "more than 1024 MiB" in error
    still_serving()


def test_a_keras_too_old_to_refuse_code_opens_no_upload():
    from jobs.ml.backbones import check_safe_keras

    check_safe_keras("3.12.0")
    check_safe_keras("3.15.1")
    with pytest.raises(ValueError, match="Keras 3.11.3, which cannot open uploaded models safely"):
        check_safe_keras("3.11.3")
    import keras

    check_safe_keras(keras.__version__)  # the installed one, as constraints.txt and pyproject require
