"""The job kinds this server can run, and how a job is launched.

Each kind names the Celery task that runs it (by name: the web process never imports
`jobs.tasks`), the serializer that validates its parameters, and its default queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from jobs.ml.catalog import ARCHITECTURES
from jobs.ml.config import MODE_DEFAULTS
from jobs.provenance import code_version
from jobs.queues import Queue
from webapp.experiments import input_defaults, limits, live, params
from webapp.experiments.backbone_choices import WEIGHTS, BackboneChoice, resolve
from webapp.experiments.models import Job, Project
from webapp.experiments.resumable import RESUMABLE_KINDS, resume_refusal  # noqa: F401 - RESUMABLE_KINDS: its old home
from webapp.redis_client import REDIS_ERRORS, redis_problem

log = logging.getLogger(__name__)

MEMORY_CHECK_TIMEOUT = 5.0  # seconds a launch waits for the model's size; past it, launch without the check


class QueueUnavailable(Exception):
    """The job queue (Redis) cannot be reached, so no job can be started."""

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(
            "The job queue is not reachable (Redis is down or unreachable), so the job was "
            "not started. Ask the administrator to check Redis, then try again."
        )


class SystemCheckParams(params.SYSTEM_CHECK.serializer_base("SystemCheckFields")):
    pass


class IngestParams(serializers.Serializer):
    pass


def ready_dataset(dataset_id: int, user, kind: str | None):
    """The user's ready dataset `dataset_id` (of `kind`, when given), or a ValidationError."""
    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.filter(id=dataset_id, owner=user).first()
    if dataset is None:
        raise serializers.ValidationError("You have no dataset with this id.")
    if dataset.status != Dataset.Status.READY:
        raise serializers.ValidationError(f"This dataset is not ready yet (it is {dataset.status}).")
    if kind == Dataset.Kind.CLASSIFICATION and dataset.kind != kind:
        raise serializers.ValidationError("Training a classifier needs a classification dataset; "
                                          "this one holds captions.")
    if kind == Dataset.Kind.CAPTIONS and dataset.kind != kind:
        raise serializers.ValidationError("Training a caption model needs a caption dataset; "
                                          "this one holds classes.")
    return dataset


def _describe(name: str, shape: list[int], classes: int) -> dict:
    """The model summary, from the inference worker (which builds models; it caches each shape).

    When no live worker serves the inference queue nobody would answer, so it says so at once
    instead of holding the launch for MEMORY_CHECK_TIMEOUT (the launch then goes ahead unchecked).
    """
    from webapp.experiments.inference import ask
    from webapp.ops.workers import read_presence

    try:
        serving = any(Queue.INFERENCE in w.get("queues", []) for w in read_presence().values())
    except REDIS_ERRORS:
        serving = True  # ask() says what is wrong with Redis
    if not serving:
        raise LookupError("No inference worker is running to describe the model.")
    return ask("inference.describe_architecture", name, shape, classes, timeout=MEMORY_CHECK_TIMEOUT)


def _record_dataset(attrs: dict) -> None:
    """Keep the dataset's id, name and content hash in the params: the job's record outlives the dataset."""
    dataset = attrs["dataset"]
    attrs["dataset_obj"], attrs["dataset"] = dataset, dataset.id
    attrs["dataset_name"], attrs["dataset_hash"] = dataset.name, dataset.content_hash


def _check_backbone(attrs: dict, user, default: str) -> BackboneChoice:
    """Resolve params.backbone (defaulting it) and drop `weights` where the backbone has none to choose."""
    try:
        choice = resolve(attrs.get("backbone") or default, user)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"backbone": exc.detail}) from None
    attrs["backbone"] = choice.key
    attrs["backbone_label"] = choice.label
    if not choice.has_weights_choice:
        attrs["weights"] = "file"
    return choice


class BackboneParams(serializers.Serializer):
    backbone = serializers.CharField(
        required=False, help_text="vgg16, vgg16_conv, mobilenet_v2, backbones/<id> (uploaded) or models/<id> "
                                  "(a classifier you trained).")
    weights = serializers.ChoiceField(choices=list(WEIGHTS), default="imagenet",
                                      help_text="For built-in backbones: ImageNet weights, or random ones.")


