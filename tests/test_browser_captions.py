"""Captions in a real browser, end to end: a person uploads a backbone on the Features page (a broken
file is refused under the file field), extracts a caption dataset's features with it, follows
the job page's link to the caption form, trains a caption model, reads its job page (curves,
BLEU table, gallery), tries it on the model page, shares a demo; a stranger with no account
opens the link on a computer and on a phone, drops a photo, tries an example, and the link
dies the moment the owner revokes it. The train form's backbone fields are checked too.

The backbone is a tiny Keras model this test writes itself, so nothing is downloaded and a CPU
trains the caption model in seconds. With VISIONLAB_SCREENSHOTS=<folder>, it trains longer and
saves the README's screenshots there (features.png, captioner.png, caption-job.png,
caption-model.png, demo.png, demo-phone.png, train-transfer.png).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser_fixtures import log_in, screenshot
from tests.conftest import token_client, wait_for
from webapp.datasets.models import Dataset
from webapp.experiments.models import Backbone, TrainedModel
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker]

# Every epoch costs the same at any batch size on a CPU, so small batches learn most per second. Three
# epochs are enough to test the pages; README screenshots get a model that writes real sentences.
EPOCHS = 8 if os.environ.get("VISIONLAB_SCREENSHOTS") else 3
JOB_TIMEOUT_MS = 180_000
CAPTION_TIMEOUT_MS = 20_000
PHONE = {"width": 390, "height": 844}

# No fade-in still running (the caption appears with one), so a screenshot shows the page at rest.
SETTLED = "() => document.getAnimations().length === 0"

IMAGES_LOADED = """(selector) => {
  const images = [...document.querySelectorAll(selector)];
  return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""


def tiny_backbone(path: Path) -> Path:
    """A 32x32 feature extractor in a few hundred weights: the mean colour of each of 4x4 regions (what is
    where, in which colour) and eight convolution features (edges and corners): 56 numbers per photo."""
    import keras

    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    layout = keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(scaled))
    conv = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed=0))
    shapes = keras.layers.GlobalAveragePooling2D()(conv(scaled))
    features = keras.layers.Concatenate(name="features")([layout, shapes])
    keras.Model(inputs, features, name="tiny").save(path)
    return path


