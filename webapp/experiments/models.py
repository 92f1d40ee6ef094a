"""What experiments keep around their runs: projects and tags, the models runs trained, and uploaded backbones.

The runs themselves are Job rows of the job platform (webapp.jobs.models)."""

from __future__ import annotations

from pathlib import Path

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


class KeptInDataDir(models.Model):
    """What a trained model and an uploaded backbone share: listed newest first, shown by their name,
    and their files kept in a folder of their own, DATA_DIR/<data_folder>/<id>/."""

    data_folder = ""

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def directory(self) -> Path:
        return Path(settings.DATA_DIR) / self.data_folder / str(self.pk)


class TrainedModel(KeptInDataDir):
    """A model a training job produced: its files live in DATA_DIR/models/<id>/.

    model.keras takes raw 0..255 pixels at image_size x image_size x channels (the rescaling
    is inside the model); metadata.json repeats the label map and that preprocessing so the
    file is usable outside VisionLab too.
    """

    class Task(models.TextChoices):
        CLASSIFY = "classify", "Image classifier"
        CAPTION = "caption", "Caption model"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trained_models")
    job = models.OneToOneField("job_platform.Job", on_delete=models.CASCADE, related_name="trained_model")
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

    data_folder = "models"

    @property
    def file_path(self):
        return self.directory / "model.keras"

    @property
    def exports_directory(self):
        """Where its exports are written (jobs.exports) and downloaded from."""
        return self.directory / "exports"

    @property
    def exportable(self) -> bool:
        """Whether its backbone (none: a model trained from scratch) joins the head in one exportable graph."""
        return model_formats.of_backbone(self.backbone).exportable


class Backbone(KeptInDataDir):
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

    data_folder = "backbones"

    @property
    def key(self) -> str:
        """How jobs name it in `params.backbone`."""
        return f"backbones/{self.pk}"

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
