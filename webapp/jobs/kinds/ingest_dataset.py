"""Dataset ingestion: read an upload, a built-in or a reference dataset into images, splits and rows.

The platform starts it when a dataset arrives (webapp.datasets.services); nobody launches it by hand.
"""

from __future__ import annotations

from rest_framework import serializers

from jobs.queues import Queue
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