class TrainParams(params.TRAIN.serializer_base("TrainFields"), BackboneParams):
    """A training run. Only `dataset` and `architecture` are needed; the rest has defaults, so a
    newcomer picks two things and presses Start: image size and colour mode from the dataset within
    the architecture's limits (webapp.experiments.input_defaults), the others declared in `params.TRAIN`."""

    dataset = serializers.IntegerField(help_text="A ready classification dataset of yours.")
    architecture = serializers.ChoiceField(choices=sorted(ARCHITECTURES))
    validation_split = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=0.5,
        help_text="Ignored: the dataset's own train/validation/test split is used, so runs compare.")

    def validate_dataset(self, dataset_id: int):
        from webapp.datasets.checks import small_classes, too_few_sentence

        dataset = ready_dataset(dataset_id, self.context["request"].user, "classification")
        if len(dataset.classes) < 2:
            raise serializers.ValidationError("This dataset has fewer than two classes.")
        small = small_classes(dataset)  # from its rows, so a dataset read before the warning existed is checked too
        if small:
            raise serializers.ValidationError(too_few_sentence(small))
        return dataset

    def validate(self, attrs):
        arch = ARCHITECTURES[attrs["architecture"]]
        if arch.uses_backbone:
            self._backbone(attrs, arch)
        else:
            for key in ("backbone", "weights", "mode"):
                attrs.pop(key, None)
        # Left out: from the dataset (its typical side within the architecture's limits, its colours).
        input_defaults.fill_input(attrs, arch, attrs["dataset"])
        if attrs["image_size"] < arch.min_image_size:
            raise serializers.ValidationError({"image_size": [
                f"{arch.title} needs images of at least {arch.min_image_size}x{arch.min_image_size} pixels."]})
        if not arch.uses_backbone and not self.context.get("memory_checked"):  # a sweep checks its largest once
            try:
                limits.check_training_memory(attrs["architecture"], attrs["image_size"],
                                             1 if attrs["color_mode"] == "grayscale" else 3,
                                             len(attrs["dataset"].classes), attrs["batch_size"], _describe)
            except limits.LaunchRefused as exc:
                raise serializers.ValidationError({"batch_size": [str(exc)]}) from None
        _record_dataset(attrs)
        return attrs

    def _backbone(self, attrs: dict, arch) -> None:
        """Transfer and feature models read what their backbone reads; fine-tuning needs a Keras backbone."""
        if arch.fixed_backbone and attrs.get("backbone") not in (None, "", arch.default_backbone):
            raise serializers.ValidationError({"backbone": [
                f"{arch.title} always uses {arch.default_backbone}; choose 'transfer' for another backbone."]})
        choice = _check_backbone(attrs, self.context["request"].user, arch.default_backbone)
        if arch.family == "features":
            attrs.pop("mode", None)
        elif attrs["mode"] == "finetune":
            if not choice.keras:
                raise serializers.ValidationError({"mode": [
                    "Only Keras backbones can be fine-tuned; a TensorFlow Lite file is frozen. Use extract."]})
            for name, value in MODE_DEFAULTS["finetune"].items():  # a slow rate and flips, unless chosen
                if name not in self.initial_data:
                    attrs[name] = value
        attrs["image_size"] = choice.image_size
        attrs["color_mode"] = "grayscale" if choice.channels == 1 else "rgb"


class FeatureParams(params.FEATURES.serializer_base("FeatureFields"), BackboneParams):
    """Run a backbone once over a dataset; later jobs on the same data and backbone reuse the result."""

    dataset = serializers.IntegerField(help_text="A ready dataset of yours (classification or captions).")

    def validate_dataset(self, dataset_id: int):
        return ready_dataset(dataset_id, self.context["request"].user, None)

    def validate(self, attrs):
        _check_backbone(attrs, self.context["request"].user, "vgg16")
        _record_dataset(attrs)
        return attrs


class CaptionParams(params.CAPTION.serializer_base("CaptionFields"), BackboneParams):
    """The merge captioning model on a caption dataset (workflow 4 of PRODUCT.md); its tunable
    parameters are declared in `params.CAPTION`."""

    dataset = serializers.IntegerField(help_text="A ready caption dataset of yours.")
    architecture = serializers.ChoiceField(choices=["merge"], default="merge")

    def validate_dataset(self, dataset_id: int):
        dataset = ready_dataset(dataset_id, self.context["request"].user, "captions")
        if not dataset.num_captions:
            raise serializers.ValidationError("This dataset has no captions.")
        return dataset

    def validate(self, attrs):
        _check_backbone(attrs, self.context["request"].user, "vgg16")
        _record_dataset(attrs)
        return attrs


