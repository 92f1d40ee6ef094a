"""JSON shapes of jobs, as fixed by the API contract in PRODUCT.md (extended, never broken)."""

from __future__ import annotations

from rest_framework import serializers

from jobs.queues import Queue
from webapp.experiments.params_api import params_help
from webapp.jobs import registry
from webapp.jobs.models import Job
from webapp.jobs.public import job_for
from webapp.jobs.queue_position import queue_position
from webapp.jobs.resumable import resume_state


class JobSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)  # null until it starts
    project = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(help_text=(
        'A queued job\'s place: {"queue", "position", "ahead": [the active jobs before it, oldest first; another '
        'user\'s only as {"status", "yours": false}], "text"}; null once it runs.'))
    # Declared, not derived: a read-only model field loses allow_blank, and "" (not failed) must be in the schema.
    failure = serializers.ChoiceField(choices=Job.Failure.choices, allow_blank=True, read_only=True, help_text=(
        "Why a failed job failed (blank while it has not, or when the cause is unknown); it decides resumable."))
    resumable = serializers.SerializerMethodField(help_text="Whether POST resume/ can continue it from a checkpoint.")
    resume_refusal = serializers.SerializerMethodField(help_text=(
        "For a failed or cancelled job that cannot be resumed: why, and what to do instead."))

    # Computed per job from the database and its working folder: details only, never list rows.
    DETAIL_ONLY = ["queue_position", "resumable", "resume_refusal"]

    # The record's headline numbers (webapp.experiments.summary), the same in lists and details.
    SUMMARY = ["test_accuracy", "best_val_accuracy", "best_val_loss", "bleu4", "best_epoch", "epochs_run"]

    class Meta:
        model = Job
        fields = [
            "id", "kind", "kind_label", "status", "progress", "message", "metrics", "result",
            "error", "failure", "model", "params", "dataset", "queue", "worker", "device", "cancel_requested",
            "created_at", "started_at", "finished_at", "duration_seconds",
            "project", "tags", "note", "record", "test_accuracy", "best_val_accuracy", "best_val_loss", "bleu4",
            "best_epoch", "epochs_run", "curve", "queue_position", "resumable", "resume_refusal",
        ]
        read_only_fields = fields

    def get_project(self, job: Job) -> str | None:
        return job.project.name if job.project_id else None

    def get_tags(self, job: Job) -> list[str]:
        return sorted(tag.name for tag in job.tags.all())

    def get_metrics(self, job: Job) -> list[dict]:
        return [m.as_dict() for m in job.metrics.all()]

    def get_model(self, job: Job) -> int | None:
        model = getattr(job, "trained_model", None)
        return model.id if model else None

    def get_queue_position(self, job: Job) -> dict | None:
        return queue_position(job)

    def _resume_state(self, job: Job) -> tuple[bool, str | None]:
        # Both Resume fields come from one look at the checkpoint (a detail shows one job).
        cached = getattr(self, "_resume_cache", None)
        if cached is None or cached[0] != job.pk:
            cached = self._resume_cache = (job.pk, resume_state(job))
        return cached[1]

    def get_resumable(self, job: Job) -> bool:
        return self._resume_state(job)[0]

    def get_resume_refusal(self, job: Job) -> str | None:
        return self._resume_state(job)[1]

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        live = self.context.get("live", {}).get(job.id)
        if live and job.status == Job.Status.RUNNING:
            data["progress"], data["message"] = live["progress"], live["message"] or data["message"]
        request = self.context.get("request")
        return job_for(data, getattr(request, "user", None))


class JobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[])  # the registered kinds, filled in get_fields
    params = serializers.DictField(required=False, default=dict)  # its help lists every kind's: get_fields
    queue = serializers.ChoiceField(
        choices=["auto", Queue.CPU.value, Queue.GPU.value], required=False, allow_null=True,
        help_text="Where to run it: cpu, gpu, or auto (gpu when a GPU worker is alive).",
    )
    dataset = serializers.IntegerField(required=False, allow_null=True)
    architecture = serializers.CharField(required=False, allow_blank=True)

    def get_fields(self):
        # Read the registry when used, not when this module is imported: a kind registered later is launchable.
        fields = super().get_fields()
        fields["kind"].choices = registry.choices()
        fields["params"].help_text = "The kind's parameters (GET /api/params/ lists them with their limits):\n" \
            + params_help()
        return fields

    def validate_kind(self, kind: str) -> str:
        if not registry.get(kind).public:
            raise serializers.ValidationError(
                f"{registry.get(kind).label} jobs start by themselves; they cannot be launched directly.")
        return kind

    def validate(self, data: dict) -> dict:
        raw = dict(data.get("params") or {})
        for key in ("dataset", "architecture"):  # the contract puts these at the top level
            if data.get(key) not in (None, ""):
                raw.setdefault(key, data[key])
        params = registry.get(data["kind"]).params(data=raw, context=self.context)
        if not params.is_valid():
            errors = dict(params.errors)
            top = {key: errors.pop(key) for key in ("dataset", "architecture") if key in errors}
            raise serializers.ValidationError({**top, **({"params": errors} if errors else {})})
        data["params"] = dict(params.validated_data)
        data["dataset_obj"] = data["params"].pop("dataset_obj", None)
        return data


class JobBulkDeleteSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1,
                                max_length=500,
                                help_text="The jobs to delete, all or none.", error_messages={
                                    "min_length": "Choose at least one job to delete.",
                                    "max_length": "Delete at most 500 jobs at a time."})


class JobBulkDeletedSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.IntegerField())


class JobEditSerializer(serializers.Serializer):
    """PATCH /api/jobs/{id}/: what a person files and writes about a run; nothing it computed."""

    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20,
                                 help_text="The run's tags, replacing the ones it had (at most 20).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, trim_whitespace=False)
    project = serializers.CharField(required=False, max_length=100,
                                    help_text="A project name; a new name creates the project.")

    def validate_project(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise serializers.ValidationError("A project needs a name.")
        return name

    def validate_tags(self, tags: list[str]) -> list[str]:
        if any("," in tag for tag in tags):
            raise serializers.ValidationError("A tag cannot hold a comma: give each tag as its own list item.")
        return sorted({tag.strip() for tag in tags if tag.strip()})


class ProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    jobs = serializers.IntegerField(source="job_count", read_only=True, help_text="How many runs it holds.")
    created_at = serializers.DateTimeField(read_only=True)

    def validate_name(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise serializers.ValidationError("A project needs a name.")
        return name
