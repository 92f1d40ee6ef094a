"""Run by tests/test_upgrade.py in a process of its own, on an empty SQLite database in $DATA_DIR.

`old` migrates to the schema of the last release where Job lived in the experiments app and fills it,
through that schema's own historical models, with a user's dataset, runs with metrics and tags, a
trained model shared as a demo, an uploaded backbone, a sweep with a trial and an export job. `new`
migrates to the newest schema and prints, as JSON, what the current models read back.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402

# The newest migration of each app on the day Job moved out of experiments (commit f8186b8).
BEFORE_THE_MOVE = [("experiments", "0010_job_failure"), ("datasets", "0002_dataset_warnings"),
                   ("sweeps", "0001_initial"), ("demos", "0002_revokedlink")]


def old() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    apps = MigrationExecutor(connection).loader.project_state(BEFORE_THE_MOVE).apps
    user = apps.get_model("auth", "User").objects.create(username="alice")
    dataset = apps.get_model("datasets", "Dataset").objects.create(owner=user, name="digits", kind="classification",
                                                                 status="ready")
    project = apps.get_model("experiments", "Project").objects.create(owner=user, name="Vision")
    tag = apps.get_model("experiments", "Tag").objects.create(owner=user, name="baseline")
    sweep = apps.get_model("sweeps", "Sweep").objects.create(
        owner=user, project=project, kind="train", method="random", trials=2, metric="val_accuracy",
        direction="max", study_name="sweep-1")
    Job = apps.get_model("experiments", "Job")
    run = Job.objects.create(owner=user, kind="train", status="succeeded", dataset=dataset, project=project,
                             params={"architecture": "lenet5", "epochs": 2}, result={"test_accuracy": 0.9},
                             test_accuracy=0.9)
    run.tags.add(tag)
    for epoch in (1, 2):
        apps.get_model("experiments", "JobMetric").objects.create(job=run, epoch=epoch, values={"loss": 1.0 / epoch})
    model = apps.get_model("experiments", "TrainedModel").objects.create(
        owner=user, job=run, dataset=dataset, name="lenet5 on digits", architecture="lenet5", class_names=["0", "1"],
        image_size=28, channels=1)
    apps.get_model("demos", "ShareLink").objects.create(model=model, token="t" * 32)
    apps.get_model("experiments", "Backbone").objects.create(
        owner=user, name="mobilenet", format="tflite", filename="m.tflite", input_size=160, output_dim=1024,
        sha256="0" * 64)
    Job.objects.create(owner=user, kind="train", status="pruned", dataset=dataset, project=project, sweep=sweep,
                       trial_number=0, params={"architecture": "mlp"})
    Job.objects.create(owner=user, kind="export_model", status="succeeded", project=project,
                       params={"model": model.id, "format": "tflite"})


def new() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    from webapp.demos.models import ShareLink
    from webapp.experiments.models import Backbone, TrainedModel
    from webapp.jobs.models import Job, JobMetric
    from webapp.sweeps.models import Sweep

    run = Job.objects.get(kind=Job.Kind.TRAIN, sweep__isnull=True)
    print(json.dumps({
        "jobs": sorted(Job.objects.values_list("kind", "status")),
        "run": {"project": run.project.name, "tags": [t.name for t in run.tags.all()], "dataset": run.dataset.name,
                "metrics": [m.as_dict() for m in run.metrics.all()], "kind_label": run.get_kind_display(),
                "model": run.trained_model.name},
        "metric_rows": JobMetric.objects.count(),
        "model_job": TrainedModel.objects.get().job_id == run.id,
        "share_link": ShareLink.objects.get().model.job.id == run.id,
        "backbones": list(Backbone.objects.values_list("name", flat=True)),
        "sweep_trials": [(j.trial_number, j.status) for j in Sweep.objects.get().jobs.all()],
    }))


if __name__ == "__main__":
    {"old": old, "new": new}[sys.argv[1]]()
