"""Pages for backbones and captions: the caption-model launch form, the features page (extract
features, upload backbones), and the words the model and train pages use for a backbone.

Like the train page, both forms post JSON to /api/jobs/ (and /api/backbones/), so the pages and
API clients share one validation; these views only list what the user may choose.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from jobs.ml.catalog import BUILTIN_BACKBONES
from jobs.ml.scaling import SCALINGS
from webapp.experiments.backbone_choices import BUILTIN, choices_for
from webapp.experiments.backbones_api import SCALING_CHOICES
from webapp.experiments.models import Job
from webapp.redis_client import redis_problem

GROUPS = (("builtin", "Built in"), ("uploaded", "Uploaded by you"), ("models", "Your trained classifiers"))


def backbone_groups(user) -> list[dict]:
    """Every backbone `user` may pick, grouped for a <select>: built-ins, uploaded files, trained classifiers."""
    groups: dict[str, list[dict]] = {key: [] for key, _ in GROUPS}
    for choice in choices_for(user):
        if choice.key in BUILTIN:
            group, description = "builtin", BUILTIN_BACKBONES[choice.key]["description"]
        elif choice.key.startswith("backbones/"):
            group, description = "uploaded", "A feature extractor you uploaded; its own weights are used."
        else:
            group, description = "models", "A classifier you trained, cut before its last layer."
        groups[group].append({
            "key": choice.key, "label": choice.label, "image_size": choice.image_size, "channels": choice.channels,
            "keras": choice.keras, "weights_choice": choice.has_weights_choice, "description": description,
        })
    return [{"label": label, "choices": groups[key]} for key, label in GROUPS if groups[key]]


def weights_label(weights: str) -> str:
    if weights == "imagenet":
        return "ImageNet (pretrained)"
    if weights == "random":
        return "random (not pretrained)"
    if weights.startswith("sha256:"):
        return f"from the file (sha256 {weights[7:19]}…)"
    return weights or "—"


def backbone_facts(model) -> dict | None:
    """What a model page says about the backbone a transfer or caption model reads, or None."""
    info = model.backbone or {}
    if not info.get("name"):
        return None
    params = model.job.params or {}
    spec = BUILTIN_BACKBONES.get(info["name"])
    shape = info.get("feature_shape") or []
    return {
        "key": info["name"],
        "label": params.get("backbone_label") or (spec["title"] if spec else info["name"]),
        "layer": info.get("layer", ""),
        "weights": weights_label(info.get("weights", "")),
        "features": "×".join(str(v) for v in shape),
        "tflite": info.get("kind") == "tflite",
    }


def _ready_datasets(user, kind: str | None = None):
    from webapp.datasets.models import Dataset

    datasets = Dataset.objects.filter(owner=user, status=Dataset.Status.READY)
    return datasets.filter(kind=kind) if kind else datasets


@login_required
def captioner_page(request):
    """Launch a caption model: pick a caption dataset; the backbone and the rest have defaults."""
    from webapp.datasets.models import Dataset

    return render(request, "experiments/captioner.html", {
        "datasets": _ready_datasets(request.user, Dataset.Kind.CAPTIONS),
        "backbone_groups": backbone_groups(request.user),
        "selected_dataset": request.GET.get("dataset", ""),
        "selected_backbone": request.GET.get("backbone", "") or "vgg16",
        "selected_weights": request.GET.get("weights", "") or "imagenet",
        "queue_problem": redis_problem(),
    })


@login_required
def features_page(request):
    """Extract a dataset's features once, for every later job; upload and manage your own backbones."""
    return render(request, "experiments/features.html", {
        "datasets": _ready_datasets(request.user),
        "backbone_groups": backbone_groups(request.user),
        "selected_dataset": request.GET.get("dataset", ""),
        "selected_backbone": request.GET.get("backbone", "") or "vgg16",
        "recent": Job.objects.filter(owner=request.user, kind=Job.Kind.EXTRACT_FEATURES)[:8],
        "max_backbone_bytes": settings.BACKBONE_MAX_BYTES,
        "scalings": _scaling_choices(),
        "queue_problem": redis_problem(),
    })


def _scaling_choices() -> list[dict]:
    """The input scalings a backbone form offers: "auto" first, then the catalogue, each with its help."""
    auto = dict(SCALING_CHOICES)["auto"]
    return [{"kind": "auto", "title": "Auto (from the file)", "help": auto + "."},
            *({"kind": kind, "title": title, "help": help_text} for kind, (title, help_text) in SCALINGS.items())]
