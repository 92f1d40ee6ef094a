"""The Celery application shared by the web process (to enqueue) and the workers (to run).

It imports neither the Django models nor `jobs.tasks`: the web process enqueues by task name
(`send_task`), so it never loads TensorFlow; workers import the tasks through `include`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("visionlab", include=["jobs.tasks", "jobs.inference"])
app.config_from_object("django.conf:settings", namespace="CELERY")
