"""Sweeps in a real browser (Debian's chromium through Playwright, the live server, a real worker): a
person sets up a quick sweep of the multilayer perceptron on 8x8 digits (the learning rate searched on
a log scale, median pruning), reads the time estimate before starting, watches the sweep page fill in
without a reload until it ends, reads the trials table (sorted by score), the parallel coordinates,
the objective by trial and the importance, trains the best trial again with more epochs, and finds
the trials on the Jobs page. Another person's sweep answers 404, and both pages fit a 320 px phone.
The page's server side alone (no browser, no worker): fine-tuning is offered only where engine.promote
can fine-tune.

With VISIONLAB_SCREENSHOTS=<folder> it also saves sweep-new.png, the form with its estimate.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in, screenshot
from tests.conftest import token_client
from webapp.datasets.models import Dataset

TRIALS = 4
VALUES = "cells => cells.map(td => td.textContent.trim())"


def fits_a_phone(page, what: str) -> None:
    try:  # charts follow their box on a later frame
        page.wait_for_function(NO_SIDEWAYS_SCROLL, timeout=3_000)
    except PlaywrightTimeoutError:
        pytest.fail(f"The {what} is wider than a phone: {page.evaluate(WIDE)} stick out")


def percents(texts: list[str]) -> list[float]:
    return [float(t.rstrip("%")) for t in texts]


@pytest.mark.browser
@pytest.mark.worker
def test_a_person_runs_a_sweep_watches_it_live_and_trains_the_best_again(digits, alice, bob, page):
    log_in(page, "alice", "/sweeps/")
    expect(page.get_by_role("heading", name="Sweeps", level=1)).to_be_visible()
    expect(page.locator("#sweeps-table tbody")).to_contain_text("No sweeps yet")

    # The form: the only classification dataset is chosen, the learning rate is searched from the start.
    expect(page.get_by_label("Dataset")).to_have_value(str(digits["id"]))
    page.get_by_label("Architecture").select_option("mlp")
    expect(page.get_by_label("Search Learning rate")).to_be_checked()
    expect(page.get_by_label("Learning rate, how to search")).to_have_value("log_uniform")
    expect(page.get_by_label("Learning rate, from")).to_have_value("0.0001")
    expect(page.get_by_label("Learning rate, to")).to_have_value("0.1")
    page.get_by_label("Image size, every trial").fill("8")
    page.get_by_label("Epochs, every trial").fill("4")
    page.get_by_label("Batch size, every trial").fill("64")
    page.get_by_role("radio", name=re.compile("^Bayesian")).check()
    page.locator("#f-trials").fill(str(TRIALS))
    expect(page.locator("#f-parallel")).to_have_value("1")
    expect(page.get_by_label("Pruning")).to_have_value("median")
    expect(page.get_by_label("Objective")).to_have_value("val_accuracy")

    # A mistake is said under its row as the person types, and goes when it is fixed.
    row_error = page.locator('[data-error-for="param:learning_rate"]')
    page.get_by_label("Learning rate, from").fill("0")
    expect(row_error).to_contain_text("greater than or equal to")
    expect(page.locator("#estimate")).to_have_attribute("data-state", "problem")
    page.get_by_label("Learning rate, from").fill("0.0003")
    expect(row_error).to_be_hidden()

    # A final-only objective cannot be pruned on: the form says so and turns pruning off, then back on.
    page.get_by_label("Objective").select_option("test_accuracy")
    expect(page.get_by_label("Pruning")).to_have_value("")
    expect(page.locator("#metric-help")).to_contain_text("cannot be pruned")
    page.get_by_label("Objective").select_option("val_accuracy")
    expect(page.get_by_label("Pruning")).to_have_value("median")

    # The estimate is there before anything starts.
    estimate = page.locator("#estimate-text")
    expect(page.locator("#estimate")).to_have_attribute("data-state", "ok")
    expect(estimate).to_have_text(re.compile(rf"^About .+ with pruning \({TRIALS} trials, .+\)\.$"))
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays at the top of a full-page shot
    screenshot(page, "sweep-new.png")

    page.get_by_role("button", name="Start sweep").click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+/$"))
    sweep_id = int(re.search(r"/sweeps/(\d+)/$", page.url).group(1))
    page.evaluate("window.__noReload = true")  # from here on, nothing reloads the page

    # Live: trials appear while it runs, and the page ends by itself.
    page.wait_for_function("""() => document.getElementById("sweep-status").textContent === "running"
        && document.querySelectorAll("#trials-table tr[data-trial]").length >= 1""", timeout=30_000)
    expect(page.get_by_test_id("sweep-status")).to_have_text("finished", timeout=90_000)
    assert page.evaluate("window.__noReload") is True

    sweep = token_client(alice).get(f"/api/sweeps/{sweep_id}/").json()
    assert [t["status"] for t in sweep["trials"]].count("succeeded") >= 2, sweep["trials"]
    rows = page.locator("#trials-table tbody tr[data-trial]")
    expect(rows).to_have_count(TRIALS)
    values = page.locator('#trials-table td[data-key="value"]')
    expect(values).to_have_text([re.compile(r"^\d{1,3}\.\d\d%$")] * TRIALS)
    expect(page.locator('#trials-table td[data-param="learning_rate"]')).to_have_count(TRIALS)
    expect(page.locator("#trials-table tr.best")).to_have_attribute("data-job", str(sweep["best"]["job"]))
    expect(page.get_by_test_id("best-value")).to_have_text(f"{sweep['best']['value'] * 100:.2f}%")
    expect(page.get_by_test_id("sweep-counts")).to_contain_text("succeeded")
    if sweep["counts"].get("pruned"):
        expect(page.get_by_test_id("pruning-saved")).to_contain_text("Pruning saved about")
        expect(page.locator("#trials-table tr.pruned .badge-pruned")).to_have_count(sweep["counts"]["pruned"])

    # Sorting: the score column puts the best first, a second click the worst; the number column restores.
    page.locator('#trials-table button[data-sort="value"]').click()
    expect(page.locator('#trials-table th[aria-sort="descending"] button[data-sort="value"]')).to_be_visible()
    shown = percents(values.evaluate_all(VALUES))
    assert shown == sorted(shown, reverse=True), shown
    page.locator('#trials-table button[data-sort="value"]').click()
    shown = percents(values.evaluate_all(VALUES))
    assert shown == sorted(shown), shown
    page.locator('#trials-table button[data-sort="number"]').click()
    assert rows.evaluate_all("trs => trs.map(tr => Number(tr.dataset.trial))") == list(range(TRIALS))

    # The pictures: a line per ended trial across a log axis and the score; the score by trial; importance.
    parallel = page.get_by_test_id("parcoords")
    expect(parallel).to_be_visible()
    expect(parallel.locator('g.pc-axis[data-axis="learning_rate"]')).to_have_attribute("data-scale", "log")
    expect(parallel.locator("polyline.pc-line")).to_have_count(TRIALS)
    expect(parallel.locator("polyline.pc-line.best")).to_have_count(1)
    points = page.evaluate("""() => Chart.getChart(document.getElementById("objective-chart")).data.datasets
        .map(d => d.data.length)""")
    assert points[1] + points[2] == TRIALS and points[0] >= 2, points
    importance = page.get_by_test_id("importance")
    expect(importance.locator('li[data-param="learning_rate"], [data-testid="importance-empty"]')).to_have_count(1)
    if sweep["importance"]:
        expect(importance.locator('li[data-param="learning_rate"] .importance-value')).to_have_text("100%")
    expect(page.locator("#curves-chart")).to_be_visible()

    # Train the best again with more epochs: a link to the new job, which the page follows to its end.
    page.get_by_label("Epochs for the best trial").fill("6")
    page.get_by_role("button", name="Train the best with more epochs").click()
    promoted = page.get_by_test_id("promoted-job")
    expect(promoted).to_have_attribute("href", re.compile(r"^/jobs/\d+/$"))
    job_id = int(re.search(r"\d+", promoted.get_attribute("href")).group())
    expect(page.locator(f'#promoted-list li[data-job="{job_id}"] .badge')).to_have_text("succeeded", timeout=60_000)
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#finetune-form")).to_have_count(0)  # not a transfer model: nothing to fine-tune

    # At a phone's width, nothing sticks out sideways.
    page.set_viewport_size({"width": 320, "height": 700})
    fits_a_phone(page, "sweep page")
    expect(page.get_by_role("button", name="Train the best with more epochs")).to_be_visible()

    # The trials (and the run trained again) on the Jobs page, through the link.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="See these trials in Jobs").click()
    expect(page.locator("#jobs-table tbody tr[data-job]")).to_have_count(TRIALS + 1)
    expect(page.locator("#sweep-filter")).to_contain_text(f"sweep #{sweep_id}")

    # The list of sweeps has it; the form fits a phone too.
    page.goto("/sweeps/")
    expect(page.locator(f'#sweeps-table tr[data-sweep="{sweep_id}"] .badge')).to_have_text("finished")
    page.set_viewport_size({"width": 320, "height": 700})
    fits_a_phone(page, "sweeps page")

    # Someone else: the sweep is not found, and their list is empty.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Log out").click()
    log_in(page, "bob", "/sweeps/")
    expect(page.locator("#sweeps-table tbody")).to_contain_text("No sweeps yet")
    response = page.goto(f"/sweeps/{sweep_id}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def sweep_row(owner, architecture: str, **fields):
    """A sweep as the database holds it, without running it: what the page's server side reads."""
    from webapp.experiments.models import Project
    from webapp.sweeps.models import Sweep

    params = {"architecture": architecture, **fields.pop("params", {})}
    return Sweep.objects.create(owner=owner, project=Project.default_for(owner), kind="train", method="tpe", trials=4,
                                metric="val_accuracy", direction="max", study_name=f"test-{Sweep.objects.count()}",
                                params=params, **fields)


