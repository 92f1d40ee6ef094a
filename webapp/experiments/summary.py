"""A finished job's summary numbers and the curves shown for it, kept small for lists of thousands.

A run's epochs live in JobMetric rows; a list of ten thousand runs cannot read them all. When a
job ends, `summarize` writes its few headline numbers (test accuracy, best validation accuracy
and loss, BLEU-4, the best epoch) and a downsampled validation curve onto the Job row, where
the database sorts and filters them.

Downsampling keeps the first and last points and the best epoch's: a curve drawn from every
n-th point loses exactly the point a person looks for (DIGITS users lost it).
"""

from __future__ import annotations

from collections.abc import Sequence

from webapp.jobs.models import Job

SPARKLINE_POINTS = 40


def downsample(points: Sequence[Sequence[float]], max_points: int, keep: Sequence[int] = ()) -> list[list[float]]:
    """At most `max_points` of `points` ([x, y] pairs in x order), evenly spread, always keeping the
    first, the last and the points whose x is in `keep` (a best epoch)."""
    points = [list(p) for p in points]
    if len(points) <= max_points:
        return points
    keep_x = set(keep)
    wanted = {0, len(points) - 1} | {i for i, p in enumerate(points) if p[0] in keep_x}
    room = max(0, max_points - len(wanted))
    if room:
        step = (len(points) - 1) / (room + 1)
        wanted |= {round(step * (k + 1)) for k in range(room)}
    return [points[i] for i in sorted(wanted)]


def validation_series(metrics: Sequence[dict]) -> tuple[str | None, list[list[float]]]:
    """(the metric a run's sparkline shows, its [epoch, value] points): validation accuracy where the
    run recorded it, else validation loss."""
    for name in ("val_accuracy", "val_loss"):
        points = [[m["epoch"], float(m[name])] for m in metrics if isinstance(m.get(name), int | float)]
        if points:
            return name, points
    return None, []


def best_epoch_of(metrics: Sequence[dict], result: dict | None) -> int | None:
    """The epoch whose weights the run kept: what the job said, else the lowest validation loss."""
    if isinstance(result, dict) and isinstance(result.get("best_epoch"), int):
        return result["best_epoch"]
    scored = [m for m in metrics if isinstance(m.get("val_loss"), int | float)]
    return min(scored, key=lambda m: m["val_loss"])["epoch"] if scored else None


def summary_fields(metrics: Sequence[dict], result: dict | None) -> dict:
    """The Job fields `summarize` sets, from the run's per-epoch metrics and its result."""
    result = result if isinstance(result, dict) else {}

    def best(name: str, pick) -> float | None:
        values = [float(m[name]) for m in metrics if isinstance(m.get(name), int | float)]
        return pick(values) if values else None

    def number(name: str) -> float | None:
        value = result.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    best_epoch = best_epoch_of(metrics, result)
    name, points = validation_series(metrics)
    return {
        "test_accuracy": number("test_accuracy"), "bleu4": number("bleu4"),
        "best_val_accuracy": best("val_accuracy", max), "best_val_loss": best("val_loss", min),
        "best_epoch": best_epoch, "epochs_run": max((m["epoch"] for m in metrics), default=None),
        "curve": {"metric": name, "points": downsample(points, SPARKLINE_POINTS, [best_epoch] if best_epoch else [])}
        if name else {},
    }


def summary_update(job_id: int, result=None) -> dict:
    """The fields that summarize job `job_id` ending with `result`: its summary numbers, and the device it ran
    on copied into its record. `jobs.runner` saves them in the same update as the final status, so a client
    that sees the job end reads them too."""
    job = Job.objects.filter(id=job_id).only("id", "result", "record", "device").first()
    if job is None:
        return {}
    metrics = [m.as_dict() for m in job.metrics.all()]
    record = {**(job.record or {}), "device": job.device} if job.device else job.record
    return {"record": record, **summary_fields(metrics, job.result if result is None else result)}


def summarize(job_id: int) -> None:
    """Write the summary of job `job_id` as it is now, as its worker did when it ended (harmless to repeat)."""
    Job.objects.filter(id=job_id).update(**summary_update(job_id))
