"""The ingestion job: archive -> verified images, thumbnails, items in the database, split.

The work itself is `jobs.ml.datasets.ingest.ingest_archive` (no Django); this module makes or
fetches the archive for built-in sources, stores items in batches as they come (memory stays
flat), assigns the stratified split, and records the outcome on the dataset.
"""

from __future__ import annotations

import logging
import shutil

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs.runner import UserFacingError
from webapp.datasets.checks import LOOKS_LIKE_CLASSIFICATION, too_few_warning
from webapp.datasets.models import Dataset, DatasetItem
from webapp.jobs.public import relative_paths

log = logging.getLogger(__name__)

# Share of the job's progress bar spent on making/fetching a built-in archive.
SOURCE_SHARE = 0.3


def _limits():
    from jobs.ml.datasets.ingest import IngestLimits

    return IngestLimits(
        max_inflated_bytes=settings.INGEST_MAX_INFLATED,
        max_files=settings.INGEST_MAX_FILES,
        max_pixels=settings.INGEST_MAX_PIXELS,
        threads=settings.INGEST_THREADS,
    )


def _prepare_archive(dataset: Dataset, reporter) -> float:
    """Write the archive of a built-in or reference source; returns the progress used so far."""
    kind, _, name = dataset.source.partition(":")
    if kind == "upload":
        return 0.0
    from jobs.ml.datasets import reference, synthetic

    if kind == "builtin":
        reporter.progress(0.02, f"Generating {synthetic.BUILTIN_OFFLINE[name].title}")
        synthetic.BUILTIN_OFFLINE[name].make(dataset.archive_path)
    elif kind == "reference":
        try:
            reference.fetch_reference_zip(
                name, dataset.archive_path, settings.DATA_DIR / "keras",
                mirror=settings.DATASET_MIRROR or None,
                progress=lambda f, m: reporter.progress(f * SOURCE_SHARE, m),
            )
        except reference.ReferenceUnavailable as exc:
            raise UserFacingError(str(exc)) from exc
    else:
        raise UserFacingError(f"Unknown dataset source {dataset.source!r}.")
    dataset.archive_bytes = dataset.archive_path.stat().st_size
    Dataset.objects.filter(pk=dataset.pk).update(archive_bytes=dataset.archive_bytes)
    return SOURCE_SHARE


def _store(dataset: Dataset, items) -> None:
    DatasetItem.objects.bulk_create([
        DatasetItem(dataset=dataset, path=i.path, original=i.original, label=i.label, split=i.split or "",
                    width=i.width, height=i.height, mode=i.mode, format=i.format, checksum=i.checksum,
                    thumbnail=i.thumbnail, captions=i.captions)
        for i in items
    ], batch_size=500)


def _assign_splits(dataset: Dataset) -> dict[str, int]:
    from jobs.ml.datasets.splits import stratified_split

    items = dataset.items.all()
    if not dataset.has_split_files:
        # Keyed by the stored path, not the row id: the same archive gets the same split on
        # every upload, so runs on re-uploaded data stay comparable.
        by_label: dict[str, list[str]] = {}
        ids: dict[str, int] = {}
        for item_id, label, path in items.values_list("id", "label", "path").iterator(chunk_size=5000):
            by_label.setdefault(label, []).append(path)
            ids[path] = item_id
        assignment = stratified_split(by_label, seed=dataset.split_seed)
        by_split: dict[str, list[int]] = {}
        for path, split in assignment.items():
            by_split.setdefault(split, []).append(ids[path])
        with transaction.atomic():
            for split, ids in by_split.items():
                for start in range(0, len(ids), 900):  # SQLite's variable limit
                    items.filter(id__in=ids[start:start + 900]).update(split=split)
    else:
        # Split files name only some images; the rest train.
        items.filter(split="").update(split=DatasetItem.Split.TRAIN)
    return {s: items.filter(split=s).count() for s in DatasetItem.Split.values}