def photo_png(size: int = 96) -> bytes:
    """A red disc on a light background, like the shapes the model learned from."""
    y, x = np.mgrid[:size, :size]
    pixels = np.full((size, size, 3), 235, dtype=np.uint8)
    pixels[(x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2] = (210, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def ready_caption_dataset(client, tmp_path: Path) -> int:
    from jobs.ml.datasets.synthetic import make_shapes_captions_zip

    archive = make_shapes_captions_zip(tmp_path / "shapes-captions.zip", n_images=60, size=64)
    with open(archive, "rb") as handle:
        response = client.post("/api/datasets/", {"name": "shapes captions", "kind": "captions", "file": handle},
                               format="multipart")
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]

    def ready():
        dataset = Dataset.objects.get(id=dataset_id)
        assert dataset.status != Dataset.Status.FAILED, dataset.error
        return dataset if dataset.status == Dataset.Status.READY else None

    wait_for(ready, timeout=120, interval=0.2, what="the caption dataset to be ready")
    return dataset_id


def test_a_caption_model_is_trained_from_the_browser_and_shared_as_a_demo_until_revoked(worker, alice, page, browser,
                                                                                        live_server, tmp_path):
    dataset_id = ready_caption_dataset(token_client(alice), tmp_path)

    # Features page: a file that is no model is refused under the file field; the tiny one is kept.
    log_in(page, "alice", "/features/")
    expect(page.locator(".mainnav a[aria-current]")).to_have_text("Features")
    upload = page.locator("#backbone-form")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model at all")
    upload.get_by_label("Model file").set_input_files(junk)
    upload.get_by_role("button", name="Upload backbone").click()
    file_error = upload.locator('[data-error-for="file"]')
    expect(file_error).to_be_visible(timeout=60_000)
    expect(file_error).to_have_text(re.compile(r"\w.*\.$"))
    upload.get_by_label("Model file").set_input_files(tiny_backbone(tmp_path / "tiny.keras"))
    upload.get_by_label("Name").fill("tiny colours")
    upload.get_by_role("button", name="Upload backbone").click()
    row = page.locator("#backbones-table tbody tr", has_text="tiny colours")
    expect(row).to_contain_text("32×32 px", timeout=60_000)
    expect(row).to_contain_text("56 numbers")
    expect(file_error).to_be_hidden()
    expect(page.locator("#b-success")).to_contain_text("is ready")
    backbone = Backbone.objects.get(owner=alice, name="tiny colours")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "features.png")

    # Extract its features once: the job page says what was computed, and offers the next step.
    extract = page.locator("#extract-form")
    expect(extract.get_by_label("Dataset")).to_have_value(str(dataset_id))
    extract.get_by_label("Backbone").select_option(backbone.key)
    expect(extract.get_by_label("Weights")).to_be_hidden()  # an uploaded file brings its own
    extract.get_by_role("button", name="Extract features").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    features = page.locator("#features-card")
    expect(features.locator("#features-tag")).to_have_text("extracted now")
    expect(features).to_contain_text("tiny colours")
    expect(features).to_contain_text("56 numbers")
    features.get_by_role("link", name="Train a caption model on these features").click()

    # The caption form arrives with the dataset and backbone chosen; a bad value is refused in place.
    page.wait_for_url(re.compile(r"/captioner/\?"))
    expect(page.locator(".mainnav a[aria-current]")).to_have_text("Captions")
    expect(page.get_by_label("Caption dataset", exact=True)).to_have_value(str(dataset_id))
    expect(page.get_by_label("Backbone")).to_have_value(backbone.key)
    page.locator("#advanced > summary").click()
    page.get_by_label("Longest caption").fill("2")
    page.get_by_role("button", name="Start training").click()
    length_error = page.locator('[data-error-for="max_length"]')
    expect(length_error).to_contain_text("3")
    expect(page.locator("#form-errors")).to_contain_text("Longest caption:")
    page.get_by_label("Longest caption").fill("")
    page.get_by_label("Epochs", exact=True).fill(str(EPOCHS))
    page.get_by_label("Batch size").fill("32")
    # The Model group is drawn from the parameter declarations, and sent without being named in the script.
    expect(page.get_by_label("Model width")).to_have_value("256")
    page.get_by_label("Model width").fill("64")
    page.get_by_label("Dropout").fill("0.2")
    page.get_by_label("Stop early when the validation loss stops improving").uncheck()
    expect(page.locator("#run-summary")).to_contain_text("Captions of shapes captions from tiny colours features")
    expect(page.locator("#form-errors")).to_be_hidden()  # the one problem was fixed
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "captioner.png")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    job = Job.objects.get(id=job_id)
    assert (job.kind, job.params["backbone"], job.params["epochs"], job.params["early_stopping"]) == (
        "train_captioner", backbone.key, EPOCHS, None), job.params
    assert (job.params["units"], job.params["dropout"]) == (64, 0.2), job.params

    # The job page: curves as for any training, then the scores against the people's captions.
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS * EPOCHS // 3)
    job = Job.objects.get(id=job_id)
    bleu = page.get_by_test_id("bleu-table")
    expect(bleu.locator("tbody tr")).to_have_count(3)
    expect(bleu.locator("thead th")).to_have_text(["Decoding", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"])
    expect(bleu.locator("tbody tr").nth(1)).to_contain_text("Beam search (width 3)")
    expect(bleu.locator("tbody tr").nth(2)).to_contain_text("always says")
    expect(bleu.locator("tbody td.num").first).to_have_text(re.compile(r"^(0\.\d{3}|1\.000)$"))
    expect(page.get_by_test_id("bleu4")).to_have_text(f"{job.result['bleu4']:.3f}")
    expect(page.locator("#caption-facts")).to_contain_text(f"{job.result['vocab_size']} words")
    expect(features.locator("#features-tag")).to_have_text("reused from the cache")
    gallery = page.locator("#caption-gallery .caption-example")
    expect(gallery).to_have_count(len(job.result["gallery"]))
    expect(gallery.first.locator(".gallery-greedy")).not_to_be_empty()
    expect(gallery.first.locator(".gallery-refs li")).to_have_count(5)
    lengths = page.evaluate("""() => ["loss-chart", "accuracy-chart"].map(id =>
        Chart.getChart(document.getElementById(id)).data.datasets[0].data.length)""")
    assert lengths == [EPOCHS, EPOCHS], lengths
    page.wait_for_function(IMAGES_LOADED, arg="#caption-gallery img")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "caption-job.png")

    # The owner's model page: describe a photo, then share a demo.
    page.get_by_role("link", name="Try the model").click()
    model = TrainedModel.objects.get(job_id=job_id)
    page.wait_for_url(f"**/models/{model.id}/")
    expect(page.get_by_role("heading", name="Describe a photo")).to_be_visible()
    expect(page.locator("#model-backbone")).to_contain_text("tiny colours")
    page.get_by_test_id("predict-input").set_input_files(
        {"name": "disc.png", "mimeType": "image/png", "buffer": photo_png()})
    expect(page.get_by_test_id("caption-result")).to_have_text(re.compile(r"\w"), timeout=CAPTION_TIMEOUT_MS)
    share = page.locator("#share-card")
    expect(share).to_contain_text("Anyone with the link can use the demo and nothing else")
    expect(share.locator("#share-url")).to_be_hidden()
    share.get_by_role("button", name="Share demo").click()
    url_box = share.get_by_label("Demo link")
    expect(url_box).to_be_visible()
    demo_url = url_box.input_value()
    assert re.fullmatch(re.escape(live_server.url) + r"/demo/[\w-]{20,}/", demo_url), demo_url
    expect(share.get_by_role("link", name="Open")).to_have_attribute("href", demo_url)
    share.get_by_role("button", name="Copy").click()
    expect(share.locator("#share-status")).to_contain_text("Copied")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "caption-model.png")

    # A stranger, with no account and no cookies, opens the link.
    stranger = browser.new_context(viewport={"width": 1280, "height": 800})
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    js_errors: list[str] = []
    try:
        demo = stranger.new_page()
        demo.on("pageerror", lambda exc: js_errors.append(str(exc)))
        assert demo.goto(demo_url).status == 200
        expect(demo.get_by_role("heading", level=1)).to_have_text("Describe a photo")
        assert demo.locator(".mainnav, .usermenu, a[href*='login'], a[href*='/jobs/']").count() == 0
        expect(demo.locator("body")).not_to_contain_text(re.compile(r"\bmodel\b|inference|token", re.I))
        expect(demo.locator("#demo-about")).to_contain_text("written captions")
        expect(demo.locator("#demo-camera-button")).to_be_hidden()  # no camera to point on a computer
        caption = demo.get_by_test_id("demo-caption")
        demo.get_by_test_id("demo-input").set_input_files(
            {"name": "disc.png", "mimeType": "image/png", "buffer": photo_png()})
        expect(caption).to_have_text(re.compile(r"\w"), timeout=CAPTION_TIMEOUT_MS)
        expect(demo.locator("#demo-preview")).to_be_visible()
        assert float(demo.evaluate("getComputedStyle(document.getElementById('demo-caption')).fontSize")
                     .rstrip("px")) >= 26

        # Something that is not a photo: the server's sentence, where the caption would be.
        demo.get_by_test_id("demo-input").set_input_files(
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"these are not pixels"})
        expect(demo.locator("#demo-error")).to_be_visible(timeout=CAPTION_TIMEOUT_MS)
        expect(demo.locator("#demo-error")).to_have_text(re.compile(r"\w.*\.$"))
        expect(caption).to_be_hidden()

        # An example image: fetched by the page and sent like a photo of one's own.
        examples = demo.locator("#demo-examples button")
        assert examples.count() >= 1
        demo.wait_for_function(IMAGES_LOADED, arg="#demo-examples img")
        examples.first.click()
        expect(examples.first).to_have_attribute("aria-pressed", "true")
        expect(demo.locator("#demo-preview")).to_have_attribute("src", re.compile(r"^blob:"))
        expect(demo.locator("#demo-error")).to_be_hidden()
        expect(caption).to_have_text(re.compile(r"\w"), timeout=CAPTION_TIMEOUT_MS)
        expect(caption).not_to_have_class(re.compile(r"\bstale\b"))
        demo.mouse.move(0, 0)
        demo.wait_for_function(SETTLED)
        screenshot(demo, "demo.png")

        # On a phone: one column, nothing wider than the screen, and a button for the camera.
        mobile = phone.new_page()
        mobile.on("pageerror", lambda exc: js_errors.append(str(exc)))
        mobile.goto(demo_url)
        expect(mobile.locator("#demo-camera-button")).to_be_visible()
        expect(mobile.locator("#demo-camera")).to_have_attribute("capture", "environment")
        mobile.wait_for_function(IMAGES_LOADED, arg="#demo-examples img")
        mobile.locator("#demo-examples button").nth(1).tap()
        expect(mobile.get_by_test_id("demo-caption")).to_have_text(re.compile(r"\w"), timeout=CAPTION_TIMEOUT_MS)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.evaluate("window.scrollTo(0, 0)")
        mobile.wait_for_function(SETTLED)
        screenshot(mobile, "demo-phone.png")

        # The owner revokes the link (confirming first): it opens nothing any more, page and endpoint alike.
        share.get_by_role("button", name="Revoke link").click()
        page.get_by_test_id("confirm-dialog").get_by_role("button", name="Revoke link").click()
        expect(url_box).to_be_hidden()
        expect(share.get_by_role("button", name="Share demo")).to_be_visible()
        expect(share.locator("#share-status")).to_contain_text("no longer")
        assert demo.goto(demo_url).status == 404
        assert stranger.request.post(demo_url + "caption/", multipart={
            "image": {"name": "disc.png", "mimeType": "image/png", "buffer": photo_png()}}).status == 404
    finally:
        stranger.close()
        phone.close()
    assert not js_errors, js_errors


