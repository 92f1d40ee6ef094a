"""Pages for backbones and captions: the caption-model launch form, the features page (extract
features, upload backbones), and the words the model and train pages use for a backbone.

Like the train page, both forms post JSON to /api/jobs/ (and /api/backbones/), so the pages and
API clients share one validation; these views only list what the user may choose.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from jobs.ml import formats
from jobs.ml.catalog import BUILTIN_BACKBONES
from jobs.ml.scaling import SCALINGS
from webapp.datasets.choices import named_datasets, short_date, told_apart
from webapp.datasets.models import Dataset
from webapp.experiments.backbone_choices import BUILTIN, choices_for, weights_present
from webapp.experiments.backbones_api import SCALING_CHOICES
from webapp.experiments.models import Backbone
from webapp.jobs.models import Job
from webapp.redis_client import redis_problem

GROUPS = (("builtin", "Built in"), ("uploaded", "Uploaded by you"), ("models", "Your trained classifiers"))


def backbone_groups(user) -> list[dict]:
    """Every backbone `user` may pick, grouped for a <select>: built-ins, uploaded files, trained classifiers."""
    groups: dict[str, list[dict]] = {key: [] for key, _ in GROUPS}
    added = {b.key: b.created_at for b in Backbone.objects.filter(owner=user).only("id", "created_at")}

    def details(choice) -> str:  # two uploads of one name, told apart
        when = added.get(choice.key)
        return f"#{choice.key.partition('/')[2]}" + (f", added {short_date(when)}" if when else "")

    for choice, label in told_apart(choices_for(user), lambda c: c.label, details):
        if choice.key in BUILTIN:
            group, description = "builtin", BUILTIN_BACKBONES[choice.key]["description"]
        elif choice.key.startswith("backbones/"):
            group, description = "uploaded", "A feature extractor you uploaded; its own weights are used."
        else:
            group, description = "models", "A classifier you trained, cut before its last layer."
        builtin = choice.key in BUILTIN
        groups[group].append({
            "key": choice.key, "label": label, "image_size": choice.image_size, "channels": choice.channels,
            "fine_tunes": choice.fine_tunes, "weights_choice": choice.has_weights_choice, "description": description,
            # None where there are no ImageNet weights to find (uploaded files, trained models)
            "weights_present": weights_present(choice.key) if builtin else None,
            "weights_mb": BUILTIN_BACKBONES[choice.key].get("weights_mb") if builtin else None,
        })
    return [{"label": title, "choices": groups[key]} for key, title in GROUPS if groups[key]]


def working_backbone(groups: list[dict], preferred: str) -> tuple[str, str, str]:
    """(backbone, weights, why) for a form's default: `preferred` with ImageNet weights when they are on
    this server, else the first choice that works here (a built-in whose weights are present, a backbone
    you uploaded, a classifier you trained), else `preferred` with random weights. `why` is the sentence
    the form shows when it did not default to `preferred`, "" when it did."""
    choices = [choice for group in groups for choice in group["choices"]]
    wanted = next((c for c in choices if c["key"] == preferred), None)
    if wanted is None or wanted["weights_present"] is not False:
        return preferred, "imagenet", ""
    title = BUILTIN_BACKBONES[preferred]["title"]
    missing = f"The ImageNet weights of {title} are not on this server"
    working = next((c for c in choices if c["weights_present"] is not False), None)
    if working is not None:
        return working["key"], "imagenet", f"{missing}, so this form starts with one that works here."
    return preferred, "random", (f"{missing} and no other backbone here has its weights, so this form starts with "
                                 "random weights, which need no download.")


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
        "exportable": model.exportable,
    }


def _ready_datasets(user, kind: str | None = None) -> list:
    """The user's ready datasets (of `kind`), each with its dropdown name (webapp.datasets.choices)."""
    datasets = Dataset.objects.filter(owner=user, status=Dataset.Status.READY)
    return named_datasets(datasets.filter(kind=kind) if kind else datasets)


@login_required
def captioner_page(request):
    """Launch a caption model: pick a caption dataset; the backbone and the rest have defaults."""
    groups = backbone_groups(request.user)
    backbone, weights, switched = working_backbone(groups, "vgg16")
    if request.GET.get("backbone"):  # asked for by a link: as asked, and the form warns if it cannot work
        backbone, weights, switched = request.GET["backbone"], request.GET.get("weights") or "imagenet", ""
    return render(request, "experiments/captioner.html", {
        "datasets": _ready_datasets(request.user, Dataset.Kind.CAPTIONS),
        "backbone_groups": groups,
        "selected_dataset": request.GET.get("dataset", ""),
        "selected_backbone": backbone,
        "selected_weights": weights,
        "backbone_switched": switched,
        "queue_problem": redis_problem(),
        "kind": "train_captioner",
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
        "model_formats": _model_formats(),
        "scalings": _scaling_choices(),
        "queue_problem": redis_problem(),
    })


def _model_formats() -> dict:
    """The upload form's formats, from jobs.ml.formats, so its accept list, help and checks name every
    registered one: {"formats": [{name, title, suffixes, ...}], "accept": ".keras,...", "suffix_list": "..."}."""
    catalogue = formats.catalogue()
    return {"formats": catalogue, "accept": ",".join(s for f in catalogue for s in f["suffixes"]),
            "suffix_list": formats.suffix_list()}


def _scaling_choices() -> list[dict]:
    """The input scalings a backbone form offers: "auto" first, then the catalogue, each with its help."""
    auto = dict(SCALING_CHOICES)["auto"]
    return [{"kind": "auto", "title": "Auto (from the file)", "help": auto + "."},
            *({"kind": kind, "title": title, "help": help_text} for kind, (title, help_text) in SCALINGS.items())]
