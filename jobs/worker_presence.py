"""A worker's heartbeat: advertise its queues and devices, and clean up after dead peers.

Connected to Celery's worker signals when `jobs.tasks` is imported (only workers do that).
A daemon thread in the worker's main process refreshes the presence record every few
seconds and marks failed the running jobs whose worker has vanished, so a job is never left
"running" forever after a crash.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections

from jobs.ml.devices import describe_machine
from webapp.ops import workers as presence
from webapp.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)
_stop = threading.Event()


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


def _heartbeat(record: dict) -> None:
    while not _stop.is_set():
        try:
            presence.write_presence(record)
            alive = set(presence.read_presence())
            close_old_connections()
            presence.fail_orphaned_jobs(alive)
        except REDIS_ERRORS as exc:
            log.warning("Worker heartbeat could not reach Redis: %s", exc)
        except Exception:  # noqa: BLE001 - the heartbeat must outlive a bad sweep
            log.exception("Worker heartbeat failed")
        finally:
            close_old_connections()
        _stop.wait(presence.HEARTBEAT_SECONDS)


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
    try:
        presence.fail_jobs_of_restarted_worker(sender.hostname)
    except Exception:  # noqa: BLE001
        log.exception("Could not clean up jobs of the previous %s", sender.hostname)
    finally:
        close_old_connections()
    threading.Thread(target=_heartbeat, args=(record,), name="visionlab-heartbeat",
                     daemon=True).start()


@worker_shutdown.connect
def _on_worker_shutdown(sender=None, **_):
    _stop.set()
    try:
        presence.remove_presence(sender.hostname)
    except (REDIS_ERRORS, AttributeError):
        pass
