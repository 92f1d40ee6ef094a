"""The sweep pages: your sweeps with the form that starts one (/sweeps/), and one sweep, live
(/sweeps/<id>/).

Both are drawn by their scripts from the REST API (static/js/sweeps.js and sweep.js), so that the
page and an API client meet one validation and one shape. The views only hand the scripts what the
form chooses from (datasets, architectures, backbones, the parameter declarations, the objectives),
read from the same tables the API checks against, and answer 404 for a sweep that is not the
person's own, exactly as the API does.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from jobs.ml.catalog import ARCHITECTURES
from webapp.datasets.choices import named_datasets
from webapp.datasets.models import Dataset
from webapp.experiments.model_pages import backbone_groups
from webapp.experiments.models import Project
from webapp.experiments.params import DECLARATIONS
from webapp.jobs.registry import sweepable
from webapp.redis_client import redis_problem
from webapp.sweeps.models import Sweep
from webapp.sweeps.serializers import DEFAULT_TRIALS, MAX_PARALLEL
from webapp.sweeps.space import sweep_kinds


def _declarations() -> dict:
    """{kind: [declared parameter, ...]} for the kinds a sweep can run, marked sweepable or not."""
    return {kind: [p.to_dict() | {"optional": p.optional, "step": p.input_step} for p in DECLARATIONS[kind].params]
            for kind in sweep_kinds()}


def _objectives() -> dict:
    return {kind.name: [{"name": o.name, "label": o.label, "direction": o.default_direction, "per_epoch": o.per_epoch}
                        for o in kind.objectives] for kind in sweepable()}


def _main_rows() -> dict:
    """{kind: the sweepable parameters the form shows at once}, as each kind declares them (JobKind.sweep_main)."""
    return {kind.name: list(kind.sweep_main) for kind in sweepable()}


def _form_choices(user) -> dict:
    """What the New sweep form offers, as one JSON document for sweeps.js."""
    datasets = named_datasets(Dataset.objects.filter(owner=user, status=Dataset.Status.READY).order_by("-created_at"))
    return {
        "datasets": [{"id": d.id, "name": d.name, "label": d.choice_name, "kind": d.kind,
                      "classes": len(d.classes or []), "items": d.num_items} for d in datasets],
        "architectures": [{"name": a.name, "title": a.title, "family": a.family,
                           "image_size": a.default_image_size, "min_image_size": a.min_image_size,
                           "default_backbone": a.default_backbone, "fixed_backbone": a.fixed_backbone}
                          for a in ARCHITECTURES.values()],
        "backbones": backbone_groups(user),
        "params": _declarations(),
        "objectives": _objectives(),
        "sweep_main": _main_rows(),
        "projects": list(Project.objects.filter(owner=user).order_by("name").values_list("name", flat=True)),
        "limits": {"trials": settings.SWEEP_MAX_TRIALS, "parallel": MAX_PARALLEL, "default_trials": DEFAULT_TRIALS},
    }


@login_required
def sweeps_page(request):
    """Your sweeps (GET /api/sweeps/, drawn by sweeps.js) and the form that starts one."""
    return render(request, "sweeps/sweeps.html", {
        "choices": _form_choices(request.user),
        "selected_dataset": request.GET.get("dataset", ""),
        "queue_problem": redis_problem(),
    })


@login_required
def sweep_page(request, sweep_id: int):
    """One sweep, live: GET /api/sweeps/<id>/ every two seconds while it runs (sweep.js)."""
    sweep = get_object_or_404(Sweep.objects.select_related("project", "dataset"), id=sweep_id, owner=request.user)
    arch = ARCHITECTURES.get(sweep.params.get("architecture", ""))
    # Only a transfer head trained on cached features has a backbone left to fine-tune (engine.promote).
    can_finetune = (sweep.kind == "train" and arch is not None and arch.family == "transfer"
                    and sweep.params.get("mode", "extract") == "extract" and "mode" not in sweep.space)
    labels = {p.name: {"label": p.label, "unit": p.unit, "type": p.type, "log": p.log}
              for p in DECLARATIONS[sweep.kind].params}
    return render(request, "sweeps/sweep.html", {
        "sweep": sweep, "title": sweep.title, "can_finetune": can_finetune,
        "page": {"id": sweep.id, "params": labels, "can_finetune": can_finetune},
    })
