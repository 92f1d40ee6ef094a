"""Bad parameters are refused before they run (issue 11, item 6), against the real worker and Redis.

A made-up queue name (the API's and the pages'), a launch that could never fit in a worker's
memory, a user over a quota: each gets a sentence at once, and no job row. And one user's queue
of jobs does not make another user's first job wait behind all of them.
"""

from __future__ import annotations

import html
import io
import time

import pytest

from tests.archives import image_bytes, write_zip
from tests.conftest import wait_for, wait_for_job
from webapp.jobs.models import Job

pytestmark = pytest.mark.worker


def test_queue_names_are_checked_on_every_path(worker, alice, alice_api):
    from django.test import Client

    refused = alice_api.post("/api/jobs/", {"kind": "system_check", "queue": "inference"}, format="json")
    assert refused.status_code == 400 and "queue" in refused.json()
    browser = Client()
    browser.force_login(alice)
    page = browser.post("/jobs/", {"queue": "evil"}, follow=True)
    assert page.status_code == 200 and "no job queue called 'evil'" in html.unescape(page.content.decode())
    assert not Job.objects.filter(owner=alice).exists()


def test_a_training_that_cannot_fit_in_memory_is_refused_with_a_sentence(digits, alice_api, settings):
    from webapp.jobs.inference import ask

    settings.WORKER_MEMORY = 8 * 2**30
    # A launch waits a few seconds at most for the model's size (VGG16 takes longer to build the first
    # time, on a busy machine): ask once here, as the architectures page would have, so it is cached.
    # The same shape as the launch's (the digits are grayscale: one channel), or the launch builds it again.
    assert ask("inference.describe_architecture", "vgg16", [224, 224, 1], 10, timeout=120)["total_params"] > 1e8
    refused = alice_api.post("/api/jobs/", {"kind": "train", "dataset": digits["id"], "architecture": "vgg16",
                                            "params": {"image_size": 224, "color_mode": "grayscale",
                                                       "batch_size": 1024, "epochs": 1}},
                             format="json")
    assert refused.status_code == 400, refused.content
    sentence = str(refused.json()["params"]["batch_size"])
    assert "needs about" in sentence and "more than the 8.0 GiB a worker has" in sentence
    assert "batch size of" in sentence  # and says what would fit
    assert not Job.objects.filter(kind=Job.Kind.TRAIN).exists()
    fits = alice_api.post("/api/jobs/", {"kind": "train", "dataset": digits["id"], "architecture": "lenet5",
                                         "params": {"epochs": 1}}, format="json")
    assert fits.status_code == 201, fits.content
    wait_for_job(alice_api, fits.json()["id"], timeout=120)


def test_quotas_answer_with_a_sentence(worker, alice, alice_api, settings, tmp_path):
    settings.USER_MAX_ACTIVE_JOBS = 2
    launched = [alice_api.post("/api/jobs/", {"kind": "system_check", "params": {"seconds_per_device": 0.2}},
                               format="json") for _ in range(3)]
    assert [r.status_code for r in launched] == [201, 201, 429]
    assert "2 jobs queued or running" in launched[2].json()["detail"]
    for response in launched[:2]:
        wait_for_job(alice_api, response.json()["id"])
    assert alice_api.post("/api/jobs/", {"kind": "system_check", "params": {"seconds_per_device": 0.2}},
                          format="json").status_code == 201

    settings.USER_STORAGE_QUOTA = 4096
    archive = write_zip(tmp_path / "big.zip", {f"a/{i}.png": image_bytes(size=64, seed=i) for i in range(40)})
    assert archive.stat().st_size > 4096
    with open(archive, "rb") as handle:
        upload = alice_api.post("/api/datasets/", {"name": "big", "kind": "classification", "file": handle},
                                format="multipart")
    assert upload.status_code == 413 and "over your quota of 4.0 KiB" in str(upload.json()), upload.content
    chunked = alice_api.post("/api/uploads/", {"filename": "big.zip", "size": 10_000}, format="json")
    assert chunked.status_code == 413 and "quota" in str(chunked.json())
    backbone = alice_api.post("/api/backbones/", {"file": io.BytesIO(bytes(5000))}, format="multipart")
    assert backbone.status_code in (400, 413)


def test_one_users_queue_does_not_starve_anothers_first_job(worker, alice_api, bob_api):
    params = {"kind": "system_check", "params": {"seconds_per_device": 0.2}}
    mine = [alice_api.post("/api/jobs/", params, format="json").json()["id"] for _ in range(12)]
    time.sleep(0.5)
    theirs = bob_api.post("/api/jobs/", params, format="json").json()["id"]
    wait_for(lambda: Job.objects.filter(id__in=[*mine, theirs]).exclude(status__in=Job.ACTIVE).count() == 13,
             timeout=240, what="all 13 system checks")
    started = {job.id: job.started_at for job in Job.objects.filter(id__in=[*mine, theirs])}
    after_bob = sum(started[j] > started[theirs] for j in mine)
    # FIFO would run Bob's job last (0 of Alice's after it); fair turns put it near the front.
    assert after_bob >= 6, (after_bob, sorted(started.items(), key=lambda kv: kv[1]))
