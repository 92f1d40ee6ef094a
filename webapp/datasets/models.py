"""Datasets, their items, and the chunked uploads they are made from.

A dataset's files live in DATA_DIR/datasets/<id>/ (images/, thumbs/, and the source archive
until ingestion has read it); the rows here are the index a page or a training job reads.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone


def datasets_root() -> Path:
    return Path(settings.DATA_DIR) / "datasets"


def uploads_root() -> Path:
    return Path(settings.DATA_DIR) / "uploads"


class Dataset(models.Model):
    class Kind(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        CAPTIONS = "captions", "Captions"

    class Status(models.TextChoices):
        PENDING = "pending"
        INGESTING = "ingesting"
        READY = "ready"
        FAILED = "failed"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    # "upload", "builtin:<name>" (generated offline) or "reference:<name>" (downloaded).
    source = models.CharField(max_length=100, default="upload")
    original_filename = models.CharField(max_length=255, blank=True)
    archive_bytes = models.BigIntegerField(default=0)
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    num_items = models.PositiveIntegerField(default=0)
    num_captions = models.PositiveIntegerField(default=0)
    classes = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(default=list, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    split_counts = models.JSONField(default=dict, blank=True)
    split_seed = models.PositiveIntegerField(default=0)
    has_split_files = models.BooleanField(default=False)
    # What ingestion found that will get in the way later, each {"code", "message", ...}: e.g.
    # "too_few_images" (a class too small for the split; a training launch is refused) or
    # "looks_like_classification" (class folders uploaded as captions; the page offers to read it so).
    warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.status})"

    @property
    def directory(self) -> Path:
        return datasets_root() / str(self.pk)

    @property
    def archive_path(self) -> Path:
        return self.directory / "source.zip"

    @property
    def images_dir(self) -> Path:
        return self.directory / "images"

    @property
    def thumbs_dir(self) -> Path:
        return self.directory / "thumbs"

    def remove_files(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def warning(self, code: str) -> dict | None:
        """The stored warning with this code, or None."""
        return next((w for w in self.warnings or [] if w.get("code") == code), None)


class DatasetItem(models.Model):
    """One image of a dataset, with what ingestion learned about it."""

    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    path = models.CharField(max_length=1024, help_text="Relative to the dataset's images/ folder.")
    original = models.CharField(max_length=1024, help_text="The member's path in the archive.")
    label = models.CharField(max_length=255, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    mode = models.CharField(max_length=16)
    format = models.CharField(max_length=16)
    checksum = models.CharField(max_length=64)
    thumbnail = models.CharField(max_length=1024)
    captions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["dataset", "label"]), models.Index(fields=["dataset", "split"])]

    def __str__(self) -> str:
        return self.path


class Upload(models.Model):
    """A chunked, resumable upload: the file grows in DATA_DIR/uploads/<id>.part until complete."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset}/{self.size})"

    @property
    def path(self) -> Path:
        return uploads_root() / f"{self.id}.part"

    @property
    def complete(self) -> bool:
        return self.offset >= self.size
