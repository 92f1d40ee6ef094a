"""JSON shapes of sweeps: what POST /api/sweeps/ takes, and what a sweep reads as (PRODUCT.md's contract,
extended)."""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings
from rest_framework import serializers

from jobs.ml.catalog import ARCHITECTURES
from webapp.experiments.models import Project
from webapp.jobs import registry
from webapp.jobs.limits import LAUNCH_QUEUES
from webapp.jobs.models import Job
from webapp.sweeps import engine, space
from webapp.sweeps.models import Sweep

DEFAULT_TRIALS = 12
MAX_PARALLEL = 16


class SweepCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="A ready dataset of yours (classification, or captions for "
                                                 "train_captioner).")
    kind = serializers.ChoiceField(choices=space.sweep_kinds(), default="train")
    architecture = serializers.CharField(required=False, allow_blank=True,
                                         help_text="For kind train: the architecture every trial trains.")
    params = serializers.DictField(required=False, default=dict,
                                   help_text="The values every trial shares (GET /api/params/ lists them).")
    space = serializers.DictField(help_text=(
        'The parameters to search: {name: {"type": "choice", "values": [...]} | {"type": "uniform" | '
        '"log_uniform", "low", "high"} | {"type": "int", "low", "high"}}; only parameters declared sweepable.'))
    method = serializers.ChoiceField(choices=Sweep.Method.values, default="tpe")
    trials = serializers.IntegerField(required=False, allow_null=True, min_value=1, help_text=(
        f"How many trials (default {DEFAULT_TRIALS}; a grid: all its points). At most SWEEP_MAX_TRIALS."))
    parallel = serializers.IntegerField(default=1, min_value=1, max_value=MAX_PARALLEL,
                                        help_text="At most this many trials queued or running at once.")
    objective = serializers.DictField(required=False, default=dict, help_text=(
        '{"metric": "val_accuracy", "direction": "max"}: a metric every epoch records (val_accuracy, val_loss, '
        'accuracy, loss) or the final test_accuracy (bleu4 for captions).'))
    pruning = serializers.ChoiceField(choices=Sweep.Pruning.values, required=False, allow_null=True, default=None)
    budget_minutes = serializers.FloatField(required=False, allow_null=True, min_value=1, max_value=60 * 24 * 30,
                                            help_text="A time budget: fewer trials when the estimate is longer, "
                                                      "and no trial starts once it is spent.")
    queue = serializers.ChoiceField(choices=LAUNCH_QUEUES, default="auto", help_text=(
        "Where trials run; transfer heads on cached features always run on cpu."))
    project = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                    help_text="The project its trials are filed in (a new name creates it).")
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1,
                                    help_text="The sampler's seed: the same seed draws the same trials.")

    def validate(self, data: dict) -> dict:
        kind = data["kind"]
        user = self.context["request"].user
        fixed = {k: v for k, v in dict(data.get("params") or {}).items() if k not in ("dataset", "architecture")}
        fixed["dataset"] = data["dataset"]
        if kind == "train":
            if not data.get("architecture"):
                raise serializers.ValidationError({"architecture": ["Choose the architecture every trial trains."]})
            fixed["architecture"] = data["architecture"]
        try:
            data["space"] = space.check_space(kind, data["space"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"space": exc.detail}) from None
        checked = registry.get(kind).params(data=fixed, context={"request": SimpleNamespace(user=user)})
        if not checked.is_valid():
            errors = dict(checked.errors)
            top = {key: errors.pop(key) for key in ("dataset", "architecture") if key in errors}
            raise serializers.ValidationError({**top, **({"params": errors} if errors else {})})
        self._check_largest(kind, fixed, data["space"], user)
        validated = dict(checked.validated_data)
        data["dataset_obj"] = validated.pop("dataset_obj")
        data["validated"] = validated
        data["fixed"] = fixed
        data["metric"], data["direction"] = space.check_objective(kind, data.get("objective"))
        if data.get("pruning") and not space.objectives(kind)[data["metric"]].per_epoch:
            raise serializers.ValidationError({"pruning": [
                f"A pruner compares trials epoch by epoch, and {data['metric']} is known only when a trial ends; "
                "choose a per-epoch objective such as val_accuracy, or no pruning."]})
        limit = settings.SWEEP_MAX_TRIALS
        if data["method"] == "grid":
            try:
                size = space.grid_size(data["space"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"space": exc.detail}) from None
            if size > space.MAX_GRID_SIZE:
                raise serializers.ValidationError({"space": [f"This grid has {size:,} points; at most "
                                                             f"{space.MAX_GRID_SIZE:,} can be listed."]})
            data["trials"] = min(data.get("trials") or size, size)
        data["trials"] = data.get("trials") or DEFAULT_TRIALS
        if data["trials"] > limit:
            raise serializers.ValidationError({"trials": [f"A sweep runs at most {limit} trials (SWEEP_MAX_TRIALS); "
                                                          "extend it later to run more."]})
        arch = ARCHITECTURES.get(validated.get("architecture", ""))
        extract = arch is not None and arch.uses_backbone and validated.get("mode", "extract") == "extract" \
            and "mode" not in data["space"]
        data["queue"] = "cpu" if extract else data["queue"]  # heads on cached features: seconds, on the CPU
        return data


    @staticmethod
    def _check_largest(kind: str, fixed: dict, searched: dict, user) -> None:
        """The launch checks of the sweep's most demanding trial (largest batch and images), once: the trials
        then skip the memory check, which asks the inference worker."""
        largest = {name: max(spec["values"]) if spec["type"] == "choice" else spec["high"]
                   for name, spec in searched.items() if name in ("batch_size", "image_size")}
        if not largest:
            return
        checked = registry.get(kind).params(data={**fixed, **largest}, context={"request": SimpleNamespace(user=user)})
        if not checked.is_valid():
            errors = {name: messages for name, messages in checked.errors.items() if name in largest}
            if errors:
                raise serializers.ValidationError({"space": {name: [f"At its largest ({largest[name]}): "
                                                                    f"{' '.join(map(str, messages))}"]
                                                             for name, messages in errors.items()}})


