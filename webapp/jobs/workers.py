"""Which Celery workers are alive, what they can compute on, and what they are doing.

Each worker writes a small presence record to Redis every few seconds (see
`jobs.worker_presence`) with its queues and devices; the record expires when the worker stops
refreshing it. Liveness for /healthz comes from a real Celery ping; the presence records add
what a ping cannot say (devices, queues) and let that ping stop as soon as every known
worker answered.

The same heartbeat ends the jobs nothing will finish, each with a sentence: a job whose pool
process died (the worker holds no task for it), a job whose worker has not been seen for a
while, and a queued job whose message is gone from Redis. Nothing is judged on evidence an
outage could fake: a Redis pause hides every worker, so after one the clock starts again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from jobs.celery import app
from webapp.jobs import registry
from webapp.jobs.models import Job
from webapp.jobs.signals import job_ended
from webapp.redis_client import REDIS_ERRORS, get_redis, quick_redis

log = logging.getLogger(__name__)

PRESENCE_PREFIX = "visionlab:worker:"
HEARTBEAT_SECONDS = 5
# A worker's presence record outlives its heartbeat by this many seconds (WORKER_PRESENCE_TTL, 20 by default).
PRESENCE_TTL_SECONDS = settings.WORKER_PRESENCE_TTL
# A running job whose worker has been gone this long is marked failed.
ORPHAN_GRACE = timedelta(seconds=45)
# A queued job whose message Redis no longer holds is ended once it has waited this long
# (the web process publishes a job's message just after committing its row).
LOST_MESSAGE_GRACE = timedelta(minutes=2)
# A running job its worker holds no task for, without a reason from Celery, must also have been
# quiet (no progress saved) this long: a job that just started can be missing from Celery's
# lists for as long as a broker outage holds up the worker's bookkeeping, while it reports.
LOST_TASK_QUIET = timedelta(seconds=30)

LOST_BY_WORKER = ("The process running this job stopped without reporting back (it was killed, ran out of "
                  "memory or crashed).")
LOST_MESSAGE = ("This job's message is gone from the job queue (Redis lost it, or it was removed), so no "
                "worker would ever start it. Run it again.")


def write_presence(record: dict, client=None) -> None:
    record = {**record, "last_seen": time.time()}
    (client or get_redis()).set(PRESENCE_PREFIX + record["hostname"], json.dumps(record), ex=PRESENCE_TTL_SECONDS)


def remove_presence(hostname: str) -> None:
    get_redis().delete(PRESENCE_PREFIX + hostname)


def read_presence(client=None) -> dict[str, dict]:
    """{hostname: record} of the workers whose heartbeat is fresh. Raises on Redis errors."""
    client = client or get_redis()
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
    replies = app.control.ping(timeout=settings.HEALTH_TIMEOUT, limit=expected or None)
    return sorted(name for reply in replies for name in reply)


class JobWatch:
    """What one worker's heartbeat remembers from round to round to judge jobs fairly.

    `last_seen`: when each worker was last found alive; `watching_since`: since when this
    heartbeat has been able to see the workers (its start, or the end of a Redis outage), None
    while Redis does not answer; `suspects`: jobs found without a task or a message in the last
    round, failed only if the next round finds the same (a message moves between Redis keys,
    a task between Celery's lists, for an instant).
    """

    def __init__(self):
        self.last_seen: dict[str, datetime] = {}
        self.watching_since: datetime | None = timezone.now()
        self.suspects: set[int] = set()

    def saw(self, live_hostnames: Iterable[str]) -> None:
        now = timezone.now()
        if self.watching_since is None:
            self.watching_since = now
        for hostname in live_hostnames:
            self.last_seen[hostname] = now

    def redis_lost(self) -> None:
        self.watching_since = None

    def confirm(self, kind: str, job_ids: set[int]) -> set[int]:
        """The `job_ids` (of this `kind` of check) also suspected in the previous round."""
        found = {(kind, job_id) for job_id in job_ids}
        confirmed = found & self.suspects
        self.suspects = (self.suspects - {s for s in self.suspects if s[0] == kind}) | found
        return {job_id for _, job_id in confirmed}


def fail_orphaned_jobs(live_hostnames: Iterable[str], last_seen: dict[str, datetime] | None = None,
                       watching_since: datetime | None = None) -> int:
    """Mark failed the running jobs whose worker has not been seen for ORPHAN_GRACE. Returns how many.

    A worker is seen when a heartbeat finds its presence record (`last_seen`: hostname -> when)
    and when it claims a job (the job's start), never judged by the job's age alone. Only time
    during which the caller could see the workers counts: nothing is judged before ORPHAN_GRACE
    has passed since `watching_since`, as a Redis outage lets every presence record lapse while
    the workers go on working.
    """
    cutoff = timezone.now() - ORPHAN_GRACE
    if watching_since is not None and watching_since > cutoff:
        return 0
    seen = last_seen or {}
    candidates = (Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff)
                  .exclude(worker__in=set(live_hostnames)))
    orphans = [job.id for job in candidates.only("id", "worker") if seen.get(job.worker, cutoff) <= cutoff]
    return _fail(Job.objects.filter(id__in=orphans),
                 "The worker {worker} stopped answering while this job was running.")


def fail_jobs_lost_by_worker(hostname: str, held_task_ids: Callable[[], Iterable[str]],
                             reasons: dict[str, str], watch: JobWatch) -> int:
    """On worker `hostname` itself: fail the jobs it runs according to the database but holds no
    task for, as when its pool process was killed (the out-of-memory killer, a crash, the hard
    time limit). `reasons` (task id -> sentence) says what happened when Celery reported it;
    those jobs fail at once, the others when two rounds agree and the job has been quiet for
    LOST_TASK_QUIET. Returns how many failed.
    """
    reported_before = set(reasons)
    running = list(Job.objects.filter(status=Job.Status.RUNNING, worker=hostname)
                   .only("id", "worker", "kind", "dataset_id", "updated_at", "sweep", "trial_number"))
    # Read after the jobs: a job claimed in between is then held, never judged on an older list.
    held = set(held_task_ids())
    quiet = timezone.now() - LOST_TASK_QUIET
    lost = {job.id for job in running if job.task_id not in held and (job.task_id in reasons or job.updated_at < quiet)}
    reported = {job.id for job in running if job.id in lost and job.task_id in reasons}
    confirmed = watch.confirm("task", lost - reported) | reported
    failed = 0
    for job in running:
        if job.id in confirmed:
            failed += _fail_job(job, reasons.pop(job.task_id, LOST_BY_WORKER), "Worker lost")
    for task_id in reported_before - {job.task_id for job in running}:
        reasons.pop(task_id, None)  # ended otherwise (its job had already finished, or was failed)
    return failed


def message_task_ids(queues: Iterable[str]) -> set[str]:
    """Task ids of the messages Redis holds for `queues`: waiting in the queue (any priority), or
    delivered to a worker and not acknowledged yet. Raises on Redis errors, at once: the caller
    may hold up other work meanwhile."""
    from kombu.transport.redis import Channel

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    pipe = quick_redis().pipeline(transaction=False)
    for queue in queues:
        for priority in Channel.priority_steps:
            pipe.lrange(prefix + (f"{queue}{Channel.sep}{priority}" if priority else queue), 0, -1)
    pipe.hvals(prefix + Channel.unacked_key)
    ids = set()
    for raws in pipe.execute():
        for raw in raws:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, list):  # unacked: [message, exchange, routing key]
                message = message[0] if message else None
            if isinstance(message, dict):
                ids.add((message.get("headers") or {}).get("id") or
                        (message.get("properties") or {}).get("correlation_id"))
    return ids


def fail_jobs_without_message(watch: JobWatch) -> int:
    """End the queued jobs that waited past LOST_MESSAGE_GRACE and whose message Redis no longer
    holds (Redis restarted without its data, a message removed by hand, a web process that died
    between saving a job and publishing it): no worker will ever start them. Returns how many."""
    cutoff = timezone.now() - LOST_MESSAGE_GRACE
    waiting = list(Job.objects.filter(status=Job.Status.QUEUED, updated_at__lt=cutoff)
                   .only("id", "queue", "kind", "dataset_id", "worker", "sweep", "trial_number"))
    held = message_task_ids({job.queue for job in waiting}) if waiting else set()
    confirmed = watch.confirm("message", {job.id for job in waiting if job.task_id not in held})
    return sum(_fail_job(job, LOST_MESSAGE, "Not started", status=Job.Status.QUEUED, failure=Job.Failure.NOT_STARTED)
               for job in waiting if job.id in confirmed)


def fail_jobs_of_restarted_worker(hostname: str) -> int:
    """A worker that just started runs nothing yet: what it "runs" died with its last process."""
    return _fail(Job.objects.filter(status=Job.Status.RUNNING, worker=hostname),
                 "The worker {worker} restarted while this job was running.")


def _fail(jobs, reason: str) -> int:
    return sum(_fail_job(job, reason.format(worker=job.worker or "that ran it"), "Worker lost")
               for job in jobs.only("id", "worker", "kind", "dataset_id", "sweep", "trial_number"))


def _fail_job(job: Job, error: str, message: str, status: str | None = None,
              failure: str = Job.Failure.WORKER_LOST) -> bool:
    """Fail `job` if it is still active (or still `status`); an ingestion fails its dataset too."""
    statuses = (status,) if status else Job.ACTIVE
    now = timezone.now()
    if not Job.objects.filter(id=job.id, status__in=statuses).update(
            status=Job.Status.FAILED, error=error, message=message, failure=failure, finished_at=now,
            updated_at=now):
        return False
    log.warning("Job %s: %s", job.id, error)
    registry.get(job.kind).lost(job, error)
    job_ended.send(sender=Job, job=job)
    return True


def snapshot(user) -> dict:
    """The Workers page: live workers with devices and running jobs, and the queue in order.

    Other users' jobs appear without their parameters or owner: the queue is shared, the
    work is not. Host names and process ids are for staff: anyone else sees "Worker 1", "Worker 2"
    (in a stable order) with their queues and devices, which is all a launch needs.
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
    for number, (hostname, record) in enumerate(sorted(presence.items()), start=1):
        shown = record if user.is_staff else {**record, "hostname": f"Worker {number}", "pid": None}
        workers.append({
            **shown,
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
