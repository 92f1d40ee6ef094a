"""Dataset ingestion: read an upload, a built-in or a reference dataset into images, splits and rows.

The platform starts it when a dataset arrives (webapp.datasets.services); nobody launches it by hand.
"""

from __future__ import annotations

import shutil

from rest_framework import serializers

from jobs.queues import Queue
from webapp.datasets.models import Dataset
from webapp.jobs.registry import JobKind, register


class IngestParams(serializers.Serializer):
    pass


@register
class IngestDataset(JobKind):
    name = "ingest_dataset"
    label = "Dataset ingestion"
    constant = "INGEST"
    work = "jobs.ingestion.ingest_dataset"
    time_limit = 6 * 3600
    grace = 120
    params = IngestParams
    queue = Queue.CPU
    public = False

    def lost(self, job, error: str) -> None:
        if job.dataset_id:
            _fail_dataset(job.dataset_id, error)


def _fail_dataset(dataset_id: int, error: str) -> None:
    """What a failed ingestion does to its dataset when its process could not: the reason, no partial data."""
    unfinished = (Dataset.Status.PENDING, Dataset.Status.INGESTING)
    dataset = Dataset.objects.filter(pk=dataset_id, status__in=unfinished).first()
    if dataset is None or not Dataset.objects.filter(pk=dataset_id, status__in=unfinished).update(
            status=Dataset.Status.FAILED, error=f"Reading the dataset did not finish. {error}"):
        return
    dataset.items.all().delete()
    shutil.rmtree(dataset.images_dir, ignore_errors=True)
    shutil.rmtree(dataset.thumbs_dir, ignore_errors=True)
    dataset.archive_path.unlink(missing_ok=True)
