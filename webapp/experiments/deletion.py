"""Deleting trained models and jobs, and refusing to while something live still needs them.

Deleting cannot be undone, so each delete first asks `*_refusal` for a sentence saying why not
(None when it may go ahead): the API answers 409 with it and the pages show it. What may block:

- a model: its own training job still finishing; a queued or running job that reads it (training
  or feature extraction with `params.backbone` = `models/<id>`, or an export of it); a running
  sweep whose trials read it; an older model whose backbone record points at this model's file
  (models kept since `jobs.training.keep_model` copies the backbone file, so a finished model
  trained on this one keeps working without it and does not block);
- a job: still queued or running (cancel it first: a worker may be writing its files); a trial of
  a sweep that is still running (the sweep counts its trials from the jobs); its model, as above.

A deleted model takes its folder under DATA_DIR/models/<id>/ (the .keras file, the metadata, the
per-image predictions that comparing runs reads, its exports and their job records) and its demo link
(recorded as revoked, so the old URL says so). A deleted job takes its metrics, its model, its
working folder under DATA_DIR/jobs/<id>/ (checkpoints) and its live state in Redis.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal

from webapp.experiments import exports_api
from webapp.experiments.models import TrainedModel
from webapp.jobs import live
from webapp.jobs.models import Job

# Asked before a model is deleted, with `model`: a receiver in an app above (sweeps) answers a sentence
# saying why not, or None.
model_delete_requested = Signal()


class DeleteRefused(Exception):
    """Something live still needs what was to be deleted; the message says what, as a sentence."""


def _title(job: Job) -> str:
    return f"{job.get_kind_display()} #{job.pk}"


def model_refusal(model: TrainedModel) -> str | None:
    """Why `model` cannot be deleted now, or None: a job that reads or saves it, or what an app above says
    (a running sweep whose trials read it, through `model_delete_requested`)."""
    if model.job.is_active:
        return f"“{model.name}” is still being saved by {_title(model.job)}; wait for it to end, then delete it."
    key = f"models/{model.pk}"
    readers = Job.objects.filter(owner=model.owner, status__in=Job.ACTIVE).exclude(pk=model.job_id)
    for job in readers.order_by("id"):
        params = job.params if isinstance(job.params, dict) else {}
        if params.get("backbone") == key:
            return (f"{_title(job)} is {job.status} and reads “{model.name}” as its backbone; "
                    "cancel it or wait for it to end, then delete the model.")
        if job.kind == Job.Kind.EXPORT_MODEL and params.get("model") == model.pk:
            return (f"“{model.name}” is being exported ({_title(job)}); cancel the export or wait for it "
                    "to end, then delete the model.")
    for _receiver, refusal in model_delete_requested.send(sender=TrainedModel, model=model):
        if refusal:
            return refusal
    for other in TrainedModel.objects.filter(owner=model.owner, backbone__backbone=key).exclude(pk=model.pk):
        if _reads_file_of(other, model):
            return (f"“{other.name}” runs on this model's file as its backbone; delete it first, "
                    "or keep this model.")
    return None


def _reads_file_of(other: TrainedModel, model: TrainedModel) -> bool:
    """True for an older record whose backbone source is `model`'s own file rather than its copy."""
    source = (other.backbone or {}).get("source") or ""
    return Path(source).is_absolute() and Path(source).is_relative_to(model.directory)


def export_jobs(model: TrainedModel):
    """The export jobs of `model`: they describe files inside its folder, so they go with it."""
    return Job.objects.filter(owner=model.owner, kind=Job.Kind.EXPORT_MODEL, params__model=model.pk)


DEMO_STOPS = "Its public demo link stops working at once."


def what_is_lost(model: TrainedModel) -> str:
    """The sentences a confirmation shows before deleting `model` (titled with its name): what goes with it."""
    parts = ["its .keras file"]
    if model.task == TrainedModel.Task.CLASSIFY:
        parts.append("its per-image predictions (comparing runs image by image needs them)")
    exports = export_jobs(model).count()
    if exports:
        parts.append(f"its {exports} export{'s' if exports != 1 else ''}")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    text = f"This removes {listed}."
    if hasattr(model, "share_link"):
        text += " " + DEMO_STOPS
    return text + f" Its training run, {_title(model.job)}, keeps its record. This cannot be undone."


def what_job_loses(job: Job) -> str:
    """The sentence a confirmation shows before deleting `job`: what goes with it."""
    model = TrainedModel.objects.filter(job=job).select_related("share_link").first()
    lost = f"Deleting {_title(job)} removes its record, its metrics and its log"
    if model is not None:
        lost += f", and the model it trained, “{model.name}”, with its files"
        if hasattr(model, "share_link"):
            lost += " and its public demo link"
    return lost + ". This cannot be undone."


def delete_model(model: TrainedModel) -> None:
    """Delete `model`, its files, its exports and its demo link, or raise DeleteRefused."""
    problem = model_refusal(model)
    if problem:
        raise DeleteRefused(problem)
    directory = model.directory
    with transaction.atomic():
        export_jobs(model).delete()
        model.delete()  # its demo link goes with it (webapp.demos remembers the token as revoked)
    shutil.rmtree(directory, ignore_errors=True)


def job_refusal(job: Job) -> str | None:
    """Why `job` cannot be deleted now, or None."""
    if job.is_active:
        return f"{_title(job)} is still {job.status}; cancel it first, then delete it."
    if job.sweep_id and job.trial_number is not None and job.sweep.status == job.sweep.Status.RUNNING:
        return (f"{_title(job)} is a trial of sweep #{job.sweep_id}, which is still running; cancel the sweep "
                "or wait for it to end, then delete the trial.")
    model = TrainedModel.objects.filter(job=job).first()
    return model_refusal(model) if model is not None else None


def _export_file_of(job: Job) -> Path | None:
    """The file an export job made, when it is still its format's newest export (a newer one replaced it)."""
    params = job.params if isinstance(job.params, dict) else {}
    if job.kind != Job.Kind.EXPORT_MODEL or params.get("format") not in exports_api.EXPORT_FORMATS:
        return None
    model = TrainedModel.objects.filter(pk=params.get("model"), owner=job.owner).first()
    if model is None or exports_api.latest_jobs(model).get(params["format"]) != job:
        return None
    return exports_api.export_file(model, params["format"])


def delete_jobs(jobs: list[Job]) -> None:
    """Delete every job of `jobs` with its model and files, or none of them (DeleteRefused, every reason)."""
    jobs = sorted(jobs, key=lambda job: job.pk)
    problems = [problem for job in jobs if (problem := job_refusal(job))]
    if problems:
        raise DeleteRefused(" ".join(problems))
    paths = [export for job in jobs if (export := _export_file_of(job))]
    with transaction.atomic():
        for job in jobs:
            model = TrainedModel.objects.filter(job=job).first()
            if model is not None:
                paths.append(model.directory)
                export_jobs(model).delete()
            paths.append(Path(settings.DATA_DIR) / "jobs" / str(job.pk))
        Job.objects.filter(pk__in=[job.pk for job in jobs]).delete()  # metrics and models cascade
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for job in jobs:
        live.forget(job.pk)
