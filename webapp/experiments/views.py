"""Pages for jobs: the list (with the launch form) and one job, both updating live."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from jobs.ml import formats
from jobs.ml.catalog import ARCHITECTURES
from jobs.ml.config import MODE_DEFAULTS
from jobs.ml.export_formats import FORMATS, SNIPPETS, TOLERANCES
from webapp.datasets.checks import TOO_FEW_IMAGES
from webapp.datasets.choices import named_datasets
from webapp.datasets.models import Dataset, DatasetItem
from webapp.datasets.suggestions import suggestion_for
from webapp.experiments import deletion, exports_api, input_defaults
from webapp.experiments.compare import MAX_RUNS, MIN_RUNS, CompareRefused, RunsNotFound, compare_runs, parse_ids
from webapp.experiments.deletion import what_job_loses
from webapp.experiments.job_lists import filter_options
from webapp.experiments.model_pages import backbone_facts, backbone_groups
from webapp.experiments.models import Project, TrainedModel
from webapp.jobs import registry
from webapp.jobs.launch import QueueUnavailable, ResumeRefused, cancel_job, launch_job, resume_job
from webapp.jobs.limits import LaunchRefused
from webapp.jobs.models import Job
from webapp.jobs.queue_position import queue_position
from webapp.jobs.resumable import resume_state
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

    # The rows come from GET /api/jobs/ with this page's query string (jobs.js); the menus list what
    # the person has: their projects, datasets, architectures and tags.
    return render(request, "experiments/jobs.html", {
        "filters": filter_options(request.user, request.GET),
        "compare_min": MIN_RUNS, "compare_max": MAX_RUNS,
        "queue_problem": redis_problem(),
    })


@login_required
def job_page(request, job_id: int):
    job = get_object_or_404(Job.objects.select_related("project"), id=job_id, owner=request.user)
    kind = registry.get(job.kind)  # what its page shows: the kind's sections (webapp.jobs.kinds)
    resumable, refusal = resume_state(job)
    return render(request, "experiments/job.html", {
        "job": job, "kind": kind, "can_rerun": kind.public, **kind.page_context(job, request.user),
        "queue_position": queue_position(job),
        "resumable": resumable, "resume_refusal": refusal,
        "delete_warning": what_job_loses(job),
        "tag_names": sorted(job.tags.values_list("name", flat=True)),
        "project_names": list(Project.objects.filter(owner=request.user).values_list("name", flat=True)),
    })


@login_required
@require_POST
def cancel_job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    if not cancel_job(job.id):
        messages.info(request, "This job had already ended.")
    return redirect("job", job_id=job.id)


@login_required
@require_POST
def delete_job_page(request, job_id: int):
    """The job page's Delete button (confirmed in the page first): back to the list, or to the job with why not."""
    job = get_object_or_404(Job.objects.select_related("sweep"), id=job_id, owner=request.user)
    title = f"{job.get_kind_display()} #{job.id}"
    try:
        deletion.delete_jobs([job])
    except deletion.DeleteRefused as exc:
        messages.error(request, str(exc))
        return redirect("job", job_id=job.id)
    messages.success(request, f"Deleted {title} with its record and files.")
    return redirect("jobs")


@login_required
def train_page(request):
    """The launch form; it posts JSON to /api/jobs/ so the page and scripts share one validation."""
    datasets = named_datasets(Dataset.objects.filter(owner=request.user, status=Dataset.Status.READY,
                                                     kind=Dataset.Kind.CLASSIFICATION))
    for dataset in datasets:  # said as soon as it is chosen; Start would be refused with the same sentence
        dataset.too_few_images = (dataset.warning(TOO_FEW_IMAGES) or {}).get("message", "")
        # What train.js prefills when it is picked (webapp/experiments/input_defaults.py has the rule).
        dataset.input = input_defaults.dataset_input(dataset)
        suggestion = suggestion_for(dataset)
        dataset.suggestion_json = json.dumps(suggestion) if suggestion else ""
    return render(request, "experiments/train.html", {
        "datasets": datasets,
        "architectures": ARCHITECTURES.values(),
        "selected_dataset": request.GET.get("dataset", ""),
        "backbone_groups": backbone_groups(request.user),
        "selected_backbone": request.GET.get("backbone", ""),
        "selected_weights": request.GET.get("weights", "") or "imagenet",
        "queue_problem": redis_problem(),
        "kind": "train",
        "mode_defaults": MODE_DEFAULTS,  # train.js proposes fine-tuning's learning rate
        # Under the colour field and next to Start, when grayscale would hide what tells the classes apart.
        "field_warnings": {"color_mode": {"id": "colour-warning", "text": input_defaults.GRAYSCALE_WARNING}},
    })


