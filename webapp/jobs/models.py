"""Jobs and their per-epoch metrics: the row every background run leaves behind, whatever its kind.

The apps that run work (datasets, experiments, sweeps) point at Job; Job names their rows only by
string references, so this module imports none of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.jobs import registry


class Job(models.Model):
    """One unit of background work, owned by a user, run by one Celery worker.

    The status moves queued -> running -> succeeded | failed | cancelled (| pruned, for a sweep's
    trial that its pruner stopped early), and only through
    conditional updates (`claim`, `finish`), so a redelivered message or a late cancel can
    never move a job backwards or run it twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        PRUNED = "pruned"

    # The kinds are registered entries (webapp.jobs.registry); Job.Kind.TRAIN reads their names from there.
    Kind = registry.KindNames()

    class Failure(models.TextChoices):
        INPUTS = "inputs", "Its inputs were refused"  # a UserFacingError: the same inputs fail the same way
        INTERNAL = "internal", "An internal error"
        TIME_LIMIT = "time_limit", "It ran past its time limit"
        WORKER_LOST = "worker_lost", "Its worker died"
        NOT_STARTED = "not_started", "It never reached a worker"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=32, choices=registry.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    queue = models.CharField(max_length=32, default="cpu")
    params = models.JSONField(default=dict, blank=True)
    # The dataset a job read; a deleted dataset leaves the job's record (and its params) intact.
    dataset = models.ForeignKey("datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="jobs")
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Why a failed job failed, in the categories that decide whether Resume can help
    # (webapp.jobs.resumable): blank while it has not failed, or for a failure of unknown cause.
    failure = models.CharField(max_length=16, choices=Failure.choices, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Celery node that ran it.")
    device = models.CharField(max_length=200, blank=True, help_text="CPU or GPU it ran on.")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The experiment record (workflow 6): where it is filed, and what a person wrote about it.
    project = models.ForeignKey("experiments.Project", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="jobs")
    tags = models.ManyToManyField("experiments.Tag", blank=True, related_name="jobs")
    note = models.TextField(blank=True, max_length=2000)
    # What it takes to repeat it: code and library versions, device, seed, the dataset's content
    # hash, and the job it repeats (`rerun_of`), written at launch and when it ran.
    record = models.JSONField(default=dict, blank=True)
    # Summary numbers, set when the job ends (webapp.experiments.summary), so that a list of ten
    # thousand runs sorts and filters in the database instead of reading every epoch.
    test_accuracy = models.FloatField(null=True, blank=True)
    best_val_accuracy = models.FloatField(null=True, blank=True)
    best_val_loss = models.FloatField(null=True, blank=True)
    bleu4 = models.FloatField(null=True, blank=True)
    best_epoch = models.PositiveIntegerField(null=True, blank=True)
    epochs_run = models.PositiveIntegerField(null=True, blank=True)
    curve = models.JSONField(default=dict, blank=True, help_text=(
        'The validation curve for sparklines: {"metric", "points": at most 40 [epoch, value], the best kept}.'))
    # A sweep's trial (Optuna's trial number), or a run the sweep promoted (no number).
    sweep = models.ForeignKey("sweeps.Sweep", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    trial_number = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "experiments_job"  # made when jobs lived in the experiments app; the move kept the table
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def task_id(self) -> str:
        """The Celery task id: deterministic, so a job is one message and can be revoked."""
        return f"job-{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    @classmethod
    def claim(cls, job_id: int, worker: str) -> bool:
        """Move a queued job to running for `worker`; False if someone else got it first."""
        return bool(
            cls.objects.filter(id=job_id, status=cls.Status.QUEUED, cancel_requested=False).update(
                status=cls.Status.RUNNING,
                worker=worker,
                started_at=timezone.now(),
                progress=0.0,
                message="Starting",
                updated_at=timezone.now(),
            )
        )

    @classmethod
    def finish(cls, job_id: int, status: str, **fields) -> bool:
        """Set a final status on a job that is still active; False if it already ended."""
        now = timezone.now()
        return bool(
            cls.objects.filter(id=job_id, status__in=cls.ACTIVE).update(
                status=status, finished_at=now, updated_at=now, **fields
            )
        )


class JobMetric(models.Model):
    """The metrics of one epoch of one job (loss, accuracy, val_loss, ... as reported)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    epoch = models.PositiveIntegerField()
    values = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "experiments_jobmetric"
        ordering = ["job", "epoch"]
        constraints = [models.UniqueConstraint(fields=["job", "epoch"], name="one_metric_per_epoch")]

    def __str__(self) -> str:
        return f"Job {self.job_id} epoch {self.epoch}"

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, **self.values}
