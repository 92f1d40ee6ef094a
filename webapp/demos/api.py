"""POST/DELETE /api/models/{id}/share/: the owner makes or revokes the public demo link of a caption model.

It lives with the demos it switches on and off; the model it names is one of the owner's (404 otherwise).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.demos.models import ShareLink
from webapp.experiments.models import TrainedModel


class ShareSerializer(serializers.Serializer):
    url = serializers.URLField(required=False, help_text="The public demo page (POST).")
    revoked = serializers.BooleanField(required=False, help_text="Whether there was a link to revoke (DELETE).")


class ShareView(APIView):
    """POST makes (or returns) the public demo link of a caption model; DELETE revokes it at once."""

    @extend_schema(operation_id="models_share_create", request=None,
                   responses={200: ShareSerializer, 201: ShareSerializer})
    def post(self, request, id: int):
        model = get_object_or_404(TrainedModel, pk=id, owner=request.user)
        if model.task != TrainedModel.Task.CAPTION:
            return Response({"detail": "Only caption models have a public demo."}, status=400)
        link, created = ShareLink.objects.get_or_create(model=model, defaults={"examples": _examples(model)})
        return Response({"url": request.build_absolute_uri(f"/demo/{link.token}/")},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="models_share_destroy", request=None, responses={200: ShareSerializer})
    def delete(self, request, id: int):
        model = get_object_or_404(TrainedModel, pk=id, owner=request.user)
        return Response({"revoked": ShareLink.revoke(model)})


EXAMPLES = 6


def _examples(model: TrainedModel) -> list[int]:
    """Images for the demo's "try an example": test-split photos the model never trained on."""
    if model.dataset is None:
        return []
    items = model.dataset.items.exclude(captions=[])
    test = list(items.filter(split="test").order_by("id").values_list("id", flat=True)[:EXAMPLES])
    return test or list(items.order_by("-id").values_list("id", flat=True)[:EXAMPLES])
