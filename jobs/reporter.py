"""The worker side of progress: a ProgressSink that writes to Redis and the database.

Publishing is throttled (PROGRESS_PUBLISH_INTERVAL) so a training loop can call `progress`
on every batch without flooding Redis; the database gets progress at a slower rate
(PROGRESS_PERSIST_INTERVAL) and every epoch's metrics at once, so nothing durable is lost
if Redis restarts. Each call may raise JobCancelled when the user asked to stop.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils import timezone

from jobs.ml.progress import JobCancelled
from webapp.experiments import live
from webapp.experiments.models import Job, JobMetric
from webapp.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

# How often (seconds) to look for a cancel request; reading it costs one Redis round trip.
CANCEL_CHECK_INTERVAL = 0.5


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
            Job.objects.filter(id=self.job_id, status=Job.Status.RUNNING).update(
                progress=self.fraction, message=self.message, updated_at=timezone.now()
            )
        self.check_cancelled()

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        values = {name: float(value) for name, value in metrics.items()}
        self._log(f"Epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
        JobMetric.objects.update_or_create(job_id=self.job_id, epoch=epoch, defaults={"values": values})
        self.check_cancelled()

    def set_device(self, device: str) -> None:
        Job.objects.filter(id=self.job_id).update(device=device[:200])

    def check_cancelled(self) -> None:
        now = self._clock()
        if now - self._last_cancel_check < CANCEL_CHECK_INTERVAL:
            return
        self._last_cancel_check = now
        try:
            requested = live.is_cancel_requested(self.job_id)
        except REDIS_ERRORS:
            # Redis is the fast path; the database flag is the durable one.
            requested = Job.objects.filter(id=self.job_id, cancel_requested=True).exists()
        if requested:
            raise JobCancelled()

    def _log_phase(self, message: str) -> None:
        """Log a message when its phase changes ("Epoch 3/10 · batch 4/9 · ..." counts as "Epoch 3/10")."""
        phase = (message or "").split(" · ")[0]
        if phase and phase != self._phase:
            self._phase = phase
            self._log(message)

    def _log(self, line: str) -> None:
        try:
            live.append_log(self.job_id, line)
        except REDIS_ERRORS:
            pass

    def _publish(self) -> None:
        try:
            live.publish(self.job_id, self.fraction, self.message)
        except REDIS_ERRORS as exc:  # progress is best-effort; the job itself goes on
            log.warning("Could not publish progress of job %s: %s", self.job_id, exc)
