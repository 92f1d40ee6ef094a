"""run_job and JobReporter in-process: claims, outcomes, throttling, cancel, orphans."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.ml.progress import JobCancelled
from jobs.reporter import JobReporter
from jobs.runner import UserFacingError, run_job
from webapp.jobs import live
from webapp.jobs import workers as presence
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(alice):
    return Job.objects.create(owner=alice, kind=Job.Kind.SYSTEM_CHECK, params={})


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_job_runs_once_even_when_its_message_is_delivered_twice(job):
    calls = []

    first = run_job(job.id, "w1@host", lambda j, r: calls.append(j.id) or {"ok": True})
    second = run_job(job.id, "w2@host", lambda j, r: calls.append(j.id) or {"ok": True})

    assert (first, second) == ("succeeded", "skipped")
    assert calls == [job.id]
    job.refresh_from_db()
    assert job.worker == "w1@host" and job.result == {"ok": True} and job.progress == 1.0
    assert job.started_at <= job.finished_at


def test_a_cancelled_queued_job_is_never_run(job):
    from webapp.jobs.launch import cancel_job

    cancel_job(job.id)

    assert run_job(job.id, "w@host", lambda j, r: pytest.fail("ran a cancelled job")) == "skipped"
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_an_internal_error_fails_the_job_with_its_reason(job):
    def boom(j, r):
        raise ValueError("matrix is not square")

    assert run_job(job.id, "w@host", boom) == "failed"
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "ValueError: matrix is not square" in job.error


def test_a_user_facing_error_is_stored_as_written(job):
    def refuse(j, r):
        raise UserFacingError("This dataset has only one class; training needs at least two.")

    run_job(job.id, "w@host", refuse)
    job.refresh_from_db()
    assert job.error == "This dataset has only one class; training needs at least two."


def test_work_that_sees_a_cancel_request_ends_cancelled(job):
    def work(j, reporter):
        live.request_cancel(j.id)
        reporter._last_cancel_check = float("-inf")
        reporter.progress(0.5, "Halfway")
        pytest.fail("progress() did not raise JobCancelled")

    assert run_job(job.id, "w@host", work) == "cancelled"
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.finished_at is not None


def test_the_reporter_throttles_redis_and_database_writes(job, settings):
    settings.PROGRESS_PUBLISH_INTERVAL = 0.25
    settings.PROGRESS_PERSIST_INTERVAL = 2.0
    Job.claim(job.id, "w@host")
    clock = FakeClock()
    reporter = JobReporter(job.id, clock=clock)

    reporter.progress(0.1, "Batch 1")
    clock.now += 0.1
    reporter.progress(0.2, "Batch 2")  # too soon: neither Redis nor the database
    assert live.read_many([job.id])[job.id]["progress"] == pytest.approx(0.1)

    clock.now += 0.2
    reporter.progress(0.3, "Batch 3")  # Redis yes, database not yet
    job.refresh_from_db()
    assert live.read_many([job.id])[job.id] == {"progress": pytest.approx(0.3), "message": "Batch 3"}
    assert job.progress == pytest.approx(0.1)

    clock.now += 2.0
    reporter.progress(0.6, "Batch 4")
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.6) and job.message == "Batch 4"


def test_the_reporter_persists_every_epoch(job):
    reporter = JobReporter(job.id)

    reporter.epoch_end(1, {"loss": 1.5, "accuracy": 0.25})
    reporter.epoch_end(2, {"loss": 0.5, "accuracy": 0.75})

    assert [m.as_dict() for m in job.metrics.all()] == [
        {"epoch": 1, "loss": 1.5, "accuracy": 0.25}, {"epoch": 2, "loss": 0.5, "accuracy": 0.75}]


def test_the_reporter_falls_back_to_the_database_flag_when_redis_is_down(job, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    Job.objects.filter(id=job.id).update(cancel_requested=True)

    with pytest.raises(JobCancelled):
        JobReporter(job.id).check_cancelled()


def test_running_jobs_of_a_vanished_worker_are_failed_after_a_grace_period(alice):
    long_ago = timezone.now() - presence.ORPHAN_GRACE - timedelta(seconds=5)
    orphan = Job.objects.create(owner=alice, kind="system_check", status="running",
                                worker="gone@host", started_at=long_ago)
    fresh = Job.objects.create(owner=alice, kind="system_check", status="running",
                               worker="gone@host", started_at=timezone.now())
    alive = Job.objects.create(owner=alice, kind="system_check", status="running",
                               worker="alive@host", started_at=long_ago)

    assert presence.fail_orphaned_jobs({"alive@host"}) == 1

    orphan.refresh_from_db(), fresh.refresh_from_db(), alive.refresh_from_db()
    assert orphan.status == "failed" and "gone@host stopped answering" in orphan.error
    assert fresh.status == "running" and alive.status == "running"


def test_a_restarted_worker_fails_what_its_previous_process_was_running(alice):
    mine = Job.objects.create(owner=alice, kind="system_check", status="running",
                              worker="w@host", started_at=timezone.now())
    other = Job.objects.create(owner=alice, kind="system_check", status="running",
                               worker="other@host", started_at=timezone.now())

    presence.fail_jobs_of_restarted_worker("w@host")

    mine.refresh_from_db(), other.refresh_from_db()
    assert mine.status == "failed" and "restarted" in mine.error
    assert other.status == "running"


def test_the_workers_snapshot_hides_other_users_jobs(alice, bob):
    Job.objects.create(owner=alice, kind="system_check")
    Job.objects.create(owner=bob, kind="system_check", params={"secret": "bob's"})

    queued = presence.snapshot(alice)["queued"]

    assert [j["mine"] for j in queued] == [True, False]
    assert queued[1]["id"] is None and "secret" not in str(queued)


def test_the_log_tail_keeps_each_phase_epoch_and_the_outcome(job, alice_api):
    def work(j, reporter):
        for epoch in (1, 2):
            for batch in (1, 2, 3):
                reporter.progress(epoch / 3, f"Epoch {epoch}/2 · batch {batch}/3")
            reporter.epoch_end(epoch, {"loss": 1.0 / epoch})
        return {}

    run_job(job.id, "w@host", work)

    lines = [line[9:] for line in alice_api.get(f"/api/jobs/{job.id}/").json()["log_tail"]]
    assert lines == ["Starting", "Epoch 1/2 · batch 1/3", "Epoch 1: loss 1.0000", "Epoch 2/2 · batch 1/3",
                     "Epoch 2: loss 0.5000", "Succeeded"]
