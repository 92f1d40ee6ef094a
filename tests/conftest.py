"""Shared fixtures: personas, API clients, and a real Celery worker.

Personas: alice owns things, bob is another user who must never see them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent

# Tests render pages without `collectstatic`: plain static storage, served by finders.
settings.STORAGES = {**settings.STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
settings.WHITENOISE_USE_FINDERS = True
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite's one worker process serves training and inference in turn, and on a loaded 2-core CI
# machine its first prediction after a run (loading TensorFlow's interpreter and the model) once
# took longer than the 30 s a user waits. The refusal itself is tested on its own stack
# (test_attack_inference.py, with a 6 s limit).
settings.INFERENCE_TIMEOUT = 120.0

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password=PASSWORD)


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def alice_api(alice):
    return token_client(alice)


@pytest.fixture
def bob_api(bob):
    return token_client(bob)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real `celery worker` process on the test database and the session's Redis.

    Session-scoped: it starts once (a few seconds) and serves every test that needs it.
    """
    from jobs.celery import app
    from webapp.ops import stack

    db_path = settings.DATABASES["default"]["NAME"]
    log_file = Path(settings.DATA_DIR) / "logs" / "test-worker.log"
    worker = stack.worker_service(
        "test-jobs", ["cpu", "inference"], concurrency=1, log_file=log_file,
        env={"DATABASE_URL": f"sqlite:///{db_path}", "PYTHONPATH": str(ROOT)},
    )
    worker.start()
    try:
        wait_for(lambda: app.control.ping(timeout=0.5) or not worker.alive(), timeout=90,
                 what="the Celery worker to answer a ping")
        if not worker.alive():
            pytest.fail("The Celery worker exited:\n" + log_file.read_text()[-4000:])
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def worker(celery_worker, transactional_db):
    """The session's worker, for a test whose rows it must see (committed, not rolled back)."""
    return celery_worker


def wait_for_job(client: APIClient, job_id: int, timeout: float = 90.0, seen=None) -> dict:
    """Poll the API until the job ends; append every answer to `seen` if given."""
    def finished():
        data = client.get(f"/api/jobs/{job_id}/").json()
        if seen is not None:
            seen.append(data)
        return data if data["status"] not in ("queued", "running") else None

    return wait_for(finished, timeout=timeout, interval=0.2, what=f"job {job_id} to end")


def extra_worker(name: str, queues, concurrency: int = 1, env: dict | None = None):
    """A second Celery worker on the test stack's Redis and database (start() and stop() it), with
    settings of its own in `env`; it serves only `queues`, e.g. "gpu", which the main worker leaves."""
    from webapp.ops import stack

    return stack.worker_service(name, queues, concurrency, log_file=settings.DATA_DIR / "logs" / f"{name}.log",
                                env={"DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['NAME']}",
                                     "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture(autouse=True)
def _forget_live_job_state():
    """Job ids restart with each test's database; their live Redis keys must not carry over."""
    from webapp.redis_client import REDIS_ERRORS, get_redis

    try:
        client = get_redis()
        keys = list(client.scan_iter(match="visionlab:job:*", count=500))
        if keys:
            client.delete(*keys)
    except REDIS_ERRORS:
        pass


_digits_snapshot: dict = {}


@pytest.fixture
def digits(worker, alice, alice_api):
    """scikit-learn's 1,797 handwritten digits, alice's ready dataset (the offline built-in).

    The first test that asks ingests it through the API and the worker; later tests get a copy of
    that result, its rows and files, in well under a second instead of a fresh ingestion (several
    seconds each, for some twenty tests). Ingestion itself has its own tests.
    """
    from webapp.datasets.models import Dataset, DatasetItem
    from webapp.experiments.models import Project
    from webapp.jobs.models import Job

    if _digits_snapshot:  # the same rows and files, and the ingestion job that made them
        dataset = Dataset.objects.create(owner=alice, **_digits_snapshot["fields"])
        DatasetItem.objects.bulk_create(DatasetItem(dataset=dataset, **item) for item in _digits_snapshot["items"])
        shutil.rmtree(dataset.directory, ignore_errors=True)  # an earlier test's dataset with the same id left it
        shutil.copytree(_digits_snapshot["files"], dataset.directory)
        Job.objects.create(owner=alice, dataset=dataset, project=Project.default_for(alice), **_digits_snapshot["job"])
        return alice_api.get(f"/api/datasets/{dataset.id}/").json()
    dataset = alice_api.post("/api/datasets/reference/", {"name": "digits"}, format="json").json()

    def ready():
        data = alice_api.get(f"/api/datasets/{dataset['id']}/").json()
        assert data["status"] != "failed", data["error"]
        return data if data["status"] == "ready" else None

    data = wait_for(ready, timeout=120, what="the digits dataset")
    row = Dataset.objects.get(id=data["id"])
    files = Path(settings.DATA_DIR) / "test-snapshots" / "digits"
    shutil.copytree(row.directory, files)
    _digits_snapshot.update(
        fields={field.name: getattr(row, field.name) for field in Dataset._meta.concrete_fields
                if field.name not in ("id", "owner")},
        items=list(row.items.values(*(field.name for field in DatasetItem._meta.concrete_fields
                                      if field.name not in ("id", "dataset")))),
        files=files,
        job=Job.objects.filter(dataset=row, kind=Job.Kind.INGEST).values(
            "kind", "status", "queue", "params", "progress", "message", "result", "worker", "device", "created_at",
            "started_at", "finished_at").first())
    return data


# `make test` hands whole files to its processes in this order (pytest-xdist's --dist loadfile with
# --no-loadscope-reorder): the longest files first, so that the two processes end together instead of
# one running test_schema.py and test_stack.py alone for minutes at the end (as with xdist's default
# order, most tests first). Longest first, from `--durations` of a full run (setup included); the
# other files follow in their usual order.
LONGEST_FILES = [
    "test_attack_inference.py", "test_schema.py", "test_attack_faults.py", "test_captioning_ml.py",
    "test_captions_api.py", "test_sweeps_api.py", "test_attack_models.py", "test_builtin_training.py",
    "test_pretrained_captions_api.py", "test_export_ml.py", "test_pretrained_api.py", "test_transfer_api.py",
    "test_browser_training.py", "test_exports_api.py", "test_stack.py", "test_browser_sweeps.py",
    "test_training_api.py", "test_browser_captions.py", "test_browser_backbones.py", "test_browser_exports.py",
    "test_attack_features.py", "test_experiment_records.py", "test_zoo.py", "test_training.py",
]


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering, which this keeps within each file
def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# The browser tests' fixtures (one session chromium, a page per test), registered once here
# so that several test modules share the same browser.
from tests.browser_fixtures import browser, page  # noqa: E402, F401
