"""What a launch must fit before it runs: the queue, the user's quotas, the worker's memory, a fair turn.

Every way in (the API, the pages, resume) launches through `webapp.jobs.launch.launch_job`,
which asks this module first, so a request that cannot work is refused with a sentence at once
instead of becoming a job that fails (or an OOM-killed worker) an hour later:

- the queue is one a job worker listens on (`cpu`, `gpu`, or `auto`), never a name the caller made up;
- optional per-user quotas: active jobs (queued or running) and storage (datasets, models, backbones);
- a training run's estimated memory (weights, gradients and Adam's two moments, plus the batch's
  activations kept for the backward pass) fits the worker;
- fairness: each job is queued with a priority from how many jobs its owner already has waiting, so
  one user's thousand queued jobs do not starve another user's first one.
"""

from __future__ import annotations

import math
import os
import re

from django.conf import settings
from django.db.models import Sum

from jobs.queues import Queue
from webapp.jobs.models import Job

LAUNCH_QUEUES = ("auto", Queue.CPU.value, Queue.GPU.value)
PRIORITY_STEPS = 10  # Celery's Redis transport: 0 (first) .. 9 (last)
BYTES_PER_PARAM = 16  # float32 weight, its gradient and Adam's two moments
BYTES_PER_ACTIVATION = 8  # float32 activation kept for the backward pass, and its gradient


class LaunchRefused(ValueError):
    """The launch cannot work; str() is a sentence for the person who asked, `status` the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def check_queue(queue: str | None) -> None:
    if queue not in (None, "", *LAUNCH_QUEUES):
        raise LaunchRefused(f"There is no job queue called {str(queue)[:40]!r}; use cpu, gpu or auto.")


def check_active_jobs(owner) -> None:
    limit = settings.USER_MAX_ACTIVE_JOBS
    if limit and Job.objects.filter(owner=owner, status__in=Job.ACTIVE).count() >= limit:
        raise LaunchRefused(f"You already have {limit} jobs queued or running, the most one account may have; "
                            "wait for one to finish or cancel one, then start this again.", status=429)


def storage_used(owner) -> int:
    """Bytes of the owner's datasets (uploaded archives), trained models and uploaded backbones, read through the
    user's own relations (the apps that keep them are above this platform and not imported by it)."""
    total = 0
    for rows, field in ((owner.datasets, "archive_bytes"), (owner.trained_models, "size_bytes"),
                        (owner.backbones, "size_bytes")):
        total += rows.aggregate(total=Sum(field))["total"] or 0
    return int(total)


def check_storage(owner, adding: int) -> None:
    """Refuse `adding` more bytes past the owner's storage quota (USER_STORAGE_QUOTA, 0 = none)."""
    quota = settings.USER_STORAGE_QUOTA
    if not quota:
        return
    used = storage_used(owner)
    if used + max(adding, 0) > quota:
        raise LaunchRefused(f"This would take your storage to {_size(used + adding)}, over your quota of "
                            f"{_size(quota)} (you use {_size(used)}); delete datasets or models you no longer "
                            "need, then try again.", status=413)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


# --- memory ----------------------------------------------------------------------------------------

def _elements(shape: str) -> int:
    """Values per image in an output shape as the model summary writes it: "(None, 24, 24, 6)" -> 3456."""
    sizes = [int(v) for v in re.findall(r"\d+", str(shape))]
    return math.prod(sizes) if sizes else 0


def training_bytes(summary: dict, batch_size: int) -> int:
    """Estimated memory of training a model with this summary (jobs.ml.zoo.summarize) at `batch_size`."""
    activations = sum(_elements(layer["output_shape"]) for layer in summary.get("layers", []))
    return BYTES_PER_PARAM * int(summary.get("total_params", 0)) + BYTES_PER_ACTIVATION * batch_size * activations


def worker_memory() -> int:
    """What one training job may use: WORKER_MEMORY, else this machine's physical memory."""
    if settings.WORKER_MEMORY:
        return settings.WORKER_MEMORY
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover - not Linux
        return 0


def check_training_memory(architecture: str, image_size: int, channels: int, classes: int, batch_size: int,
                          describe) -> None:
    """Refuse a zoo training whose estimate exceeds the worker's memory.

    `describe(name, shape, classes)` gives the model summary (asked of the inference worker, which
    builds the model; TensorFlow never loads here). When it cannot answer, nothing is refused:
    the estimate protects against the absurd, it is not a gate on every launch.
    """
    capacity = worker_memory()
    if not capacity:
        return
    try:
        summary = describe(architecture, [image_size, image_size, channels], classes)
    except Exception:  # noqa: BLE001 - no inference worker, Redis down: launch as before
        return
    if not isinstance(summary, dict) or "error" in summary:
        return
    need = training_bytes(summary, batch_size)
    if need > capacity:
        per_image = max(1, (need - BYTES_PER_PARAM * int(summary.get("total_params", 0))) // max(batch_size, 1))
        fits = max(0, (capacity - BYTES_PER_PARAM * int(summary.get("total_params", 0))) // per_image)
        advice = (f"a batch size of {fits} or less would fit" if fits >= 1 else
                  "use smaller images or a smaller architecture")
        raise LaunchRefused(f"Training {architecture} on {image_size}x{image_size} images in batches of {batch_size} "
                            f"needs about {_size(need)} of memory, more than the {_size(capacity)} a worker has; "
                            f"{advice}.")


# --- fairness --------------------------------------------------------------------------------------

def priority_for(owner) -> int:
    """0 for an owner with nothing waiting, one step later per FAIR_SHARE_STEP jobs they already have queued."""
    waiting = Job.objects.filter(owner=owner, status=Job.Status.QUEUED).count()
    return min(PRIORITY_STEPS - 1, waiting // max(1, settings.FAIR_SHARE_STEP))
