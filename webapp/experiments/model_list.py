"""The Models page: every model the user's runs trained, with its score and its demo link.

The table is drawn here, on the server, so it reads without a script; static/js/models.js renames,
revokes and deletes through the API (PATCH and DELETE /api/models/<id>/, DELETE .../share/), each
irreversible step confirmed first with the sentence `deletion.what_is_lost` writes.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from webapp.experiments.deletion import what_is_lost
from webapp.experiments.models import TrainedModel

PAGE_SIZE = 50


def _row(request, model: TrainedModel) -> dict:
    link = getattr(model, "share_link", None)
    caption = model.task == TrainedModel.Task.CAPTION
    score = model.job.bleu4 if caption else model.test_accuracy
    text = None if score is None else f"{score:.3f}" if caption else f"{score * 100:.1f}%"
    return {
        "model": model,
        "caption": caption,
        "score": text,
        "score_unit": "BLEU-4" if caption else "test accuracy",
        "share_url": request.build_absolute_uri(f"/demo/{link.token}/") if link else "",
        "lost": what_is_lost(model),
    }


@login_required
def models_page(request):
    models = TrainedModel.objects.filter(owner=request.user).select_related("job", "dataset", "share_link")
    page = Paginator(models, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "experiments/models.html", {
        "page": page,
        "rows": [_row(request, model) for model in page],
        "shared": models.filter(share_link__isnull=False).count(),
    })
