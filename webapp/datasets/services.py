"""Making datasets: from a finished chunked upload, a multipart file, or a built-in source.

Each path ends the same way: the archive sits in the dataset's folder and an ingestion job
is queued. Redis is checked first, so an outage refuses the request before anything is
written.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.datasets.checks import LOOKS_LIKE_CLASSIFICATION
from webapp.datasets.content import content_key
from webapp.datasets.models import Dataset, Upload, uploads_root
from webapp.jobs import limits
from webapp.jobs.launch import QueueUnavailable, cancel_job, launch_job
from webapp.jobs.limits import LaunchRefused
from webapp.jobs.models import Job
from webapp.redis_client import redis_problem

COPY_BUFFER = 1024 * 1024
# An upload nobody has added to for this long is removed when its owner starts another.
ABANDONED_AFTER = timedelta(days=7)


class UploadRejected(Exception):
    """A request that cannot be taken; the message is written for the person who sent it."""

    def __init__(self, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.status = status
        self.extra = extra


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_size(size: int) -> None:
    if size > settings.MAX_UPLOAD_SIZE:
        raise UploadRejected(
            f"This file is {human_size(size)}; the largest upload allowed here is "
            f"{human_size(settings.MAX_UPLOAD_SIZE)}.", status=413)


def start_upload(owner, filename: str, size: int) -> Upload:
    if size <= 0:
        raise UploadRejected("The file is empty.")
    check_size(size)
    check_storage(owner, size)
    uploads_root().mkdir(parents=True, exist_ok=True)
    for stale in Upload.objects.filter(owner=owner, updated_at__lt=timezone.now() - ABANDONED_AFTER):
        discard_upload(stale)
    upload = Upload.objects.create(owner=owner, filename=Path(filename).name[:255] or "upload.zip", size=size)
    upload.path.touch()
    return upload


def append_chunk(upload: Upload, start: int, end: int, total: int, stream) -> Upload:
    """Append bytes start..end (inclusive) read from `stream`; they must continue the file.

    A chunk that does not start where the file ends is refused with the current offset, so
    a client that lost track (a dropped connection, a reload) resumes from there. A lock on
    the partial file serialises a retried chunk with the first try still being written.
    """
    if total != upload.size:
        raise UploadRejected(f"This upload was started for {upload.size} bytes, not {total}.")
    if end < start or end >= upload.size:
        raise UploadRejected("The chunk's byte range lies outside the file.")
    expected = end - start + 1
    written = 0
    with open(upload.path, "r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        upload.refresh_from_db()
        if start != upload.offset:
            raise UploadRejected("This chunk does not continue the upload; resume from the offset given.",
                                 status=409, offset=upload.offset)
        handle.seek(start)
        while written < expected:
            block = stream.read(min(COPY_BUFFER, expected - written))
            if not block:
                break
            handle.write(block)
            written += len(block)
        handle.truncate(start + written)
        handle.flush()
        # Whatever arrived counts, even a cut-off chunk: the client resumes from the new offset.
        Upload.objects.filter(pk=upload.pk, offset=start).update(offset=start + written, updated_at=timezone.now())
    upload.refresh_from_db()
    if written < expected:
        raise UploadRejected("The chunk arrived incomplete; resume from the offset given.",
                             status=409, offset=upload.offset)
    return upload


def _new_dataset(owner, name: str, kind: str, **fields) -> Dataset:
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    dataset = Dataset.objects.create(owner=owner, name=name[:200], kind=kind, **fields)
    dataset.directory.mkdir(parents=True, exist_ok=True)
    return dataset


def _start_ingestion(dataset: Dataset) -> Dataset:
    try:
        launch_job(dataset.owner, Job.Kind.INGEST, {"dataset_name": dataset.name}, dataset=dataset)
    except (QueueUnavailable, LaunchRefused) as exc:
        dataset.remove_files()
        dataset.delete()
        if isinstance(exc, LaunchRefused):
            raise UploadRejected(str(exc), status=exc.status) from None
        raise
    return dataset


def check_storage(owner, adding: int) -> None:
    """The owner's storage quota, as an UploadRejected the upload endpoints already answer."""
    try:
        limits.check_storage(owner, adding)
    except LaunchRefused as exc:
        raise UploadRejected(str(exc), status=exc.status) from None


