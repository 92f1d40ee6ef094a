"""A run's record in a real browser: file it in a project, tag it, write a note, see what it
takes to repeat it, and run it again with one click. Debian's chromium, the live server, a real
worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser_fixtures import log_in
from tests.conftest import token_client, wait_for
from tests.test_browser_training import ready_digits
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_a_run_is_filed_tagged_noted_and_run_again(worker, alice, page):
    digits = ready_digits(alice)
    response = token_client(alice).post("/api/jobs/", {
        "kind": "train", "dataset": digits.id, "architecture": "mlp", "queue": "cpu",
        "params": {"epochs": 2, "batch_size": 32, "seed": 11}}, format="json")
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    log_in(page, "alice", f"/jobs/{job_id}/")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=180_000)
    card = page.locator("#record-card")
    expect(card.get_by_test_id("record-project")).to_have_value("Default")
    page.reload()  # the record's device is written when the run ends
    facts = page.get_by_test_id("record-facts")
    expect(facts).to_contain_text("11")
    expect(facts).to_contain_text(digits.content_hash[:12])
    expect(facts).to_contain_text(re.compile(r"tensorflow \d"))

    card.get_by_test_id("record-project").fill("Digits")
    card.get_by_test_id("record-tags").fill("baseline,  mlp ,baseline")
    card.get_by_test_id("record-note").fill("Two epochs to see it learn.")
    card.get_by_role("button", name="Save").click()
    expect(card.get_by_role("status")).to_have_text("Saved.")
    expect(card.get_by_test_id("record-tags")).to_have_value("baseline, mlp")
    job = Job.objects.get(id=job_id)
    assert job.project.name == "Digits" and job.note == "Two epochs to see it learn."
    assert sorted(job.tags.values_list("name", flat=True)) == ["baseline", "mlp"]

    page.reload()
    expect(card.get_by_test_id("record-note")).to_have_value("Two epochs to see it learn.")
    card.get_by_test_id("rerun").click()
    page.wait_for_url(re.compile(r"/jobs/(\d+)/$"))
    again = wait_for(lambda: Job.objects.filter(record__rerun_of=job_id).first(), timeout=10, what="the new run")
    expect(page).to_have_url(re.compile(rf"/jobs/{again.id}/$"))
    expect(page.get_by_test_id("record-facts")).to_contain_text(f"run #{job_id}")
    expect(page.get_by_test_id("record-project")).to_have_value("Digits")
    expect(page.get_by_test_id("job-status")).to_have_text("succeeded", timeout=180_000)
    assert again.params == job.params