def ingest_dataset(job, reporter) -> dict:
    from jobs.ml.datasets.ingest import UnusableDataset, ingest_archive

    dataset = job.dataset
    if dataset is None:
        raise UserFacingError("The dataset was deleted before it could be read.")
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.INGESTING, error="", warnings=[])
    try:
        base = _prepare_archive(dataset, reporter)
        dataset.items.all().delete()  # a retried job starts clean
        shutil.rmtree(dataset.images_dir, ignore_errors=True)
        shutil.rmtree(dataset.thumbs_dir, ignore_errors=True)
        result = ingest_archive(
            dataset.archive_path, dataset.directory, dataset.kind, limits=_limits(),
            progress=lambda f, m: reporter.progress(base + f * (0.95 - base), m),
            on_items=lambda batch: _store(dataset, batch),
        )
        dataset.has_split_files = result.has_split_files
        reporter.progress(0.96, "Assigning the train, validation and test split")
        split_counts = _assign_splits(dataset)
    except BaseException as exc:
        reason = _fail(dataset, exc)
        if isinstance(exc, UnusableDataset | UserFacingError):
            raise UserFacingError(reason) from exc
        raise
    warning = too_few_warning(dataset)
    Dataset.objects.filter(pk=dataset.pk).update(
        status=Dataset.Status.READY, num_items=result.num_items, num_captions=result.num_captions,
        classes=result.classes, skipped=result.skipped, stats=result.stats, content_hash=result.content_hash,
        split_counts=split_counts, has_split_files=result.has_split_files, ready_at=timezone.now(),
        warnings=[warning] if warning else [],
    )
    dataset.archive_path.unlink(missing_ok=True)  # the images are kept; the archive is not needed
    if not Dataset.objects.filter(pk=dataset.pk).exists():  # deleted while we worked
        dataset.remove_files()
    return {"dataset": dataset.pk, "num_items": result.num_items, "skipped": len(result.skipped),
            "content_hash": result.content_hash, "split": split_counts}


def _fail(dataset: Dataset, exc: BaseException) -> str:
    """Record why the dataset failed (a sentence naming the user's file, no server path, ending with
    advice that fits where the dataset came from) and remove what was written; returns the sentence.

    An archive of class folders uploaded as captions keeps its archive: the dataset's page offers to
    read it again as classification, without a second upload.
    """
    from jobs.ml.datasets.ingest import LooksLikeClassification, UnusableDataset
    from jobs.ml.progress import JobCancelled

    warnings = []
    if isinstance(exc, UnusableDataset | UserFacingError):
        reason = _naming_the_file(dataset, str(exc)) + _advice(dataset, exc)
    elif isinstance(exc, JobCancelled):
        reason = "Reading the dataset was cancelled."
    else:
        log.exception("Ingestion of dataset %s failed", dataset.pk)
        reason = (f"The dataset could not be read because of an internal error ({type(exc).__name__})."
                  + _advice(dataset, exc))
    reason = relative_paths(reason)
    if isinstance(exc, LooksLikeClassification):
        warnings.append({"code": LOOKS_LIKE_CLASSIFICATION, "message": reason, "classes": exc.classes[:50]})
    dataset.items.all().delete()
    shutil.rmtree(dataset.images_dir, ignore_errors=True)
    shutil.rmtree(dataset.thumbs_dir, ignore_errors=True)
    if not warnings:
        dataset.archive_path.unlink(missing_ok=True)
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.FAILED, error=reason, warnings=warnings)
    return reason


def _naming_the_file(dataset: Dataset, reason: str) -> str:
    """The archive's sentences say "This file"; the person knows it by the name they uploaded."""
    if dataset.source == "upload" and dataset.original_filename and reason.startswith("This file "):
        return f"“{dataset.original_filename}” " + reason[len("This file "):]
    return reason


def _advice(dataset: Dataset, exc: BaseException) -> str:
    """What to do next, for a dataset one click made: an upload's sentences already say what to fix."""
    kind, _, _ = dataset.source.partition(":")
    if kind == "reference":
        # jobs.ml.datasets.reference says so in these words when no download could connect (tested there).
        if "cannot reach the internet" in str(exc):
            return " This server cannot reach the internet: upload the dataset as a zip of class folders instead."
        return " Try adding it again later, or upload the dataset as a zip of class folders instead."
    if kind == "builtin":
        return (" It is made on this server without internet, so this is a fault of the server: try adding it "
                "again, and if it fails again, ask the administrator to look at the worker's log.")
    return ""
