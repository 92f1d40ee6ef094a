"""The Train form fits the dataset and the job page says which epoch was saved (issue 15, items 2-4),
in a real browser.

Picking the built-in shapes shows its suggested run and prefills it (the conv net, at the pictures' 64 px,
in colour); picking a dataset whose classes differ only by colour proposes colour, and choosing grayscale
there is warned about where the person looks. A finished run's page says the saved model is the best
epoch's, or the last one's when keeping the best was turned off. The datasets are what the ingestion core
measures on real archives; the runs are rows as a worker leaves them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from jobs.ml.datasets.synthetic import make_shapes_classification_zip
from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in, screenshot
from tests.test_input_defaults import GRAYSCALE_WARNING, paint_zip, stored
from tests.test_job_lists import curve, run

pytestmark = [pytest.mark.browser]


def test_the_train_form_takes_its_input_from_the_dataset_and_warns_against_grayscale(alice, page, tmp_path):
    shapes = stored(alice, "Shapes", make_shapes_classification_zip(tmp_path / "shapes.zip", per_class=15),
                    source="builtin:shapes")
    paint = stored(alice, "Paint", paint_zip(tmp_path / "paint.zip"))

    # The built-in shapes: its suggestion is shown and prefilled, at the pictures' size, in colour.
    log_in(page, "alice", "/train/")
    page.goto(f"/train/?dataset={shapes.id}")
    suggestion = page.get_by_test_id("suggestion")
    expect(suggestion).to_contain_text("Suggested: Convolutional network (cnn) with its defaults.")
    expect(page.locator('input[name="architecture"][value="cnn"]')).to_be_checked()
    expect(page.locator("#run-summary")).to_contain_text("Convolutional network on Shapes · 64 px colour")
    expect(page.locator("#f-image_size")).to_have_value("64")
    expect(page.locator("#f-color_mode")).to_have_value("rgb")
    screenshot(page, "train-suggestion.png")

    # Colour pictures of 24 px: LeNet-5 takes them in colour at 24 px, not its own 28 px grayscale.
    page.get_by_label("Dataset", exact=True).select_option(str(paint.id))
    expect(suggestion).to_be_hidden()
    expect(page.locator("#f-image_size")).to_have_value("32")  # the conv net's smallest size
    page.locator('.arch-choice[data-arch="lenet5"]').click()
    expect(page.locator("#f-image_size")).to_have_value("24")
    expect(page.locator("#f-color_mode")).to_have_value("rgb")
    warning = page.get_by_test_id("colour-warning")
    expect(warning).to_be_hidden()

    # Grayscale throws away what tells these classes apart: said under the field and next to Start.
    page.locator("#advanced > summary").click()
    page.get_by_label("Colour mode").select_option("grayscale")
    expect(warning).to_be_visible()
    expect(warning).to_have_text(GRAYSCALE_WARNING)
    expect(page.locator("#colour-warning-start")).to_be_visible()
    screenshot(page, "train-colour-warning.png")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate(NO_SIDEWAYS_SCROLL), page.evaluate(WIDE)
    page.get_by_label("Colour mode").select_option("rgb")
    expect(warning).to_be_hidden()

    # The built-in's suggestion, on its own dataset page too.
    page.goto(f"/datasets/{shapes.id}/")
    expect(page.get_by_test_id("suggestion")).to_contain_text("Convolutional network (cnn) with its defaults")


def test_a_finished_run_says_which_epoch_its_saved_model_is_from(alice, page):
    kept = run(alice, "kept", epochs=curve([0.5, 0.8, 0.7, 0.6]),
               result={"test_accuracy": 0.8, "test_loss": 0.5, "best_epoch": 2, "model_epoch": 2})
    last = run(alice, "last", epochs=curve([0.5, 0.8, 0.7, 0.6]),
               result={"test_accuracy": 0.6, "test_loss": 0.9, "best_epoch": 2, "model_epoch": 4})

    log_in(page, "alice", f"/jobs/{kept.id}/")
    expect(page.get_by_test_id("model-epoch")).to_have_text(
        "The saved model is from epoch 2 (the best validation loss).")
    page.goto(f"/jobs/{last.id}/")
    expect(page.get_by_test_id("model-epoch")).to_have_text("The saved model is from the last epoch, 4.")
