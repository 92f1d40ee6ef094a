"""A worker's heartbeat: advertise its queues and devices, and clean up after dead peers.

Connected to Celery's worker signals when `jobs.tasks` is imported (only workers do that).
A daemon thread in the worker's main process refreshes the presence record every few
seconds and ends the jobs nothing will finish (see `webapp.jobs.workers`): this worker's own
jobs whose pool process died, running jobs whose worker has vanished, queued jobs whose
message is gone. So a job is never left "running" forever after a crash.

A pool process killed by the kernel (out of memory), a crash or the hard time limit never
reaches `run_job`'s bookkeeping; Celery's main process reports it through `task_failure`,
which hands the reason to the heartbeat and wakes it, so the job fails within a second.

The main process forks a new pool process just then, and a child forked while this process
has SQLite open inherits its locks and can read a stale snapshot (a job it was sent looks
absent). So the main process uses the database only inside `_database()`, which closes the
connection afterwards and which a fork waits for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time

from celery.signals import task_failure, worker_ready, worker_shutdown
from django.db import connection

from jobs.ml.devices import describe_machine
from webapp.jobs import workers as presence
from webapp.redis_client import REDIS_ERRORS, quick_redis

log = logging.getLogger(__name__)
_stop = threading.Event()
_wake = threading.Event()
# Task id -> why its pool process never reported back, from `task_failure` in the main process.
_lost_reasons: dict[str, str] = {}
_db_lock = threading.Lock()
_SIGNAL = re.compile(r"signal (\d+) \((\w+)\)")
_EXIT_CODE = re.compile(r"exitcode (-?\d+)")


def _queues_of(consumer) -> list[str]:
    try:
        return sorted(consumer.app.amqp.queues.consume_from)
    except AttributeError:
        return []


def _concurrency_of(consumer) -> int | None:
    try:
        return int(consumer.pool.num_processes)
    except (AttributeError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def _database():
    """Use the database in the main process: never across a fork, and closed afterwards."""
    with _db_lock:
        try:
            yield
        finally:
            connection.close()


def _held_task_ids() -> set[str]:
    """Ids of the tasks this worker holds: received and not finished (waiting or running)."""
    from celery.worker import state

    return set(state.requests)


def _heartbeat(record: dict) -> None:
    watch = presence.JobWatch()
    while not _stop.is_set():
        _wake.clear()
        try:  # the database alone: works while Redis is away
            with _database():
                presence.fail_jobs_lost_by_worker(record["hostname"], _held_task_ids, _lost_reasons, watch)
        except Exception:  # noqa: BLE001 - the heartbeat must outlive a bad sweep
            log.exception("Worker heartbeat could not check its own jobs")
        try:
            # One quick try each: a paused Redis must not hold up the checks of this worker's own jobs.
            presence.write_presence(record, client=quick_redis())
            alive = set(presence.read_presence(client=quick_redis()))
            watch.saw(alive)
            with _database():
                presence.fail_orphaned_jobs(alive, watch.last_seen, watch.watching_since)
                presence.fail_jobs_without_message(watch)
        except REDIS_ERRORS as exc:
            watch.redis_lost()
            log.warning("Worker heartbeat could not reach Redis: %s", exc)
        except Exception:  # noqa: BLE001 - the heartbeat must outlive a bad sweep
            log.exception("Worker heartbeat failed")
        _wake.wait(presence.HEARTBEAT_SECONDS)


def lost_reason(exc: BaseException | None) -> str | None:
    """A sentence for a task whose pool process never reported back, or None for other failures."""
    from billiard.exceptions import WorkerLostError
    from celery.exceptions import TimeLimitExceeded

    if isinstance(exc, TimeLimitExceeded):
        limit = exc.args[0] if exc.args and isinstance(exc.args[0], int | float) else None
        return ("The job ran past its hard time limit" + (f" of {limit:g} s" if limit else "") +
                " and was stopped.")
    if not isinstance(exc, WorkerLostError):
        return None
    text = str(exc)
    if match := _SIGNAL.search(text):
        name = match[2]
        if name == "SIGKILL":
            return ("The process running this job was killed (SIGKILL), most often by the system "
                    "because memory ran out.")
        if name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE"):
            return f"The process running this job crashed ({name})."
        return f"The process running this job was stopped by {name}."
    if match := _EXIT_CODE.search(text):
        return f"The process running this job exited unexpectedly (exit code {match[1]})."
    return presence.LOST_BY_WORKER


@task_failure.connect
def _on_task_failure(sender=None, task_id=None, exception=None, **_):
    reason = lost_reason(exception)
    if reason and str(task_id or "").startswith("job-"):
        _lost_reasons[task_id] = reason
        _wake.set()


@worker_ready.connect
def _on_worker_ready(sender, **_):
    record = {
        "hostname": sender.hostname,
        "queues": _queues_of(sender),
        "concurrency": _concurrency_of(sender),
        "devices": describe_machine(),
        "pid": os.getpid(),
        "started_at": time.time(),
    }
    os.register_at_fork(before=_db_lock.acquire, after_in_parent=_db_lock.release,
                        after_in_child=_db_lock.release)
    try:
        with _database():
            presence.fail_jobs_of_restarted_worker(sender.hostname)
    except Exception:  # noqa: BLE001
        log.exception("Could not clean up jobs of the previous %s", sender.hostname)
    threading.Thread(target=_heartbeat, args=(record,), name="visionlab-heartbeat",
                     daemon=True).start()


@worker_shutdown.connect
def _on_worker_shutdown(sender=None, **_):
    _stop.set()
    _wake.set()
    try:
        presence.remove_presence(sender.hostname)
    except (REDIS_ERRORS, AttributeError):
        pass
