"""A sweep's trial on the worker: each epoch's objective goes to the sweep's pruner, which may stop it.

`TrialReporter` is the job's reporter (progress, metrics, cancel) plus one step per epoch: report
the objective to the trial in the Optuna study and ask whether to prune. A pruned trial stops
like a cancelled one (`TrialPruned` is a `JobCancelled`, so every core stops at once and keeps
nothing half-written), and `run_job` ends it with the status "pruned", its curves kept.

Pruning is an optimisation: when the study cannot be read, the trial simply trains on.
"""

from __future__ import annotations

import logging
import math

from jobs.ml.progress import JobCancelled
from jobs.reporter import JobReporter

log = logging.getLogger(__name__)


class TrialPruned(JobCancelled):
    """The sweep's pruner stopped this trial; str() says why, for the job page."""


class TrialReporter(JobReporter):
    def __init__(self, job):
        super().__init__(job.id)
        self.sweep, self.number = job.sweep, job.trial_number
        self.planned_epochs = job.params.get("epochs")
        self._trial = None

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        super().epoch_end(epoch, metrics)
        value = metrics.get(self.sweep.metric)
        if not self.sweep.pruning or not isinstance(value, int | float) or not math.isfinite(value):
            return
        try:
            prune = self._should_prune(float(value), epoch)
        except Exception:  # noqa: BLE001 - the study unreadable: train on, unpruned
            log.exception("Job %s could not ask the pruner of sweep %s", self.job_id, self.sweep.id)
            return
        if prune:
            from webapp.jobs.registry import get

            label = get(self.sweep.kind).objective(self.sweep.metric).label.lower()
            raise TrialPruned(f"Pruned after epoch {epoch} of {self.planned_epochs}: its {label} ({value:.4g}) "
                              f"was behind the other trials' at that epoch ({self.sweep.pruning} pruner).")

    def _should_prune(self, value: float, epoch: int) -> bool:
        from webapp.sweeps import studies

        if self._trial is None:
            self._trial = studies.trial(studies.load(self.sweep), self.number)
        self._trial.report(value, epoch)
        return self._trial.should_prune()


def reporter_for(job) -> JobReporter:
    """The reporter a job's work gets: a sweep's trial reports to its pruner too."""
    if job.sweep_id and job.trial_number is not None:
        return TrialReporter(job)
    return JobReporter(job.id)