def test_the_train_form_offers_a_backbone_for_transfer_architectures(alice, page):
    flowers = Dataset.objects.create(owner=alice, name="flowers", kind=Dataset.Kind.CLASSIFICATION,
                                     status=Dataset.Status.READY, num_items=120,
                                     classes=[{"name": "daisy", "count": 60}, {"name": "tulip", "count": 60}])
    sent: list[dict] = []

    def answer(route):
        sent.append(route.request.post_data_json)
        route.fulfill(status=400, content_type="application/json", body=json.dumps(
            {"params": {"mode": ["Only Keras backbones can be fine-tuned."]}}))

    log_in(page, "alice", "/train/")
    page.route("**/api/jobs/", answer)
    page.goto("/train/?architecture=transfer&backbone=vgg16")
    panel = page.locator("#backbone-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#f-backbone")).to_have_value("vgg16")  # from the link
    expect(page.locator("#f-weights")).to_have_value("imagenet")
    expect(page.locator("#f-mode")).to_have_value("extract")
    page.locator("#advanced > summary").click()
    expect(page.locator("#input-from-backbone")).to_contain_text("224×224 px, colour")
    expect(page.locator("#f-image_size")).to_be_hidden()

    # Fine-tuning takes small steps by itself; the server's sentence lands under the mode.
    page.locator("#f-mode").select_option("finetune")
    expect(page.locator("#f-learning_rate")).to_have_value("0.00001")
    page.locator("#f-weights").select_option("random")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator('[data-error-for="mode"]')).to_have_text("Only Keras backbones can be fine-tuned.")
    params = sent[-1]["params"]
    assert (sent[-1]["architecture"], sent[-1]["dataset"]) == ("transfer", flowers.id)
    assert {k: params[k] for k in ("backbone", "weights", "mode", "learning_rate")} == {
        "backbone": "vgg16", "weights": "random", "mode": "finetune", "learning_rate": 0.00001}, params
    assert "image_size" not in params and "color_mode" not in params
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "train-transfer.png")

    # A preset names its backbone instead of offering a choice; logistic regression has no mode.
    page.locator('.arch-choice[data-arch="vgg16_transfer"]').click()
    expect(page.locator("#backbone-field")).to_be_hidden()
    expect(page.locator("#backbone-fixed")).to_contain_text("always uses VGG16 conv base")
    expect(page.locator("#input-from-backbone")).to_contain_text("150×150")
    page.locator('.arch-choice[data-arch="logreg"]').click()
    expect(page.locator("#backbone-field")).to_be_visible()
    expect(page.locator("#f-mode")).to_be_hidden()
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#form-errors")).to_be_visible()
    params = sent[-1]["params"]
    assert sent[-1]["architecture"] == "logreg" and "mode" not in params and params["backbone"] == "vgg16", params

    # A network from scratch: no backbone, and the input fields are back.
    page.locator('.arch-choice[data-arch="lenet5"]').click()
    expect(panel).to_be_hidden()
    expect(page.locator("#f-image_size")).to_have_value("28")
    expect(page.locator("#f-learning_rate")).to_have_value("0.001")
