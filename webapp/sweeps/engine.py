"""Running a sweep: ask Optuna for trials, launch them as jobs, tell it how each ended.

`advance` is the one step everything calls: after a sweep is created or extended, after each
trial ends (the worker that ran it), after a trial is cancelled or lost, and when a page finds a
sweep with nothing running. It is idempotent and safe to call from many processes at once:
a lease on the Sweep row (a conditional update, so it works the same on SQLite and PostgreSQL)
lets one caller at a time reconcile, and the others wait for it. It

1. tells the study the outcome of every trial whose job has ended (value, pruned or failed);
2. launches new trials until `parallel` are active or the sweep has `trials` of them, each
   through the same checks as a job a person launches (the kind's serializer with its memory
   check, the owner's active-job quota, Redis); a trial the checks refuse is kept as a failed
   job with the sentence, so the page says why;
3. ends the sweep when nothing more will run: all trials done, the grid exhausted, or its time
   budget spent (no new trial starts after it; running ones finish).

A redelivered trial message runs nothing twice (the job's claim), and a trial is launched only
under the lease, counted from the jobs themselves, so a duplicated `advance` never adds trials.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace

from django.db.models import Q
from django.utils import timezone

from webapp.jobs import launch, limits, registry
from webapp.jobs.models import Job, JobMetric
from webapp.redis_client import redis_problem
from webapp.sweeps.models import Sweep
from webapp.sweeps.space import distributions, grid_size, objectives

log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a holder that died frees the sweep after this
NOT_STARTED = "This trial was not started:"
LEASE_WAIT = 30.0  # how long a caller waits for the holder before leaving the step to it


@contextmanager
def _lease(sweep_id: int, wait: float = LEASE_WAIT):
    deadline = time.monotonic() + wait
    while True:
        now = timezone.now()
        free = Q(advancing_until__isnull=True) | Q(advancing_until__lt=now)
        if Sweep.objects.filter(free, id=sweep_id).update(advancing_until=now + timedelta(seconds=LEASE_SECONDS)):
            break
        if time.monotonic() > deadline:
            yield False
            return
        time.sleep(0.2)
    try:
        yield True
    finally:
        Sweep.objects.filter(id=sweep_id).update(advancing_until=None)


def advance(sweep_id: int, wait: float = LEASE_WAIT) -> None:
    """Reconcile sweep `sweep_id` with its trials and launch what it still may (see the module doc). A
    caller that cannot wait (a page) passes wait=0: whoever holds the lease does the work."""
    from webapp.sweeps import studies  # Optuna, 100+ modules: loaded only where a sweep is made or advanced

    with _lease(sweep_id, wait) as held:
        if not held:
            if wait:
                log.warning("Sweep %s is being advanced elsewhere for over %.0f s; leaving it.", sweep_id, wait)
            return
        sweep = Sweep.objects.filter(id=sweep_id).first()
        if sweep is None:
            return
        trials = list(sweep.jobs.filter(trial_number__isnull=False).order_by("trial_number"))
        study = studies.load(sweep, len(trials))
        told = _tell_ended(sweep, study, trials)
        if sweep.status == Sweep.Status.RUNNING:
            _launch_more(sweep, study, trials)
        _finish_if_done(sweep, trials)
        if told:
            _update_importance(sweep, study)


def _tell_ended(sweep: Sweep, study, trials: list[Job]) -> int:
    """Tell the study how each of its running trials ended, if it has. Returns how many it told."""
    import optuna

    jobs = {job.trial_number: job for job in trials}
    # Telling needs no sampler; a grid's would call study.stop() on its last point, which only works in optimize().
    study.sampler = optuna.samplers.RandomSampler()
    told = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        job = jobs.get(trial.number)
        if job is not None and job.is_active:
            continue
        value = objective_value(job, sweep) if job is not None and job.status == Job.Status.SUCCEEDED else None
        if value is not None:
            study.tell(trial.number, value)
        elif job is not None and job.status == Job.Status.PRUNED:
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        else:  # failed, cancelled, no score, or a trial whose job was never made
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        told += 1
    return told


def _launch_more(sweep: Sweep, study, trials: list[Job]) -> None:
    from webapp.sweeps import studies  # Optuna, 100+ modules: loaded only where a sweep is made or advanced

    active = sum(job.is_active for job in trials)
    launched = len(trials)
    target = min(sweep.trials, grid_size(sweep.space)) if sweep.method == "grid" else sweep.trials
    if sweep.budget_seconds and (timezone.now() - sweep.created_at).total_seconds() >= sweep.budget_seconds:
        _set(sweep, message=f"Its time budget is spent: no new trial starts ({launched} of {sweep.trials} ran).")
        return
    while launched < target and active < sweep.parallel:
        problem = redis_problem()
        if problem:
            _set(sweep, message="Waiting for the job queue (Redis) to answer before starting more trials.")
            return
        try:
            limits.check_active_jobs(sweep.owner)
        except limits.LaunchRefused as exc:
            _set(sweep, message=f"Waiting: {exc}")
            return
        study.sampler = studies.sampler(sweep, launched)
        trial = study.ask(fixed_distributions=distributions(sweep.space))
        job = launch_trial(sweep, trial.number, trial.params)
        trials.append(job)
        launched += 1
        active += job.is_active
        if job.error.startswith(f"{NOT_STARTED} dataset:"):  # gone or changed: no later trial can start either
            _set(sweep, status=Sweep.Status.FINISHED, finished_at=timezone.now(),
                 message=f"Stopped: {job.error}")
            return
    if sweep.message.startswith("Waiting"):
        _set(sweep, message="")


def trial_params(sweep: Sweep, sampled: dict) -> dict:
    """A trial's parameters as a person would send them: the sweep's fixed ones with the sampled ones."""
    return {**sweep.params, **sampled}


def trial_context(owner) -> dict:
    """The serializer context of a trial's launch checks. The memory check (which asks the inference
    worker, possibly the very process running this) was done once for the sweep's largest trial."""
    return {"request": SimpleNamespace(user=owner), "memory_checked": True}