def mean_epochs(data: dict) -> float:
    spec = data["space"].get("epochs")
    if spec is None:
        return float(data["validated"].get("epochs") or 1)
    if spec["type"] == "choice":
        return sum(spec["values"]) / len(spec["values"])
    return (spec["low"] + spec["high"]) / 2


def project_for(user, name: str | None) -> Project:
    if name and name.strip():
        return Project.objects.get_or_create(owner=user, name=name.strip())[0]
    return Project.default_for(user)


class TrialSerializer(serializers.Serializer):
    """One trial of a sweep: its job, the parameters it drew, its score and how it ended."""

    def to_representation(self, job: Job) -> dict:
        sweep: Sweep = self.context["sweep"]
        return {
            "job": job.id, "number": job.trial_number, "status": job.status,
            "params": {name: job.params.get(name) for name in sweep.space},
            "value": engine.objective_value(job, sweep),
            "epochs_run": job.epochs_run, "epochs": job.params.get("epochs"), "best_epoch": job.best_epoch,
            "duration_seconds": job.duration_seconds, "progress": job.progress, "message": job.message,
            "error": job.error, "curve": job.curve, "seconds_saved": round(engine.seconds_saved(job), 1),
        }


def describe_sweep(sweep: Sweep, trials: list[Job], promoted: list[Job]) -> dict:
    """GET /api/sweeps/{id}/: the sweep, its trials in order, the best, and what pruning saved."""
    rows = [TrialSerializer(job, context={"sweep": sweep}).data for job in trials]
    scored = [row for row in rows if row["status"] == Job.Status.SUCCEEDED and row["value"] is not None]
    best = (max if sweep.direction == "max" else min)(scored, key=lambda row: row["value"]) if scored else None
    objective = space.objectives(sweep.kind)[sweep.metric]
    ended = [job for job in trials if not job.is_active and job.duration_seconds]
    per_trial = sum(job.duration_seconds for job in ended) / len(ended) if ended else None
    planned = min(sweep.trials, space.grid_size(sweep.space)) if sweep.method == "grid" else sweep.trials
    remaining = None
    if sweep.status == Sweep.Status.RUNNING and per_trial:
        waiting = max(0, planned - len(ended))
        remaining = round(per_trial * -(-waiting // max(1, sweep.parallel)), 1)
    counts = {status: sum(row["status"] == status for row in rows) for status in Job.Status.values}
    return {
        "id": sweep.id, "name": sweep.name, "title": sweep.title, "status": sweep.status, "message": sweep.message,
        "kind": sweep.kind, "architecture": sweep.params.get("architecture", "merge"), "dataset": sweep.dataset_id,
        "dataset_name": sweep.dataset.name if sweep.dataset else None, "project": sweep.project.name,
        "method": sweep.method, "pruning": sweep.pruning or None, "queue": sweep.queue, "seed": sweep.seed,
        "objective": {"metric": sweep.metric, "direction": sweep.direction, "label": objective.label,
                      "per_epoch": objective.per_epoch},
        "params": sweep.params, "space": sweep.space, "trials_planned": planned, "parallel": sweep.parallel,
        "budget_minutes": round(sweep.budget_seconds / 60, 1) if sweep.budget_seconds else None,
        "estimate": sweep.estimate, "created_at": sweep.created_at, "finished_at": sweep.finished_at,
        "counts": {k: v for k, v in counts.items() if v}, "importance": sweep.importance,
        "seconds_saved_by_pruning": round(sum(row["seconds_saved"] for row in rows), 1),
        "epochs_saved_by_pruning": sum(max(0, (row["epochs"] or 0) - (row["epochs_run"] or 0))
                                       for row in rows if row["status"] == Job.Status.PRUNED),
        "seconds_left": remaining,
        "trials": rows,
        "best": {"job": best["job"], "number": best["number"], "params": best["params"], "value": best["value"]}
        if best else None,
        "promoted": [{"job": job.id, "status": job.status, "note": job.note, "test_accuracy": job.test_accuracy,
                      "params": {name: job.params.get(name) for name in (*sweep.space, "epochs", "mode")}}
                     for job in promoted],
    }


def sweep_row(sweep: Sweep) -> dict:
    """A row of GET /api/sweeps/: what the list shows, without the trials."""
    trials = list(sweep.jobs.filter(trial_number__isnull=False).only("status", "trial_number"))
    return {"id": sweep.id, "title": sweep.title, "status": sweep.status, "message": sweep.message,
            "dataset_name": sweep.dataset.name if sweep.dataset else None,
            "kind": sweep.kind, "method": sweep.method, "pruning": sweep.pruning or None,
            "metric": sweep.metric, "direction": sweep.direction, "trials_planned": sweep.trials,
            "trials_started": len(trials), "trials_active": sum(j.is_active for j in trials),
            "dataset": sweep.dataset_id, "project": sweep.project.name, "created_at": sweep.created_at}


class ExtendSerializer(serializers.Serializer):
    trials = serializers.IntegerField(min_value=1, max_value=1000, help_text="How many trials to add.")


class PromoteSerializer(serializers.Serializer):
    top = serializers.IntegerField(default=1, min_value=1, max_value=10, help_text="How many of the best trials.")
    epochs = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1000,
                                      help_text="Epochs of the new runs (default: twice the trial's).")
    finetune = serializers.BooleanField(default=False, help_text=(
        "Fine-tune the backbone too (transfer trials in extract mode); runs on a GPU worker when one is alive."))


# --- the answers' shapes, for the OpenAPI schema (the views build them with describe_sweep and sweep_row) ---

class _Objective(serializers.Serializer):
    metric = serializers.CharField()
    direction = serializers.ChoiceField(choices=["max", "min"])
    label = serializers.CharField()
    per_epoch = serializers.BooleanField()


class _Curve(serializers.Serializer):
    metric = serializers.CharField(required=False)
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()), required=False)


