"""Exports in a real browser (Debian's chromium through Playwright, the live server, a real worker): a
person exports a digits classifier as TensorFlow Lite float16 and int8 from the model page, watches both
rows go from queued to running to succeeded without a reload, reads the figures (size, accuracy and its
change, agreement, latency beside the original's), opens and copies the snippet, downloads a file,
opens the export's job page and comes back; the card fits a 390 px phone with its table scrolling
inside it. An int8 export that cannot be calibrated (too few training images) turns its row red with
the reason and offers no download. The page's server side alone (no browser, no worker): caption and
TFLite-backbone models get a sentence instead of buttons.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.api_helpers import launch, upload_dataset
from tests.archives import classification_zip
from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in
from tests.conftest import wait_for_job

EXPORT_TIMEOUT_MS = 120_000
# Set once the model page has loaded (a reload would drop it): every 100 ms, each row's status as the
# page shows it, and whether a running row showed its progress bar.
WATCH_ROWS = """() => {
  window.__noReload = true;
  window.__seen = {};
  window.__barWhileRunning = {};
  const look = () => document.querySelectorAll("#exports-table tbody[data-format]").forEach(body => {
    const fmt = body.dataset.format, seen = window.__seen[fmt] = window.__seen[fmt] || [];
    const shown = body.querySelector("[data-cell=status] .badge");
    const status = shown ? shown.dataset.status : "none";
    if (seen[seen.length - 1] !== status) seen.push(status);
    const bar = body.querySelector("[data-cell=status] [role=progressbar]");
    if (status === "running" && bar) window.__barWhileRunning[fmt] = true;
  });
  look();
  setInterval(look, 100);
}"""


def trained(client, dataset_id: int, **params) -> int:
    """A quick multilayer perceptron, trained through the API; its model's id."""
    job = wait_for_job(client, launch(client, {
        "kind": "train", "dataset": dataset_id, "architecture": "mlp",
        "params": {"epochs": 5, "batch_size": 32, "learning_rate": 0.005, "image_size": 8, **params}})["id"],
        timeout=180)
    assert job["status"] == "succeeded", job["error"]
    return job["model"]


def fits_a_phone(page, what: str) -> None:
    try:
        page.wait_for_function(NO_SIDEWAYS_SCROLL, timeout=3_000)
    except PlaywrightTimeoutError:
        pytest.fail(f"The {what} is wider than a phone: {page.evaluate(WIDE)} stick out")


