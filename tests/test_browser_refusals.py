"""What cannot work is refused in the browser before it runs (issue 15, items 5, 7 and 8), in one walk
through the pages as a person meets them, in Debian's chromium on the live server:

- the upload card refuses a ".zip" that is really a photo from its first bytes, before a byte is sent;
- the caption form sees that VGG16's ImageNet weights are not on this server, starts with a backbone
  that works, and when VGG16 is chosen says so and offers the working one back;
- two datasets (and two uploaded backbones) of one name are told apart in the dropdowns;
- a queued job says where it stands in its queue, a run refused for its inputs offers no Resume;
- a dataset with a class too small to train on says so, on its page and on the train form; class
  folders uploaded as captions offer to be read as classification.

Everything is set up as database rows (no worker, nothing trained), so it takes seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.archives import image_bytes
from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, log_in
from webapp.datasets.models import Dataset, Upload
from webapp.experiments.models import Backbone, Project
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser]


@pytest.fixture
def rows(alice, bob):
    def dataset(**fields):
        return Dataset.objects.create(owner=alice, **{"kind": "captions", "status": "ready", **fields})

    def backbone(name):
        return Backbone.objects.create(owner=alice, name=name, format="keras", filename="tiny.keras", input_size=32,
                                       output_dim=56, feature_shape=[56], sha256="0" * 64)

    def job(owner, status, minutes, **fields):
        return Job.objects.create(owner=owner, kind=Job.Kind.TRAIN, status=status, queue="cpu",
                                  params={"architecture": "mlp", "epochs": 3, "dataset_name": "shapes"},
                                  project=Project.default_for(owner),
                                  created_at=timezone.now() - timedelta(minutes=10 - minutes), **fields)

    made = {
        "old_shapes": dataset(name="shapes", num_items=120, num_captions=600),
        "new_shapes": dataset(name="shapes", num_items=60, num_captions=300),
        "nets": [backbone("tiny net"), backbone("tiny net")],
        "small": dataset(name="pets", kind="classification", classes=[{"name": "cat", "count": 5}],
                         warnings=[{"code": "too_few_images", "needed": 3, "classes": [{"name": "dog", "count": 2}],
                                    "message": "Every class needs at least 3 images, one each for training, validation "
                                               "and test, and “dog” has only 2 images."}]),
        "folders": dataset(name="animals", status="failed", error="No captions file found, but the images sit in 3 "
                           "class folders (cat, dog, owl): this looks like a classification dataset.",
                           warnings=[{"code": "looks_like_classification", "message": "…", "classes": ["cat", "dog",
                                                                                                     "owl"]}]),
        "bobs": job(bob, Job.Status.RUNNING, 0),
        "waiting": job(alice, Job.Status.QUEUED, 1),
        "refused": job(alice, Job.Status.FAILED, 2, failure=Job.Failure.INPUTS,
                       error="The dataset's training split is empty."),
    }
    made["folders"].directory.mkdir(parents=True)
    made["folders"].archive_path.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # kept for reading again
    return made


def test_what_cannot_work_is_refused_before_it_runs(rows, page, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights on this server

    # A photo renamed .zip: refused from its first bytes, before any upload starts.
    log_in(page, "alice", "/datasets/")
    page.get_by_test_id("upload-input").set_input_files(
        files=[{"name": "holiday.zip", "mimeType": "application/zip", "buffer": image_bytes("JPEG")}])
    expect(page.locator("#upload-error")).to_have_text(re.compile(
        r"^“holiday\.zip” is not a zip archive: its first bytes are those of a JPEG image\. Choose the \.zip"))
    expect(page.locator("#upload-start")).to_be_disabled()
    assert not Upload.objects.exists()

    # The caption form: VGG16's weights are missing, so it starts with the uploaded backbone, which works.
    page.goto("/captioner/")
    newest = rows["nets"][-1]
    backbone = page.locator("#f-backbone")
    expect(backbone).to_have_value(f"backbones/{newest.id}")
    expect(page.locator("#backbone-switched")).to_contain_text("The ImageNet weights of VGG16 are not on this server")
    expect(page.get_by_test_id("weights-missing")).to_be_hidden()
    # Same names, told apart: the datasets by id, size and day, the uploads by id.
    old, new = rows["old_shapes"], rows["new_shapes"]
    labels = page.locator("#caption-dataset option").all_inner_texts()
    assert any(label.startswith(f"shapes (#{old.id}, 120 images, ") for label in labels), labels
    assert any(label.startswith(f"shapes (#{new.id}, 60 images, ") for label in labels), labels
    nets = page.locator('#f-backbone optgroup[label="Uploaded by you"] option').all_inner_texts()
    assert len(set(nets)) == 2 and all(f"#{b.id}, added " in " ".join(nets) for b in rows["nets"]), nets

    # Choosing VGG16 says what is missing and offers the backbone that works.
    backbone.select_option("vgg16")
    warning = page.get_by_test_id("weights-missing")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("The ImageNet weights of VGG16 are not on this server.")
    expect(warning).to_contain_text("download them first (528 MB), which fails on a server without internet")
    warning.get_by_role("button", name="Use tiny net instead").click()
    expect(backbone).to_have_value(re.compile(r"^backbones/\d+$"))
    expect(warning).to_be_hidden()
    backbone.select_option("vgg16")
    page.locator("#f-weights").select_option("random")  # random weights need no download
    expect(warning).to_be_hidden()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    # A queued job says where it stands; another user's job is counted, not named.
    page.goto(f"/jobs/{rows['waiting'].id}/")
    expect(page.get_by_test_id("queue-position")).to_have_text(
        "2nd in the cpu queue, after 1 job of other users (1 running).")
    # A run refused for its inputs offers no Resume, and says why.
    page.goto(f"/jobs/{rows['refused'].id}/")
    expect(page.get_by_test_id("resume-refusal")).to_contain_text("failed because of its inputs")
    expect(page.locator("#resume-form")).to_be_hidden()
    expect(page.get_by_test_id("queue-position")).to_be_hidden()

    # A class too small to train on: said on the dataset's page, with no Train button to press.
    page.goto(f"/datasets/{rows['small'].id}/")
    expect(page.get_by_test_id("dataset-warning")).to_contain_text("“dog” has only 2 images")
    expect(page.locator("#train-on-dataset")).to_have_count(0)
    page.goto(f"/train/?dataset={rows['small'].id}")  # and on the train form, as soon as it is chosen
    expect(page.locator("#dataset-info .dataset-choice-warning")).to_contain_text("“dog” has only 2 images")
    # Class folders uploaded as captions: the kept archive can be read as classification.
    page.goto(f"/datasets/{rows['folders'].id}/")
    expect(page.locator("#dataset-error")).to_contain_text("this looks like a classification dataset")
    expect(page.get_by_role("button", name="Read it as Classification")).to_be_visible()
