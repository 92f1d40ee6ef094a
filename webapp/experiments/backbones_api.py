"""Bring your own backbone: upload a feature extractor (.keras, .h5, .tflite), check it, list and delete them.

The web process stores the file and asks the inference worker what it is (TensorFlow loads
only there): input size and channels, the output layer or tensor chosen, its width, how it
wants its pixels (`input_scaling`: chosen by the owner, or read from the file) and the sanity
report of running it on sample photos (`jobs.ml.sanity`). A file that cannot serve as a
backbone is removed and the answer is 400 with the worker's sentence. Changing the scaling
later (PATCH) runs the check again; features are cached per scaling, so none go stale.
"""

from __future__ import annotations

import hashlib
import shutil

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from jobs.ml import formats, signatures  # names, suffixes and signatures: no TensorFlow
from jobs.ml import scaling as scalings  # a plain catalogue: importing it loads no TensorFlow
from webapp.datasets.models import Dataset
from webapp.experiments.models import Backbone
from webapp.jobs import limits
from webapp.jobs.inference import ask
from webapp.jobs.public import relative_paths

SCALING_CHOICES = [("auto", "Decided by the file (quantized input, TFLite metadata), raw 0..255 otherwise"),
                   *((kind, title) for kind, (title, _) in scalings.SCALINGS.items())]
LABELS_MAX_BYTES = 1 << 20
SANITY_PHOTOS_FROM_DATASET = 12


def _sandbox_wait() -> float:
    """How long to wait for the inspection: the sandbox's own limit, plus its start and a busy queue."""
    return settings.SANDBOX_SECONDS + settings.INFERENCE_TIMEOUT


class BackboneSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="What params.backbone names it: backbones/<id>.")
    input_scaling_title = serializers.SerializerMethodField()
    has_labels = serializers.SerializerMethodField()

    class Meta:
        model = Backbone
        fields = ["id", "key", "name", "format", "filename", "output", "input_size", "channels", "output_dim",
                  "feature_shape", "input_scaling", "input_scaling_title", "scaling_source", "sanity", "has_labels",
                  "size_bytes", "sha256", "created_at"]
        read_only_fields = fields

    def get_input_scaling_title(self, backbone: Backbone) -> str:
        return scalings.InputScaling.from_dict(backbone.input_scaling).title

    def get_has_labels(self, backbone: Backbone) -> bool:
        return backbone.labels_path.is_file()


class ScalingFields(serializers.Serializer):
    """`input_scaling` (+ `input_mean`, `input_std` for mean_std) and the dataset to check it on."""

    input_scaling = serializers.ChoiceField(choices=SCALING_CHOICES, required=False, default="auto",
                                            help_text="How 0..255 pixels are fed to the model.")
    input_mean = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                       help_text="mean_std only: 1 or 3 numbers in pixel units, e.g. 127.5.")
    input_std = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                      help_text="mean_std only: 1 or 3 numbers in pixel units, e.g. 127.5.")
    dataset = serializers.IntegerField(required=False, allow_null=True,
                                       help_text="One of your ready datasets: a few of its images join the check.")

    def validate(self, attrs):
        try:
            attrs["scaling"] = scalings.parse(attrs.get("input_scaling"), attrs.get("input_mean"),
                                              attrs.get("input_std"))
        except ValueError as exc:
            raise serializers.ValidationError({"input_scaling": [str(exc)]}) from None
        ident = attrs.get("dataset")
        if ident is not None:
            found = Dataset.objects.filter(id=ident, owner=self.context["request"].user,
                                           status=Dataset.Status.READY).first()
            if found is None:
                raise serializers.ValidationError({"dataset": ["You have no ready dataset with that id."]})
            attrs["dataset"] = found
        return attrs