def launch_trial(sweep: Sweep, number: int, sampled: dict) -> Job:
    """Trial `number` as a job, through the kind's own checks; a refused one is a failed job saying why."""
    raw = trial_params(sweep, sampled)
    checked = registry.get(sweep.kind).params(data=raw, context=trial_context(sweep.owner))
    if checked.is_valid():
        params = dict(checked.validated_data)
        dataset = params.pop("dataset_obj", None)
        try:
            return launch.launch_job(sweep.owner, sweep.kind, params, sweep.queue, dataset=dataset,
                                    project=sweep.project, sweep=sweep, trial_number=number)
        except (limits.LaunchRefused, launch.QueueUnavailable) as exc:
            error = str(exc)
    else:
        error = _sentence(checked.errors)
    now = timezone.now()
    return Job.objects.create(owner=sweep.owner, kind=sweep.kind, params=raw, dataset=sweep.dataset,
                              queue=sweep.queue if sweep.queue != "auto" else "cpu", project=sweep.project,
                              sweep=sweep, trial_number=number, status=Job.Status.FAILED, finished_at=now,
                              error=f"{NOT_STARTED} {error}", message="Not started")


def _sentence(errors: dict) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return " ".join(parts)[:500]


def _finish_if_done(sweep: Sweep, trials: list[Job]) -> None:
    if sweep.status != Sweep.Status.RUNNING or any(job.is_active for job in trials):
        return
    target = min(sweep.trials, grid_size(sweep.space)) if sweep.method == "grid" else sweep.trials
    over_budget = sweep.budget_seconds and (timezone.now() - sweep.created_at).total_seconds() >= sweep.budget_seconds
    if len(trials) >= target or over_budget:
        counts = {status: sum(job.status == status for job in trials) for status in Job.Status.values}
        done = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        why = "Its time budget is spent" if over_budget and len(trials) < target else "Every trial has ended"
        _set(sweep, status=Sweep.Status.FINISHED, finished_at=timezone.now(), message=f"{why}: {done}.")


def _set(sweep: Sweep, **fields) -> None:
    for name, value in fields.items():
        setattr(sweep, name, value)
    Sweep.objects.filter(id=sweep.id).update(**fields)


