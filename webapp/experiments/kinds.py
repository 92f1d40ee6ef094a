"""The job kinds this server can run, and how a job is launched.

Each kind names the Celery task that runs it (by name: the web process never imports
`jobs.tasks`), the serializer that validates its parameters, and its default queue. Later
kinds (training, feature extraction, captioning) add one entry here and one task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from jobs.queues import Queue
from webapp.experiments import live
from webapp.experiments.models import Job
from webapp.redis_client import REDIS_ERRORS, redis_problem

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The job queue (Redis) cannot be reached, so no job can be started."""

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(
            "The job queue is not reachable (Redis is down or unreachable), so the job was "
            "not started. Ask the administrator to check Redis, then try again."
        )


class SystemCheckParams(serializers.Serializer):
    seconds_per_device = serializers.FloatField(
        default=2.0, min_value=0.2, max_value=30.0,
        help_text="How long to measure matrix-multiply speed on each device.",
    )


class IngestParams(serializers.Serializer):
    pass


@dataclass(frozen=True)
class JobKind:
    task: str
    params: type[serializers.Serializer]
    default_queue: Queue
    # False for kinds the platform starts itself (ingestion starts with an upload).
    public: bool = True


KINDS: dict[str, JobKind] = {
    Job.Kind.SYSTEM_CHECK: JobKind("jobs.system_check", SystemCheckParams, Queue.CPU),
    Job.Kind.INGEST: JobKind("jobs.ingest_dataset", IngestParams, Queue.CPU, public=False),
}


def launch_job(owner, kind: str, params: dict, queue: str | None = None, dataset=None) -> Job:
    """Create a job and enqueue it once the row is committed.

    Redis is checked first so that an outage answers at once with QueueUnavailable instead
    of leaving a job that can never run; if publishing still fails, the job is marked failed
    with the reason and QueueUnavailable is raised.
    """
    spec = KINDS[kind]
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    job = Job.objects.create(owner=owner, kind=kind, params=params, dataset=dataset,
                             queue=queue or spec.default_queue)
    transaction.on_commit(lambda: _enqueue(job, spec), robust=False)
    return job


def _enqueue(job: Job, spec: JobKind) -> None:
    from jobs.celery import app

    try:
        app.send_task(spec.task, args=[job.id], queue=job.queue, task_id=job.task_id, retry=False)
    except Exception as exc:  # kombu and redis raise many types for "cannot connect"
        log.error("Could not enqueue job %s: %s", job.id, exc)
        error = QueueUnavailable(f"{type(exc).__name__}: {exc}")
        Job.finish(job.id, Job.Status.FAILED, error=str(error), message="Not started")
        raise error from exc


def cancel_job(job_id: int) -> bool:
    """Cancel a queued job at once, or ask a running one to stop. False if it already ended.

    A cancelled queued job keeps its message in Redis, but the worker's claim finds it no
    longer queued and runs nothing. A running job sees the request at its next progress
    report (within about a second) through Redis, or through the database flag if Redis
    is down.
    """
    now = timezone.now()
    if Job.objects.filter(id=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now,
        message="Cancelled before it started",
    ):
        return True
    if Job.objects.filter(id=job_id, status=Job.Status.RUNNING).update(
        cancel_requested=True, message="Cancelling", updated_at=now,
    ):
        try:
            live.request_cancel(job_id)
        except REDIS_ERRORS:
            pass
        return True
    return False