EXPORT_FORMATS = ("savedmodel", "tflite", "tflite_float16", "tflite_int8", "onnx")  # jobs.ml.export.FORMATS


class ExportParams(serializers.Serializer):
    """Convert a trained classifier to another format and check it against the original (jobs.exports)."""

    model = serializers.IntegerField(help_text="A trained classifier of yours.")
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)

    def validate_model(self, model_id: int) -> int:
        from webapp.experiments.models import TrainedModel

        model = TrainedModel.objects.filter(id=model_id, owner=self.context["request"].user).first()
        if model is None:
            raise serializers.ValidationError("You have no model with this id.")
        if model.task != TrainedModel.Task.CLASSIFY:
            raise serializers.ValidationError(
                "Caption models are kept as .keras files only: their beam search runs in Python around the "
                "network, so no single exported graph would caption a photo.")
        if (model.backbone or {}).get("kind") == "tflite":
            raise serializers.ValidationError(
                "This model reads its features from a TensorFlow Lite backbone, which runs in its own interpreter "
                "before the Keras head; the two cannot be joined into one exported file.")
        if model.dataset_id is None:
            raise serializers.ValidationError("The dataset this model was trained on was deleted, so an export "
                                              "could not be checked against the original.")
        return model_id


@dataclass(frozen=True)
class JobKind:
    task: str
    params: type[serializers.Serializer]
    default_queue: Queue
    # False for kinds the platform starts itself (ingestion starts with an upload).
    public: bool = True


KINDS: dict[str, JobKind] = {
    Job.Kind.SYSTEM_CHECK: JobKind("jobs.system_check", SystemCheckParams, Queue.CPU),
    Job.Kind.INGEST: JobKind("jobs.ingest_dataset", IngestParams, Queue.CPU, public=False),
    Job.Kind.TRAIN: JobKind("jobs.train", TrainParams, Queue.CPU),
    Job.Kind.EXTRACT_FEATURES: JobKind("jobs.extract_features", FeatureParams, Queue.CPU),
    Job.Kind.TRAIN_CAPTIONER: JobKind("jobs.train_captioner", CaptionParams, Queue.CPU),
    Job.Kind.EXPORT_MODEL: JobKind("jobs.export_model", ExportParams, Queue.CPU),
}


def launch_job(owner, kind: str, params: dict, queue: str | None = None, dataset=None, *, project=None,
               tags=(), note: str = "", rerun_of: Job | None = None, sweep=None,
               trial_number: int | None = None) -> Job:
    """Create a job and enqueue it once the row is committed.

    Redis is checked first so that an outage answers at once with QueueUnavailable instead
    of leaving a job that can never run; if publishing still fails, the job is marked failed
    with the reason and QueueUnavailable is raised. The job is filed in `project` (the owner's
    "Default" when None) and its record starts with the seed and the dataset's content hash. A
    sweep's trial carries its sweep and trial number from the start, before any worker can claim it.
    """
    spec = KINDS[kind]
    limits.check_queue(queue)
    limits.check_active_jobs(owner)
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    if queue in (None, "", "auto"):
        queue = spec.default_queue if kind in (Job.Kind.SYSTEM_CHECK, Job.Kind.INGEST, Job.Kind.EXPORT_MODEL) \
            else auto_queue()
    priority = limits.priority_for(owner)
    record = {"seed": params.get("seed"), "code": code_version(),
              "dataset_hash": params.get("dataset_hash") or getattr(dataset, "content_hash", None),
              **({"rerun_of": rerun_of.id} if rerun_of else {})}
    job = Job.objects.create(owner=owner, kind=kind, params=params, dataset=dataset, queue=queue, note=note,
                             project=project or Project.default_for(owner), sweep=sweep, trial_number=trial_number,
                             record={k: v for k, v in record.items() if v is not None})
    if tags:
        job.tags.set(tags)
    transaction.on_commit(lambda: _enqueue(job, spec, priority), robust=False)
    return job


