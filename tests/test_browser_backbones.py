"""Real pretrained backbones in a real browser (issue 10): a person uploads the published quantized MobileNet
and a float MobileNet that wants -1..1, reads each one's sanity check on the sample photos (its input scaling and
why, the verdict, the top-5 labels under each photo, every scaling tried), and fixes the float one's scaling from
the page: first with the suggested scaling's button, then with "Change scaling". The page must not scroll sideways
on a laptop or a phone.

Both models are real: tests/data/pretrained holds the published .tflite, and tests.real_models rebuilds it as a float
Keras model from its own dequantized weights. The checks run on the real inference worker. With
VISIONLAB_SCREENSHOTS=<folder>, the float backbone's card is saved there as backbone-check.png (docs/ holds it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_fixtures import log_in
from tests.real_models import EMBEDDING_TENSOR, QUANT_TFLITE, save_float_keras
from webapp.experiments.models import Backbone

pytestmark = [pytest.mark.browser, pytest.mark.worker]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
CHECK_TIMEOUT_MS = 90_000  # the first check loads TensorFlow in the worker
CHECKING = "Checking the model on sample photos"

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
IMAGES_LOADED = """(selector) => {
  const images = [...document.querySelectorAll(selector)];
  return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""


def upload(page: Page, path: Path, name: str, output: str = "") -> Backbone:
    """Upload `path` with scaling Auto; the busy state shows while the worker checks it; returns its row."""
    form = page.locator("#backbone-form")
    form.get_by_label("Model file").set_input_files(path)
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Output layer or tensor").fill(output)
    expect(form.get_by_label("Input scaling")).to_have_value("auto")
    form.get_by_role("button", name="Upload backbone").click()
    expect(page.locator("#b-progress-text")).to_contain_text(CHECKING)
    expect(form.get_by_role("button", name="Checking…")).to_be_disabled()
    expect(form.get_by_label("Input scaling")).to_be_disabled()
    expect(page.locator("#b-success")).to_contain_text(f"“{name}” is ready", timeout=CHECK_TIMEOUT_MS)
    expect(form.get_by_role("button", name="Upload backbone")).to_be_enabled()
    return Backbone.objects.get(name=name)


def check_of(page: Page, backbone: Backbone) -> Locator:
    return page.locator(f'[data-check-for="{backbone.id}"] .backbone-check')


def expect_recognises_the_cat(check: Locator) -> None:
    expect(check).to_have_attribute("data-status", "ok")
    expect(check.get_by_test_id("check-status")).to_contain_text("OK")
    cat = check.locator('[data-photo="cat"]')
    expect(cat.locator(".check-top5")).to_contain_text("Egyptian cat")
    expect(cat).to_contain_text("✓ recognised")
    expect(check.locator('[data-photo="hot dog"]')).to_contain_text("✓ recognised")


def expect_no_sideways_scroll(page: Page, size: dict) -> None:
    page.set_viewport_size(size)
    page.wait_for_function(NO_SIDEWAYS_SCROLL, timeout=5_000)  # raises with the page as it is if it never holds


def test_uploaded_pretrained_backbones_show_their_check_and_a_wrong_scaling_is_fixed_from_the_page(
        worker, alice, page, tmp_path):
    page.set_viewport_size(LAPTOP)
    log_in(page, "alice", "/features/")
    form = page.locator("#backbone-form")
    form.get_by_label("Input scaling").select_option("mean_std")
    expect(form.get_by_role("textbox", name="Mean")).to_be_visible()
    expect(page.locator("#b-input_scaling-help")).to_contain_text("(pixel - mean) / std")
    form.get_by_label("Input scaling").select_option("auto")
    expect(form.get_by_role("textbox", name="Mean")).to_be_hidden()

    # The published quantized MobileNet: its uint8 input takes the pixels themselves, and it sees the cat.
    quantized = upload(page, QUANT_TFLITE, "MobileNet v1 quantized", output=EMBEDDING_TENSOR)
    check = check_of(page, quantized)
    expect_recognises_the_cat(check)
    expect(check.locator(".scaling-title")).to_have_text("Raw 0..255")
    expect(check.locator(".scaling-source")).to_contain_text("quantized")
    expect(check.locator(".check-messages")).to_contain_text("its input scaling looks right")
    expect(check.get_by_role("button", name=re.compile("^Use "))).to_have_count(0)

    # A float MobileNet that wants -1..1, fed raw pixels by default: it recognises nothing, and says what would.
    floating = upload(page, save_float_keras(tmp_path, output="logits"), "MobileNet float")
    check = check_of(page, floating)
    expect(check).to_have_attribute("data-status", "warning")
    expect(check.get_by_test_id("check-status")).to_contain_text("Warning")
    expect(check.locator(".check-messages")).to_contain_text("recognises none of the sample photos")
    expect(check.locator('[data-photo="cat"]')).to_contain_text("✗ not recognised")
    expect(check.locator(".check-table tr.current")).to_contain_text("0 of 2")
    expect(check.locator(".check-table tr.suggested")).to_contain_text("2 of 2")
    use = check.get_by_role("button", name=re.compile("^Use "))
    expect(use).to_be_visible()
    suggested = use.inner_text().removeprefix("Use ")
    page.wait_for_function(IMAGES_LOADED, arg=f'[data-check-for="{floating.id}"] .check-thumb img')
    expect_no_sideways_scroll(page, LAPTOP)
    if os.environ.get("VISIONLAB_SCREENSHOTS"):
        save_card(page, floating, Path(os.environ["VISIONLAB_SCREENSHOTS"]) / "backbone-check.png")

    # The suggestion, one click: busy while the worker checks again, then OK under the new scaling.
    use.click()
    expect(check.locator(".check-busy")).to_contain_text(CHECKING)
    expect(page.locator(f'[data-backbone="{floating.id}"]').get_by_role("button", name="Delete")).to_be_disabled()
    expect(check.locator(".check-busy")).to_have_text(f"Checked again with {suggested}.", timeout=CHECK_TIMEOUT_MS)
    expect(check.locator(".scaling-title")).to_have_text(suggested)
    expect_recognises_the_cat(check)
    expect(check.locator(".scaling-source")).to_contain_text("chosen by its owner")

    # Or choose the scaling by hand: -1..1 is what this MobileNet was trained on.
    check.locator(".change-scaling summary").click()
    check.get_by_label("Input scaling").select_option("symmetric")
    expect(check.locator(".scaling-help")).to_contain_text("pixel / 127.5 - 1")
    check.get_by_role("button", name="Check with this scaling").click()
    expect(check.locator(".check-busy")).to_contain_text(CHECKING)
    expect(check.locator(".check-busy")).to_have_text("Checked again with -1..1.", timeout=CHECK_TIMEOUT_MS)
    expect(check.locator(".scaling-title")).to_have_text("-1..1")
    expect_recognises_the_cat(check)
    expect(check.locator('[data-photo="hot dog"] .check-top5 li').first).to_contain_text("hotdog")
    assert Backbone.objects.get(id=floating.id).input_scaling == {"kind": "symmetric"}

    # A mean/std without its numbers is refused in place, before anything reaches the worker.
    check.locator(".change-scaling summary").click()
    check.get_by_label("Input scaling").select_option("mean_std")
    check.get_by_role("button", name="Check with this scaling").click()
    expect(check.locator('[data-error-for="input_mean"]')).to_contain_text("Enter the mean")

    # A phone: the cards stack, long tensor names wrap, the open form fits.
    expect_no_sideways_scroll(page, PHONE)
    expect(check_of(page, quantized).locator('[data-photo="cat"]')).to_be_visible()


def save_card(page: Page, backbone: Backbone, path: Path) -> None:
    """A screenshot of the "Your backbones" card showing this one backbone and its check, for the docs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    others = f'#backbones-body > tr:not([data-backbone="{backbone.id}"]):not([data-check-for="{backbone.id}"])'
    page.evaluate("(s) => document.querySelectorAll(s).forEach(row => { row.hidden = true; })", others)
    page.evaluate("window.scrollTo(0, 0)")  # bounding boxes are then page coordinates, as full_page clips want
    card = page.locator("#backbones").bounding_box()
    bottom = page.locator(f'[data-check-for="{backbone.id}"]').bounding_box()
    height = bottom["y"] + bottom["height"] - card["y"] + 8
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": card["x"], "y": card["y"], "width": card["width"], "height": height})
    page.evaluate("(s) => document.querySelectorAll(s).forEach(row => { row.hidden = false; })", others)
