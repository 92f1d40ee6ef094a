"""The Models page, deleting and confirming, in Debian's chromium on the live server with the real worker.

A person with a classifier the worker trained and a caption model shared as a demo opens Models: every
model with its task, dataset, score, demo link and age, at 1366, 1024, 820 and 390 px with nothing
scrolling sideways. They rename one in its row, revoke the demo link (a dialog says sharing again makes
a different link; Cancel keeps it). The old link, opened by a stranger, is a demo-styled page that says
the demo was switched off, with no way into the app. Sharing again makes a new link, which the share
card warns only this computer can open (localhost); deleting the model (the dialog says what goes,
that link too) switches it off. On the dataset page they find the runs trained on it, open a sample
larger and step through them, and browse one class page by page. On Jobs they tick two runs and delete
them; on the trained run's page they delete it with its model; on the account page replacing the token
asks first.

With VISIONLAB_SCREENSHOTS=<folder> it saves models.png for the README.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.api_helpers import launch
from tests.browser_fixtures import NO_SIDEWAYS_SCROLL, WIDE, log_in, screenshot
from tests.conftest import wait_for_job
from webapp.demos.models import ShareLink
from webapp.experiments.models import Project, TrainedModel
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker]

WIDTHS = (1366, 1024, 820, 390)


def fits_every_width(page: Page) -> None:
    """At each width nothing scrolls sideways and nothing sticks out; back to the test's width after."""
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            try:
                page.wait_for_function(NO_SIDEWAYS_SCROLL, timeout=3_000)
            except PlaywrightTimeoutError:
                pytest.fail(f"{page.url} scrolls sideways at {width} px: {page.evaluate(WIDE)} stick out")
            assert page.evaluate(WIDE) == [], (width, page.evaluate(WIDE))
    finally:
        page.set_viewport_size({"width": 1366, "height": 900})


def caption_model(owner, dataset_id: int) -> TrainedModel:
    """A caption model's record, shared as a demo (these checks are about the pages, not captioning)."""
    job = Job.objects.create(owner=owner, kind=Job.Kind.TRAIN_CAPTIONER, status=Job.Status.SUCCEEDED, bleu4=0.1234,
                             project=Project.default_for(owner), params={"dataset_name": "Flickr8k"})
    model = TrainedModel.objects.create(owner=owner, job=job, task=TrainedModel.Task.CAPTION, name="Flickr captions",
                                        architecture="merge", image_size=224, channels=3, dataset_id=dataset_id)
    ShareLink.objects.create(model=model)
    return model


def dialog_button(page: Page, name: str):
    return page.get_by_test_id("confirm-dialog").get_by_role("button", name=name, exact=True)


