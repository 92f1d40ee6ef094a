"""Pages for jobs: the list (with the launch form) and one job, both updating live."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.experiments.kinds import QueueUnavailable, cancel_job, launch_job
from webapp.experiments.limits import LaunchRefused
from webapp.experiments.models import Job
from webapp.experiments.public import worker_name
from webapp.redis_client import redis_problem


@login_required
@require_http_methods(["GET", "POST"])
def jobs_page(request):
    if request.method == "POST":
        try:
            job = launch_job(request.user, Job.Kind.SYSTEM_CHECK, {"seconds_per_device": 2.0},
                             request.POST.get("queue") or None)
        except (QueueUnavailable, LaunchRefused) as exc:
            messages.error(request, str(exc))
            return redirect("jobs")
        return redirect("job", job_id=job.id)
    jobs = list(Job.objects.filter(owner=request.user)[:50])
    for job in jobs:  # the host part of a worker's name is for staff only (webapp/experiments/public.py)
        job.worker_label = job.worker if request.user.is_staff else worker_name(job.worker)
    return render(request, "experiments/jobs.html", {
        "jobs": jobs,
        "queue_problem": redis_problem(),
    })


@login_required
def job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    return render(request, "experiments/job.html", {"job": job})


@login_required
@require_POST
def cancel_job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    if not cancel_job(job.id):
        messages.info(request, "This job had already ended.")
    return redirect("job", job_id=job.id)


@login_required
def train_page(request):
    """The launch form; it posts JSON to /api/jobs/ so the page and scripts share one validation."""
    from jobs.ml.catalog import ARCHITECTURES
    from webapp.datasets.models import Dataset
    from webapp.experiments.model_pages import backbone_groups

    datasets = Dataset.objects.filter(owner=request.user, status=Dataset.Status.READY,
                                      kind=Dataset.Kind.CLASSIFICATION)
    return render(request, "experiments/train.html", {
        "datasets": datasets,
        "architectures": ARCHITECTURES.values(),
        "selected_dataset": request.GET.get("dataset", ""),
        "backbone_groups": backbone_groups(request.user),
        "selected_backbone": request.GET.get("backbone", ""),
        "selected_weights": request.GET.get("weights", "") or "imagenet",
        "queue_problem": redis_problem(),
    })


@login_required
def model_page(request, model_id: int):
    from webapp.demos.models import ShareLink
    from webapp.experiments.model_pages import backbone_facts
    from webapp.experiments.models import TrainedModel

    model = get_object_or_404(TrainedModel.objects.select_related("job", "dataset"), id=model_id, owner=request.user)
    link = ShareLink.objects.filter(model=model).first()
    result = model.job.result or {}
    caption = {}
    if model.task == TrainedModel.Task.CAPTION:
        bleu = result.get("bleu") or {}
        caption = {key: result.get(key) for key in ("vocab_size", "max_length", "beam_width", "tokenisation")}
        caption["bleu4"] = (bleu.get("greedy") or {}).get("bleu4", result.get("bleu4"))
        caption["beam_bleu4"] = (bleu.get("beam") or {}).get("bleu4")
    return render(request, "experiments/model.html", {
        "model": model,
        "backbone": backbone_facts(model),
        "caption": caption,
        "share_url": request.build_absolute_uri(f"/demo/{link.token}/") if link else "",
    })


@login_required
def architectures_page(request):
    from jobs.ml.catalog import ARCHITECTURES

    return render(request, "experiments/architectures.html", {"architectures": ARCHITECTURES.values()})


@login_required
@require_POST
def resume_job_page(request, job_id: int):
    from webapp.experiments.kinds import resume_job

    job = get_object_or_404(Job, id=job_id, owner=request.user)
    try:
        if not resume_job(job.id):
            messages.info(request, "Only a failed or cancelled training job can be resumed.")
    except (QueueUnavailable, LaunchRefused) as exc:
        messages.error(request, str(exc))
    return redirect("job", job_id=job.id)
