"""A trained classifier's exports: start one (a job on the cpu queue), list them with their figures, download.

An export is the newest `export_model` job of a model and format; its file sits in the model's folder
(jobs/exports.py). A row says how the file did in its own runtime against the original on the test images,
and whether that is within tolerance: an export that failed or strays is marked with its reason, and its
download is named as such, never offered as if it were fine.
"""

from __future__ import annotations

from django.http import FileResponse
from rest_framework import serializers

from jobs.ml.export_formats import FORMATS
from webapp.experiments.kinds.export_model import EXPORT_FORMATS
from webapp.experiments.models import TrainedModel
from webapp.jobs.models import Job

FIGURES = ("size", "test_accuracy", "original_accuracy", "accuracy_change", "agreement", "max_prob_diff",
           "latency_ms", "original_latency_ms", "images")


class ExportRequest(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)


class ExportRow(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)
    title = serializers.CharField()
    status = serializers.CharField(help_text="queued, running, succeeded, failed or cancelled (the export's job); "
                                             "out_of_tolerance when it ran but strays from the original.")
    job = serializers.IntegerField()
    progress = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True, help_text="Why it failed or strays, as a sentence.")
    size = serializers.IntegerField(allow_null=True)
    test_accuracy = serializers.FloatField(allow_null=True)
    original_accuracy = serializers.FloatField(allow_null=True)
    accuracy_change = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True)
    max_prob_diff = serializers.FloatField(allow_null=True)
    latency_ms = serializers.FloatField(allow_null=True)
    original_latency_ms = serializers.FloatField(allow_null=True)
    images = serializers.IntegerField(allow_null=True)
    download = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


def latest_jobs(model: TrainedModel) -> dict[str, Job]:
    """{format: the newest export job of `model` in that format}."""
    jobs = Job.objects.filter(owner=model.owner, kind=Job.Kind.EXPORT_MODEL, params__model=model.id).order_by("-id")
    latest: dict[str, Job] = {}
    for job in jobs:
        latest.setdefault(job.params.get("format"), job)
    return latest


def export_file(model: TrainedModel, fmt: str):

    return model.exports_directory / FORMATS[fmt][1]


def row(model: TrainedModel, job: Job) -> dict:

    fmt = job.params["format"]
    result = job.result if isinstance(job.result, dict) else {}
    ran = job.status == Job.Status.SUCCEEDED
    status = "out_of_tolerance" if ran and not result.get("ok", True) else job.status
    present = ran and export_file(model, fmt).is_file()
    return {
        "format": fmt, "title": FORMATS[fmt][0], "status": status, "job": job.id, "progress": job.progress,
        "message": job.message, "error": job.error or result.get("problem", ""),
        **{name: result.get(name) for name in FIGURES},
        "download": f"/api/models/{model.id}/exports/{fmt}/download/" if present else None,
        "created_at": job.created_at,
    }


def rows(model: TrainedModel) -> list[dict]:
    latest = latest_jobs(model)
    return [row(model, latest[fmt]) for fmt in EXPORT_FORMATS if fmt in latest]


def download(model: TrainedModel, fmt: str):
    """The file of the newest export in `fmt`, or None when there is none that ran."""
    job = latest_jobs(model).get(fmt)
    path = export_file(model, fmt)
    if job is None or job.status != Job.Status.SUCCEEDED or not path.is_file():
        return None
    result = job.result if isinstance(job.result, dict) else {}
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in model.name)[:80]
    flag = "" if result.get("ok", True) else "-OUT-OF-TOLERANCE"
    return FileResponse(open(path, "rb"), as_attachment=True, content_type="application/octet-stream",
                        filename=f"{safe}-{model.id}{flag}-{path.name}")
