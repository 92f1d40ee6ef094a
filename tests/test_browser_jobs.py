"""The jobs page in a real browser (Debian's chromium through Playwright, the live server): a person
filters, searches and sorts their runs, reads each run's numbers and validation sparkline, keeps a
filtered view in the address bar (reload, back), pages through, ticks runs to compare, and the
page fits a 320 px phone. The runs are database rows, summarized as a worker leaves them.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import log_in, screenshot
from tests.test_job_lists import curve, run
from webapp.datasets.models import Dataset
from webapp.experiments.models import Project
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser]


@pytest.fixture
def lab(alice, bob):
    digits = Dataset.objects.create(owner=alice, name="Handwritten digits", kind="classification", status="ready")
    flowers = Dataset.objects.create(owner=alice, name="Garden flowers", kind="classification", status="ready")
    vision = Project.objects.create(owner=alice, name="Vision")
    runs = {
        "small": run(alice, "small", dataset=digits, project=vision, tags=["baseline"], seconds=100, age=5,
                     note="sigmoid activations", epochs=curve([0.5, 0.7, 0.8, 0.85]),
                     result={"test_accuracy": 0.84, "test_loss": 0.4}),
        "big": run(alice, "big", architecture="cnn", dataset=flowers, project=vision, tags=["augmented"],
                   seconds=300, age=4, epochs=curve([0.6, 0.9, 0.95, 0.93]),
                   result={"test_accuracy": 0.94, "test_loss": 0.2}),
        "failed": run(alice, "failed", status=Job.Status.FAILED, architecture="vgg16", dataset=digits,
                      seconds=20, age=2, epochs=curve([0.3, 0.35])),
        "check": run(alice, "check", kind=Job.Kind.SYSTEM_CHECK, architecture="", seconds=5, age=1),
    }
    runs["bobs"] = run(bob, "bobs", architecture="cnn", note="sigmoid", seconds=1, epochs=curve([0.99]),
                       result={"test_accuracy": 0.99})
    runs["vision"] = vision
    return runs


def rows(page):
    return page.locator("#jobs-table tbody tr[data-job]")


def shown_ids(page) -> list[int]:
    return [int(i) for i in rows(page).evaluate_all("trs => trs.map(tr => tr.dataset.job)")]


def query(page) -> dict:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def test_a_person_filters_searches_sorts_and_ticks_runs_to_compare(lab, page):
    small, big, failed, check = (lab[name] for name in ("small", "big", "failed", "check"))
    log_in(page, "alice", "/jobs/")

    # Newest first, only alice's; each run shows its numbers, tags, project and curve.
    expect(rows(page)).to_have_count(4)
    assert shown_ids(page) == [check.id, failed.id, big.id, small.id]
    expect(page.locator("#runs-count")).to_have_text("4 runs")
    expect(page.locator(f'#jobs-table tr[data-job="{lab["bobs"].id}"]')).to_have_count(0)
    row = page.locator(f'#jobs-table tr[data-job="{big.id}"]')
    expect(row.get_by_role("link", name=f"Training #{big.id}")).to_have_attribute("href", f"/jobs/{big.id}/")
    expect(row).to_contain_text("Garden flowers · cnn")
    expect(row.locator(".run-project")).to_have_text("Vision")
    expect(row.locator(".tag")).to_have_text(["augmented"])
    expect(row.locator('[data-number="test"]')).to_have_text("94.0%")
    expect(row.locator('[data-number="val"]')).to_have_text("93.0%")
    expect(row.locator('[data-number="epochs"]')).to_have_text("3 of 4")
    expect(row.locator("td").nth(5)).to_have_text("5 min 0 s")
    sparkline = row.locator("svg.sparkline")
    expect(sparkline).to_be_visible()
    expect(sparkline).to_have_attribute("aria-label", re.compile(r"best 93\.0% at epoch 3"))
    assert sparkline.locator("polyline").get_attribute("points").count(",") == 4
    expect(sparkline.locator("circle.spark-best")).to_have_attribute("data-epoch", "3")
    expect(page.locator(f'#jobs-table tr[data-job="{check.id}"] svg.sparkline')).to_have_count(0)

    # Filter by project: the rows, the address and the menu agree.
    page.get_by_label("Project").select_option(label="Vision (2)")
    expect(rows(page)).to_have_count(2)
    assert query(page) == {"project": str(lab["vision"].id)}
    expect(page.locator("#runs-count")).to_have_text("2 runs match")

    # Search within it, then a reload keeps both.
    page.get_by_label("Search").fill("sigmoid")
    expect(rows(page)).to_have_count(1)
    assert shown_ids(page) == [small.id]
    expect(page).to_have_url(re.compile(r"q=sigmoid"))
    page.reload()
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Search")).to_have_value("sigmoid")
    expect(page.get_by_label("Project")).to_have_value(str(lab["vision"].id))
    page.goto("/jobs/?project=Vision&q=sigmoid")  # an address written by hand names the project
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Project")).to_have_value(str(lab["vision"].id))
    page.evaluate("window.__noReload = true")  # from here on, nothing reloads the page

    # Nothing matches: say so, with a way out.
    page.get_by_label("Search").fill("nothing-like-this")
    expect(page.locator("#jobs-table tbody")).to_contain_text("No runs match these filters")
    page.locator("#jobs-table tbody").get_by_role("button", name="Clear filters").click()
    expect(rows(page)).to_have_count(4)
    expect(page.get_by_label("Search")).to_have_value("")
    expect(page.get_by_label("Project")).to_have_value("")
    assert query(page) == {}

    # Other filters: status, kind, dataset, architecture, tag.
    for label, value, expected in (("Status", "failed", [failed]), ("Kind", "system_check", [check]),
                                   ("Architecture", "cnn", [big]), ("Tag", "baseline", [small])):
        page.get_by_label(label, exact=True).select_option(value)
        expect(rows(page)).to_have_count(len(expected))
        assert shown_ids(page) == [job.id for job in expected], label
        page.get_by_label(label, exact=True).select_option("")
        expect(rows(page)).to_have_count(4)
    page.get_by_label("Dataset").select_option(label="Handwritten digits")
    expect(rows(page)).to_have_count(2)
    page.go_back()  # the address bar's history is the filters' history
    expect(rows(page)).to_have_count(4)
    expect(page.get_by_label("Dataset")).to_have_value("")

    # Sort by test accuracy: the best first, runs without one last.
    page.get_by_label("Sort by").select_option(label="Test accuracy, best first")
    expect(page).to_have_url(re.compile(r"ordering=-test_accuracy"))
    expect(rows(page).first).to_have_attribute("data-job", str(big.id))
    assert shown_ids(page) == [big.id, small.id, check.id, failed.id]

    # Tick runs to compare: one is not enough, two make a link with both ids.
    compare = page.get_by_role("link", name=re.compile("^Compare"))
    expect(compare).to_have_attribute("aria-disabled", "true")
    page.get_by_label(f"Tick Training #{big.id} to compare").check()
    expect(compare).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#compare-note")).to_contain_text("tick at least one more")
    page.get_by_label(f"Tick Training #{small.id} to compare").check()
    expect(compare).not_to_have_attribute("aria-disabled", "true")
    expect(compare).to_have_attribute("href", f"/compare/?jobs={big.id},{small.id}")
    # The ticks outlive redrawn rows: another order, another filter and back.
    page.get_by_label("Sort by").select_option(label="Newest first")
    expect(rows(page).first).to_have_attribute("data-job", str(check.id))
    expect(page.get_by_label(f"Tick Training #{small.id} to compare")).to_be_checked()
    expect(page.locator("#jobs-table tr.picked")).to_have_count(2)
    page.get_by_label("Kind", exact=True).select_option("system_check")
    expect(rows(page)).to_have_count(1)
    expect(compare).to_have_attribute("href", f"/compare/?jobs={big.id},{small.id}")
    page.get_by_label("Kind", exact=True).select_option("")
    expect(page.get_by_label(f"Tick Training #{big.id} to compare")).to_be_checked()
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays at the top of a full-page shot
    screenshot(page, "jobs.png")
    assert page.evaluate("window.__noReload") is True


def test_the_runs_come_in_pages_and_the_page_fits_a_phone(alice, page):
    Job.objects.bulk_create(Job(owner=alice, kind=Job.Kind.SYSTEM_CHECK, status=Job.Status.SUCCEEDED)
                            for _ in range(60))
    first = run(alice, "trained", seconds=42, epochs=curve([0.4, 0.6, 0.7]), result={"test_accuracy": 0.7},
                tags=["baseline"], note="a long note that says what this run tried and why it mattered to us")

    log_in(page, "alice", "/jobs/")
    page.goto("/jobs/?page_size=25")
    expect(rows(page)).to_have_count(25)
    expect(page.locator("#page-where")).to_have_text("Page 1 of 3 · runs 1–25 of 61")
    expect(page.get_by_role("button", name="← Previous")).to_be_disabled()
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("#page-where")).to_have_text("Page 2 of 3 · runs 26–50 of 61")
    assert query(page) == {"page": "2", "page_size": "25"}
    page.get_by_label("Rows").select_option("50")
    expect(page.locator("#page-where")).to_have_text("Page 1 of 2 · runs 1–50 of 61")
    page.get_by_role("button", name="Next →").click()
    expect(rows(page)).to_have_count(11)

    # A bookmarked page past the last (runs were deleted since) opens the first.
    page.goto("/jobs/?page=9")
    expect(page.locator("#page-where")).to_have_text(re.compile(r"^Page 1 of 2"))

    page.set_viewport_size({"width": 320, "height": 700})
    page.goto("/jobs/?q=trained")
    row = page.locator(f'#jobs-table tr[data-job="{first.id}"]')
    expect(row.locator("svg.sparkline")).to_be_visible()
    expect(row.locator('[data-number="test"]')).to_be_visible()
    expect(row.get_by_role("link", name=f"Training #{first.id}")).to_be_visible()
    expect(page.get_by_label("Search")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    screenshot(page, "jobs-phone.png")
