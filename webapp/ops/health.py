"""The parts /healthz reports on: the database, Redis and the live workers.

/healthz answers anyone (load balancers, monitoring), so a failing part is named with the
kind of error only; the full message, which can hold host names and paths, goes to the log.
"""

from __future__ import annotations

import logging

from django.db import connection

from webapp.jobs import workers
from webapp.redis_client import redis_problem

log = logging.getLogger(__name__)


def database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - every driver has its own error types
        return f"{type(exc).__name__}: {exc}"
    return None


def check() -> tuple[bool, dict]:
    """(healthy, report) where report is the /healthz body of the API contract."""
    db = database_problem()
    redis = redis_problem()
    count = 0
    if not redis:
        try:
            count = len(workers.ping_workers(expected=len(workers.read_presence())))
        except Exception as exc:  # noqa: BLE001 - kombu wraps connection errors its own way
            redis = f"{type(exc).__name__}: {exc}"
    healthy = not db and not redis
    report = {
        "status": "ok" if healthy else "error",
        "db": _summary("database", db),
        "redis": _summary("Redis", redis),
        "workers": count,
    }
    return healthy, report


def _summary(part: str, problem: str | None) -> str:
    if not problem:
        return "ok"
    log.warning("Health check: %s is down: %s", part, problem)
    return "error: " + problem.split(":", 1)[0]
