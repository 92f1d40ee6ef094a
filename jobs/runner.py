"""The life cycle every job kind shares: claim, run, record the outcome.

`run_job` is what each Celery task calls. It is a plain function so tests and scripts can
run a job in-process; the task adds only Celery's delivery guarantees and time limits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from jobs.ml.progress import JobCancelled
from jobs.reporter import JobReporter
from webapp.experiments import live
from webapp.experiments.models import Job
from webapp.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)


class UserFacingError(Exception):
    """An error whose message is written for the person who launched the job."""


def run_job(job_id: int, worker: str, work: Callable[[Job, JobReporter], Any]) -> str:
    """Run `work(job, reporter)` for a queued job and store its result. Returns the final status.

    A job that is not queued any more (already run, running elsewhere, cancelled) is left
    alone: that is what makes a redelivered message harmless.
    """
    if not Job.claim(job_id, worker):
        log.info("Job %s is not queued any more; nothing to do.", job_id)
        return "skipped"
    job = Job.objects.get(id=job_id)
    reporter = JobReporter(job_id)
    try:
        reporter.progress(0.0, "Starting")
        result = work(job, reporter)
    except JobCancelled:
        status, fields = Job.Status.CANCELLED, {"message": "Cancelled by the user"}
    except SoftTimeLimitExceeded:
        status, fields = Job.Status.FAILED, {
            "error": "The job ran past its time limit and was stopped.", "message": "Timed out"}
    except UserFacingError as exc:
        status, fields = Job.Status.FAILED, {"error": str(exc), "message": "Failed"}
    except Exception as exc:  # noqa: BLE001 - any failure must end up on the job, not lost
        log.exception("Job %s failed", job_id)
        status, fields = Job.Status.FAILED, {
            "error": f"The job stopped because of an internal error ({type(exc).__name__}: {exc}).",
            "message": "Failed",
        }
    else:
        status, fields = Job.Status.SUCCEEDED, {"result": result, "progress": 1.0, "message": "Done"}
    Job.finish(job_id, status, **fields)
    reporter._log(f"{status.capitalize()}" + (f": {fields['error']}" if fields.get("error") else ""))
    try:
        live.publish(job_id, fields.get("progress", reporter.fraction), fields["message"])
    except REDIS_ERRORS:
        pass
    return status
