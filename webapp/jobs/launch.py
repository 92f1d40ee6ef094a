"""How any job is launched, queued, resumed, run again and cancelled, whatever its kind.

A launch checks the queue and the owner's limits, writes the row with the start of its record, and
enqueues the kind's Celery task by name once the row is committed (the web process never imports
`jobs.tasks`). The kind itself (webapp.jobs.registry) says which task and which queue.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from jobs.celery import app
from jobs.provenance import code_version
from jobs.queues import Queue
from webapp.jobs import limits, live, registry
from webapp.jobs.models import Job
from webapp.jobs.resumable import resume_refusal
from webapp.jobs.signals import job_ended
from webapp.jobs.workers import read_presence
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


def launch_job(owner, kind: str, params: dict, queue: str | None = None, dataset=None, *, project=None,
               tags=(), note: str = "", rerun_of: Job | None = None, sweep=None,
               trial_number: int | None = None) -> Job:
    """Create a job and enqueue it once the row is committed.

    Redis is checked first so that an outage answers at once with QueueUnavailable instead
    of leaving a job that can never run; if publishing still fails, the job is marked failed
    with the reason and QueueUnavailable is raised. The job is filed in `project` (the owner's
    "Default" when None) and its record starts with the seed and the dataset's content hash. A
    sweep's trial carries its sweep and trial number from the start, before any worker can claim it.
    """
    spec = registry.get(kind)
    limits.check_queue(queue)
    limits.check_active_jobs(owner)
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    if queue in (None, "", "auto"):
        queue = spec.queue or auto_queue()
    priority = limits.priority_for(owner)
    record = {"seed": params.get("seed"), "code": code_version(),
              "dataset_hash": params.get("dataset_hash") or getattr(dataset, "content_hash", None),
              **({"rerun_of": rerun_of.id} if rerun_of else {})}
    job = Job.objects.create(owner=owner, kind=kind, params=params, dataset=dataset, queue=queue, note=note,
                             project=project or default_project(owner), sweep=sweep, trial_number=trial_number,
                             record={k: v for k, v in record.items() if v is not None})
    if tags:
        job.tags.set(tags)
    transaction.on_commit(lambda: _enqueue(job, spec, priority), robust=False)
    return job


def default_project(owner):
    """The owner's "Default" project: the model Job files runs in (experiments.Project), asked of the field so the
    platform needs no import of the app above it."""
    return Job._meta.get_field("project").related_model.default_for(owner)


# Params a launch writes down beside the ones its caller chose: the rerun asks for the choices only.
DERIVED_PARAMS = ("dataset_name", "dataset_hash", "backbone_label")


def rerun_params(job: Job) -> dict:
    """The parameters that launch `job` again as it was (same seed), or ValueError (a sentence) when
    its inputs are gone or have changed since."""
    params = {key: value for key, value in (job.params or {}).items() if key not in DERIVED_PARAMS}
    if params.get("weights") == "file":  # no weights to choose for a file backbone: launch defaults it again
        params.pop("weights")
    if "dataset" in params:
        dataset = job.dataset
        if dataset is None:
            raise ValueError("This run's dataset was deleted, so it cannot be run again.")
        recorded = (job.params or {}).get("dataset_hash")
        if recorded and dataset.content_hash and recorded != dataset.content_hash:
            raise ValueError("This run's dataset has changed since it ran, so running it again would not repeat it.")
    return params


def auto_queue() -> str:
    """`gpu` when a live worker on the gpu queue has a GPU, else `cpu`."""
    try:
        workers = read_presence().values()
    except REDIS_ERRORS:
        return Queue.CPU
    has_gpu = any(Queue.GPU in w.get("queues", []) and any(d["type"] == "GPU" for d in w.get("devices", []))
                  for w in workers)
    return Queue.GPU if has_gpu else Queue.CPU


class ResumeRefused(Exception):
    """Resume cannot help this job (webapp.jobs.resumable); str() says why and what to do."""


def resume_job(job_id: int) -> bool:
    """Queue a failed or cancelled training job (classifier or caption model) again; it continues
    from its last checkpoint. ResumeRefused when resuming cannot help it; False when it changed
    state meanwhile (ended, or resumed by another request)."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        return False
    problem = resume_refusal(job)
    if problem:
        raise ResumeRefused(problem)
    limits.check_active_jobs(job.owner)
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    priority = limits.priority_for(job.owner)
    params = {**job.params, "resume": True}
    if not Job.objects.filter(id=job.id, status=job.status).update(
        status=Job.Status.QUEUED, params=params, error="", failure="", message="Queued to resume",
        cancel_requested=False, finished_at=None, updated_at=timezone.now(),
    ):
        return False
    job.refresh_from_db()
    try:
        live.clear_cancel(job.id)
    except REDIS_ERRORS:
        pass
    transaction.on_commit(lambda: _enqueue(job, registry.get(job.kind), priority), robust=False)
    return True


def _enqueue(job: Job, spec: registry.JobKind, priority: int = 0) -> None:
    try:
        app.send_task(spec.task_name, args=[job.id], queue=job.queue, task_id=job.task_id, retry=False,
                      priority=priority)
    except Exception as exc:  # kombu and redis raise many types for "cannot connect"
        log.error("Could not enqueue job %s: %s", job.id, exc)
        error = QueueUnavailable(f"{type(exc).__name__}: {exc}")
        Job.finish(job.id, Job.Status.FAILED, error=str(error), message="Not started", failure=Job.Failure.NOT_STARTED)
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
        # A sweep's trial that never ran: its sweep moves on now (a running one's worker tells it).
        job = Job.objects.filter(id=job_id).first()
        if job is not None:
            job_ended.send(sender=Job, job=job)
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
