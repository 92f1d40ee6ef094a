"""The parts /healthz reports on: the database, Redis and the live workers."""

from __future__ import annotations

from django.db import connection

from webapp.ops import workers
from webapp.redis_client import redis_problem


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
        "db": db and f"error: {db}" or "ok",
        "redis": redis and f"error: {redis}" or "ok",
        "workers": count,
    }
    return healthy, report