def test_fine_tuning_is_offered_only_for_transfer_heads_on_cached_features(alice, bob, client):
    extract = sweep_row(alice, "mobilenet_v2_transfer", space={"learning_rate": {"type": "log_uniform", "low": 1e-4,
                                                                                 "high": 1e-2}})
    finetuned = sweep_row(alice, "transfer", params={"mode": "finetune"}, space={})
    searched = sweep_row(alice, "transfer", space={"mode": {"type": "choice", "values": ["extract", "finetune"]}})
    digits = Dataset.objects.create(owner=alice, name="Handwritten digits", kind="classification", status="ready")
    scratch = sweep_row(alice, "mlp", space={}, dataset=digits)
    client.force_login(alice)
    for sweep, offered in ((extract, True), (finetuned, False), (searched, False), (scratch, False)):
        page = client.get(f"/sweeps/{sweep.id}/").content.decode()
        assert ('id="finetune-form"' in page) is offered, sweep.params
    assert 'id="promote-form"' in page and "mlp on Handwritten digits" in page  # not "mlp on ?" (see views)

    # No ready dataset: the form is replaced by the way to one; another person's sweep is not found.
    client.force_login(bob)
    assert 'id="no-datasets"' in client.get("/sweeps/").content.decode()
    assert client.get(f"/sweeps/{extract.id}/").status_code == 404


