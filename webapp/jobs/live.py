"""Live job state in Redis: what a worker publishes many times a second and pages poll.

The database holds the durable record (status, per-epoch metrics, throttled progress); Redis
holds the freshest progress so that polling pages never wait on a database write. Both the
worker's reporter and the web views go through these functions, so the key layout lives in
one place.
"""

from __future__ import annotations

import time

from webapp.redis_client import REDIS_ERRORS, get_redis

LIVE_TTL_SECONDS = 7 * 24 * 3600


def _live_key(job_id: int) -> str:
    return f"visionlab:job:{job_id}:live"


def _cancel_key(job_id: int) -> str:
    return f"visionlab:job:{job_id}:cancel"


def publish(job_id: int, progress: float, message: str, client=None) -> None:
    pipe = (client or get_redis()).pipeline()
    pipe.hset(_live_key(job_id), mapping={
        "progress": f"{progress:.6f}", "message": message, "at": f"{time.time():.3f}",
    })
    pipe.expire(_live_key(job_id), LIVE_TTL_SECONDS)
    pipe.execute()


LOG_LINES = 200


def _log_key(job_id: int) -> str:
    return f"visionlab:job:{job_id}:log"


def append_log(job_id: int, line: str, at: float | None = None, client=None) -> None:
    """Keep the job's last LOG_LINES progress sentences, time-stamped (now, or `at`), for the log tail."""
    stamped = time.strftime("%H:%M:%S ", time.gmtime(at)) + line
    pipe = (client or get_redis()).pipeline()
    pipe.rpush(_log_key(job_id), stamped)
    pipe.ltrim(_log_key(job_id), -LOG_LINES, -1)
    pipe.expire(_log_key(job_id), LIVE_TTL_SECONDS)
    pipe.execute()


def read_log(job_id: int, lines: int = 30) -> list[str]:
    try:
        return get_redis().lrange(_log_key(job_id), -lines, -1)
    except REDIS_ERRORS:
        return []


def read_many(job_ids: list[int]) -> dict[int, dict]:
    """{job_id: {"progress": float, "message": str}} for the jobs Redis knows about.

    Returns {} when Redis is unreachable: pages then show the database's (older) progress.
    """
    if not job_ids:
        return {}
    try:
        pipe = get_redis().pipeline()
        for job_id in job_ids:
            pipe.hgetall(_live_key(job_id))
        rows = pipe.execute()
    except REDIS_ERRORS:
        return {}
    live = {}
    for job_id, row in zip(job_ids, rows, strict=True):
        if row:
            live[job_id] = {"progress": float(row["progress"]), "message": row.get("message", "")}
    return live


def request_cancel(job_id: int) -> None:
    get_redis().set(_cancel_key(job_id), "1", ex=LIVE_TTL_SECONDS)


def is_cancel_requested(job_id: int, client=None) -> bool:
    return bool((client or get_redis()).exists(_cancel_key(job_id)))


def clear_cancel(job_id: int) -> None:
    get_redis().delete(_cancel_key(job_id))


def forget(job_id: int) -> None:
    """Drop a deleted job's live state, log and cancel flag at once instead of waiting for their expiry."""
    try:
        get_redis().delete(_live_key(job_id), _log_key(job_id), _cancel_key(job_id))
    except REDIS_ERRORS:
        pass  # they expire by themselves within LIVE_TTL_SECONDS
