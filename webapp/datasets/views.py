"""Dataset pages: the list with upload and one-click datasets, one dataset, its image files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.datasets import services
from webapp.datasets.checks import LOOKS_LIKE_CLASSIFICATION, TOO_FEW_IMAGES
from webapp.datasets.models import Dataset
from webapp.datasets.serializers import DatasetSerializer
from webapp.datasets.sources import SOURCES
from webapp.datasets.suggestions import suggestion_for
from webapp.jobs import live
from webapp.jobs.launch import QueueUnavailable
from webapp.jobs.models import Job
from webapp.redis_client import redis_problem

SAMPLES_PER_CLASS = 8
RUNS_SHOWN = 10  # the newest runs on a dataset; the jobs list, filtered to it, has them all
MAX_SAMPLE_CLASSES = 40


@login_required
def datasets_page(request):
    return render(request, "datasets/list.html", {
        "datasets": Dataset.objects.filter(owner=request.user),
        "sources": SOURCES.values(),
        "queue_problem": redis_problem(),
        "max_upload_size": settings.MAX_UPLOAD_SIZE,
        "kinds": Dataset.Kind.choices,
    })


@login_required
@require_POST
def add_source(request):
    source = SOURCES.get(request.POST.get("name", ""))
    if source is None:
        messages.error(request, "That dataset is not one VisionLab knows.")
        return redirect("datasets")
    existing = services.existing_source(request.user, source.source)
    if existing is not None:  # no silent duplicate: open the one already there
        messages.info(request, f"You already have {source.title}, added "
                               f"{existing.created_at:%-d %b %Y}: here it is. To add a second copy, "
                               "delete this one first or upload it as a zip.")
        return redirect("dataset", dataset_id=existing.id)
    try:
        dataset = services.dataset_from_source(request.user, source.source, source.title, source.kind)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("datasets")
    return redirect("dataset", dataset_id=dataset.id)


@login_required
def dataset_page(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, id=dataset_id, owner=request.user)
    samples = []
    if dataset.status == Dataset.Status.READY:
        if dataset.kind == Dataset.Kind.CLASSIFICATION:
            for entry in dataset.classes[:MAX_SAMPLE_CLASSES]:
                items = dataset.items.filter(label=entry["name"])[:SAMPLES_PER_CLASS]
                samples.append({"label": entry["name"], "count": entry["count"], "items": items})
        else:
            samples.append({"label": "", "count": dataset.num_items, "items": dataset.items.all()[:24]})
    runs = dataset.jobs.exclude(kind=Job.Kind.INGEST).select_related("trained_model")
    return render(request, "datasets/detail.html", {
        "dataset": dataset,
        "runs": runs[:RUNS_SHOWN],
        "run_count": runs.count(),
        "data": DatasetSerializer(dataset, context={"request": request, "live": live.read_many(
            list(dataset.jobs.filter(status=Job.Status.RUNNING).values_list("id", flat=True)))}).data,
        "samples": samples,
        "more_classes": max(0, len(dataset.classes) - MAX_SAMPLE_CLASSES),
        "too_few_images": dataset.warning(TOO_FEW_IMAGES) if dataset.status == Dataset.Status.READY else None,
        "suggestion": suggestion_for(dataset) if dataset.status == Dataset.Status.READY else None,
        "read_as_classification": dataset.warning(LOOKS_LIKE_CLASSIFICATION)
        if dataset.status == Dataset.Status.FAILED and dataset.archive_path.is_file() else None,
    })


@login_required
@require_POST
def read_as(request, dataset_id: int):
    """The failed dataset page's "Read it as Classification": the kept archive, read again as that kind."""
    dataset = get_object_or_404(Dataset, id=dataset_id, owner=request.user)
    kind = request.POST.get("kind", "")
    if kind not in Dataset.Kind.values:
        messages.error(request, "Choose classification or captions.")
        return redirect("dataset", dataset_id=dataset.id)
    try:
        services.read_again(dataset, kind)
    except (services.UploadRejected, QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect("dataset", dataset_id=dataset.id)


@login_required
@require_POST
def delete_dataset(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, id=dataset_id, owner=request.user)
    name = dataset.name
    services.delete_dataset(dataset)
    messages.success(request, f"Deleted the dataset “{name}” and its files. "
                              "Jobs that used it keep their records.")
    return redirect("datasets")


def _inside(root: Path, relative: str) -> Path:
    """`root/relative`, refusing anything that would leave `root` (.., absolute, symlinks out)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise Http404("No such file.")
    return path


@login_required
def thumbnail(request, dataset_id: int, path: str):
    dataset = get_object_or_404(Dataset, id=dataset_id, owner=request.user)
    response = FileResponse(open(_inside(dataset.thumbs_dir, path), "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
def image(request, dataset_id: int, item_id: int):
    dataset = get_object_or_404(Dataset, id=dataset_id, owner=request.user)
    item = get_object_or_404(dataset.items, id=item_id)
    response = FileResponse(open(_inside(dataset.images_dir, item.path), "rb"))
    response["Cache-Control"] = "private, max-age=86400"
    return response
