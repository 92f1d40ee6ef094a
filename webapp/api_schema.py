"""Answer shapes every app's API shares, for the OpenAPI schema (drf-spectacular)."""

from rest_framework import serializers


class DetailSerializer(serializers.Serializer):
    """An error or refusal: one sentence for a person (DRF's shape)."""

    detail = serializers.CharField()
