"""JSON shapes of jobs, as fixed by the API contract in PRODUCT.md (extended, never broken)."""

from __future__ import annotations

from rest_framework import serializers

from jobs.queues import Queue
from webapp.experiments.kinds import KINDS
from webapp.experiments.models import Job
from webapp.experiments.public import job_for


class JobSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)  # null until it starts

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
        model = getattr(job, "trained_model", None)
        return model.id if model else None

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        live = self.context.get("live", {}).get(job.id)
        if live and job.status == Job.Status.RUNNING:
            data["progress"], data["message"] = live["progress"], live["message"] or data["message"]
        request = self.context.get("request")
        return job_for(data, getattr(request, "user", None))


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    params = serializers.DictField(required=False, default=dict)
    queue = serializers.ChoiceField(
        choices=["auto", Queue.CPU.value, Queue.GPU.value], required=False, allow_null=True,
        help_text="Where to run it: cpu, gpu, or auto (gpu when a GPU worker is alive).",
    )
    dataset = serializers.IntegerField(required=False, allow_null=True)
    architecture = serializers.CharField(required=False, allow_blank=True)

    def validate_kind(self, kind: str) -> str:
        if not KINDS[kind].public:
            raise serializers.ValidationError(
                f"{Job.Kind(kind).label} jobs start by themselves; they cannot be launched directly.")
        return kind

    def validate(self, data: dict) -> dict:
        raw = dict(data.get("params") or {})
        for key in ("dataset", "architecture"):  # the contract puts these at the top level
            if data.get(key) not in (None, ""):
                raw.setdefault(key, data[key])
        params = KINDS[data["kind"]].params(data=raw, context=self.context)
        if not params.is_valid():
            errors = dict(params.errors)
            top = {key: errors.pop(key) for key in ("dataset", "architecture") if key in errors}
            raise serializers.ValidationError({**top, **({"params": errors} if errors else {})})
        data["params"] = dict(params.validated_data)
        data["dataset_obj"] = data["params"].pop("dataset_obj", None)
        return data


class DetailSerializer(serializers.Serializer):
    """An error or refusal: one sentence for a person (DRF's shape)."""

    detail = serializers.CharField()
