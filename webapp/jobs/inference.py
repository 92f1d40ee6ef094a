"""Asking the inference worker something and waiting for the answer, from the web process.

A question nobody waits for any more must cost nothing: each one is sent with `expires` equal to
the time the caller waits, so a worker that was stopped, busy or down skips the questions whose
callers gave up instead of computing them later, and it is refused at once (503) when the
`inference` queue already holds INFERENCE_MAX_QUEUE of them, so an attack or an outage never
piles up an unbounded backlog (each question carries its photo) in Redis. Answers are kept in
Redis only briefly (CELERY_RESULT_EXPIRES), and forgotten at once by a caller that gave up.
"""

from __future__ import annotations

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

from jobs.celery import app
from jobs.queues import Queue
from webapp.jobs.launch import QueueUnavailable
from webapp.redis_client import REDIS_ERRORS, get_redis, redis_problem


class InferenceUnavailable(Exception):
    """No inference worker answered in time."""


class InferenceBusy(InferenceUnavailable):
    """Too many questions already wait for the inference worker."""


def waiting() -> int:
    """Questions waiting in the `inference` queue (kombu's Redis transport keeps a queue as a list
    under its name; VisionLab sends no priorities, so no other list is used)."""
    return int(get_redis().llen(str(Queue.INFERENCE)))


def ask(task: str, *args, timeout: float | None = None):
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    wait = timeout or settings.INFERENCE_TIMEOUT
    try:
        backlog = waiting()
    except REDIS_ERRORS as exc:
        raise QueueUnavailable(f"{type(exc).__name__}: {exc}") from None
    if backlog >= settings.INFERENCE_MAX_QUEUE:
        raise InferenceBusy(
            "The inference worker has too many photos waiting. Please try again in a moment.")
    result = app.send_task(task, args=list(args), queue=Queue.INFERENCE, retry=False, expires=wait)
    try:
        return result.get(timeout=wait, disable_sync_subtasks=False)
    except CeleryTimeout:
        result.forget()
        raise InferenceUnavailable(
            "No inference worker answered in time. It may be starting, or none is running: "
            "see the Workers page.") from None
