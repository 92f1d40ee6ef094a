"""Which Celery workers are alive, what they can compute on, and what they are doing.

Each worker writes a small presence record to Redis every few seconds (see
`jobs.worker_presence`) with its queues and devices; the record expires when the worker stops
refreshing it. Liveness for /healthz comes from a real Celery ping; the presence records add
what a ping cannot say (devices, queues) and let that ping stop as soon as every known
worker answered.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.experiments.models import Job
from webapp.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

PRESENCE_PREFIX = "visionlab:worker:"
HEARTBEAT_SECONDS = 5
PRESENCE_TTL_SECONDS = 20
# A running job whose worker has been gone this long is marked failed.
ORPHAN_GRACE = timedelta(seconds=45)


def write_presence(record: dict) -> None:
    record = {**record, "last_seen": time.time()}
    get_redis().set(PRESENCE_PREFIX + record["hostname"], json.dumps(record), ex=PRESENCE_TTL_SECONDS)


def remove_presence(hostname: str) -> None:
    get_redis().delete(PRESENCE_PREFIX + hostname)


def read_presence() -> dict[str, dict]:
    """{hostname: record} of the workers whose heartbeat is fresh. Raises on Redis errors."""
    client = get_redis()
    keys = sorted(client.scan_iter(match=PRESENCE_PREFIX + "*", count=100))
    records = {}
    for raw in client.mget(keys) if keys else []:
        if raw:
            record = json.loads(raw)
            records[record["hostname"]] = record
    return records


def ping_workers(expected: int = 0) -> list[str]:
    """Hostnames of the workers that answer a Celery ping within HEALTH_TIMEOUT.

    With `expected` known workers the ping returns as soon as that many answered.
    """
    from jobs.celery import app

    replies = app.control.ping(timeout=settings.HEALTH_TIMEOUT, limit=expected or None)
    return sorted(name for reply in replies for name in reply)


def fail_orphaned_jobs(live_hostnames: set[str]) -> int:
    """Mark failed the running jobs whose worker has been gone for a while. Returns how many."""
    cutoff = timezone.now() - ORPHAN_GRACE
    orphans = (Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff)
               .exclude(worker__in=live_hostnames))
    return _fail(orphans, "The worker {worker} stopped answering while this job was running.")


def fail_jobs_of_restarted_worker(hostname: str) -> int:
    """A worker that just started runs nothing yet: what it "runs" died with its last process."""
    return _fail(Job.objects.filter(status=Job.Status.RUNNING, worker=hostname),
                 "The worker {worker} restarted while this job was running.")


def _fail(jobs, reason: str) -> int:
    failed = 0
    for job in jobs.only("id", "worker"):
        error = reason.format(worker=job.worker or "that ran it")
        if Job.finish(job.id, Job.Status.FAILED, error=error, message="Worker lost"):
            log.warning("Job %s: %s", job.id, error)
            failed += 1
    return failed


def snapshot(user) -> dict:
    """The Workers page: live workers with devices and running jobs, and the queue in order.

    Other users' jobs appear without their parameters or owner: the queue is shared, the
    work is not.
    """
    try:
        presence = read_presence()
        redis_error = None
    except REDIS_ERRORS as exc:
        presence, redis_error = {}, f"Redis is not answering ({type(exc).__name__})."

    def describe(job: Job) -> dict:
        mine = job.owner_id == user.id
        return {
            "id": job.id if mine else None,
            "kind": job.get_kind_display(),
            "mine": mine,
            "queue": job.queue,
            "progress": job.progress,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
        }

    active = list(Job.objects.filter(status__in=Job.ACTIVE).order_by("created_at", "id"))
    workers = []
    for hostname, record in sorted(presence.items()):
        workers.append({
            **record,
            "running": [describe(j) for j in active
                        if j.status == Job.Status.RUNNING and j.worker == hostname],
        })
    return {
        "redis_error": redis_error,
        "workers": workers,
        "queued": [describe(j) for j in active if j.status == Job.Status.QUEUED],
        "running_elsewhere": [describe(j) for j in active
                              if j.status == Job.Status.RUNNING and j.worker not in presence],
    }
