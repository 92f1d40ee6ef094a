"""How long a sweep will take, said before it starts.

A trial's time is its epochs times the seconds an epoch takes, per training image, as measured on
earlier runs of the same kind, architecture, input size (and transfer mode) on the same queue,
scaled to this dataset's training split. With no such run yet, a short probe on the inference
worker times a few training steps of the architecture on random pixels (zoo architectures; the
probe runs on that worker's device, so it says so). The sweep's wall time is the trials in rounds
of as many as run at once: `parallel`, or fewer when fewer worker processes listen on the queue.

Pruning is estimated, not measured: a median pruner lets the first trials and about half of the
rest run to the end (the others stop about a third of the way in), Hyperband with a reduction
factor of 3 trains about a third of the epochs of a sweep without it. The sweep page later shows
what pruning saved, measured.
"""

from __future__ import annotations

import math
import statistics

from django.core.cache import cache

from jobs.ml.catalog import ARCHITECTURES
from jobs.ml.progress import format_duration
from webapp.datasets.models import DatasetItem
from webapp.jobs.inference import InferenceUnavailable, ask
from webapp.jobs.launch import QueueUnavailable
from webapp.jobs.models import Job
from webapp.jobs.workers import read_presence
from webapp.redis_client import REDIS_ERRORS

HISTORY_RUNS = 10  # the most recent comparable runs averaged (median)
PRUNED_SHARE = {"median": None, "hyperband": 0.35}  # median: computed from the trial count
PROBE_TIMEOUT = 30.0
PROBE_CACHE_SECONDS = 3600


def train_images(dataset) -> int:
    """Images a trial trains on per epoch: the dataset's training split."""
    if dataset is None:
        return 0
    return dataset.items.filter(split=DatasetItem.Split.TRAIN).count() or int(dataset.num_images or 0)


def _comparable(kind: str, params: dict, queue: str):
    runs = Job.objects.filter(kind=kind, status__in=(Job.Status.SUCCEEDED, Job.Status.PRUNED), epochs_run__gt=0,
                              started_at__isnull=False, finished_at__isnull=False,
                              params__architecture=params.get("architecture"))
    if params.get("image_size"):
        runs = runs.filter(params__image_size=params["image_size"])
    if params.get("mode"):
        runs = runs.filter(params__mode=params["mode"])
    if queue in ("cpu", "gpu"):
        runs = runs.filter(queue=queue)
    return runs.order_by("-finished_at")[:HISTORY_RUNS]


def seconds_per_image_epoch(kind: str, params: dict, queue: str) -> tuple[float | None, str]:
    """(seconds one epoch takes per training image, where that figure comes from)."""
    rates = []
    for job in _comparable(kind, params, queue).select_related("dataset"):
        sizes = (job.result or {}).get("split_sizes") or {}
        images = sizes.get("train") or train_images(job.dataset)
        if images:
            rates.append(job.duration_seconds / job.epochs_run / images)
    if rates:
        runs = "run" if len(rates) == 1 else "runs"
        return statistics.median(rates), f"measured on {len(rates)} earlier {runs} like these"
    probe = _probe(kind, params)
    if probe:
        return probe, "timed by a short probe on the inference worker, as no earlier run is like these"
    return None, "no earlier run is like these, and this kind has no probe; the first trials will tell"


def _probe(kind: str, params: dict) -> float | None:
    """Seconds per image of one training epoch of a zoo architecture, timed by the inference worker."""
    arch = ARCHITECTURES.get(params.get("architecture", ""))
    if kind != "train" or arch is None or arch.uses_backbone:
        return None
    size = params.get("image_size") or arch.default_image_size
    channels = 1 if (params.get("color_mode") or ("grayscale" if arch.default_channels == 1 else "rgb")) == \
        "grayscale" else 3
    batch = int(params.get("batch_size") or 32)
    key = f"sweep-probe:{arch.name}:{size}:{channels}:{batch}"
    try:
        cached = cache.get(key)
    except REDIS_ERRORS:
        cached = None
    if cached:  # a form asks for an estimate on every edit: probe once an hour, not each time
        return cached
    try:
        answer = ask("inference.probe_training", arch.name, [size, size, channels], 10, batch, timeout=PROBE_TIMEOUT)
    except (InferenceUnavailable, QueueUnavailable, *REDIS_ERRORS):
        return None
    seconds = answer.get("seconds_per_image") if isinstance(answer, dict) else None
    if not seconds:
        return None
    try:
        cache.set(key, float(seconds), PROBE_CACHE_SECONDS)
    except REDIS_ERRORS:
        pass
    return float(seconds)