def _update_importance(sweep: Sweep, study) -> None:
    """Optuna's parameter importances once two trials completed (one parameter: all of it)."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return
    try:
        importance = {name: round(float(share), 4) for name, share in
                      optuna.importance.get_param_importances(study).items()}
    except Exception as exc:  # noqa: BLE001 - too few distinct values, a constant objective: no ranking yet
        log.info("Sweep %s: no parameter importances yet (%s)", sweep.id, exc)
        return
    _set(sweep, importance=importance)


# --- what a trial scored --------------------------------------------------------------------------

def objective_value(job: Job, sweep: Sweep) -> float | None:
    """The trial's objective: its final score, or the best epoch's value of a per-epoch metric (pruned
    trials included: the best they reached before they were stopped)."""
    objective = objectives(sweep.kind)[sweep.metric]
    if not objective.per_epoch:  # the summary column, or the result when the summary is not written yet
        value = getattr(job, sweep.metric, None)
        if value is None and isinstance(job.result, dict):
            value = job.result.get(sweep.metric)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    values = [float(v) for v in _epoch_values(job, sweep.metric) if math.isfinite(v)]
    if not values:
        return None
    return max(values) if sweep.direction == "max" else min(values)


def _epoch_values(job: Job, metric: str) -> list[float]:
    cached = getattr(job, "_prefetched_objects_cache", {}).get("metrics")
    rows = cached if cached is not None else JobMetric.objects.filter(job=job)
    return [m.values[metric] for m in rows if isinstance(m.values.get(metric), int | float)]


def seconds_saved(job: Job) -> float:
    """About how long a pruned trial would still have trained: its epochs left at its own pace."""
    planned, ran = int(job.params.get("epochs") or 0), int(job.epochs_run or 0)
    if job.status != Job.Status.PRUNED or not ran or planned <= ran or not job.duration_seconds:
        return 0.0
    return (planned - ran) * job.duration_seconds / ran


# --- what a person does to a sweep ----------------------------------------------------------------

def create(sweep: Sweep) -> Sweep:
    """Make the sweep's study and start its first trials (the sweep row is saved by the caller)."""
    from webapp.sweeps import studies  # Optuna, 100+ modules: loaded only where a sweep is made or advanced

    studies.create(sweep)
    advance(sweep.id)
    sweep.refresh_from_db()
    return sweep


def cancel(sweep: Sweep) -> None:
    """Stop the sweep: no new trials, and its queued and running trials cancelled."""
    if sweep.status == Sweep.Status.RUNNING:
        _set(sweep, status=Sweep.Status.CANCELLED, finished_at=timezone.now(), message="Cancelled by its owner.")
    for job_id in sweep.jobs.filter(status__in=Job.ACTIVE).values_list("id", flat=True):
        launch.cancel_job(job_id)
    advance(sweep.id)


def extend(sweep: Sweep, more: int) -> None:
    """Run `more` trials on a sweep, finished or not, learning from the ones it ran."""
    _set(sweep, trials=sweep.trials + more, status=Sweep.Status.RUNNING, finished_at=None, message="")
    advance(sweep.id)


def ranked(sweep: Sweep) -> list[Job]:
    """The trials that finished with a score, best first."""
    trials = [job for job in sweep.jobs.filter(trial_number__isnull=False, status=Job.Status.SUCCEEDED)
              .prefetch_related("metrics")]
    scored = [(objective_value(job, sweep), job) for job in trials]
    scored = [(value, job) for value, job in scored if value is not None]
    scored.sort(key=lambda pair: pair[0], reverse=sweep.direction == "max")
    return [job for _, job in scored]


def promote(sweep: Sweep, top: int, epochs: int | None, finetune: bool) -> list[Job]:
    """Train the `top` best trials again with more epochs (and, for a transfer head, fine-tuned: on the
    GPU queue when a GPU worker is alive). Raises ValueError (a sentence) when nothing can be promoted."""
    best = ranked(sweep)[:top]
    if not best:
        raise ValueError("No trial has finished with a score yet, so there is nothing to promote.")
    launched = []
    for job in best:
        params = {key: value for key, value in job.params.items() if key not in launch.DERIVED_PARAMS}
        params.pop("weights", None) if params.get("weights") == "file" else None
        params["epochs"] = epochs or min(1000, 2 * int(params.get("epochs") or 1))
        if finetune:
            if params.get("mode") != "extract":
                raise ValueError("Only transfer models trained on cached features (mode extract) can be fine-tuned.")
            params["mode"] = "finetune"
            for key in ("learning_rate", "augment_flip"):  # the fine-tune defaults protect the pretrained weights
                params.pop(key, None)
        checked = registry.get(sweep.kind).params(data=params, context=trial_context(sweep.owner))
        if not checked.is_valid():
            raise ValueError(_sentence(checked.errors))
        validated = dict(checked.validated_data)
        dataset = validated.pop("dataset_obj", None)
        promoted = launch.launch_job(sweep.owner, sweep.kind, validated, "auto", dataset=dataset, project=sweep.project,
                                    sweep=sweep, note=f"Trial {job.trial_number} of sweep #{sweep.id} (job #{job.id}), "
                                                      f"trained again with {params['epochs']} epochs"
                                                      + (", fine-tuned" if finetune else "") + ".")
        launched.append(promoted)
    return launched


def trial_ended(job: Job) -> None:
    """Called wherever a trial's job ends (its worker, a cancel, a lost worker): move the sweep on."""
    if job.sweep_id and job.trial_number is not None:
        try:
            advance(job.sweep_id)
        except Exception:  # noqa: BLE001 - the job's own outcome is saved; the next event retries
            log.exception("Sweep %s could not advance after job %s", job.sweep_id, job.id)
