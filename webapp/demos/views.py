"""The public caption demo: a page, its caption endpoint and its example images, behind one token.

Nothing here needs a login and nothing here reaches past the ShareLink the token names: the
page shows that model's name and what it was trained on, the endpoint captions with that
model only, and examples are served by position from the list fixed when the link was made.
A revoked link is a deleted row, so every URL under it answers 404 at once.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.demos.models import ShareLink
from webapp.redis_client import REDIS_ERRORS, get_redis

RATE_WINDOW_SECONDS = 60


def _link(token: str) -> ShareLink:
    return get_object_or_404(ShareLink.objects.select_related("model", "model__dataset"), token=token)


@never_cache
def demo_page(request, token: str):
    link = _link(token)
    return render(request, "demos/demo.html", {
        "token": link.token,
        "title": link.model.name,
        "trained_on": link.model.trained_on,
        "examples": [f"/demo/{link.token}/examples/{n}" for n in range(len(link.examples))],
        "caption_url": f"/demo/{link.token}/caption/",
        "max_bytes": settings.DEMO_MAX_BYTES,
    })


def demo_example(request, token: str, n: int):
    link = _link(token)
    dataset = link.model.dataset
    if dataset is None or not 0 <= n < len(link.examples):
        raise Http404("No such example.")
    item = dataset.items.filter(id=link.examples[n]).first()
    if item is None:
        raise Http404("No such example.")
    path = (dataset.images_dir / item.path).resolve()
    if not path.is_relative_to(dataset.images_dir.resolve()) or not path.is_file():
        raise Http404("No such example.")
    response = FileResponse(open(path, "rb"))
    response["Cache-Control"] = "public, max-age=3600"
    return response


def client_address(request) -> str:
    """The client's IP: the proxy's first X-Forwarded-For entry when behind one (SECURE_PROXY), else the peer."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "unknown")


def over_rate_limit(token: str, client: str) -> bool:
    """A fixed one-minute window per (demo, client) in Redis, shared by every web process."""
    window = int(time.time() // RATE_WINDOW_SECONDS)
    key = f"visionlab:demo:{token}:{client}:{window}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, RATE_WINDOW_SECONDS * 2)
        count, _ = pipe.execute()
    except REDIS_ERRORS:
        return False  # the caption request itself will report that the queue is down
    return count > settings.DEMO_RATE_PER_MINUTE


class DemoCaptionView(APIView):
    """POST a photo, get {"caption"}: no login, rate-limited per client, capped in size, one model only."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser]

    def post(self, request, token: str):
        from webapp.experiments.models_api import caption_response

        link = _link(token)
        if over_rate_limit(link.token, client_address(request)):
            return Response({"detail": "Too many photos in a minute. Please wait a moment and try again."},
                            status=429, headers={"Retry-After": str(RATE_WINDOW_SECONDS)})
        return caption_response(link.model, request.FILES.get("image"), settings.DEMO_MAX_BYTES)
