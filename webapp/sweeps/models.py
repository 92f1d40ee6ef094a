"""A sweep: the search a person asked for, and where it stands. Its trials are Job rows (Job.sweep)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Sweep(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"  # every trial it will run has ended
        CANCELLED = "cancelled"

    class Method(models.TextChoices):
        GRID = "grid", "Grid"
        RANDOM = "random", "Random"
        TPE = "tpe", "Bayesian (TPE)"

    class Pruning(models.TextChoices):
        MEDIAN = "median", "Median"
        HYPERBAND = "hyperband", "Hyperband"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sweeps")
    project = models.ForeignKey("experiments.Project", on_delete=models.PROTECT, related_name="sweeps")
    dataset = models.ForeignKey("datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="sweeps")
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=32)  # the trials' Job.Kind
    # The validated parameters every trial shares (the kind's serializer output, dataset and
    # architecture included), and the search space ({name: {"type", ...}}, webapp.sweeps.space).
    params = models.JSONField(default=dict)
    space = models.JSONField(default=dict)
    method = models.CharField(max_length=16, choices=Method.choices)
    trials = models.PositiveIntegerField(help_text="How many trials to run in all.")
    parallel = models.PositiveIntegerField(default=1, help_text="At most this many trials queued or running.")
    metric = models.CharField(max_length=32, help_text="The objective: a recorded metric.")
    direction = models.CharField(max_length=8, choices=[("max", "max"), ("min", "min")])
    pruning = models.CharField(max_length=16, choices=Pruning.choices, blank=True)
    budget_seconds = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="No trial starts once the sweep has run this long.")
    queue = models.CharField(max_length=32, default="cpu")
    seed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    message = models.CharField(max_length=300, blank=True)
    study_name = models.CharField(max_length=100, unique=True)
    estimate = models.JSONField(default=dict, blank=True, help_text="The time estimate shown before launch.")
    importance = models.JSONField(default=dict, blank=True, help_text="{param: share}, Optuna's evaluator.")
    # A lease instead of a lock: whoever advances the sweep holds it for a short while, on any database.
    advancing_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Sweep #{self.pk} ({self.status})"

    @property
    def title(self) -> str:
        data = self.dataset.name if self.dataset else "a deleted dataset"
        return self.name or f"{self.params.get('architecture', 'merge')} on {data}"

    @property
    def epochs(self) -> int:
        """The most epochs a trial trains (the space's top when epochs is searched)."""
        spec = self.space.get("epochs")
        if spec:
            return int(max(spec["values"]) if spec["type"] == "choice" else spec["high"])
        return int(self.params.get("epochs") or 1)


def refusal_to_delete(model) -> str | None:
    """Why trained model `model` cannot be deleted while a sweep runs, or None (webapp.experiments.deletion asks)."""
    key = f"models/{model.pk}"
    sweep = Sweep.objects.filter(owner=model.owner, status=Sweep.Status.RUNNING, params__backbone=key).first()
    if sweep is None:
        return None
    return (f"Sweep #{sweep.pk} is running and its trials read “{model.name}” as their backbone; "
            "cancel the sweep or wait for it to end, then delete the model.")