@login_required
def model_page(request, model_id: int):
    model = get_object_or_404(TrainedModel.objects.select_related("job", "dataset"), id=model_id, owner=request.user)
    link = getattr(model, "share_link", None)  # its demo link (webapp.demos), through the reverse relation
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
        "exports": export_card(model),
    })


def export_card(model) -> dict:
    """What the model page's Exports card shows: why there is none, or each format with its snippet and
    tolerance, the number of test images every export is checked on, and the exports so far (exports.js
    keeps them live from GET /api/models/<id>/exports/)."""
    if model.task != TrainedModel.Task.CLASSIFY:
        return {"refused": "Caption models are kept as .keras files: beam search runs in Python around the "
                           "network, so no single exported file would caption a photo."}
    if not model.exportable:
        title = formats.of_backbone(model.backbone).title
        return {"refused": f"This model reads its features from a {title} backbone, which runs in its own "
                           "interpreter before the Keras head: the two cannot be joined into one exported file, "
                           "so it is kept as .keras."}

    images, split = 0, "test"
    if model.dataset is not None:  # jobs.exports checks on the test images, the validation ones when there are none
        items = model.dataset.items.filter(label__in=model.class_names)
        images = items.filter(split=DatasetItem.Split.TEST).count()
        if not images:
            images, split = items.filter(split=DatasetItem.Split.VAL).count(), "validation"
    rows = []
    for fmt, (title, filename) in FORMATS.items():
        tolerance = TOLERANCES[fmt]
        points = round(tolerance.max_accuracy_drop * 100, 2)
        expected = [f"the original's top class on at least {tolerance.min_agreement:.0%} of the images",
                    f"at most {points:g} point{'' if points == 1 else 's'} of accuracy lost"]
        if tolerance.max_prob_diff is not None:
            expected.append(f"probabilities within {tolerance.max_prob_diff:g}")
        rows.append({"format": fmt, "title": title, "file": filename, "snippet": SNIPPETS[fmt],
                        "expected": "Expected: " + ", ".join(expected) + "."})
    return {
        "formats": rows,
        "images": images,
        "split": split,
        "no_dataset": model.dataset is None,
        "rows": exports_api.rows(model),
    }


@login_required
def architectures_page(request):
    return render(request, "experiments/architectures.html", {"architectures": ARCHITECTURES.values()})


@login_required
@require_POST
def resume_job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    try:
        if not resume_job(job.id):
            messages.info(request, "Only a failed or cancelled training job can be resumed.")
    except (QueueUnavailable, LaunchRefused, ResumeRefused) as exc:
        messages.error(request, str(exc))
    return redirect("job", job_id=job.id)


@login_required
def compare_page(request):
    """2 to 10 runs side by side (`?jobs=1,2,3`): the same answer as GET /api/compare/, drawn by compare.js."""

    raw = request.GET.get("jobs", "")
    try:
        ids = parse_ids(raw)
    except CompareRefused as exc:
        return render(request, "experiments/compare.html", {"problem": str(exc), "min_runs": MIN_RUNS,
                                                             "max_runs": MAX_RUNS}, status=400)
    try:
        data = compare_runs(request.user, ids)
    except RunsNotFound as exc:
        raise Http404(str(exc)) from exc
    return render(request, "experiments/compare.html", {"data": data, "ids": ",".join(map(str, ids)),
                                                         "count": len(ids), "min_runs": MIN_RUNS,
                                                         "max_runs": MAX_RUNS})
