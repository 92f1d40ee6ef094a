"""The life cycle every job kind shares: claim, run, record the outcome.

`run_job` is what each Celery task calls. It is a plain function so tests and scripts can
run a job in-process; the task adds only Celery's delivery guarantees and time limits.

The claim and the final save are retried with backoff while the database does not answer
(`jobs.resilience`), so a short outage delays a job but loses none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from jobs.ml.progress import JobCancelled
from jobs.provenance import run_record
from jobs.reporter import JobReporter
from jobs.resilience import retry_db
from jobs.trials import TrialPruned, reporter_for
from webapp.experiments.summary import summary_update
from webapp.jobs import registry
from webapp.jobs.models import Job
from webapp.jobs.signals import job_ended

log = logging.getLogger(__name__)


class UserFacingError(Exception):
    """An error whose message is written for the person who launched the job."""


def run_job(job_id: int, worker: str, work: Callable[[Job, JobReporter], Any]) -> str:
    """Run `work(job, reporter)` for a queued job and store its result. Returns the final status.

    A job that is not queued any more (already run, running elsewhere, cancelled) is left
    alone: that is what makes a redelivered message harmless.
    """
    if not _claim(job_id, worker):
        log.info("Job %s is not queued any more; nothing to do.", job_id)
        return "skipped"
    job = retry_db(lambda: Job.objects.get(id=job_id), f"loading job {job_id}")
    job.record = {**(job.record or {}), **run_record()}
    retry_db(lambda: Job.objects.filter(id=job_id).update(record=job.record), f"recording job {job_id}")
    reporter = reporter_for(job)
    try:
        reporter.progress(0.0, "Starting")
        result = work(job, reporter)
    except TrialPruned as exc:
        status, fields = Job.Status.PRUNED, {"message": str(exc)[:300]}
    except JobCancelled:
        status, fields = Job.Status.CANCELLED, {"message": "Cancelled by the user"}
    except SoftTimeLimitExceeded:
        status, fields = Job.Status.FAILED, {
            "error": "The job ran past its time limit and was stopped.", "message": "Timed out",
            "failure": Job.Failure.TIME_LIMIT}
    except UserFacingError as exc:
        status, fields = Job.Status.FAILED, {"error": str(exc), "message": "Failed", "failure": Job.Failure.INPUTS}
    except Exception as exc:  # noqa: BLE001 - any failure must end up on the job, not lost
        log.exception("Job %s failed", job_id)
        status, fields = Job.Status.FAILED, {
            "error": f"The job stopped because of an internal error ({type(exc).__name__}: {exc}).",
            "message": "Failed", "failure": Job.Failure.INTERNAL,
        }
    else:
        status, fields = Job.Status.SUCCEEDED, {"result": with_verdict(job, result), "progress": 1.0,
                                                "message": "Done"}
    try:
        summary = retry_db(lambda: summary_update(job_id, fields.get("result")), f"summarizing job {job_id}")
    except Exception:  # noqa: BLE001 - the outcome matters more; a missing summary only leaves list columns empty
        log.exception("Job %s could not be summarized", job_id)
        summary = {}
    retry_db(lambda: Job.finish(job_id, status, **summary, **fields), f"saving the outcome of job {job_id}")
    reporter.report_outcome(f"{status.capitalize()}" + (f": {fields['error']}" if fields.get("error") else ""),
                            fields.get("progress", reporter.fraction), fields["message"])
    job_ended.send(sender=Job, job=job)
    return status


def with_verdict(job: Job, result):
    """The result with the run's plain verdict (its kind's, webapp.experiments.verdicts), saved with it: a client that
    sees the job succeed reads the verdict in the same answer."""
    if not isinstance(result, dict):
        return result
    try:
        metrics = [m.as_dict() for m in job.metrics.all()]
        said = registry.get(job.kind).verdict(result, metrics)
    except Exception:  # noqa: BLE001 - a verdict that cannot be made must not fail a finished run
        log.exception("Job %s: no verdict", job.id)
        return result
    return {**result, "verdict": said} if said else result


def _claim(job_id: int, worker: str) -> bool:
    """Job.claim, retried while the database errs. A claim that was saved but whose answer was
    lost with the connection still counts: the job is then running here, claimed since we began."""
    began, tries = timezone.now(), 0

    def attempt() -> bool:
        nonlocal tries
        tries += 1
        if Job.claim(job_id, worker):
            return True
        return tries > 1 and Job.objects.filter(id=job_id, status=Job.Status.RUNNING, worker=worker,
                                                started_at__gte=began).exists()

    return retry_db(attempt, f"claiming job {job_id}")