def slots(queue: str) -> int:
    """Worker processes listening on `queue` (auto: cpu and gpu), at least 1."""
    wanted = ("cpu", "gpu") if queue == "auto" else (queue,)
    try:
        workers = read_presence().values()
    except REDIS_ERRORS:
        return 1
    return max(1, sum(int(w.get("concurrency") or 1) for w in workers if set(wanted) & set(w.get("queues", []))))


def pruned_share(pruning: str, trials: int) -> float:
    """The share of a full sweep's epochs a pruned one trains (see the module doc)."""
    if pruning == "hyperband":
        return PRUNED_SHARE["hyperband"]
    if pruning == "median":
        startup = min(trials, 2)
        rest = trials - startup
        return (startup + rest * (0.5 + 0.5 / 3)) / max(trials, 1)
    return 1.0


def measure(kind: str, params: dict, queue: str, dataset, mean_epochs: float) -> dict:
    """What a trial costs: {"seconds_per_trial" (None when unknown), "source", "train_images", "epochs_per_trial",
    "workers"}; asked once per request (it may probe), then `figures` does the arithmetic."""
    per_image, source = seconds_per_image_epoch(kind, params, queue)
    images = train_images(dataset)
    per_trial = round(per_image * images * mean_epochs, 1) if per_image is not None and images else None
    return {"seconds_per_trial": per_trial, "source": source, "train_images": images,
            "epochs_per_trial": round(mean_epochs, 1), "workers": slots(queue)}


def figures(measured: dict, trials: int, parallel: int, pruning: str) -> dict:
    """The estimate a dry run answers and the form shows (seconds; null ones when unknown)."""
    at_once = max(1, min(parallel, measured["workers"], trials))
    result = {**measured, "trials": trials, "at_once": at_once, "seconds": None, "seconds_with_pruning": None}
    per_trial = measured["seconds_per_trial"]
    if per_trial:
        total = per_trial * math.ceil(trials / at_once)
        result.update(seconds=round(total, 1),
                      seconds_with_pruning=round(total * pruned_share(pruning, trials), 1) if pruning else None)
    return result


def within_budget(measured: dict, trials: int, parallel: int, pruning: str, budget: float) -> int:
    """The most trials (up to `trials`) whose estimate fits `budget` seconds; `trials` when a trial's time is
    unknown (the running sweep still stops starting trials once the budget is spent)."""
    def total(count: int) -> float:
        found = figures(measured, count, parallel, pruning)
        return found["seconds_with_pruning"] if pruning else found["seconds"]

    if not measured["seconds_per_trial"]:
        return trials
    low, high = 1, trials
    while low < high:  # the largest count that fits: totals grow with the count
        middle = (low + high + 1) // 2
        low, high = (middle, high) if total(middle) <= budget else (low, middle - 1)
    return low


def describe(result: dict, queue: str) -> str:
    """One sentence for the form: "about 40 min on 1 CPU worker, 12 min with pruning"."""
    if result.get("seconds") is None:
        return f"No time estimate: {result['source']}."
    where = {"gpu": "GPU", "cpu": "CPU"}.get(queue, "CPU or GPU")
    workers = result["at_once"]
    text = f"About {format_duration(result['seconds'])} on {workers} {where} worker{'s' if workers != 1 else ''}"
    if result.get("seconds_with_pruning") is not None:
        text += f", {format_duration(result['seconds_with_pruning'])} with pruning"
    return f"{text} ({result['trials']} trials, {result['source']})."