class BackboneUploadSerializer(ScalingFields):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    file = serializers.FileField(help_text="A .keras, .h5 or .tflite model (quantized TFLite models too).")
    output = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                   help_text="Layer or tensor name the features come from; default: the output.")
    input_size = serializers.IntegerField(required=False, allow_null=True, min_value=16, max_value=1024,
                                          help_text="Square input side, when the model does not fix it.")
    labels = serializers.FileField(required=False, help_text="Optional: the model's class names, one per line "
                                                             "(shown by the sanity check).")

    def validate_file(self, upload):
        if formats.by_filename(upload.name) is None:
            raise serializers.ValidationError(f"A backbone is a {formats.suffix_list()} file.")
        if upload.size > settings.BACKBONE_MAX_BYTES:
            raise serializers.ValidationError(
                f"This file is larger than the {settings.BACKBONE_MAX_BYTES // 2**20} MiB a backbone may be.")
        upload.seek(0)
        problem = formats.problem(upload.name, upload.read(signatures.HEAD_BYTES))
        upload.seek(0)
        if problem:  # said here, in a moment, instead of by a sandboxed Keras in its own words
            raise serializers.ValidationError(problem)
        return upload

    def validate_labels(self, upload):
        if upload.size > LABELS_MAX_BYTES:
            raise serializers.ValidationError("A labels file is at most 1 MiB: one class name per line.")
        raw = b"".join(upload.chunks())
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        labels = [line.strip() for line in text.splitlines()]
        while labels and not labels[-1]:
            labels.pop()
        if not labels or "\0" in text:
            raise serializers.ValidationError("The labels file should be text, one class name per line.")
        return labels


class BackboneUpdateSerializer(ScalingFields):
    name = serializers.CharField(max_length=200, required=False, allow_blank=False)


class BackboneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet):
    serializer_class = BackboneSerializer
    queryset = Backbone.objects.none()  # for the schema's types only: get_queryset() scopes to the owner
    parser_classes = [MultiPartParser, JSONParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return Backbone.objects.filter(owner=self.request.user)

    @extend_schema(request={"multipart/form-data": BackboneUploadSerializer}, responses={201: BackboneSerializer})
    def create(self, request, *args, **kwargs):
        incoming = BackboneUploadSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        upload = data["file"]
        try:
            limits.check_storage(request.user, upload.size)
        except limits.LaunchRefused as exc:
            return Response({"file": [str(exc)]}, status=exc.status)
        backbone = Backbone.objects.create(
            owner=request.user, name=(data.get("name") or upload.name)[:200],
            format=formats.by_filename(upload.name).name,
            filename=upload.name[:255], output=data.get("output") or "", input_size=data.get("input_size") or 0,
            output_dim=0, size_bytes=upload.size, sha256="")
        try:
            backbone.sha256 = _store(upload, backbone)
            if data.get("labels"):
                backbone.labels_path.write_text("\n".join(data["labels"]) + "\n", encoding="utf-8")
            chosen = data["scaling"]
            answer = ask("inference.inspect_backbone", str(backbone.file_path), backbone.output or None,
                                data.get("input_size"), backbone.key, chosen.to_dict() if chosen else None,
                                _labels_arg(backbone), _photos(data.get("dataset")), _limits(), timeout=_sandbox_wait())
        except BaseException:
            _discard(backbone)
            raise
        if "error" in answer:
            _discard(backbone)
            return Response({"file": [_as_uploaded(answer["error"], backbone, upload.name)]},
                            status=status.HTTP_400_BAD_REQUEST)
        backbone.output = answer["layer"]
        backbone.input_size, backbone.channels = answer["image_size"], answer["channels"]
        backbone.feature_shape = answer["feature_shape"]
        backbone.output_dim = 1
        for width in answer["feature_shape"]:
            backbone.output_dim *= width
        backbone.input_scaling, backbone.scaling_source = answer["scaling"], answer["scaling_source"]
        backbone.sanity = _with_dataset(answer["sanity"], data.get("dataset"))
        backbone.save()
        return Response(BackboneSerializer(backbone).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BackboneUpdateSerializer, responses={200: BackboneSerializer})
    def partial_update(self, request, *args, **kwargs):
        """Rename it, or change its input scaling (and the check runs again on the photos)."""
        backbone = self.get_object()
        incoming = BackboneUpdateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if data.get("name"):
            backbone.name = data["name"][:200]
        if "input_scaling" in request.data or data.get("dataset"):
            dataset = data.get("dataset") or _previous_dataset(backbone)
            chosen = data["scaling"]
            record = _record(backbone)
            if chosen is not None:
                record["scaling"], source = chosen.to_dict(), "chosen by its owner"
            else:  # "auto": what the file says, found again by the worker
                record["scaling"], source = None, ""
            answer = ask(*_check_call(backbone, record, dataset), timeout=_sandbox_wait())
            if "error" in answer:
                return Response({"input_scaling": [_as_uploaded(answer["error"], backbone, backbone.filename)]},
                                status=status.HTTP_400_BAD_REQUEST)
            backbone.input_scaling = answer.get("scaling", record["scaling"])
            backbone.scaling_source = answer.get("scaling_source", source)
            backbone.sanity = _with_dataset(answer["sanity"], dataset)
        backbone.save()
        return Response(BackboneSerializer(backbone).data)

    def perform_destroy(self, backbone):
        _discard(backbone)


def _as_uploaded(error: str, backbone: Backbone, filename: str) -> str:
    """The worker's sentence with the stored copy called by the name its owner uploaded, and no server path."""
    error = error.replace(str(backbone.file_path), filename).replace(backbone.file_path.name, filename)
    return relative_paths(error)


def _record(backbone: Backbone) -> dict:
    """The row as jobs.ml.backbones.Backbone.to_dict() writes it (what the worker rebuilds it from)."""
    return {"name": backbone.key, "layer": backbone.output, "weights": f"sha256:{backbone.sha256}",
            "image_size": backbone.input_size, "channels": backbone.channels,
            "feature_shape": list(backbone.feature_shape), "kind": backbone.kind,
            "source": str(backbone.file_path), "scaling": backbone.input_scaling}


def _check_call(backbone: Backbone, record: dict, dataset) -> tuple:
    """The inference task to ask: a check under a given scaling, or a fresh inspection for "auto"."""
    if record["scaling"] is None:
        return ("inference.inspect_backbone", str(backbone.file_path), backbone.output or None,
                backbone.input_size, backbone.key, None, _labels_arg(backbone), _photos(dataset), _limits())
    return "inference.check_backbone", record, _labels_arg(backbone), _photos(dataset), _limits()


def _limits() -> dict:
    """The sandbox's limits, decided here so that one setting governs every inference worker."""
    return {"seconds": settings.SANDBOX_SECONDS, "memory_bytes": settings.SANDBOX_MEMORY_BYTES}


def _with_dataset(report: dict, dataset) -> dict:
    """The report, naming the dataset whose images joined the check (a later re-check uses it again)."""
    return {**report, "dataset": {"id": dataset.id, "name": dataset.name} if dataset is not None else None}


def _previous_dataset(backbone: Backbone):
    """The dataset of the last check, while it is still its owner's and ready."""
    ident = ((backbone.sanity or {}).get("dataset") or {}).get("id")
    if ident is None:
        return None
    return Dataset.objects.filter(id=ident, owner=backbone.owner, status=Dataset.Status.READY).first()


def _labels_arg(backbone: Backbone) -> str | None:
    return str(backbone.labels_path) if backbone.labels_path.is_file() else None


def _photos(dataset) -> list[list[str]]:
    """Up to SANITY_PHOTOS_FROM_DATASET [name, path] pairs spread over the dataset (every class when it can)."""
    if dataset is None:
        return []
    chosen, seen = [], {}
    for path, label in dataset.items.order_by("label", "id").values_list("path", "label")[:5000]:
        seen.setdefault(label, []).append(path)
    while len(chosen) < SANITY_PHOTOS_FROM_DATASET and any(seen.values()):
        for label in list(seen):
            if seen[label] and len(chosen) < SANITY_PHOTOS_FROM_DATASET:
                path = seen[label].pop(0)
                chosen.append([path.rsplit("/", 1)[-1], str(dataset.images_dir / path)])
    return chosen


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
