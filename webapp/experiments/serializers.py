"""JSON shapes of jobs, as fixed by the API contract in PRODUCT.md (extended, never broken)."""

from __future__ import annotations

from rest_framework import serializers

from jobs.queues import Queue
from webapp.experiments.kinds import KINDS
from webapp.experiments.models import Job


class JobSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "kind", "kind_label", "status", "progress", "message", "metrics", "result",
            "error", "model", "params", "dataset", "queue", "worker", "device", "cancel_requested",
            "created_at", "started_at", "finished_at", "duration_seconds",
        ]
        read_only_fields = fields

    def get_metrics(self, job: Job) -> list[dict]:
        return [m.as_dict() for m in job.metrics.all()]

    def get_model(self, job: Job) -> int | None:
        return None  # trained models arrive with the training issue

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        live = self.context.get("live", {}).get(job.id)
        if live and job.status == Job.Status.RUNNING:
            data["progress"], data["message"] = live["progress"], live["message"] or data["message"]
        return data


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    params = serializers.DictField(required=False, default=dict)
    queue = serializers.ChoiceField(
        choices=[Queue.CPU.value, Queue.GPU.value], required=False, allow_null=True,
        help_text="Where to run it; the kind's default queue when left out.",
    )
    dataset = serializers.IntegerField(required=False, allow_null=True)
    architecture = serializers.CharField(required=False, allow_blank=True)

    def validate_kind(self, kind: str) -> str:
        if kind not in KINDS:
            label = Job.Kind(kind).label
            raise serializers.ValidationError(f"{label} jobs are not available on this server yet.")
        if not KINDS[kind].public:
            raise serializers.ValidationError(
                f"{Job.Kind(kind).label} jobs start by themselves; they cannot be launched directly.")
        return kind

    def validate(self, data: dict) -> dict:
        params = KINDS[data["kind"]].params(data=data.get("params") or {})
        if not params.is_valid():
            raise serializers.ValidationError({"params": params.errors})
        data["params"] = dict(params.validated_data)
        return data
