"""Uploaded models run in a sandbox (issue 11, item 10): hostile files cost their owner, not the worker.

Each file goes through the real API to the real inference worker, which opens it only in a
child process with a wall-clock and a memory limit (jobs.sandbox). The upload fails with a
sentence, the Lambda's file is never written, and the shared inference worker answers the next
question at once. A file that passes its check and hangs later, on a dataset's images, fails
its job the same way, and the job worker goes on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.api_helpers import launch, upload_backbone
from tests.conftest import extra_worker, wait_for_job
from tests.hostile_models import endless_tflite, lambda_h5, memory_bomb_keras, sleeper_tflite
from webapp.jobs.inference import ask

pytestmark = [pytest.mark.worker,
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]


def refused(client, path) -> str:
    with open(path, "rb") as handle:
        response = client.post("/api/backbones/", {"file": handle}, format="multipart")
    assert response.status_code == 400, response.content
    assert client.get("/api/backbones/").json() == {"count": 0, "next": None, "previous": None, "results": []}
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


def sandbox_children() -> list[int]:
    """Processes running `python -m jobs.sandbox` for this test session now: those whose environment has its
    DATA_DIR (inherited from its workers, kept if orphaned), not those of another test process or of another
    checkout's suite on the same machine."""
    marker = f"DATA_DIR={os.environ['DATA_DIR']}\0".encode()  # as tests.stack set it for the session
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and b"jobs.sandbox" in (entry / "cmdline").read_bytes()
                    and marker in (entry / "environ").read_bytes()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_backbone_that_hangs_on_the_dataset_fails_its_job_and_the_worker_goes_on(worker, digits, alice_api,
                                                                                  tmp_path):
    """The sleeper passes its check on photos at upload, then loops forever on the first digit scan:
    its extraction job fails with a sentence once the child has said nothing for SANDBOX_SECONDS,
    the child is gone, nothing half-written is left, and the same worker runs the next job."""
    backbone = upload_backbone(alice_api, sleeper_tflite(tmp_path))
    strict = extra_worker("strict", ["gpu"], env={"SANDBOX_SECONDS": "15"})
    strict.start()
    try:
        started = time.monotonic()
        job = wait_for_job(alice_api, launch(alice_api, {"kind": "extract_features", "dataset": digits["id"],
                                                         "queue": "gpu",
                                                         "params": {"backbone": backbone["key"]}})["id"], timeout=180)
        took = time.monotonic() - started
        print(f"failed after {took:.0f} s: {job['error']}")
        assert job["status"] == "failed"
        assert "reported no progress for 15 seconds, so it was stopped." in job["error"], job["error"]
        assert job["error"][0].isupper() and "Traceback" not in job["error"]
        assert sandbox_children() == []
        assert not list((settings.DATA_DIR / "features").glob("*.partial-*"))

        after = wait_for_job(alice_api, launch(alice_api, {"kind": "train", "dataset": digits["id"], "queue": "gpu",
                                                           "architecture": "mlp", "params": {"epochs": 1}})["id"],
                             timeout=120)
        assert after["status"] == "succeeded", after["error"]
    finally:
        strict.stop()
    assert os.path.exists(backbone_file(backbone))  # the owner keeps the file: it may suit other data


def backbone_file(backbone: dict) -> str:
    from webapp.experiments.models import Backbone

    return str(Backbone.objects.get(id=backbone["id"]).file_path)