def dataset_from_upload(owner, upload: Upload, name: str, kind: str) -> Dataset:
    if not upload.complete:
        raise UploadRejected(f"The upload is not finished yet ({human_size(upload.offset)} of "
                             f"{human_size(upload.size)} received).")
    with transaction.atomic():
        dataset = _new_dataset(owner, name or Path(upload.filename).stem, kind,
                               original_filename=upload.filename, archive_bytes=upload.size)
        os.replace(upload.path, dataset.archive_path)
        upload.delete()
    return _start_ingestion(dataset)


def dataset_from_file(owner, uploaded_file, name: str, kind: str) -> Dataset:
    """A multipart upload: Django already streamed it to DATA_DIR/tmp (or memory if small)."""
    check_size(uploaded_file.size)
    check_storage(owner, uploaded_file.size)
    dataset = _new_dataset(owner, name or Path(uploaded_file.name).stem, kind,
                           original_filename=Path(uploaded_file.name).name[:255],
                           archive_bytes=uploaded_file.size)
    temporary = getattr(uploaded_file, "temporary_file_path", None)
    if temporary:
        shutil.move(temporary(), dataset.archive_path)
    else:
        with open(dataset.archive_path, "wb") as out:
            for chunk in uploaded_file.chunks():
                out.write(chunk)
    return _start_ingestion(dataset)


def dataset_from_source(owner, source: str, name: str, kind: str) -> Dataset:
    """A built-in or reference dataset: the ingestion job makes or fetches the archive itself."""
    return _start_ingestion(_new_dataset(owner, name, kind, source=source))


def existing_source(owner, source: str) -> Dataset | None:
    """The owner's dataset already made from this one-click source (ready or being read), so "Add" twice
    opens it instead of making a silent duplicate; a failed one does not count (adding again retries)."""
    return (Dataset.objects.filter(owner=owner, source=source).exclude(status=Dataset.Status.FAILED)
            .order_by("-created_at", "-id").first())


def read_again(dataset: Dataset, kind: str) -> Dataset:
    """Read a failed dataset's kept archive again as `kind` (class folders uploaded as captions).

    Only an archive ingestion kept for this (the "looks_like_classification" warning) can be read
    again; anything else was removed when the dataset failed and must be uploaded again.
    """
    if dataset.status != Dataset.Status.FAILED or not dataset.warning(LOOKS_LIKE_CLASSIFICATION) \
            or not dataset.archive_path.is_file():
        raise UploadRejected("Only a dataset whose archive was kept after it failed can be read again; "
                             "upload the archive again instead.", status=409)
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    try:
        with transaction.atomic():
            Dataset.objects.filter(pk=dataset.pk).update(kind=kind, status=Dataset.Status.PENDING, error="",
                                                         warnings=[])
            dataset.refresh_from_db()
            launch_job(dataset.owner, Job.Kind.INGEST, {"dataset_name": dataset.name}, dataset=dataset)
    except LaunchRefused as exc:
        raise UploadRejected(str(exc), status=exc.status) from None
    return dataset


def delete_dataset(dataset: Dataset) -> None:
    """Remove the files and the row; jobs that used it keep their records (dataset set to null).

    Cached features of its images go too, unless another dataset holds the same images.
    """
    from jobs.ml.features import FeatureStore  # a plain file store: importing it loads no TensorFlow

    for job in dataset.jobs.filter(status__in=Job.ACTIVE):
        cancel_job(job.id)
    key = content_key(dataset) if dataset.status == Dataset.Status.READY else None
    content_hash = dataset.content_hash
    dataset.remove_files()
    dataset.delete()
    others = Dataset.objects.filter(content_hash=content_hash, status=Dataset.Status.READY) if content_hash else []
    if key and not any(content_key(other) == key for other in others):
        FeatureStore(Path(settings.DATA_DIR) / "features").remove_content(key)


def discard_upload(upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
    upload.delete()
