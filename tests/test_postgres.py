"""The DATABASE_URL path on a real PostgreSQL, when one answers on this machine.

Set VISIONLAB_TEST_POSTGRES_URL to a server where the user may create databases; the
default is a local server with trust authentication. Skipped, with the reason, otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("VISIONLAB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

SCRIPT = """
import json
from django.contrib.auth import get_user_model
from webapp.jobs.models import Job
user = get_user_model().objects.create_user("pg-user")
job = Job.objects.create(owner=user, kind="system_check", params={"seconds_per_device": 1.0})
claimed = Job.claim(job.id, "w@host"), Job.claim(job.id, "w2@host")
finished = Job.finish(job.id, "succeeded", result={"ok": True}), Job.finish(job.id, "failed")
job.refresh_from_db()
print(json.dumps({"claimed": claimed, "finished": finished, "status": job.status,
                  "worker": job.worker, "result": job.result}))
"""


@pytest.fixture
def postgres_database():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"No PostgreSQL answers at {ADMIN_URL} ({type(exc).__name__}); "
                    "set VISIONLAB_TEST_POSTGRES_URL to test the DATABASE_URL path.")
    name = f"visionlab_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_migrations_and_job_claims_work_on_postgresql(postgres_database, tmp_path):
    env = {**os.environ, "DATABASE_URL": postgres_database, "DATA_DIR": str(tmp_path)}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True).stdout

    manage("migrate", "--noinput", "-v0")
    outcome = json.loads(manage("shell", "-c", SCRIPT).strip().splitlines()[-1])

    assert outcome == {"claimed": [True, False], "finished": [True, False], "status": "succeeded",
                       "worker": "w@host", "result": {"ok": True}}
    assert not (tmp_path / "visionlab.sqlite3").exists()


SWEEP_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from django.db import connection
from webapp.experiments.models import Project
from webapp.sweeps import studies
from webapp.sweeps.models import Sweep
from webapp.sweeps.space import distributions
user = get_user_model().objects.create_user("pg-sweeper")
sweep = Sweep.objects.create(owner=user, project=Project.default_for(user), kind="train", params={"epochs": 3},
                             space={"learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-1}},
                             method="tpe", trials=3, metric="val_accuracy", direction="max", pruning="median",
                             study_name="pg-study")
studies.create(sweep)
for i in range(3):
    study = studies.load(sweep, i)
    trial = study.ask(fixed_distributions=distributions(sweep.space))
    studies.trial(studies.load(sweep), trial.number).report(0.5 + i / 10, 1)  # as a worker reports an epoch
    study.tell(trial.number, 0.5 + i / 10)
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM trials")
    rows = cursor.fetchone()[0]
print(json.dumps({"driver": studies.database_url().split("://")[0], "rows": rows,
                  "best": studies.load(sweep).best_value}))
"""


def test_a_sweeps_optuna_study_lives_in_the_same_postgresql_database(postgres_database, tmp_path):
    env = {**os.environ, "DATABASE_URL": postgres_database, "DATA_DIR": str(tmp_path)}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True).stdout

    manage("migrate", "--noinput", "-v0")
    outcome = json.loads(manage("shell", "-c", SWEEP_SCRIPT).strip().splitlines()[-1])

    # Optuna's own tables sit beside Django's, so workers on other hosts share the study.
    assert outcome == {"driver": "postgresql+psycopg", "rows": 3, "best": 0.7}
