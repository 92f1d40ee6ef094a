"""Asking the inference worker something and waiting for the answer, from the web process."""

from __future__ import annotations

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

from jobs.queues import Queue
from webapp.experiments.kinds import QueueUnavailable
from webapp.redis_client import redis_problem


class InferenceUnavailable(Exception):
    """No inference worker answered in time."""


def ask(task: str, *args, timeout: float | None = None):
    from jobs.celery import app

    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    result = app.send_task(task, args=list(args), queue=Queue.INFERENCE, retry=False)
    try:
        return result.get(timeout=timeout or settings.INFERENCE_TIMEOUT, disable_sync_subtasks=False)
    except CeleryTimeout:
        result.forget()
        raise InferenceUnavailable(
            "No inference worker answered in time. It may be starting, or none is running: "
            "see the Workers page.") from None
