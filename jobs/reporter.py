"""The worker side of progress: a ProgressSink that writes to Redis and the database.

Publishing is throttled (PROGRESS_PUBLISH_INTERVAL) so a training loop can call `progress`
on every batch without flooding Redis; the database gets progress at a slower rate
(PROGRESS_PERSIST_INTERVAL) and every epoch's metrics at once, so nothing durable is lost
if Redis restarts. Each call may raise JobCancelled when the user asked to stop.

Neither store may stop or stall the job. Redis is asked with one short try; when it does not
answer, the reporter leaves it alone for REDIS_RETRY_INTERVAL: progress is dropped meanwhile
(the next publish carries the latest), log lines wait in a short buffer, and cancel requests
are read from the database. A progress write the database refuses is skipped (the next one
repeats it); epoch metrics are retried briefly.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from jobs.ml.progress import JobCancelled
from jobs.resilience import DB_ERRORS, reset_connection, retry_db
from webapp.jobs import live
from webapp.jobs.models import Job, JobMetric
from webapp.redis_client import REDIS_ERRORS, quick_redis

log = logging.getLogger(__name__)

# How often (seconds) to look for a cancel request; reading it costs one Redis round trip.
CANCEL_CHECK_INTERVAL = 0.5
# After Redis failed to answer, how long (seconds) to leave it alone before trying again.
REDIS_RETRY_INTERVAL = 5.0
# Log lines kept while Redis is away, sent when it is back.
LOG_BUFFER_LINES = 50
# Waits (seconds) between tries to save an epoch's metrics while the database errs.
METRIC_RETRY_DELAYS = (1, 2, 4)


class JobReporter:
    def __init__(self, job_id: int, clock=time.monotonic):
        self.job_id = job_id
        self._clock = clock
        self._last_publish = float("-inf")
        self._last_persist = float("-inf")
        self._last_cancel_check = float("-inf")
        self.fraction = 0.0
        self.message = ""
        self._phase = ""
        self._redis_away_until = float("-inf")
        self._pending_log: deque[tuple[float, str]] = deque(maxlen=LOG_BUFFER_LINES)

    def progress(self, fraction: float, message: str = "") -> None:
        self.fraction = min(1.0, max(0.0, float(fraction)))
        self._log_phase(message)
        self.message = (message or self.message)[:300]
        now = self._clock()
        final = self.fraction >= 1.0
        if final or now - self._last_publish >= settings.PROGRESS_PUBLISH_INTERVAL:
            self._last_publish = now
            self._publish()
        if final or now - self._last_persist >= settings.PROGRESS_PERSIST_INTERVAL:
            self._last_persist = now
            try:
                Job.objects.filter(id=self.job_id, status=Job.Status.RUNNING).update(
                    progress=self.fraction, message=self.message, updated_at=timezone.now()
                )
            except DB_ERRORS as exc:  # the next persist repeats it
                log.warning("Could not save progress of job %s: %s", self.job_id, exc)
                reset_connection()
        self.check_cancelled()

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        values = {name: float(value) for name, value in metrics.items()}
        self._log(f"Epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        try:
            retry_db(lambda: JobMetric.objects.update_or_create(job_id=self.job_id, epoch=epoch,
                                                                defaults={"values": values}),
                     f"saving epoch {epoch} of job {self.job_id}", delays=METRIC_RETRY_DELAYS)
        except DB_ERRORS as exc:  # a missing chart point is better than a lost training run
            log.warning("Gave up saving epoch %s of job %s: %s", epoch, self.job_id, exc)
        self.check_cancelled()

    def set_device(self, device: str) -> None:
        try:
            Job.objects.filter(id=self.job_id).update(device=device[:200])
        except DB_ERRORS as exc:
            log.warning("Could not record the device of job %s: %s", self.job_id, exc)
            reset_connection()

    def check_cancelled(self) -> None:
        now = self._clock()
        if now - self._last_cancel_check < CANCEL_CHECK_INTERVAL:
            return
        self._last_cancel_check = now
        answer = self._with_redis(lambda client: live.is_cancel_requested(self.job_id, client=client))
        if answer is None:
            # Redis is the fast path; the database flag is the durable one.
            try:
                answer = Job.objects.filter(id=self.job_id, cancel_requested=True).exists()
            except DB_ERRORS:
                reset_connection()
                return  # neither answers: ask again at the next check
        if answer:
            raise JobCancelled()

    def report_outcome(self, line: str, fraction: float, message: str) -> None:
        """The job's last log line and progress, tried once more even if Redis was away."""
        self._redis_away_until = float("-inf")
        self.fraction, self.message = fraction, message
        self._log(line)
        self._publish()

    def _log_phase(self, message: str) -> None:
        """Log a message when its phase changes ("Epoch 3/10 · batch 4/9 · ..." counts as "Epoch 3/10")."""
        phase = (message or "").split(" · ")[0]
        if phase and phase != self._phase:
            self._phase = phase
            self._log(message)

    def _log(self, line: str) -> None:
        self._pending_log.append((time.time(), line))
        self._flush_log()

    def _flush_log(self) -> None:
        while self._pending_log:
            at, line = self._pending_log[0]
            sent = self._with_redis(lambda client, at=at, line=line: live.append_log(self.job_id, line, at=at,
                                                                                     client=client))
            if sent is None:
                return
            self._pending_log.popleft()

    def _publish(self) -> None:
        if self._with_redis(lambda client: live.publish(self.job_id, self.fraction, self.message, client=client)):
            self._flush_log()

    def _with_redis(self, action: Callable) -> object:
        """`action(client)`'s answer (True for None), or None when Redis is away or just failed."""
        if self._clock() < self._redis_away_until:
            return None
        try:
            answer = action(quick_redis())
        except REDIS_ERRORS as exc:  # progress is best-effort; the job itself goes on
            log.warning("Redis did not answer for job %s (%s); progress goes to the database only for %.0f s.",
                        self.job_id, exc, REDIS_RETRY_INTERVAL)
            self._redis_away_until = self._clock() + REDIS_RETRY_INTERVAL
            return None
        return True if answer is None else answer
