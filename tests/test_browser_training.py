"""Training in a real browser: a person picks a dataset and an architecture, watches the learning
curves grow live on the job page, reads the evaluation (test accuracy, confusion matrix), then
tries the trained model on a photo. Debian's chromium, the live server, a real worker.

With VISIONLAB_SCREENSHOTS=<folder>, the first test also saves the README's screenshots there
(train.png, training-job.png, model.png).
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser_fixtures import log_in, screenshot
from tests.conftest import token_client, wait_for
from webapp.datasets.models import Dataset
from webapp.experiments.models import TrainedModel
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker]

TRAIN_TIMEOUT_MS = 300_000

# Set once the job page has loaded (a reload would drop it). Every 100 ms it records the number
# of epochs the loss chart holds and the status on screen, and whether the chart is still the
# same Chart.js instance (the curves must grow in place, not be drawn anew).
WATCH_CURVES = """() => {
  window.__noReload = true;
  window.__curve = [];
  window.__sameChart = true;
  const canvas = document.getElementById("loss-chart");
  setInterval(() => {
    const chart = window.Chart && Chart.getChart(canvas);
    if (chart && !window.__firstChart) window.__firstChart = chart;
    if (chart && chart !== window.__firstChart) window.__sameChart = false;
    // Epochs drawn, not the frame: while it runs the x-axis spans every planned epoch.
    const epochs = chart ? chart.data.datasets[0].data.filter(v => v !== null).length : 0;
    const status = document.getElementById("job-status").textContent.trim();
    const last = window.__curve[window.__curve.length - 1];
    if (!last || last[0] !== epochs || last[1] !== status) window.__curve.push([epochs, status]);
  }, 100);
}"""

IMAGES_LOADED = """(selector) => {
  const images = [...document.querySelectorAll(selector)];
  return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""


def digit_png(value: int) -> bytes:
    """A real scan of `value` from scikit-learn's digits, enlarged to 64 px like a photo would be."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = int(np.flatnonzero(digits.target == value)[-1])
    image = Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8), "L").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def ready_digits(user) -> Dataset:
    """The offline built-in digits, added through the API as `user` and read by the worker."""
    client = token_client(user)
    response = client.post("/api/datasets/reference/", {"name": "digits"}, format="json")
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]

    def ready():
        dataset = Dataset.objects.get(id=dataset_id)
        assert dataset.status != Dataset.Status.FAILED, dataset.error
        return dataset if dataset.status == Dataset.Status.READY else None

    return wait_for(ready, timeout=180, what="the digits dataset to be ready")


def test_a_user_trains_lenet5_on_digits_watches_the_curves_and_tries_the_model(worker, alice, page):
    digits = ready_digits(alice)

    # From the dataset's page to the launch form, with the dataset already chosen.
    log_in(page, "alice", f"/datasets/{digits.id}/")
    page.get_by_role("link", name="Train a model on this dataset").click()
    page.wait_for_url(re.compile(r"/train/\?dataset=\d+$"))
    expect(page.get_by_role("heading", name="New training run")).to_be_visible()
    expect(page.locator(".mainnav a[aria-current]")).to_have_text("Train")
    dataset_select = page.get_by_label("Dataset", exact=True)
    expect(dataset_select).to_have_value(str(digits.id))
    expect(dataset_select.locator("option:checked")).to_have_text(re.compile(r"10 classes · 1,797 images"))
    # The built-in digits suggest a run, and the form starts with it.
    expect(page.get_by_test_id("suggestion")).to_contain_text(
        "Suggested: LeNet-5 (lenet5) with 12 epochs · learning rate 0.005.")
    expect(page.locator("#run-summary")).to_contain_text(f"LeNet-5 on {digits.name}")

    # Each architecture shows what it is and how big; choosing one fills in its input from the dataset.
    lenet = page.locator('.arch-choice[data-arch="lenet5"]')
    expect(lenet).to_contain_text("LeNet-5")
    expect(lenet).to_contain_text("44,426 parameters")
    page.locator('.arch-choice[data-arch="cnn"]').click()
    expect(page.locator("#f-image_size")).to_have_value("32")  # the scans' size, not its own 128
    expect(page.locator("#f-color_mode")).to_have_value("grayscale")
    lenet.click()
    expect(page.locator("#f-image_size")).to_have_value("28")
    expect(page.locator("#f-color_mode")).to_have_value("grayscale")
    expect(page.locator("#run-summary")).to_contain_text(f"LeNet-5 on {digits.name}")

    # Everything else is prefilled and folded away under Advanced.
    epochs = page.get_by_label("Epochs", exact=True)
    expect(epochs).to_be_hidden()
    expect(page.locator("#advanced-summary")).to_contain_text("12 epochs · batch 32")
    page.locator("#advanced > summary").click()
    expect(epochs).to_have_value("12")
    expect(page.get_by_label("Batch size")).to_have_value("32")
    expect(page.get_by_label("Optimizer")).to_have_value("adam")
    expect(page.get_by_label("Learning rate")).to_have_value("0.005")
    expect(page.get_by_label("Random seed")).to_have_value("0")
    expect(page.get_by_label("Run on")).to_have_value("auto")
    expect(page.locator("#f-early_stopping")).to_be_disabled()
    # Sigmoid LeNet-5 can sit on its plateau for a few epochs at batch 32: smaller, gentler steps
    # get it off in one or two, so six epochs reach about 95%.
    epochs.fill("6")
    page.get_by_label("Batch size").fill("16")
    page.get_by_label("Learning rate").fill("0.005")
    expect(page.locator("#run-summary")).to_contain_text("6 epochs")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "train.png")

    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    job = Job.objects.get(id=job_id)
    assert (job.kind, job.dataset_id) == ("train", digits.id)
    chosen = {key: job.params[key] for key in ("architecture", "epochs", "batch_size", "learning_rate", "image_size",
                                               "color_mode", "optimizer", "early_stopping", "seed")}
    assert chosen == {"architecture": "lenet5", "epochs": 6, "batch_size": 16, "learning_rate": 0.005, "image_size": 28,
                      "color_mode": "grayscale", "optimizer": "adam", "early_stopping": None, "seed": 0}
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Training #{job_id}")
    page.evaluate(WATCH_CURVES)

    # The curves grow while it runs, without a reload; then the evaluation appears.
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("succeeded", timeout=TRAIN_TIMEOUT_MS)
    assert page.evaluate("window.__noReload") is True, "the job page reloaded itself"
    assert page.evaluate("window.__sameChart") is True, "the loss chart was drawn anew"
    curve = page.evaluate("window.__curve")
    growing = [epochs for epochs, shown in curve if shown == "running"]
    assert len(set(growing)) >= 3 and growing == sorted(growing), curve
    lengths = page.evaluate("""() => ["loss-chart", "accuracy-chart"].map(id =>
        Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data.length))""")
    assert lengths == [[6, 6, 6], [6, 6, 6]], lengths
    best = page.evaluate("""() => Chart.getChart(document.getElementById("loss-chart"))
        .data.datasets[2].data.filter(v => v !== null).length""")
    assert best == 1, "exactly one point marks the best epoch"

    expect(page.locator("#job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("test-accuracy")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    accuracy = float(page.get_by_test_id("test-accuracy").text_content().rstrip("%"))
    assert accuracy > 50, accuracy
    # The verdict above the numbers says in words whether it learned (issue 15).
    expect(page.get_by_test_id("verdict").first).to_contain_text("on images it never saw")
    expect(page.get_by_test_id("test-loss")).to_have_text(re.compile(r"^\d+\.\d{3}$"))
    matrix = page.get_by_test_id("confusion-matrix")
    expect(matrix.locator("tbody tr")).to_have_count(10)
    expect(matrix.locator("td.cm-cell")).to_have_count(100)
    expect(matrix.locator("thead th.cm-col")).to_have_text([str(d) for d in range(10)])
    expect(matrix.locator("tbody th.cm-row")).to_have_text([str(d) for d in range(10)])
    expect(page.locator("#per-class-table tbody tr")).to_have_count(10)
    expect(page.locator("#mistakes-card")).to_be_visible()
    expect(page.get_by_test_id("total-params")).to_have_text("44,426")
    expect(page.locator("#resume-form")).to_be_hidden()
    expect(page.locator("#cancel-form")).to_be_hidden()
    model = TrainedModel.objects.get(job_id=job_id)
    expect(page.get_by_role("link", name="Download .keras")).to_have_attribute(
        "href", f"/api/models/{model.id}/download/")
    if page.locator(".mistake img").count():
        page.locator("#mistakes-card").scroll_into_view_if_needed()
        page.wait_for_function(IMAGES_LOADED, arg=".mistake img")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "training-job.png")

    # Try the model on a new photo of a digit: five labelled bars, largest first.
    page.get_by_role("link", name="Try the model").click()
    page.wait_for_url(f"**/models/{model.id}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(model.name)
    expect(page.get_by_test_id("model-accuracy")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    page.get_by_test_id("predict-input").set_input_files(
        {"name": "seven.png", "mimeType": "image/png", "buffer": digit_png(7)})
    bars = page.locator("#predictions .prediction")
    expect(bars).to_have_count(5, timeout=60_000)
    labels = bars.locator(".prediction-label").all_text_contents()
    assert len(set(labels)) == 5 and set(labels) <= {str(d) for d in range(10)}, labels
    widths = page.evaluate("""() => [...document.querySelectorAll("#predictions .prediction-fill")]
        .map(bar => parseFloat(bar.style.width))""")
    assert widths == sorted(widths, reverse=True) and 0 < widths[0] <= 100, widths
    expect(bars.first.locator(".prediction-value")).to_have_text(re.compile(r"^(\d{1,3}(\.\d)?%|<0\.1%)$"))
    expect(page.locator("#predict-preview")).to_be_visible()
    expect(page.locator("#predict-error")).to_be_hidden()
    page.wait_for_function(IMAGES_LOADED, arg="#predict-preview")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "model.png")

    # A file that is not a photo gets a sentence, in the card.
    page.get_by_test_id("predict-input").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"these are not pixels"})
    expect(page.locator("#predict-error")).to_be_visible(timeout=60_000)
    expect(page.locator("#predict-error")).to_have_text(re.compile(r"\w.*\.$"))
    expect(bars).to_have_count(5)  # the last answer stays in the list, hidden behind the error
    expect(page.locator("#predictions")).to_be_hidden()


def test_the_launch_form_shows_each_problem_under_its_field(alice, page):
    log_in(page, "alice", "/train/")
    # Without a ready classification dataset there is nothing to pick: the page says where to get one.
    expect(page.locator("#no-datasets")).to_contain_text("No dataset to train on yet")
    go = page.locator("#no-datasets").get_by_role("link", name="Go to Datasets")
    expect(go).to_have_attribute("href", "/datasets/")
    expect(page.locator("#launch-form")).to_have_count(0)

    Dataset.objects.create(owner=alice, name="flowers", kind=Dataset.Kind.CLASSIFICATION,
                           status=Dataset.Status.READY, num_items=120,
                           classes=[{"name": "daisy", "count": 60}, {"name": "tulip", "count": 60}])
    page.reload()
    expect(page.get_by_label("Dataset", exact=True).locator("option:checked")).to_have_text(
        "flowers — 2 classes · 120 images")
    page.evaluate("window.__noReload = true")

    # Start with no architecture: the message sits under the architecture cards.
    page.get_by_role("button", name="Start training").click()
    architecture_error = page.locator('[data-error-for="architecture"]')
    expect(architecture_error).to_be_visible()
    expect(page.locator("#form-errors")).to_contain_text("Architecture:")

    # An image too small for any network: the message sits under the image size, and
    # Advanced opens by itself to show it.
    page.locator('.arch-choice[data-arch="lenet5"]').click()
    expect(architecture_error).to_be_hidden()
    page.locator("#advanced > summary").click()
    page.get_by_label("Image size").fill("4")
    page.locator("#advanced > summary").click()  # folded again before Start
    expect(page.get_by_label("Image size")).to_be_hidden()
    page.get_by_role("button", name="Start training").click()
    size_error = page.locator('[data-error-for="image_size"]')
    expect(size_error).to_be_visible()
    expect(size_error).to_contain_text("8")
    expect(page.get_by_label("Image size")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_contain_text("Image size:")
    expect(page.locator("#form-errors li")).to_have_count(1)

    # Large enough for the API but not for LeNet-5's two 5x5 convolutions.
    page.get_by_label("Image size").fill("12")
    page.get_by_role("button", name="Start training").click()
    expect(size_error).to_contain_text("LeNet-5 needs images of at least 16x16 pixels")
    assert not Job.objects.exists()
    assert page.evaluate("window.__noReload") is True

    page.get_by_label("Image size").fill("28")
    page.get_by_label("Epochs", exact=True).fill("")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator('[data-error-for="epochs"]')).to_have_text("Enter a number.")
    expect(size_error).to_be_hidden()
    assert not Job.objects.exists()

    # The queue went down between the page load and Start: the server's sentence, in the banner.
    page.get_by_label("Epochs", exact=True).fill("3")
    detail = "The job queue is not reachable (Redis is down or unreachable), so the job was not started."
    page.route("**/api/jobs/", lambda route: route.fulfill(
        status=503, content_type="application/json", body=json.dumps({"detail": detail})))
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#queue-problem")).to_be_visible()
    expect(page.locator("#queue-problem")).to_contain_text(detail)
    expect(page.locator("#form-errors")).to_be_hidden()
    page.wait_for_timeout(5_500)  # a queue-status poll that finds Redis fine does not hide it
    expect(page.locator("#queue-problem")).to_contain_text(detail)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()


def test_the_architectures_page_shows_the_layers_at_the_reference_shape_and_at_a_chosen_one(worker, alice, page):
    Dataset.objects.create(owner=alice, name="flowers", kind=Dataset.Kind.CLASSIFICATION,
                           status=Dataset.Status.READY, num_items=120,
                           classes=[{"name": "daisy", "count": 60}, {"name": "tulip", "count": 60}])
    log_in(page, "alice", "/architectures/")
    expect(page.locator(".mainnav a[aria-current]")).to_have_text("Architectures")
    card = page.locator("#arch-lenet5")
    expect(card.get_by_test_id("reference-params")).to_have_text("44,426")
    expect(page.locator("#arch-vgg16").get_by_test_id("reference-params")).to_have_text("138,357,544")

    # model.summary() at the reference shape, built by a worker.
    card.get_by_role("button", name="Show layers").click()
    layers = card.locator(".layers-table")
    expect(layers.get_by_test_id("total-params")).to_have_text("44,426", timeout=60_000)
    expect(layers.locator("tbody tr").first).to_contain_text("Conv2D")
    expect(layers.locator("tbody tr").last).to_contain_text("(None, 10)")

    # The same network for a two-class dataset: only the last layer changes (85 weights a class).
    card.get_by_label("As in a dataset").select_option(label="flowers (2 classes)")
    expect(card.get_by_label("Classes", exact=True)).to_have_value("2")
    card.get_by_role("button", name="Update layers").click()
    expect(layers.get_by_test_id("total-params")).to_have_text(f"{44_426 - 8 * 85:,}", timeout=60_000)
    expect(card.locator(".layers-caption")).to_contain_text("28×28×1, 2 classes")

    # Too small an image: the worker's sentence, in the card.
    card.get_by_label("Image size").fill("8")
    card.get_by_role("button", name="Update layers").click()
    expect(card.locator(".arch-layers .alert-error")).to_contain_text("at least 16x16", timeout=60_000)
    card.get_by_role("button", name="Hide").click()
    expect(card.locator(".arch-layers")).to_be_hidden()
    card.get_by_role("link", name="Train with it").click()
    page.wait_for_url("**/train/?architecture=lenet5")
    expect(page.locator('input[name=architecture][value="lenet5"]')).to_be_checked()


def test_a_cancelled_training_run_resumes_from_its_last_epoch_with_one_click(worker, alice, page):
    digits = ready_digits(alice)
    client = token_client(alice)
    response = client.post("/api/jobs/", {"kind": "train", "dataset": digits.id, "architecture": "mlp", "queue": "cpu",
                                          "params": {"epochs": 40, "batch_size": 16}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    log_in(page, "alice", f"/jobs/{job_id}/")
    page.evaluate(WATCH_CURVES)
    epochs_drawn = """() => {
      const chart = window.Chart && Chart.getChart(document.getElementById("loss-chart"));
      return chart ? chart.data.datasets[0].data.filter(v => v !== null).length : 0;
    }"""
    page.wait_for_function(f"({epochs_drawn})() >= 2", timeout=TRAIN_TIMEOUT_MS)
    expect(page.locator("#resume-form")).to_be_hidden()
    page.get_by_role("button", name="Cancel job").click()
    expect(page.get_by_test_id("job-status")).to_have_text("cancelled", timeout=60_000)
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/$"))  # the page, not the API's answer
    done = len(Job.objects.get(id=job_id).metrics.all())
    assert 2 <= done < 40

    # The curves stay; one button continues the run where it stopped.
    resume = page.locator("#resume-form")
    expect(resume).to_be_visible()
    expect(resume).to_contain_text("Continues from the last completed epoch")
    assert page.evaluate(epochs_drawn) == done
    resume.get_by_role("button", name="Resume training").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/$"))
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=TRAIN_TIMEOUT_MS)
    expect(resume).to_be_hidden()
    assert page.evaluate(epochs_drawn) == 40
    job = Job.objects.get(id=job_id)
    assert [m.epoch for m in job.metrics.all()] == list(range(1, 41))
    expect(page.get_by_test_id("test-accuracy")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
