"""The worker's side of a system check job: the measurement itself is jobs.ml.system_check."""

from __future__ import annotations

from jobs.ml.system_check import run_system_check


def system_check(job, reporter) -> dict:
    return run_system_check(reporter, seconds_per_device=job.params["seconds_per_device"])
