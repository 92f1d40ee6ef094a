"""Celery tasks: thin shells that hand a job id to `run_job` with the right ML function.

Each task takes only a job id; everything else is on the Job row. Tasks are acknowledged
late (a worker that dies mid-job leaves the message to be redelivered, and the claim in
`run_job` makes the redelivery harmless) and have soft and hard time limits. Task names
are the ones `webapp.experiments.kinds` enqueues.
"""

from __future__ import annotations

from jobs import worker_presence  # noqa: F401 - connects the worker's heartbeat signals
from jobs.celery import app
from jobs.runner import run_job


@app.task(name="jobs.system_check", bind=True, acks_late=True, soft_time_limit=300, time_limit=330)
def system_check(self, job_id: int) -> str:
    from jobs.ml.system_check import run_system_check

    def work(job, reporter):
        return run_system_check(reporter, seconds_per_device=job.params["seconds_per_device"])

    return run_job(job_id, self.request.hostname, work)


@app.task(name="jobs.ingest_dataset", bind=True, acks_late=True, soft_time_limit=6 * 3600,
          time_limit=6 * 3600 + 120)
def ingest_dataset(self, job_id: int) -> str:
    from jobs.ingestion import ingest_dataset as work

    return run_job(job_id, self.request.hostname, work)


@app.task(name="jobs.train", bind=True, acks_late=True, soft_time_limit=48 * 3600, time_limit=48 * 3600 + 300)
def train(self, job_id: int) -> str:
    from jobs.training import train as work

    return run_job(job_id, self.request.hostname, work)


@app.task(name="jobs.extract_features", bind=True, acks_late=True, soft_time_limit=24 * 3600,
          time_limit=24 * 3600 + 300)
def extract_features(self, job_id: int) -> str:
    from jobs.features import extract_features as work

    return run_job(job_id, self.request.hostname, work)


@app.task(name="jobs.train_captioner", bind=True, acks_late=True, soft_time_limit=48 * 3600,
          time_limit=48 * 3600 + 300)
def train_captioner(self, job_id: int) -> str:
    from jobs.captioning import train_captioner as work

    return run_job(job_id, self.request.hostname, work)


@app.task(name="jobs.export_model", bind=True, acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 120)
def export_model(self, job_id: int) -> str:
    from jobs.exports import export_model as work

    return run_job(job_id, self.request.hostname, work)