@pytest.mark.browser
@pytest.mark.worker
def test_a_person_exports_tflite_float16_and_int8_from_the_model_page_and_downloads_one(digits, alice, alice_api, page):
    model = trained(alice_api, digits["id"])
    test_images = digits["split_counts"]["test"]

    log_in(page, "alice", f"/models/{model}/")
    card = page.locator("#exports-card")
    expect(card.get_by_role("heading", name="Exports")).to_be_visible()
    expect(card).to_contain_text(
        f"run in its own runtime on the {test_images:,} test images and compared with the original")
    expect(card.locator("#exports-int8")).to_contain_text("raw uint8 pixels")
    rows = card.locator("tbody.export")
    expect(rows).to_have_count(5)
    expect(rows.locator(".export-title")).to_have_text([
        "TensorFlow SavedModel (zip)", "TensorFlow Lite, float32", "TensorFlow Lite, float16 weights",
        "TensorFlow Lite, full integer (uint8 in and out)", "ONNX"])
    expect(rows.locator("[data-cell=status]")).to_have_text(["not exported"] * 5)
    expect(rows.get_by_role("button", name="Export", exact=True)).to_have_count(5)
    expect(card.locator(".export-download")).to_have_count(0)
    page.evaluate(WATCH_ROWS)

    # Two exports, one after the other on the worker, live on the page.
    float16, int8 = page.get_by_test_id("export-tflite_float16"), page.get_by_test_id("export-tflite_int8")
    float16.get_by_role("button", name="Export", exact=True).click()
    int8.get_by_role("button", name="Export", exact=True).click()
    expect(int8.get_by_role("button", name="Exporting…")).to_be_disabled()
    expect(int8.locator("[data-cell=status] .badge")).to_have_text(re.compile("^(queued|running)$"))
    for row in (float16, int8):
        expect(row).to_have_attribute("data-status", "succeeded", timeout=EXPORT_TIMEOUT_MS)
    page.wait_for_function(  # the watcher's last look may be 100 ms behind the page
        "() => ['tflite_float16', 'tflite_int8'].every(f => window.__seen[f].at(-1) === 'succeeded')")
    assert page.evaluate("window.__noReload") is True, "the model page reloaded itself"
    seen = page.evaluate("window.__seen")
    for fmt in ("tflite_float16", "tflite_int8"):
        assert seen[fmt][0] == "none" and seen[fmt][-1] == "succeeded" and "running" in seen[fmt], seen
        assert set(seen[fmt]) <= {"none", "queued", "running", "succeeded"}, seen
    assert "queued" in seen["tflite_int8"], seen  # it waited behind float16
    assert page.evaluate("window.__barWhileRunning") == {"tflite_float16": True, "tflite_int8": True}
    assert seen["tflite"] == ["none"], "the other rows stay as they were"

    # The figures: size, accuracy and its change, agreement, largest probability difference, latency.
    api = {row["format"]: row for row in alice_api.get(f"/api/models/{model}/exports/").json()}
    for fmt, row in (("tflite_float16", float16), ("tflite_int8", int8)):
        expect(row.locator("[data-cell=size]")).to_have_text(re.compile(r"^\d+(\.\d)? (B|KiB|MiB)$"))
        expect(row.locator("[data-cell=accuracy]")).to_have_text(
            re.compile(r"^\d{1,3}\.\d% \((±|\+|−)\d+\.\d\)original \d{1,3}\.\d%$"))
        expect(row.locator("[data-cell=agreement]")).to_have_text(
            re.compile(rf"^{api[fmt]['agreement'] * 100:.1f}%of {test_images:,} images$"))
        expect(row.locator("[data-cell=prob]")).to_have_text(re.compile(r"^\d"))
        expect(row.locator("[data-cell=latency]")).to_have_text(re.compile(r"^\d+\.\d+ msoriginal \d+\.\d+ ms$"))
        expect(row.get_by_role("button", name="Export again")).to_be_enabled()
        expect(row.locator(".export-problem")).to_be_hidden()
    assert float(int8.locator("[data-cell=agreement]").text_content().split("%")[0]) >= 95
    expect(int8.get_by_role("link", name="Download", exact=True)).to_have_attribute(
        "href", f"/api/models/{model}/exports/tflite_int8/download/")

    # The snippet opens, says how to feed the file, and copies.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    snippet = int8.locator(".export-snippet")
    expect(snippet.locator("pre")).to_be_hidden()
    snippet.locator("summary").click()
    expect(snippet.locator("pre")).to_be_visible()
    expect(snippet.locator("pre")).to_contain_text('Interpreter(model_path="model_int8.tflite")')
    expect(snippet.locator("pre")).to_contain_text("np.uint8")
    snippet.get_by_role("button", name="Copy").click()
    expect(snippet.locator(".snippet-copy")).to_have_text("Copied")
    assert "model_int8.tflite" in page.evaluate("navigator.clipboard.readText()")

    # The download is the file the row describes.
    with page.expect_download() as info:
        float16.get_by_role("link", name="Download", exact=True).click()
    download = info.value
    assert download.suggested_filename.endswith("model_float16.tflite"), download.suggested_filename
    data = open(download.path(), "rb").read()
    assert len(data) == api["tflite_float16"]["size"] and data[4:8] == b"TFL3"

    # The export's job page shows the same figures and leads back to the model.
    int8.locator("[data-cell=status] a").click()
    page.wait_for_url(f"**/jobs/{api['tflite_int8']['job']}/")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded")
    expect(page.locator("#export-about")).to_contain_text("TensorFlow Lite, full integer (uint8 in and out) of")
    expect(page.get_by_test_id("export-agreement")).to_have_text(f"{api['tflite_int8']['agreement'] * 100:.1f}%")
    expect(page.get_by_test_id("export-size")).to_have_text(re.compile(r"^\d+(\.\d)? (B|KiB|MiB)$"))
    expect(page.locator("#export-download")).to_have_attribute("href", api["tflite_int8"]["download"])
    expect(page.locator("#result-card")).to_have_count(0)  # no raw JSON

    # On a phone neither page scrolls sideways: the exports table scrolls inside its card.
    page.set_viewport_size({"width": 390, "height": 844})
    fits_a_phone(page, "export's job page")
    page.get_by_role("link", name=re.compile("^Back to ")).click()
    page.wait_for_url(f"**/models/{model}/#exports-card")
    expect(float16).to_have_attribute("data-status", "succeeded")
    fits_a_phone(page, "model page with its exports")
    assert page.evaluate("""() => { const box = document.querySelector("#exports-card .table-scroll");
        return box.scrollWidth > box.clientWidth; }"""), "the table should scroll inside its card"
    page.set_viewport_size({"width": 320, "height": 640})
    fits_a_phone(page, "model page with its exports, at 320 px")