@pytest.mark.browser
@pytest.mark.worker
def test_a_grid_sweep_from_the_form_lists_its_values_and_runs_every_point(digits, alice, page):
    log_in(page, "alice", "/sweeps/")
    page.get_by_label("Architecture").select_option("mlp")
    page.get_by_label("Image size, every trial").fill("8")
    page.get_by_label("Epochs, every trial").fill("2")
    page.get_by_role("radio", name=re.compile("^Grid")).check()
    # A grid tries listed values: the learning rate's range becomes a list to fill in.
    expect(page.get_by_label("Learning rate, how to search")).to_have_value("choice")
    page.get_by_label("Learning rate, values").fill("0.01, 0.003")
    page.get_by_label("Search Batch size").check()
    page.get_by_label("Batch size, values").fill("32, 64")
    expect(page.locator("#estimate-text")).to_have_text(re.compile(r"\(4 trials, "))

    page.get_by_role("button", name="Start sweep").click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+/$"))
    expect(page.get_by_test_id("sweep-status")).to_have_text("finished", timeout=90_000)

    sweep_id = int(re.search(r"/sweeps/(\d+)/$", page.url).group(1))
    sweep = token_client(alice).get(f"/api/sweeps/{sweep_id}/").json()
    assert sweep["method"] == "grid"
    assert sorted((t["params"]["learning_rate"], t["params"]["batch_size"]) for t in sweep["trials"]) == [
        (0.003, 32), (0.003, 64), (0.01, 32), (0.01, 64)]
    expect(page.locator("#trials-table tbody tr[data-trial]")).to_have_count(4)
