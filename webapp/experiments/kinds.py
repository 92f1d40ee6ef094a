"""The job kinds this server can run, and how a job is launched.

Each kind names the Celery task that runs it (by name: the web process never imports
`jobs.tasks`), the serializer that validates its parameters, and its default queue. Later
kinds (training, feature extraction, captioning) add one entry here and one task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from jobs.ml.zoo import ARCHITECTURES
from jobs.queues import Queue
from webapp.experiments import live
from webapp.experiments.models import Job
from webapp.redis_client import REDIS_ERRORS, redis_problem

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The job queue (Redis) cannot be reached, so no job can be started."""

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(
            "The job queue is not reachable (Redis is down or unreachable), so the job was "
            "not started. Ask the administrator to check Redis, then try again."
        )


class SystemCheckParams(serializers.Serializer):
    seconds_per_device = serializers.FloatField(
        default=2.0, min_value=0.2, max_value=30.0,
        help_text="How long to measure matrix-multiply speed on each device.",
    )


class IngestParams(serializers.Serializer):
    pass


class TrainParams(serializers.Serializer):
    """A training run. Only `dataset` and `architecture` are needed; the rest has defaults
    chosen per architecture, so a newcomer picks two things and presses Start."""

    dataset = serializers.IntegerField(help_text="A ready classification dataset of yours.")
    architecture = serializers.ChoiceField(choices=sorted(ARCHITECTURES))
    image_size = serializers.IntegerField(required=False, min_value=8, max_value=1024,
                                          help_text="Square side in pixels; the architecture's default if left out.")
    color_mode = serializers.ChoiceField(choices=["grayscale", "rgb"], required=False)
    epochs = serializers.IntegerField(default=10, min_value=1, max_value=1000)
    batch_size = serializers.IntegerField(default=32, min_value=1, max_value=4096)
    optimizer = serializers.ChoiceField(choices=["adam", "sgd", "rmsprop"], default="adam")
    learning_rate = serializers.FloatField(default=0.001, min_value=1e-7, max_value=10.0)
    validation_split = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=0.5,
        help_text="Ignored: the dataset's own train/validation/test split is used, so runs compare.")
    augment_flip = serializers.BooleanField(default=False)
    augment_rotation = serializers.FloatField(default=0.0, min_value=0.0, max_value=0.5)
    augment_zoom = serializers.FloatField(default=0.0, min_value=0.0, max_value=0.5)
    early_stopping = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=100,
        help_text="Stop after this many epochs without a better validation loss (and keep the best).")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1)

    def validate_dataset(self, dataset_id: int):
        from webapp.datasets.models import Dataset

        dataset = Dataset.objects.filter(id=dataset_id, owner=self.context["request"].user).first()
        if dataset is None:
            raise serializers.ValidationError("You have no dataset with this id.")
        if dataset.status != Dataset.Status.READY:
            raise serializers.ValidationError(f"This dataset is not ready yet (it is {dataset.status}).")
        if dataset.kind != Dataset.Kind.CLASSIFICATION:
            raise serializers.ValidationError("Training a classifier needs a classification dataset; "
                                              "this one holds captions.")
        if len(dataset.classes) < 2:
            raise serializers.ValidationError("This dataset has fewer than two classes.")
        return dataset

    def validate(self, attrs):
        arch = ARCHITECTURES[attrs["architecture"]]
        attrs.setdefault("image_size", arch.default_image_size)
        attrs.setdefault("color_mode", "grayscale" if arch.default_channels == 1 else "rgb")
        if attrs["image_size"] < arch.min_image_size:
            raise serializers.ValidationError({"image_size": [
                f"{arch.title} needs images of at least {arch.min_image_size}x{arch.min_image_size} pixels."]})
        dataset = attrs["dataset"]
        attrs["dataset_obj"], attrs["dataset"] = dataset, dataset.id
        attrs["dataset_name"], attrs["dataset_hash"] = dataset.name, dataset.content_hash
        return attrs


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
}


def launch_job(owner, kind: str, params: dict, queue: str | None = None, dataset=None) -> Job:
    """Create a job and enqueue it once the row is committed.

    Redis is checked first so that an outage answers at once with QueueUnavailable instead
    of leaving a job that can never run; if publishing still fails, the job is marked failed
    with the reason and QueueUnavailable is raised.
    """
    spec = KINDS[kind]
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    if queue in (None, "", "auto"):
        queue = spec.default_queue if kind != Job.Kind.TRAIN else auto_queue()
    job = Job.objects.create(owner=owner, kind=kind, params=params, dataset=dataset, queue=queue)
    transaction.on_commit(lambda: _enqueue(job, spec), robust=False)
    return job


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


def resume_job(job_id: int) -> bool:
    """Queue a failed or cancelled training job again; it continues from its last checkpoint."""
    job = Job.objects.filter(id=job_id, kind=Job.Kind.TRAIN,
                             status__in=(Job.Status.FAILED, Job.Status.CANCELLED)).first()
    if job is None:
        return False
    problem = redis_problem()
    if problem:
        raise QueueUnavailable(problem)
    params = {**job.params, "resume": True}
    if not Job.objects.filter(id=job.id, status=job.status).update(
        status=Job.Status.QUEUED, params=params, error="", message="Queued to resume", cancel_requested=False,
        finished_at=None, updated_at=timezone.now(),
    ):
        return False
    job.refresh_from_db()
    try:
        live.clear_cancel(job.id)
    except REDIS_ERRORS:
        pass
    transaction.on_commit(lambda: _enqueue(job, KINDS[job.kind]), robust=False)
    return True


def _enqueue(job: Job, spec: JobKind) -> None:
    from jobs.celery import app

    try:
        app.send_task(spec.task, args=[job.id], queue=job.queue, task_id=job.task_id, retry=False)
    except Exception as exc:  # kombu and redis raise many types for "cannot connect"
        log.error("Could not enqueue job %s: %s", job.id, exc)
        error = QueueUnavailable(f"{type(exc).__name__}: {exc}")
        Job.finish(job.id, Job.Status.FAILED, error=str(error), message="Not started")
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