@pytest.mark.browser
@pytest.mark.worker
def test_an_int8_export_that_cannot_be_calibrated_turns_red_with_its_reason_and_no_download(
        worker, alice, alice_api, page, tmp_path):
    dataset = upload_dataset(alice_api, classification_zip(tmp_path / "pets.zip", per_class=10), "classification",
                             "pets")
    model = trained(alice_api, dataset["id"], epochs=2, batch_size=4)

    log_in(page, "alice", f"/models/{model}/")
    int8 = page.get_by_test_id("export-tflite_int8")
    int8.get_by_role("button", name="Export", exact=True).click()
    expect(int8).to_have_attribute("data-status", "failed", timeout=EXPORT_TIMEOUT_MS)
    expect(int8).to_have_class(re.compile(r"\bexport-bad\b"))
    problem = int8.locator(".export-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("at least 20")
    assert problem.evaluate("e => getComputedStyle(e).color") == "rgb(180, 35, 24)"  # --bad
    expect(int8.locator("[data-cell=status] .badge")).to_have_text("failed")
    expect(int8.locator(".export-download")).to_have_count(0)
    expect(int8.get_by_role("link", name=re.compile("Download"))).to_have_count(0)
    expect(int8.get_by_role("button", name="Export again")).to_be_enabled()
    expect(int8.locator("[data-cell=size]")).to_have_text("—")
    page.set_viewport_size({"width": 390, "height": 844})
    fits_a_phone(page, "model page with a failed export")


def test_caption_and_tflite_backbone_models_say_why_they_cannot_be_exported(alice):
    from webapp.experiments.models import TrainedModel
    from webapp.jobs.models import Job

    client = Client()
    client.force_login(alice)
    pages = {}
    for task, backbone in (("caption", {}), ("classify", {"name": "backbones/tiny.tflite", "kind": "tflite"})):
        job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED,
                                 finished_at=timezone.now())
        model = TrainedModel.objects.create(owner=alice, job=job, task=task, name=task, architecture="x",
                                            backbone=backbone, class_names=["a", "b"], image_size=32, channels=3)
        response = client.get(f"/models/{model.id}/")
        assert response.status_code == 200
        pages[task] = response.content.decode()
    assert ("Caption models are kept as .keras files: beam search runs in Python around the network, so no single "
            "exported file would caption a photo.") in pages["caption"]
    assert "TensorFlow Lite backbone" in pages["classify"]
    assert "cannot be joined into one exported file" in pages["classify"]
    for html in pages.values():
        assert 'id="exports-refused"' in html and "export-button" not in html and 'id="exports-table"' not in html
