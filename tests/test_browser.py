"""Real-browser tests: Debian's chromium, driven by Playwright, against the live server and a
real Celery worker. They check what a person sees: pages that update by themselves.

With VISIONLAB_SCREENSHOTS=<folder>, the job and workers tests also save the README's
screenshots there (jobs.png, job.png, workers.png). The `browser` and `page` fixtures come
from tests/browser_fixtures.py, registered in tests/conftest.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.ml.devices import cpu_model
from tests.browser_fixtures import log_in, screenshot
from tests.conftest import wait_for
from webapp.jobs.launch import cancel_job, launch_job
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.worker]

JOB_TIMEOUT_MS = 90_000


# Set after the job page has loaded: a reload would drop the marker. Also records every
# (status, percent) pair the page shows, to prove the progress moved on screen.
WATCH_JOB_PAGE = """() => {
  window.__noReload = true;
  window.__seen = [];
  const record = () => {
    const status = document.getElementById("job-status").textContent.trim();
    const percent = document.getElementById("job-progress").getAttribute("aria-valuenow");
    const last = window.__seen[window.__seen.length - 1];
    if (!last || last[0] !== status || last[1] !== percent) window.__seen.push([status, percent]);
  };
  record();
  new MutationObserver(record).observe(document.body,
    { subtree: true, childList: true, attributes: true, characterData: true });
}"""


def test_a_user_launches_a_system_check_and_watches_it_finish_without_reloading(worker, alice, page):
    log_in(page, "alice", "/jobs/")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()

    page.get_by_role("button", name="Run system check").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"System check #{job_id}")
    page.evaluate(WATCH_JOB_PAGE)
    status = page.get_by_test_id("job-status")
    assert status.text_content().strip() in ("queued", "running")

    expect(status).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)

    assert page.evaluate("window.__noReload") is True, "the job page reloaded itself"
    seen = page.evaluate("window.__seen")
    assert any(s == "running" and p is not None and 0 < int(p) < 100 for s, p in seen), seen
    # The progress bar is full, in the DOM and on screen.
    expect(page.locator("#job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#job-percent")).to_have_text("100%")
    expect(page.locator("#job-message")).to_have_text("Done")
    expect(page.locator("#job-progress .bar")).to_have_attribute("style", re.compile(r"width: 100%"))
    page.wait_for_function("""() => {  // the bar eases to its width (a CSS transition)
      const track = document.getElementById("job-progress").getBoundingClientRect();
      const bar = document.querySelector("#job-progress .bar").getBoundingClientRect();
      return track.width > 0 && bar.width >= track.width - 1;
    }""", timeout=5_000)
    # The result: one row per device with a measured speed, and the run's facts.
    expect(page.locator("#result-card")).to_be_visible()
    gflops = page.get_by_test_id("gflops").first
    expect(gflops).to_have_text(re.compile(r"^\d+(\.\d+)? GFLOP/s$"))
    assert float(gflops.text_content().split()[0]) > 0
    expect(page.locator("#job-result tbody tr").first).to_contain_text("CPU")
    expect(page.locator("#job-facts")).to_contain_text("test-jobs")
    assert "test-jobs@" not in page.locator("#job-facts").text_content()  # the host is for staff only
    expect(page.locator("#job-error")).to_be_hidden()
    expect(page.locator("#cancel-form")).to_be_hidden()
    screenshot(page, "job.png")

    page.locator(".crumbs").get_by_role("link", name="Jobs").click()
    expect(page).to_have_url(re.compile(r"/jobs/$"))
    row = page.locator(f'#jobs-table tr[data-job="{job_id}"]')
    expect(row.get_by_role("link", name=f"System check #{job_id}")).to_be_visible()
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row).to_contain_text("test-jobs")
    expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^\d+ s$"))  # drawn by jobs.js
    screenshot(page, "jobs.png")


def test_the_workers_page_shows_the_live_worker_its_cpu_and_the_queue_in_order(worker, alice, bob, page):
    log_in(page, "alice", "/workers/")
    page.evaluate("window.__noReload = true")

    # A user sees the worker by number; its host name is for staff (webapp.jobs.workers.snapshot).
    card = page.locator('[data-worker="Worker 1"]')
    expect(card).to_have_count(1)
    expect(card.locator("h2")).to_have_text("Worker 1")
    assert "test-jobs@" not in page.content()
    expect(card.locator("p").first.locator(".tag")).to_have_text(["cpu", "inference"])
    cpu = card.locator(".devices li").filter(has=page.locator(".tag-cpu"))
    expect(cpu).to_have_count(1)
    expect(cpu).to_contain_text(cpu_model())
    expect(card).to_contain_text("Idle: waiting for work.")
    expect(page.get_by_role("heading", name="Waiting in the queue")).to_be_visible()
    queue = page.locator("#queued-table tbody")
    expect(queue).to_have_text("Nothing is waiting.")

    # The worker runs one job at a time: the first runs, the next two wait, in order.
    slow = {"seconds_per_device": 10.0}
    running = launch_job(alice, Job.Kind.SYSTEM_CHECK, slow, "cpu")
    waiting = launch_job(alice, Job.Kind.SYSTEM_CHECK, slow, "cpu")
    bobs = launch_job(bob, Job.Kind.SYSTEM_CHECK, slow, "cpu")
    try:
        expect(card.locator(".running")).to_contain_text(f"System check #{running.id}",
                                                         timeout=JOB_TIMEOUT_MS)
        rows = queue.locator("tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).get_by_role("link", name=f"System check #{waiting.id}")).to_have_attribute(
            "href", f"/jobs/{waiting.id}/")
        expect(rows.nth(0)).to_contain_text("cpu")
        # Bob's job holds a place in the queue, but alice sees neither its id nor a link.
        expect(rows.nth(1)).to_contain_text("System check (another user's job)")
        expect(rows.nth(1).get_by_role("link")).to_have_count(0)
        expect(rows.nth(1)).not_to_contain_text(f"#{bobs.id}")
        assert page.evaluate("window.__noReload") is True, "the workers page reloaded itself"
        screenshot(page, "workers.png")
    finally:
        for job in (bobs, waiting, running):
            cancel_job(job.id)
        wait_for(lambda: not Job.objects.filter(status__in=Job.ACTIVE).exists(), timeout=60,
                 what="the cancelled jobs to stop")


def test_another_users_job_is_neither_listed_nor_reachable(alice, bob, page):
    finished = timezone.now() - timedelta(seconds=5)
    done = {"kind": Job.Kind.SYSTEM_CHECK, "status": Job.Status.SUCCEEDED, "progress": 1.0,
            "message": "Done", "started_at": finished - timedelta(seconds=5), "finished_at": finished}
    bobs = Job.objects.create(owner=bob, **done)
    alices = Job.objects.create(owner=alice, **done)

    log_in(page, "alice", "/jobs/")

    own = page.locator(f'#jobs-table tr[data-job="{alices.id}"]')
    expect(own.locator("td").nth(5)).to_have_text("5 s")  # drawn by jobs.js from the API
    expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
    expect(page.locator(f'#jobs-table tr[data-job="{bobs.id}"]')).to_have_count(0)
    expect(page.locator("#jobs-table")).not_to_contain_text(f"#{bobs.id}")

    response = page.goto(f"/jobs/{bobs.id}/")
    assert response.status == 404
    expect(page.locator("body")).to_contain_text("belongs to another account")
    expect(page.locator("body")).not_to_contain_text(f"System check #{bobs.id}")
    assert page.request.get(f"/api/jobs/{bobs.id}/").status == 404
    assert page.request.get(f"/api/jobs/{alices.id}/").status == 200
