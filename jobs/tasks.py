"""Celery tasks: one thin shell per registered job kind (webapp.jobs.registry), made here from the entry.

Each task takes only a job id; everything else is on the Job row. It hands the id to `run_job` with the
kind's worker function. Tasks are acknowledged late (a worker that dies mid-job leaves the message to be
redelivered, and the claim in `run_job` makes the redelivery harmless) and have the kind's soft and hard
time limits. Their names are the ones `webapp.jobs.launch` enqueues.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from jobs import worker_presence  # noqa: F401 - connects the worker's heartbeat signals
from jobs.celery import app
from jobs.runner import run_job
from webapp.jobs import registry


def _task_for(kind: registry.JobKind):
    def run(self, job_id: int) -> str:
        return run_job(job_id, self.request.hostname, import_string(kind.work))

    run.__name__ = run.__qualname__ = kind.name
    run.__doc__ = f"Run a {kind.label.lower()} job ({kind.work})."
    return app.task(name=kind.task_name, bind=True, acks_late=True, soft_time_limit=kind.time_limit,
                    time_limit=kind.time_limit + kind.grace)(run)


TASKS = {kind.name: _task_for(kind) for kind in registry.all_kinds()}
