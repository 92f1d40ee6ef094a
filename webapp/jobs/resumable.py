"""Whether Resume can help a stopped job, and if not, the sentence that says why.

Resume queues the same job again and continues from its last checkpoint. It helps a training run
that stopped for a reason outside it (a cancel, a dead worker, a time limit, an internal fault) after
it had finished an epoch. It cannot help a run whose inputs were refused (a too-small dataset, a
deleted dataset, missing weights): the same inputs fail the same way, so the job page shows no
Resume button and POST /api/jobs/{id}/resume/ answers 400 with the reason. Nor can it help a run
that left no checkpoint: it would only start over, which is what Run again does, on a new record.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from webapp.jobs import registry
from webapp.jobs.models import Job

# What jobs.ml.training and jobs.ml.captioning write after every epoch (CHECKPOINT_FILE, STATE_FILE);
# the web process does not import them (they load TensorFlow), and a test keeps the names equal.
CHECKPOINT_FILES = ("checkpoint.keras", "state.json")


def workdir(job: Job) -> Path:
    """The job's working folder (jobs.training.job_workdir)."""
    return Path(settings.DATA_DIR) / "jobs" / str(job.pk)


def has_checkpoint(job: Job) -> bool:
    folder = workdir(job)
    return all((folder / name).is_file() for name in CHECKPOINT_FILES)


def resume_refusal(job: Job) -> str | None:
    """None when Resume can help `job`, else one sentence saying why not and what to do instead."""
    if not registry.get(job.kind).resumable:  # it keeps no checkpoint in its working folder
        return f"{job.get_kind_display()} jobs cannot be resumed; use Run again for a new run."
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        return "Only a failed or cancelled training job can be resumed."
    if job.failure == Job.Failure.INPUTS:
        return ("This run failed because of its inputs, and resuming would fail the same way: fix what the error "
                "says, then use Run again.")
    if not has_checkpoint(job):
        return ("This run stopped before it finished an epoch (or trains without checkpoints), so there is nothing "
                "to continue from: use Run again to start it over.")
    return None


def resume_state(job: Job) -> tuple[bool, str | None]:
    """(resumable, the refusal to show): what the job page and the job API both say about Resume, from
    one look at the checkpoint. The refusal is shown only for a stopped training run (a running one
    is not "refused", it is not stopped yet)."""
    if not registry.get(job.kind).resumable:
        return False, None
    refusal = resume_refusal(job)
    stopped = job.status in (Job.Status.FAILED, Job.Status.CANCELLED)
    return refusal is None, refusal if stopped else None
