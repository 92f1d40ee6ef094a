"""Comparing runs in a real browser: a person opens /compare/ for two classifiers the worker trained
on the digits and reads what differs (the parameter switch), the overlaid curves with each run's
best epoch (against the epoch and wall time), the summary, and the image-by-image comparison: the
McNemar sentence and thumbnails of the images only one of them got right. At a phone's width
nothing sticks out sideways. Debian's chromium, the live server, a real worker.

With VISIONLAB_SCREENSHOTS=<folder> it also saves compare.png for the README.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in, screenshot
from tests.conftest import token_client, wait_for, wait_for_job

pytestmark = [pytest.mark.browser, pytest.mark.worker]

IMAGES_LOADED = """(selector) => {
  const images = [...document.querySelectorAll(selector)];
  return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""
CHART = """() => {
  const chart = Chart.getChart(document.getElementById("compare-chart"));
  return {
    runs: chart.data.datasets.length,
    best: chart.data.datasets.map(d => d.data.filter(p => p.best).map(p => p.epoch)),
    epochs: chart.data.datasets.map(d => d.data.map(p => p.epoch)),
    x: chart.options.scales.x.title.text,
    y: chart.options.scales.y.title.text,
  };
}"""


def trained_pair(user) -> tuple[int, int]:
    """Two mlp runs on the digits that disagree on some test images (1 slow epoch against 3 faster ones)."""
    client = token_client(user)
    response = client.post("/api/datasets/reference/", {"name": "digits"}, format="json")
    assert response.status_code == 201, response.content
    dataset = response.json()["id"]
    wait_for(lambda: client.get(f"/api/datasets/{dataset}/").json()["status"] == "ready", timeout=180,
             what="the digits dataset")
    ids = []
    for epochs, rate, seed in ((1, 0.0005, 1), (3, 0.005, 2)):
        response = client.post("/api/jobs/", {"kind": "train", "dataset": dataset, "architecture": "mlp",
                                              "queue": "cpu", "params": {"epochs": epochs, "learning_rate": rate,
                                                                         "seed": seed, "batch_size": 64}},
                               format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    for job_id in ids:
        assert wait_for_job(client, job_id, timeout=240)["status"] == "succeeded"
    return ids[0], ids[1]


def test_a_person_compares_two_classifiers_side_by_side(worker, alice, page):
    first, second = trained_pair(alice)
    answer = token_client(alice).get(f"/api/compare/?jobs={first},{second}").json()
    (pair,) = answer["pairs"]
    assert pair["comparable"] and pair["a_only_right"] + pair["b_only_right"] > 0, pair

    log_in(page, "alice")
    page.goto(f"/compare/?jobs={first},{second}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare 2 runs")
    expect(page).to_have_title(re.compile(r"^Compare 2 runs"))

    # The summary: one row per run, in the order asked for, the better test accuracy in colour.
    summary = page.get_by_test_id("summary-table")
    expect(summary.locator("tbody tr")).to_have_count(2)
    expect(summary.locator("tbody tr").first).to_contain_text(f"#{first}")
    expect(summary.locator('td[data-key="test_accuracy"]')).to_have_text([re.compile(r"^\d{1,3}\.\d%$")] * 2)
    expect(summary.locator('td[data-key="test_accuracy"].best')).to_have_count(1)
    expect(summary.locator('td[data-key="epochs_run"]')).to_have_text(["1", "3"])

    # Parameters: only what differs, then everything with the switch off.
    switch = page.get_by_test_id("only-differing")
    expect(switch).to_be_checked()
    rows = page.locator("#params-table tbody tr")
    expect(rows).to_have_count(len(answer["differing"]))
    expect(page.locator('#params-table tr[data-param="learning_rate"] td')).to_have_text(["0.0005", "0.005"])
    expect(page.locator('#params-table tr[data-param="architecture"]')).to_have_count(0)
    page.locator("label.switch").click()
    expect(switch).not_to_be_checked()
    expect(rows).to_have_count(len(answer["params"]))
    expect(page.locator('#params-table tr[data-param="architecture"] td')).to_have_text(["mlp", "mlp"])
    expect(page.locator("#params-table tr.differs")).to_have_count(len(answer["differing"]))
    page.locator("label.switch").click()
    expect(rows).to_have_count(len(answer["differing"]))

    # Curves: both runs on one chart, each with its best epoch marked; then against wall time.
    chart = page.evaluate(CHART)
    best = {j["id"]: j["best_epoch"] for j in answer["jobs"]}
    assert chart["runs"] == 2 and chart["x"] == "Epoch" and chart["y"] == "Validation accuracy", chart
    assert chart["epochs"] == [[1], [1, 2, 3]] and chart["best"] == [[best[first]], [best[second]]], chart
    page.get_by_label("Metric").select_option("loss")
    assert page.evaluate(CHART)["y"] == "Training loss"
    page.get_by_role("button", name="Wall time").click()
    expect(page.get_by_role("button", name="Wall time")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate(CHART)["x"].startswith("Wall time")
    page.get_by_role("button", name="Epoch", exact=True).click()

    # Image by image: the sentence with McNemar's p, and thumbnails of what only one run got right.
    sentence = page.get_by_test_id("agreement-sentence")
    expect(sentence).to_have_text(pair["sentence"])
    expect(sentence).to_contain_text(re.compile(r"is better than #\d+ on [\d,]+ images? and worse on [\d,]+; "
                                                r"a difference this large by chance: p (= [\d.]+|< 0\.001)"))
    expect(page.locator('#pairs-table td[data-key="b_only_right"]')).to_have_text(f"{pair['b_only_right']:,}")
    shown = min(16, pair["b_only_right"])
    expect(page.locator('.pair-side[data-side="b_only_right"] figure')).to_have_count(shown)
    side = "b_only_right" if shown else "a_only_right"
    page.locator(f'.pair-side[data-side="{side}"]').scroll_into_view_if_needed()
    page.wait_for_function(IMAGES_LOADED, arg=f'.pair-side[data-side="{side}"] img')
    expect(page.locator("#captions-card")).to_be_hidden()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "compare.png")

    # At a phone's width every part is there, and nothing sticks out sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    try:  # charts follow their box on a later frame
        page.wait_for_function(NO_SIDEWAYS_SCROLL, timeout=3_000)
    except PlaywrightTimeoutError:
        pytest.fail(f"The compare page is wider than a phone: {page.evaluate(WIDE)} stick out")
    expect(page.get_by_test_id("agreement-sentence")).to_be_visible()
    expect(page.locator("#compare-chart")).to_be_visible()
    expect(page.locator('#params-table tr[data-param="learning_rate"] td').nth(1)).to_be_visible()
    screenshot(page, "compare-phone.png")

    # A link that names fewer than two runs answers with a sentence, not a broken page.
    page.goto(f"/compare/?jobs={first}")
    expect(page.get_by_test_id("compare-problem")).to_have_text("Choose at least 2 different runs to compare.")
