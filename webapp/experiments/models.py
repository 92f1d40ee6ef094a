"""Jobs and their per-epoch metrics: the record every background run leaves behind."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.choices import BaseChoiceIterator

from jobs.ml import formats as model_formats  # names, labels and flags only: no TensorFlow


class RegisteredFormats(BaseChoiceIterator):
    """`Backbone.format`'s choices, read from `jobs.ml.formats` each time they are used, so a registered
    format is valid with no edit here. Lazy yet not a callable: Django compares it to the migration's list
    (equal while the formats and labels are), where a callable would be written into a new migration."""

    def __iter__(self):
        yield from model_formats.choices()


class Project(models.Model):
    """A named group of runs. Every job belongs to one: "Default" unless its owner chose another."""

    DEFAULT = "Default"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_project_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def default_for(cls, user) -> Project:
        return cls.objects.get_or_create(owner=user, name=cls.DEFAULT)[0]


class Tag(models.Model):
    """A label a user puts on runs ("baseline", "augmented"); a row per (owner, name), so filtering
    by tag is a join on any database."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_tag_name_per_owner")]

    def __str__(self) -> str:
        return self.name


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

    class Kind(models.TextChoices):
        SYSTEM_CHECK = "system_check", "System check"
        INGEST = "ingest_dataset", "Dataset ingestion"
        TRAIN = "train", "Training"
        EXTRACT_FEATURES = "extract_features", "Feature extraction"
        TRAIN_CAPTIONER = "train_captioner", "Caption training"
        EXPORT_MODEL = "export_model", "Model export"

    class Failure(models.TextChoices):
        INPUTS = "inputs", "Its inputs were refused"  # a UserFacingError: the same inputs fail the same way
        INTERNAL = "internal", "An internal error"
        TIME_LIMIT = "time_limit", "It ran past its time limit"
        WORKER_LOST = "worker_lost", "Its worker died"
        NOT_STARTED = "not_started", "It never reached a worker"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
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
    # (webapp.experiments.resumable): blank while it has not failed, or for a failure of unknown cause.
    failure = models.CharField(max_length=16, choices=Failure.choices, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Celery node that ran it.")
    device = models.CharField(max_length=200, blank=True, help_text="CPU or GPU it ran on.")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The experiment record (workflow 6): where it is filed, and what a person wrote about it.
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    tags = models.ManyToManyField(Tag, blank=True, related_name="jobs")
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
        ordering = ["job", "epoch"]
        constraints = [models.UniqueConstraint(fields=["job", "epoch"], name="one_metric_per_epoch")]

    def __str__(self) -> str:
        return f"Job {self.job_id} epoch {self.epoch}"

    def as_dict(self) -> dict:
        return {"epoch": self.epoch, **self.values}


class TrainedModel(models.Model):
    """A model a training job produced: its files live in DATA_DIR/models/<id>/.

    model.keras takes raw 0..255 pixels at image_size x image_size x channels (the rescaling
    is inside the model); metadata.json repeats the label map and that preprocessing so the
    file is usable outside VisionLab too.
    """

    class Task(models.TextChoices):
        CLASSIFY = "classify", "Image classifier"
        CAPTION = "caption", "Caption model"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trained_models")
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="trained_model")
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.CLASSIFY)
    # The feature extractor the model reads (transfer and caption models): {"name", "layer", "weights", ...}.
    backbone = models.JSONField(default=dict, blank=True)
    # One plain sentence on what it learned from, for the shared demo page.
    trained_on = models.CharField(max_length=300, blank=True)
    dataset = models.ForeignKey("datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="trained_models")
    name = models.CharField(max_length=200)
    architecture = models.CharField(max_length=50)
    class_names = models.JSONField(default=list)
    image_size = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    test_accuracy = models.FloatField(null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def directory(self):
        from pathlib import Path

        return Path(settings.DATA_DIR) / "models" / str(self.pk)

    @property
    def file_path(self):
        return self.directory / "model.keras"

    @property
    def exportable(self) -> bool:
        """Whether its backbone (none: a model trained from scratch) joins the head in one exportable graph."""
        return model_formats.of_backbone(self.backbone).exportable


class Backbone(models.Model):
    """A feature extractor a user uploaded (.keras, .h5 or .tflite), kept in DATA_DIR/backbones/<id>/.

    What the file is (input size, channels, the output chosen, its width) was read from the
    file by the inference worker at upload; the SHA-256 is part of every feature-cache key, so
    a replaced file never serves stale features. Its `format` is a `jobs.ml.formats` name; the
    choices are read from that registry whenever they are needed, so a format registered there
    is a valid value here with no other change (the migration holds the same list).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backbones")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=8, choices=RegisteredFormats())
    filename = models.CharField(max_length=255, help_text="The name the file was uploaded with.")
    output = models.CharField(max_length=255, blank=True, help_text="Layer or tensor the features come from.")
    input_size = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField(default=3)
    output_dim = models.PositiveIntegerField()
    feature_shape = models.JSONField(default=list)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    input_scaling = models.JSONField(default=dict, blank=True, help_text=(
        "How 0..255 pixels are fed to it: jobs.ml.scaling.InputScaling.to_dict()."))
    scaling_source = models.CharField(max_length=200, blank=True, help_text="Why it has that scaling.")
    sanity = models.JSONField(default=dict, blank=True, help_text="The sanity check's report (jobs.ml.sanity).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """How jobs name it in `params.backbone`."""
        return f"backbones/{self.pk}"

    @property
    def directory(self):
        from pathlib import Path

        return Path(settings.DATA_DIR) / "backbones" / str(self.pk)

    @property
    def model_format(self) -> model_formats.ModelFormat:
        return model_formats.by_name(self.format)

    @property
    def file_path(self):
        return self.directory / f"backbone{self.model_format.suffix}"

    @property
    def kind(self) -> str:
        """The runtime its Backbone record names (jobs.ml.backbones.Backbone.kind): "keras" for .keras and .h5."""
        return self.model_format.kind

    @property
    def labels_path(self):
        """The class names the owner uploaded with the model, one per line (optional)."""
        return self.directory / "labels.txt"