class TrialDoc(serializers.Serializer):
    job = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    params = serializers.DictField(help_text="The values this trial drew for the searched parameters.")
    value = serializers.FloatField(allow_null=True, help_text="Its objective: the final score, or the best epoch's.")
    epochs_run = serializers.IntegerField(allow_null=True)
    epochs = serializers.IntegerField(allow_null=True)
    best_epoch = serializers.IntegerField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    progress = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    curve = _Curve()
    seconds_saved = serializers.FloatField(help_text="Pruned trials: about how long it would still have trained.")


class _Best(serializers.Serializer):
    job = serializers.IntegerField()
    number = serializers.IntegerField()
    params = serializers.DictField()
    value = serializers.FloatField()


class _Promoted(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Job.Status.choices)
    note = serializers.CharField(allow_blank=True)
    test_accuracy = serializers.FloatField(allow_null=True)
    params = serializers.DictField()


class SweepDoc(serializers.Serializer):
    """GET /api/sweeps/{id}/."""

    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Sweep.Status.choices)
    message = serializers.CharField(allow_blank=True)
    kind = serializers.CharField()
    architecture = serializers.CharField(allow_null=True)
    dataset = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField(allow_null=True)
    project = serializers.CharField()
    method = serializers.ChoiceField(choices=Sweep.Method.choices)
    pruning = serializers.ChoiceField(choices=Sweep.Pruning.choices, allow_null=True)
    queue = serializers.CharField()
    seed = serializers.IntegerField()
    objective = _Objective()
    params = serializers.DictField()
    space = serializers.DictField()
    trials_planned = serializers.IntegerField()
    parallel = serializers.IntegerField()
    budget_minutes = serializers.FloatField(allow_null=True)
    estimate = serializers.DictField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    importance = serializers.DictField(child=serializers.FloatField())
    seconds_saved_by_pruning = serializers.FloatField()
    epochs_saved_by_pruning = serializers.IntegerField()
    seconds_left = serializers.FloatField(allow_null=True)
    trials = TrialDoc(many=True)
    best = _Best(allow_null=True)
    promoted = _Promoted(many=True)