def test_models_are_renamed_revoked_and_deleted_and_jobs_deleted_after_a_confirmation(digits, alice, alice_api, page,
                                                                                       browser, live_server):
    job = wait_for_job(alice_api, launch(alice_api, {
        "kind": "train", "dataset": digits["id"], "architecture": "mlp",
        "params": {"epochs": 1, "batch_size": 64, "image_size": 8}})["id"], timeout=120)
    assert job["status"] == "succeeded", job["error"]
    classifier = TrainedModel.objects.get(id=job["model"])
    captions = caption_model(alice, digits["id"])
    token = captions.share_link.token
    check = Job.objects.create(owner=alice, kind=Job.Kind.SYSTEM_CHECK, status=Job.Status.SUCCEEDED,
                               project=Project.default_for(alice))

    # The list: each model with its task, dataset, score, demo link and when it was made.
    log_in(page, "alice", "/models/")
    expect(page.get_by_role("link", name="Models", exact=True)).to_have_attribute("aria-current", "page")
    rows = page.locator("#models-table tbody tr")
    expect(rows).to_have_count(2)
    mine = page.locator(f'#models-table tr[data-model="{classifier.id}"]')
    shared = page.locator(f'#models-table tr[data-model="{captions.id}"]')
    expect(mine.get_by_test_id("model-score")).to_have_text(re.compile(r"^\d{1,3}\.\d%test accuracy$"))
    expect(mine).to_contain_text(digits["name"])
    expect(mine).to_contain_text("Not shared")
    expect(shared.get_by_test_id("model-score")).to_have_text("0.123BLEU-4")
    expect(shared.get_by_test_id("model-demo")).to_contain_text("shared")
    expect(shared.locator(".model-demo-link")).to_have_attribute("href", f"{live_server.url}/demo/{token}/")
    expect(page.locator("#models-shared")).to_contain_text("1 live demo link")
    fits_every_width(page)
    screenshot(page, "models.png")

    # Rename in the row: an empty name is refused there; Enter saves.
    mine.get_by_role("button", name=f"Rename {classifier.name}").click()
    name = mine.get_by_label(f"New name for model #{classifier.id}")
    expect(name).to_be_focused()
    name.fill("  ")
    name.press("Enter")
    expect(mine.locator(".model-rename-error")).to_have_text("Give the model a name.")
    name.fill("Digits mlp, first try")
    name.press("Enter")
    expect(mine.locator(".model-link")).to_have_text("Digits mlp, first try")
    expect(page.locator("#models-status")).to_have_text("Renamed to “Digits mlp, first try”.")
    assert TrainedModel.objects.get(id=classifier.id).name == "Digits mlp, first try"

    # Revoking asks first and says a new share makes a new link; Cancel keeps the link.
    shared.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Switch off this demo link?")
    expect(dialog).to_contain_text("again makes a different link")
    expect(dialog_button(page, "Cancel")).to_be_focused()
    dialog_button(page, "Cancel").click()
    expect(dialog).to_be_hidden()
    assert ShareLink.objects.filter(model=captions).exists()
    shared.get_by_role("button", name="Revoke").click()
    dialog_button(page, "Revoke link").click()
    expect(shared.locator(".model-demo-cell")).to_contain_text("Not shared")
    assert not ShareLink.objects.filter(model=captions).exists()

    # A stranger with the old link gets the demo's look, the reason, and no way into the app.
    stranger = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        visitor = stranger.new_page()
        assert visitor.goto(f"/demo/{token}/").status == 404
        expect(visitor.get_by_role("heading", level=1)).to_have_text("This demo has been switched off by its owner.")
        expect(visitor.locator("a")).to_have_count(0)
        assert visitor.evaluate(NO_SIDEWAYS_SCROLL)
        assert visitor.goto("/demo/not-a-demo-token/").status == 404
        expect(visitor.get_by_role("heading", level=1)).to_have_text("There is no demo at this address.")
    finally:
        stranger.close()

    # Sharing again makes a different link; the share card warns that localhost is this computer only.
    page.goto(f"/models/{captions.id}/")
    page.get_by_role("button", name="Share demo").click()
    new_url = page.locator("#share-url")
    expect(new_url).to_have_value(re.compile(r"/demo/[\w-]{20,}/$"))
    assert token not in new_url.input_value()
    new_token = ShareLink.objects.get(model=captions).token
    expect(page.get_by_test_id("share-host-warning")).to_have_text(re.compile(
        r"^This link points to localhost, which means this computer: nobody else can open it\."))

    # Deleting asks first, saying what goes (the live link too); the row goes, and so does the link.
    page.goto("/models/")
    shared.get_by_role("button", name="Delete Flickr captions").click()
    expect(dialog.get_by_role("heading")).to_have_text("Delete “Flickr captions”?")
    expect(dialog).to_contain_text("This removes its .keras file. Its public demo link stops working at once.")
    expect(dialog).to_contain_text("This cannot be undone.")
    dialog_button(page, "Delete model").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#models-status")).to_have_text("Deleted “Flickr captions” and its files.")
    assert not TrainedModel.objects.filter(id=captions.id).exists()
    switched_off = page.request.get(f"/demo/{new_token}/")
    assert switched_off.status == 404 and "switched off by its owner" in switched_off.text()

    # The dataset page: the runs on it, a sample at a larger size with Previous/Next, a class page by page.
    page.goto(f"/datasets/{digits['id']}/")
    runs = page.locator("#runs-on-table")
    expect(runs.get_by_role("link", name=f"Training #{job['id']}")).to_be_visible()
    expect(runs.get_by_role("link", name="Digits mlp, first try")).to_be_visible()
    page.locator("#samples-card a.thumb").first.click()
    lightbox = page.get_by_test_id("lightbox")
    expect(lightbox).to_be_visible()
    expect(page.locator("#lightbox-label")).to_have_text("Class 0")
    expect(page.locator("#lightbox-where")).to_have_text("1 of 80")
    expect(page.locator("#lightbox-prev")).to_be_disabled()
    page.wait_for_function("() => document.getElementById('lightbox-image').naturalWidth > 0")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#lightbox-where")).to_have_text("2 of 80")
    page.locator("#lightbox-close").click()
    expect(lightbox).to_be_hidden()
    count = next(c["count"] for c in digits["classes"] if c["name"] == "3")
    page.get_by_label("Class", exact=True).select_option("3")
    where = page.locator("#browse-where")
    expect(where).to_have_text(f"Images 1–48 of {count} of “3”.")
    expect(page.locator("#browse-thumbs a.thumb")).to_have_count(48)
    page.locator("#browse-next").click()
    expect(where).to_have_text(f"Images 49–96 of {count} of “3”.")
    page.locator("#browse-thumbs a.thumb").last.click()
    expect(page.locator("#lightbox-label")).to_have_text("Class 3")
    expect(page.locator("#lightbox-where")).to_have_text("48 of 48 on this page")
    page.locator("#lightbox-next").click()  # past the page's end: the next page
    expect(where).to_have_text(f"Images 97–144 of {count} of “3”.")
    expect(page.locator("#lightbox-where")).to_have_text("1 of 48 on this page")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    fits_every_width(page)

    # Jobs: tick two ended runs and delete them together, after a confirmation.
    page.goto("/jobs/")
    page.get_by_label(f"Tick System check #{check.id} to compare or delete").check()
    page.get_by_label(f"Tick Caption training #{captions.job_id} to compare or delete").check()
    page.get_by_role("button", name="Delete 2").click()
    expect(dialog.get_by_role("heading")).to_have_text("Delete 2 runs?")
    dialog_button(page, "Delete 2 runs").click()
    expect(page.locator("#delete-done")).to_have_text("Deleted 2 runs.")
    expect(page.locator(f'#jobs-table tr[data-job="{check.id}"]')).to_have_count(0)
    assert not Job.objects.filter(id__in=[check.id, captions.job_id]).exists()

    # The trained run's own page: Delete asks, naming the model that goes with it.
    page.goto(f"/jobs/{job['id']}/")
    page.get_by_role("button", name="Delete job").click()
    expect(dialog).to_contain_text("the model it trained, “Digits mlp, first try”")
    dialog_button(page, "Delete job").click()
    expect(page).to_have_url(re.compile(r"/jobs/$"))
    expect(page.locator(".messages .alert-success")).to_have_text(
        f"Deleted Training #{job['id']} with its record and files.")
    assert not classifier.directory.exists()

    # Replacing the API token asks first too: Cancel keeps it.
    page.goto("/account/")
    before = page.get_by_test_id("api-token").text_content()
    page.get_by_role("button", name="Replace token").click()
    expect(dialog).to_contain_text("stop working at once")
    dialog_button(page, "Cancel").click()
    expect(page.get_by_test_id("api-token")).to_have_text(before)
    page.get_by_role("button", name="Replace token").click()
    dialog_button(page, "Replace token").click()
    expect(page.locator(".alert-success")).to_contain_text("A new API token was created")
    expect(page.get_by_test_id("api-token")).not_to_have_text(before)
