"""Bring your own backbone: upload a feature extractor (.keras, .h5, .tflite), list and delete them.

The web process stores the file and asks the inference worker what it is (TensorFlow loads
only there): input size and channels, the output layer or tensor chosen, its width. A file
that cannot serve as a backbone is removed and the answer is 400 with the worker's sentence.
"""

from __future__ import annotations

import hashlib
import shutil

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from webapp.experiments.models import Backbone
from webapp.experiments.models_api import ask_or_503

SUFFIXES = {".keras": Backbone.Format.KERAS, ".h5": Backbone.Format.H5, ".tflite": Backbone.Format.TFLITE}


class BackboneSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="What params.backbone names it: backbones/<id>.")

    class Meta:
        model = Backbone
        fields = ["id", "key", "name", "format", "filename", "output", "input_size", "channels", "output_dim",
                  "feature_shape", "size_bytes", "sha256", "created_at"]
        read_only_fields = fields


class BackboneUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    file = serializers.FileField(help_text="A .keras, .h5 or .tflite model (quantized TFLite models too).")
    output = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                   help_text="Layer or tensor name the features come from; default: the output.")
    input_size = serializers.IntegerField(required=False, allow_null=True, min_value=16, max_value=1024,
                                          help_text="Square input side, when the model does not fix it.")

    def validate_file(self, upload):
        suffix = "." + upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
        if suffix not in SUFFIXES:
            raise serializers.ValidationError("A backbone is a .keras, .h5 or .tflite file.")
        if upload.size > settings.BACKBONE_MAX_BYTES:
            raise serializers.ValidationError(
                f"This file is larger than the {settings.BACKBONE_MAX_BYTES // 2**20} MiB a backbone may be.")
        return upload


class BackboneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet):
    serializer_class = BackboneSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        return Backbone.objects.filter(owner=self.request.user)

    @extend_schema(request={"multipart/form-data": BackboneUploadSerializer}, responses={201: BackboneSerializer})
    def create(self, request, *args, **kwargs):
        incoming = BackboneUploadSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        upload = data["file"]
        suffix = "." + upload.name.rsplit(".", 1)[-1].lower()
        backbone = Backbone.objects.create(
            owner=request.user, name=(data.get("name") or upload.name)[:200], format=SUFFIXES[suffix],
            filename=upload.name[:255], output=data.get("output") or "", input_size=data.get("input_size") or 0,
            output_dim=0, size_bytes=upload.size, sha256="")
        try:
            backbone.sha256 = _store(upload, backbone)
            answer = ask_or_503("inference.inspect_backbone", str(backbone.file_path), backbone.output or None,
                                data.get("input_size"), backbone.key)
        except BaseException:
            _discard(backbone)
            raise
        if "error" in answer:
            _discard(backbone)
            # The worker names the stored copy; the person knows the file by the name they chose.
            error = answer["error"].replace(backbone.file_path.name, upload.name)
            return Response({"file": [error]}, status=status.HTTP_400_BAD_REQUEST)
        backbone.output = answer["layer"]
        backbone.input_size, backbone.channels = answer["image_size"], answer["channels"]
        backbone.feature_shape = answer["feature_shape"]
        backbone.output_dim = 1
        for width in answer["feature_shape"]:
            backbone.output_dim *= width
        backbone.save()
        return Response(BackboneSerializer(backbone).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, backbone):
        _discard(backbone)


def _store(upload, backbone: Backbone) -> str:
    """Write the upload into the backbone's folder; returns its SHA-256."""
    backbone.directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(backbone.file_path, "wb") as out:
        for chunk in upload.chunks():
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _discard(backbone: Backbone) -> None:
    directory = backbone.directory
    with transaction.atomic():
        backbone.delete()
    shutil.rmtree(directory, ignore_errors=True)
