"""The public caption demo's endpoint in the OpenAPI schema (/api/schema/).

Kept apart from `views.py` so the view stays about answering requests; drf-spectacular finds
this extension once the app is ready (`apps.py`).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers


class DemoPhotoSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="A photo, at most DEMO_MAX_BYTES.")


class DemoCaptionSerializer(serializers.Serializer):
    caption = serializers.CharField()


class DemoErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for the person who sent the photo.")


class DemoCaptionSchema(OpenApiViewExtension):
    target_class = "webapp.demos.views.DemoCaptionView"

    def view_replacement(self):
        class Fixed(self.target_class):
            @extend_schema(
                summary="Caption a photo with a shared demo's model (no login)",
                request={"multipart/form-data": DemoPhotoSerializer},
                responses={
                    200: DemoCaptionSerializer,
                    400: OpenApiResponse(DemoErrorSerializer, description="Not a readable photo."),
                    404: OpenApiResponse(DemoErrorSerializer, description="No such demo, or it was revoked."),
                    413: OpenApiResponse(DemoErrorSerializer, description="Over DEMO_MAX_BYTES."),
                    429: OpenApiResponse(DemoErrorSerializer, description="Over DEMO_RATE_PER_MINUTE."),
                },
                auth=[],
            )
            def post(self, request, token: str):
                return super().post(request, token)

        return Fixed
