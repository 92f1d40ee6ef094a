"""JSON shapes of datasets and uploads, as fixed by the API contract in PRODUCT.md."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from webapp.datasets.models import Dataset, DatasetItem, Upload
from webapp.jobs.models import Job
from webapp.jobs.public import relative_paths


class DatasetSerializer(serializers.ModelSerializer):
    job = serializers.SerializerMethodField(
        help_text="The latest ingestion job: id, status, progress, message.")
    error = serializers.SerializerMethodField(help_text="Why it failed, as a sentence; empty unless it failed.")
    warnings = serializers.JSONField(read_only=True, help_text=(
        'What will get in the way later, each {"code", "message", ...}: "too_few_images" (a class too small for '
        'the train/validation/test split: training on it is refused; "classes", "needed") or '
        '"looks_like_classification" (class folders uploaded as captions: POST reread/ with kind classification).'))

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "kind", "status", "error", "num_items", "classes", "num_captions", "skipped",
            "source", "original_filename", "archive_bytes", "content_hash", "split_counts",
            "has_split_files", "stats", "created_at", "ready_at", "job", "warnings",
        ]
        read_only_fields = fields

    def get_error(self, dataset: Dataset) -> str:
        return relative_paths(dataset.error)  # rows written before errors were scrubbed at the source

    def get_job(self, dataset: Dataset) -> dict | None:
        job = dataset.jobs.filter(kind=Job.Kind.INGEST).order_by("-id").first()
        if job is None:
            return None
        live = self.context.get("live", {}).get(job.id)
        progress, message = (live["progress"], live["message"]) if live and job.is_active else (
            job.progress, job.message)
        return {"id": job.id, "status": job.status, "progress": progress, "message": message}


class DatasetListSerializer(DatasetSerializer):
    """The list leaves out what can be long (the skipped report, the statistics): pages poll it."""

    class Meta(DatasetSerializer.Meta):
        fields = [f for f in DatasetSerializer.Meta.fields if f not in ("skipped", "stats")]
        read_only_fields = fields


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Dataset.Kind.choices)
    file = serializers.FileField(required=False, help_text="A .zip archive (multipart).")
    upload = serializers.UUIDField(required=False, help_text="The id of a finished chunked upload.")

    def validate(self, data):
        if bool(data.get("file")) == bool(data.get("upload")):
            raise serializers.ValidationError(
                "Send the archive either as `file` or as a finished `upload` id.")
        return data


class RereadSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Dataset.Kind.choices, help_text="Read the same archive as this kind.")


class ReferenceSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="digits, shapes, shapes-captions, mnist, fashion_mnist or cifar10")


class DatasetItemSerializer(serializers.ModelSerializer):
    thumbnail_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetItem
        fields = ["id", "path", "original", "label", "split", "width", "height", "mode", "format",
                  "checksum", "captions", "thumbnail_url", "image_url"]

    def get_thumbnail_url(self, item) -> str:
        return f"/datasets/{item.dataset_id}/thumbs/{item.thumbnail}"

    def get_image_url(self, item) -> str:
        return f"/datasets/{item.dataset_id}/images/{item.id}"


class DatasetItemPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Items matching the filters, on every page.")
    results = DatasetItemSerializer(many=True)


class UploadSerializer(serializers.ModelSerializer):
    complete = serializers.BooleanField(read_only=True)
    chunk_size = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = ["id", "filename", "size", "offset", "complete", "chunk_size", "created_at"]
        read_only_fields = ["id", "offset", "complete", "chunk_size", "created_at"]

    def get_chunk_size(self, upload) -> int:
        return settings.UPLOAD_CHUNK_SIZE
