"""What the job platform tells the apps above it, without importing them."""

from django.dispatch import Signal

# A job reached a final status: sent with `job` by the worker that ran it (jobs.runner), by a cancel of a
# queued job (webapp.jobs.launch) and by the reaper of jobs whose worker died (webapp.jobs.workers).
# Sweeps listen, to move on to their next trial.
job_ended = Signal()
