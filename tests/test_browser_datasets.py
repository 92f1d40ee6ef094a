"""Datasets in a real browser: a zip dropped on the page becomes a dataset a person can read
(class balance, thumbnails, skipped files), an interrupted upload resumes after a reload, and
a built-in dataset arrives with one click. Debian's chromium, the live server, a real worker.

With VISIONLAB_SCREENSHOTS=<folder>, the built-in dataset test also saves the README's
screenshots there (datasets.png, dataset.png).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser_fixtures import log_in, screenshot
from webapp.datasets.models import Dataset, Upload

pytestmark = [pytest.mark.browser, pytest.mark.worker]

INGEST_TIMEOUT_MS = 120_000
CLASSES = {"birds": (40, 120, 220), "cats": (220, 90, 40), "dogs": (60, 170, 90)}

# Records every sentence the upload card's status line shows, to read after it has moved on.
WATCH_UPLOAD_STATUS = """() => {
  window.__statuses = [];
  const line = document.getElementById("upload-status");
  new MutationObserver(() => window.__statuses.push(line.textContent))
    .observe(line, { childList: true, characterData: true, subtree: true });
}"""

CHART_DRAWN = """(id) => {
  const canvas = document.getElementById(id);
  const chart = canvas && window.Chart && Chart.getChart(canvas);
  const box = canvas && canvas.getBoundingClientRect();
  return Boolean(chart) && box.width > 100 && box.height > 100 && chart.data.datasets[0].data.length > 0;
}"""

# The outermost elements that stick out to the right, to name them when a page is too wide.
WIDE = """() => {
  const width = document.documentElement.clientWidth;
  const out = e => e.getBoundingClientRect().right > width + 1;
  return [...document.querySelectorAll("body *")].filter(e => out(e) && !out(e.parentElement))
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className);
}"""

THUMBNAILS_LOADED = """(expected) => {
  const images = [...document.querySelectorAll(".thumbs img")];
  return images.length === expected && images.every(img => img.complete && img.naturalWidth > 0);
}"""


def png(rgb: tuple[int, int, int], size: int, rng: np.random.Generator, noise: int) -> bytes:
    """A `size` px square of one colour with some noise (noise=255: pure noise)."""
    if noise >= 255:
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    else:
        base = np.empty((size, size, 3), dtype=np.int16)
        base[:] = rgb
        pixels = np.clip(base + rng.integers(-noise, noise + 1, size=base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def classification_zip(path: Path, per_class: int = 12, size: int = 32, noise: int = 30) -> Path:
    """animals/<class>/<n>.png for three classes, a text file outside any class folder and a
    .jpg that is no image: the last two must be skipped and listed."""
    rng = np.random.default_rng(7)
    with zipfile.ZipFile(path, "w") as archive:
        for label, rgb in CLASSES.items():
            for n in range(per_class):
                archive.writestr(f"animals/{label}/{label}-{n:02d}.png", png(rgb, size, rng, noise))
        archive.writestr("animals/notes.txt", "Photographed in the garden, spring 2024.\n")
        archive.writestr("animals/cats/broken.jpg", b"this is not a JPEG at all" * 20)
    return path


def hold_dataset_creation(page: Page) -> list[Route]:
    """Hold back the upload card's POST /api/datasets/ so the test can look at the finished
    upload before the page moves on; the test releases it with route.continue_()."""
    held: list[Route] = []

    def handle(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/datasets/", handle)
    return held


def wait_until(page: Page, predicate, what: str, timeout_ms: int = 30_000) -> None:
    """Let Playwright process events (route handlers run only then) until `predicate()`."""
    for _ in range(timeout_ms // 50):
        if predicate():
            return
        page.wait_for_timeout(50)
    pytest.fail(f"Timed out waiting for {what}")


def dataset_id_of(page: Page) -> int:
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_a_user_uploads_a_class_folder_zip_and_reads_the_dataset_page(worker, alice, page, tmp_path):
    archive = classification_zip(tmp_path / "animals.zip")
    log_in(page, "alice", "/datasets/")
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    expect(page.locator(".mainnav a[aria-current]")).to_have_text("Datasets")
    expect(page.locator("#datasets-table")).to_contain_text("No datasets yet")
    expect(page.locator("#dropzone")).to_contain_text("up to 10.0 GiB")
    expect(page.locator("#queue-problem")).to_be_hidden()
    held = hold_dataset_creation(page)

    page.get_by_test_id("upload-input").set_input_files(str(archive))
    expect(page.locator("#dropzone-title")).to_have_text("animals.zip")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("placeholder", "animals")
    page.get_by_label("Name", exact=True).fill("Garden animals")
    expect(page.locator("#kind-hint")).to_contain_text("One folder per class")
    page.get_by_role("button", name="Upload", exact=True).click()

    # The bar fills, then the card says what happens next.
    expect(page.locator("#upload-bar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#upload-percent")).to_have_text("100%")
    size = archive.stat().st_size
    expect(page.locator("#upload-sent")).to_have_text(re.compile(r"^(\d+(\.\d)? KiB) of \1$"))
    expect(page.locator("#upload-status")).to_have_text("Upload complete. Creating the dataset…")
    wait_until(page, lambda: held, "the dataset to be created")
    assert Upload.objects.get().offset == size
    held[0].continue_()

    dataset_id = dataset_id_of(page)
    dataset = Dataset.objects.get(id=dataset_id)
    assert (dataset.name, dataset.kind, dataset.original_filename) == (
        "Garden animals", "classification", "animals.zip")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Garden animals")
    # The page follows the worker by itself, and draws the result once it is ready.
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=INGEST_TIMEOUT_MS)
    expect(page.locator("#ingest-card")).to_have_count(0)
    expect(page.get_by_test_id("dataset-items")).to_have_text("36")
    page.wait_for_function(CHART_DRAWN, arg="balance-chart")
    assert page.evaluate("Chart.getChart(document.getElementById('balance-chart')).data.labels") == list(CLASSES)
    page.wait_for_function(CHART_DRAWN, arg="widths-chart")

    classes = page.locator(".sample-class")
    expect(classes.locator(".sample-label")).to_have_text(list(CLASSES))
    expect(classes.locator(".sample-count")).to_have_text(["12 images"] * 3)
    page.locator("#samples-card").scroll_into_view_if_needed()
    page.wait_for_function(THUMBNAILS_LOADED, arg=3 * 8)
    first = classes.first.locator("a.thumb").first
    expect(first.locator("img")).to_have_attribute("alt", re.compile(r"birds-\d\d\.png$"))
    full = page.request.get(first.get_attribute("href"))
    assert full.ok and full.body().startswith(b"\x89PNG")

    skipped = page.locator("#skipped-table tbody tr")
    expect(skipped).to_have_count(2)
    expect(page.locator("#skipped-table")).to_contain_text("animals/notes.txt")
    expect(page.locator("#skipped-table")).to_contain_text("animals/cats/broken.jpg")
    expect(page.locator("#split-table")).to_contain_text("Train")
    expect(page.locator("#dataset-facts")).to_contain_text("animals.zip")

    # The list shows it ready, with what it holds.
    page.locator(".crumbs").get_by_role("link", name="Datasets").click()
    row = page.locator(f'#datasets-table tr[data-dataset="{dataset_id}"]')
    expect(row.locator(".badge")).to_have_text("ready")
    expect(row).to_contain_text("3 classes")
    expect(row.locator("td").nth(3)).to_have_text("36")


def test_an_interrupted_upload_resumes_after_a_reload_from_where_it_stopped(worker, alice, page, settings, tmp_path):
    settings.UPLOAD_CHUNK_SIZE = 64 * 1024
    # Noise does not compress: 12 images of 96 px make a zip of about 330 KB, six chunks.
    archive = classification_zip(tmp_path / "noise.zip", per_class=4, size=96, noise=255)
    size = archive.stat().st_size
    assert 5 * 64 * 1024 < size < 6 * 64 * 1024
    log_in(page, "alice", "/datasets/")

    # Let the first chunk through, then hold the second one forever: the tab is reloaded
    # while it is in flight, as when a laptop lid closes mid-upload.
    ranges: list[str] = []

    def stall_second_chunk(route: Route) -> None:
        if route.request.method == "PUT":
            ranges.append(route.request.headers["content-range"])
            if len(ranges) >= 2:
                return  # never answered
        route.continue_()

    page.route("**/api/uploads/**", stall_second_chunk)
    page.get_by_test_id("upload-input").set_input_files(str(archive))
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_until(page, lambda: len(ranges) >= 2, "the second chunk")
    assert ranges == [f"bytes 0-65535/{size}", f"bytes 65536-131071/{size}"]
    expect(page.locator("#upload-bar")).to_have_attribute("aria-valuenow", str(100 * 65536 // size))
    expect(page.locator("#upload-pause")).to_be_visible()
    assert Upload.objects.get().offset == 65536

    page.reload()  # while the second chunk hangs; the old route stops any further request
    page.unroute_all(behavior="ignoreErrors")
    assert Upload.objects.get().offset == 65536
    ranges.clear()

    def record(route: Route) -> None:
        if route.request.method == "PUT":
            ranges.append(route.request.headers["content-range"])
        route.continue_()

    page.route("**/api/uploads/**", record)
    held = hold_dataset_creation(page)
    page.evaluate(WATCH_UPLOAD_STATUS)

    # The same file again: the card finds the upload and offers to continue it.
    pct = 100 * 65536 // size
    page.get_by_test_id("upload-input").set_input_files(str(archive))
    expect(page.locator("#upload-status")).to_have_text(
        f"This file was partly uploaded before: {pct}% is already on the server.")
    expect(page.locator("#upload-bar")).to_have_attribute("aria-valuenow", str(pct))
    page.get_by_role("button", name="Resume upload").click()
    wait_until(page, lambda: held, "the dataset to be created")
    statuses = page.evaluate("window.__statuses")
    assert f"Resuming from {pct}%" in statuses, statuses
    assert ranges[0] == f"bytes 65536-131071/{size}", ranges  # not from the start
    assert ranges[-1] == f"bytes {5 * 65536}-{size - 1}/{size}", ranges
    expect(page.locator("#upload-percent")).to_have_text("100%")
    assert Upload.objects.get().offset == size
    held[0].continue_()

    dataset_id = dataset_id_of(page)
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=INGEST_TIMEOUT_MS)
    expect(page.get_by_test_id("dataset-items")).to_have_text("12")
    dataset = Dataset.objects.get(id=dataset_id)
    assert dataset.archive_bytes == size
    assert dataset.num_items == 12 and [c["count"] for c in dataset.classes] == [4, 4, 4]
    assert sorted(s["path"] for s in dataset.skipped) == ["animals/cats/broken.jpg", "animals/notes.txt"]
    assert not Upload.objects.exists()
    # Finished uploads are forgotten: the same file again starts a new upload.
    page.goto("/datasets/")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('visionlab:upload:'))") == []


def test_a_built_in_dataset_arrives_with_one_click(worker, alice, page):
    log_in(page, "alice", "/datasets/")
    shapes = page.locator('.source[data-source="shapes"]')
    expect(shapes.locator(".badge")).to_have_text("offline")
    expect(page.locator('.source[data-source="mnist"] .badge')).to_have_text("needs internet")

    shapes.get_by_role("button").click()
    dataset_id = dataset_id_of(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Shapes")
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=INGEST_TIMEOUT_MS)
    page.wait_for_function(CHART_DRAWN, arg="balance-chart")
    expect(page.locator(".sample-class .sample-label")).to_have_text(["circle", "square", "triangle"])
    expect(page.locator("#dataset-facts")).to_contain_text("Built-in")
    expect(page.get_by_test_id("content-hash")).to_have_attribute("title", re.compile(r"^[0-9a-f]{64}$"))
    page.locator("#samples-card").scroll_into_view_if_needed()
    page.wait_for_function(THUMBNAILS_LOADED, arg=3 * 8)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "dataset.png")
    assert_fits_a_phone(page)

    page.goto("/datasets/")
    row = page.locator(f'#datasets-table tr[data-dataset="{dataset_id}"]')
    expect(row.locator(".badge")).to_have_text("ready")
    expect(row).to_contain_text("3 classes")
    screenshot(page, "datasets.png")
    assert_fits_a_phone(page)

    # Deleting asks first, then removes the dataset and its files.
    page.goto(f"/datasets/{dataset_id}/")
    page.get_by_role("button", name="Delete dataset").click()
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text("This cannot be undone.")
    confirm.get_by_role("button", name="Delete dataset").click()
    expect(page).to_have_url(re.compile(r"/datasets/$"))
    expect(page.locator(".alert-success")).to_contain_text("Deleted the dataset")
    expect(page.locator("#datasets-table")).to_contain_text("No datasets yet")
    assert not Dataset.objects.exists()


def assert_fits_a_phone(page: Page) -> None:
    """At a phone's width nothing sticks out sideways (the page never scrolls horizontally)."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        try:  # charts follow their box on a later frame
            page.wait_for_function("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth",
                                   timeout=3_000)
        except PlaywrightTimeoutError:
            pytest.fail(f"{page.url} is wider than a phone: {page.evaluate(WIDE)} stick out")
    finally:
        page.set_viewport_size({"width": 1280, "height": 800})