class SweepRowDoc(serializers.Serializer):
    """A row of GET /api/sweeps/."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Sweep.Status.choices)
    message = serializers.CharField(allow_blank=True)
    kind = serializers.CharField()
    method = serializers.ChoiceField(choices=Sweep.Method.choices)
    pruning = serializers.ChoiceField(choices=Sweep.Pruning.choices, allow_null=True)
    metric = serializers.CharField()
    direction = serializers.ChoiceField(choices=["max", "min"])
    trials_planned = serializers.IntegerField()
    trials_started = serializers.IntegerField()
    trials_active = serializers.IntegerField()
    dataset = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField(allow_null=True)
    project = serializers.CharField()
    created_at = serializers.DateTimeField()


class DryRunDoc(serializers.Serializer):
    """POST /api/sweeps/?dry_run=1: the estimate, nothing created."""

    estimate = serializers.DictField(help_text='{"text", "seconds", "seconds_with_pruning", "seconds_per_trial", '
                                               '"trials", "at_once", "workers", "source", "train_images", ...}')
    trials = serializers.IntegerField()
    queue = serializers.CharField()


class _PromotedJob(serializers.Serializer):
    id = serializers.IntegerField()
    queue = serializers.CharField()
    status = serializers.CharField()


class PromotedDoc(serializers.Serializer):
    jobs = _PromotedJob(many=True)
