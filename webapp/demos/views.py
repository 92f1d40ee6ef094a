"""The public caption demo: a page, its caption endpoint and its example images, behind one token.

Nothing here needs a login and nothing here reaches past the ShareLink the token names: the
page shows that model's name and what it was trained on, the endpoint captions with that
model only, and examples are served by position from the list fixed when the link was made.
A revoked link is a deleted row, so every URL under it answers 404 at once; its page then says, in
the demo's own style and with nothing of the app around it, that its owner switched it off (the
revoked token is remembered as a digest, webapp.demos.models.RevokedLink) or that there is no demo
at this address.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from PIL import Image
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from webapp.demos.models import RevokedLink, ShareLink
from webapp.experiments.models_api import caption_response
from webapp.throttling import DemoThrottle, Paused

SWITCHED_OFF = "This demo has been switched off by its owner."
NOT_HERE = "There is no demo at this address."


def _gone_sentence(token: str) -> str:
    return SWITCHED_OFF if RevokedLink.was_revoked(token) else NOT_HERE


def _link(token: str) -> ShareLink:
    link = ShareLink.objects.select_related("model", "model__dataset").filter(token=token).first()
    if link is None:
        raise Http404(_gone_sentence(token))
    return link


@never_cache
def demo_page(request, token: str):
    try:
        link = _link(token)
    except Http404 as gone:  # still a 404, but a page in the demo's style that says why
        headline = str(gone)
        return render(request, "demos/gone.html", {"revoked": headline == SWITCHED_OFF, "headline": headline},
                      status=404)
    return render(request, "demos/demo.html", {
        "token": link.token,
        "title": link.model.name,
        "trained_on": link.model.trained_on,
        "examples": [f"/demo/{link.token}/examples/{n}" for n in range(len(link.examples))],
        "caption_url": f"/demo/{link.token}/caption/",
        "max_bytes": settings.DEMO_MAX_BYTES,
    })


# Examples are shown at most this many pixels a side, as a JPEG of this quality.
EXAMPLE_SIDE, EXAMPLE_QUALITY = 1024, 88


def demo_example(request, token: str, n: int):
    """One example photo, re-encoded: the page needs its pixels and nothing else the owner's file carries.

    The stored file is the owner's upload as it was (a camera JPEG keeps its EXIF: GPS position,
    camera serial, the software and whatever it wrote), and serving it as a file would also name
    it. Anyone with the link sees this, so it gets a fresh JPEG at most EXAMPLE_SIDE pixels a side,
    upright, without metadata and without a file name.
    """
    from jobs.ml.datasets.images import make_thumbnail  # NumPy with Pillow: loaded when an example is first served

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
    try:
        with Image.open(path) as im:  # ingestion verified it and checked its pixel count
            im.draft("RGB", (EXAMPLE_SIDE, EXAMPLE_SIDE))
            jpeg = make_thumbnail(im, EXAMPLE_SIDE, quality=EXAMPLE_QUALITY)
    except (OSError, ValueError):
        raise Http404("No such example.") from None
    response = HttpResponse(jpeg, content_type="image/jpeg")
    response["Cache-Control"] = "public, max-age=3600"
    return response


class DemoCaptionView(APIView):
    """POST a photo, get {"caption"}: no login, rate-limited per client, capped in size, one model only."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # DEMO_RATE_PER_MINUTE per (demo, client), the client found by webapp.throttling.client_ip.
    throttle_classes = [DemoThrottle]
    parser_classes = [MultiPartParser]

    def throttled(self, request, wait):
        raise Paused(wait, "Too many photos in a minute. Please wait a moment and try again.")

    def post(self, request, token: str):
        link = _link(token)
        return caption_response(link.model, request.FILES.get("image"), settings.DEMO_MAX_BYTES)