# Params a launch writes down beside the ones its caller chose: the rerun asks for the choices only.
DERIVED_PARAMS = ("dataset_name", "dataset_hash", "backbone_label")


def rerun_params(job: Job) -> dict:
    """The parameters that launch `job` again as it was (same seed), or ValueError (a sentence) when
    its inputs are gone or have changed since."""
    params = {key: value for key, value in (job.params or {}).items() if key not in DERIVED_PARAMS}
    if params.get("weights") == "file":  # no weights to choose for a file backbone: launch defaults it again
        params.pop("weights")
    if "dataset" in params:
        dataset = job.dataset
        if dataset is None:
            raise ValueError("This run's dataset was deleted, so it cannot be run again.")
        recorded = (job.params or {}).get("dataset_hash")
        if recorded and dataset.content_hash and recorded != dataset.content_hash:
            raise ValueError("This run's dataset has changed since it ran, so running it again would not repeat it.")
    return params


def auto_queue() -> str:
    """`gpu` when a live worker on the gpu queue has a GPU, else `cpu`."""
    from webapp.ops.workers import read_presence

    try:
        workers = read_presence().values()
    except REDIS_ERRORS:
        return Queue.CPU
    has_gpu = any(Queue.GPU in w.get("queues", []) and any(d["type"] == "GPU" for d in w.get("devices", []))
                  for w in workers)
    return Queue.GPU if has_gpu else Queue.CPU


class ResumeRefused(Exception):
    """Resume cannot help this job (webapp.experiments.resumable); str() says why and what to do."""


def resume_job(job_id: int) -> bool:
    """Queue a failed or cancelled training job (classifier or caption model) again; it continues
    from its last checkpoint. ResumeRefused when resuming cannot help it; False when it changed
    state meanwhile (ended, or resumed by another request)."""
    job = Job.objects.filter(id=job_id).first()
    if job is None:
        return False
    problem = resume_refusal(job)
    if problem:
        raise ResumeRefused(problem)
    limits.check_active_jobs(job.owner)
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    priority = limits.priority_for(job.owner)
    params = {**job.params, "resume": True}
    if not Job.objects.filter(id=job.id, status=job.status).update(
        status=Job.Status.QUEUED, params=params, error="", failure="", message="Queued to resume",
        cancel_requested=False, finished_at=None, updated_at=timezone.now(),
    ):
        return False
    job.refresh_from_db()
    try:
        live.clear_cancel(job.id)
    except REDIS_ERRORS:
        pass
    transaction.on_commit(lambda: _enqueue(job, KINDS[job.kind], priority), robust=False)
    return True


def _enqueue(job: Job, spec: JobKind, priority: int = 0) -> None:
    from jobs.celery import app

    try:
        app.send_task(spec.task, args=[job.id], queue=job.queue, task_id=job.task_id, retry=False,
                      priority=priority)
    except Exception as exc:  # kombu and redis raise many types for "cannot connect"
        log.error("Could not enqueue job %s: %s", job.id, exc)
        error = QueueUnavailable(f"{type(exc).__name__}: {exc}")
        Job.finish(job.id, Job.Status.FAILED, error=str(error), message="Not started", failure=Job.Failure.NOT_STARTED)
        raise error from exc


def cancel_job(job_id: int) -> bool:
    """Cancel a queued job at once, or ask a running one to stop. False if it already ended.

    A cancelled queued job keeps its message in Redis, but the worker's claim finds it no
    longer queued and runs nothing. A running job sees the request at its next progress
    report (within about a second) through Redis, or through the database flag if Redis
    is down.
    """
    now = timezone.now()
    if Job.objects.filter(id=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now,
        message="Cancelled before it started",
    ):
        job = Job.objects.filter(id=job_id, sweep__isnull=False).first()
        if job is not None:  # a sweep's trial that never ran: its sweep moves on now (a running one's worker does it)
            from webapp.sweeps.engine import trial_ended

            trial_ended(job)
        return True
    if Job.objects.filter(id=job_id, status=Job.Status.RUNNING).update(
        cancel_requested=True, message="Cancelling", updated_at=now,
    ):
        try:
            live.request_cancel(job_id)
        except REDIS_ERRORS:
            pass
        return True
    return False