def test_a_dropped_chunk_is_sent_again_and_a_paused_upload_resumes(worker, alice, page, settings, tmp_path):
    settings.UPLOAD_CHUNK_SIZE = 64 * 1024
    archive = classification_zip(tmp_path / "noise.zip", per_class=4, size=96, noise=255)
    size = archive.stat().st_size
    log_in(page, "alice", "/datasets/")
    page.evaluate(WATCH_UPLOAD_STATUS)

    # The second chunk's connection drops once; the fourth chunk hangs until the user pauses.
    ranges: list[str] = []
    hanging: list[Route] = []

    def flaky_network(route: Route) -> None:
        if route.request.method == "PUT":
            ranges.append(route.request.headers["content-range"])
            if len(ranges) == 2:
                route.abort("connectionreset")
                return
            if len(ranges) == 5:
                hanging.append(route)
                return
        route.continue_()

    page.route("**/api/uploads/**", flaky_network)
    page.get_by_test_id("upload-input").set_input_files(str(archive))
    page.get_by_role("button", name="Upload", exact=True).click()
    wait_until(page, lambda: hanging, "the fourth chunk")
    statuses = page.evaluate("window.__statuses")
    assert any(s.startswith("Connection lost — retrying…") for s in statuses), statuses
    chunk = [f"bytes {start}-{start + 65535}/{size}" for start in range(0, 4 * 65536, 65536)]
    assert ranges == [chunk[0], chunk[1], chunk[1], chunk[2], chunk[3]]  # the lost chunk again, once
    expect(page.locator("#upload-status")).to_be_hidden()  # the retry worked: the warning is gone
    expect(page.locator("#upload-percent")).to_have_text(f"{100 * 3 * 65536 // size}%")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#upload-status")).to_contain_text("Paused")
    expect(page.locator("#upload-rate")).to_have_text("paused")
    page.unroute_all(behavior="ignoreErrors")
    held = hold_dataset_creation(page)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#upload-pause")).to_have_text("Pause")
    wait_until(page, lambda: held, "the dataset to be created")
    expect(page.locator("#upload-percent")).to_have_text("100%")
    assert Upload.objects.get().offset == size
    held[0].continue_()

    dataset_id_of(page)
    expect(page.get_by_test_id("dataset-status")).to_have_text("ready", timeout=INGEST_TIMEOUT_MS)
    expect(page.get_by_test_id("dataset-items")).to_have_text("12")
