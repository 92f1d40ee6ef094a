#!/usr/bin/env python
"""How fast the jobs list and the compare view answer for a person with 10,000 finished runs.

Fills one user, in a throwaway SQLite database under a temporary DATA_DIR (with its own Redis, as
the web process has), with `--jobs` finished jobs of `--epochs` epochs each: Job rows with their
summary columns (as webapp.experiments.summary writes them when a job ends), results of the size
a 10-class classifier leaves (confusion matrix, per-class scores, mistakes), 20 projects, 30 tags
and one JobMetric row per epoch (500,000 by default). Then, in the same run and in one process,
it times API requests through DRF's APIClient with a token (the whole Django stack except the
socket), `--requests` of each after two warm-ups, and prints their median and p95:

  baseline  `SELECT COUNT(*)` of the user's jobs through the ORM, and serializing one job with
            all its epochs (JobSerializer, what GET /api/jobs/{id}/ does): every figure is also
            printed as a ratio to these, so a faster or slower machine reads the same ratios;
  before    what the old list did for 50 rows: the 50 newest jobs with every epoch serialized;
  list      GET /api/jobs/ with filters, search and orderings (target: median under 150 ms);
  compare   GET /api/compare/?jobs=<10 ids> (target: under 300 ms), when the endpoint exists;
  page      GET /jobs/, the page with its filter menus.

With --explain it prints SQLite's query plan of the list's queries.
Usage: .venv/bin/python bench/experiments.py [--jobs 10000] [--epochs 50] [--requests 20] [--explain]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHITECTURES = ["lenet5", "mlp", "cnn", "vgg16_transfer", "mobilenet_v2_transfer", "transfer", "logreg"]
CLASSES = [f"class_{i}" for i in range(10)]


def start_services(root: Path):
    """A throwaway DATA_DIR and Redis, before Django reads its settings."""
    from webapp.ops import stack

    data_dir = root / "data"
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "staticfiles").mkdir()
    redis, redis_url = stack.throwaway_redis(data_dir)
    os.environ.update({"DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
                       "DJANGO_SETTINGS_MODULE": "webapp.settings"})
    for name in ("DATABASE_URL", "DEBUG"):
        os.environ.pop(name, None)
    return redis


def epochs_of(rng: random.Random, epochs: int, skill: float) -> list[dict]:
    """A plausible learning curve: accuracy rising toward `skill` with noise, validation a bit under it."""
    rows = []
    for epoch in range(1, epochs + 1):
        accuracy = skill * (1 - math.exp(-epoch / (epochs / 5))) + rng.uniform(-0.01, 0.01)
        val = accuracy - rng.uniform(0.0, 0.04)
        rows.append({"epoch": epoch, "loss": round(1.2 - accuracy, 4), "accuracy": round(accuracy, 4),
                     "val_loss": round(1.25 - val, 4), "val_accuracy": round(val, 4)})
    return rows


def result_of(rng: random.Random, test_accuracy: float, kind: str) -> dict:
    if kind == "train_captioner":
        return {"bleu1": round(test_accuracy, 4), "bleu2": round(test_accuracy * 0.8, 4),
                "bleu3": round(test_accuracy * 0.6, 4), "bleu4": round(test_accuracy * 0.45, 4)}
    return {
        "test_accuracy": round(test_accuracy, 4), "test_loss": round(1.2 - test_accuracy, 4),
        "classes": CLASSES,
        "confusion_matrix": [[rng.randint(0, 60) for _ in CLASSES] for _ in CLASSES],
        "per_class": [{"name": c, "precision": rng.random(), "recall": rng.random(), "f1": rng.random(),
                       "support": 60} for c in CLASSES],
        "mistakes": [{"path": f"{c}/img_{i}.png", "true": c, "predicted": CLASSES[0], "confidence": 0.9}
                     for i, c in enumerate(CLASSES)],
    }


def fill(jobs: int, epochs: int) -> tuple:
    """The user, their token and the ids of their jobs; prints how long filling took."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from webapp.datasets.models import Dataset
    from webapp.experiments.models import Project, Tag
    from webapp.experiments.summary import summary_fields
    from webapp.jobs.models import Job, JobMetric

    started = time.perf_counter()
    rng = random.Random(20261129)
    user = get_user_model().objects.create_user("bench", password="bench-password-not-used")
    token = Token.objects.create(user=user).key
    other = get_user_model().objects.create_user("someone-else")
    projects = [Project.objects.create(owner=user, name=f"Project {i:02d}") for i in range(20)]
    tags = [Tag.objects.create(owner=user, name=name) for name in
            [f"tag-{i:02d}" for i in range(28)] + ["baseline", "augmented"]]
    datasets = [Dataset.objects.create(owner=user, name=name, kind="classification", status="ready")
                for name in ("Handwritten digits", "Garden flowers", "Cats and dogs", "Shapes", "CIFAR-10")]
    now = timezone.now()
    rows, curves = [], []
    for i in range(jobs):
        kind = "train_captioner" if i % 10 == 9 else "train"
        status = "failed" if i % 25 == 0 else "succeeded"
        skill = rng.uniform(0.5, 0.99)
        metrics = epochs_of(rng, epochs, skill)
        result = result_of(rng, skill - rng.uniform(0, 0.03), kind) if status == "succeeded" else None
        dataset = datasets[i % len(datasets)]
        created = now - timedelta(minutes=(jobs - i) * 50)
        begun = created + timedelta(seconds=rng.randint(1, 60))
        rows.append(Job(
            owner=user, kind=kind, status=status, queue="cpu", dataset=dataset, progress=1.0,
            params={"architecture": "merge" if kind == "train_captioner" else ARCHITECTURES[i % len(ARCHITECTURES)],
                    "dataset": dataset.id, "dataset_name": dataset.name, "epochs": epochs, "batch_size": 32,
                    "learning_rate": 0.001, "optimizer": "adam", "seed": i},
            result=result, error="Out of memory" if status == "failed" else "", worker="jobs@bench",
            device="CPU", created_at=created, started_at=begun,
            finished_at=begun + timedelta(seconds=rng.randint(30, 3600)),
            project=projects[i % len(projects)],
            note=f"Run {i} of the bench, {rng.choice(['wider', 'deeper', 'augmented'])}",
            record={"code_version": "bench", "libraries": {"tensorflow": "2.x", "keras": "3.x"}, "seed": i},
            **summary_fields(metrics, result)))
        curves.append(metrics)
    with transaction.atomic():
        made = Job.objects.bulk_create(rows, batch_size=1000)
        Job.objects.create(owner=other, kind="train", status="succeeded", test_accuracy=1.0)
        through = Job.tags.through
        through.objects.bulk_create([through(job_id=job.id, tag_id=tag.id) for n, job in enumerate(made)
                                     for tag in rng.sample(tags, n % 4)], batch_size=5000)
    with transaction.atomic():
        batch = []
        for job, metrics in zip(made, curves, strict=True):
            batch.extend(JobMetric(job_id=job.id, epoch=m["epoch"], values={k: v for k, v in m.items() if k != "epoch"},
                                   recorded_at=now) for m in metrics)
            if len(batch) >= 20000:
                JobMetric.objects.bulk_create(batch, batch_size=5000)
                batch = []
        JobMetric.objects.bulk_create(batch, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"filled {jobs:,} jobs, {JobMetric.objects.count():,} epochs, {through.objects.count():,} tag links "
          f"in {time.perf_counter() - started:.0f} s")
    return user, token, [job.id for job in made], projects, tags


def timed(fn, runs: int) -> list[float]:
    for _ in range(2):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print the query plans of the list's queries")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="visionlab-bench-"))
    redis = start_services(root)
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client
        from django.urls import NoReverseMatch, reverse
        from rest_framework.test import APIClient

        from webapp.experiments.serializers import JobSerializer
        from webapp.jobs.models import Job

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        # The page renders without `collectstatic`, as in the tests: plain static storage.
        settings.STORAGES = {**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
        call_command("migrate", verbosity=0)
        user, token, ids, projects, tags = fill(args.jobs, args.epochs)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

        def get(path: str, expect: int = 200):
            def call():
                response = api.get(path)
                assert response.status_code == expect, (path, response.status_code, response.content[:300])
                return response
            return call

        one = Job.objects.prefetch_related("metrics", "tags").select_related("project", "trained_model").get(id=ids[-1])
        baselines = {
            "count": timed(lambda: Job.objects.filter(owner=user).count(), args.requests),
            "one job": timed(lambda: JobSerializer(Job.objects.prefetch_related("metrics", "tags").select_related(
                "project", "trained_model").get(id=one.id)).data, args.requests),
        }
        count_ms, one_ms = (statistics.median(baselines[k]) * 1000 for k in ("count", "one job"))
        print(f"baseline  SELECT COUNT(*) of {args.jobs:,} jobs: median {count_ms:.2f} ms; "
              f"one job with its {args.epochs} epochs serialized: median {one_ms:.2f} ms")

        rows: list[tuple[str, list[float], float | None]] = []

        def old_list():
            jobs = Job.objects.filter(owner=user).prefetch_related("metrics", "tags").select_related(
                "project", "trained_model")[:50]
            return JobSerializer(jobs, many=True).data
        rows.append(("before: 50 newest jobs with every epoch (the old list)", timed(old_list, args.requests), None))

        project, tag = projects[3].id, tags[-1].name
        middle = max(1, args.jobs // 100)  # a page halfway through, of 50 rows
        for label, query, target in (
            ("list: newest 50", "page_size=50", 150),
            ("list: a project, best test accuracy first", f"project={project}&ordering=-test_accuracy", 150),
            ("list: a tag and a kind, longest first", f"tag={tag}&kind=train&ordering=-duration", 150),
            ("list: search two words, best val accuracy first", "q=flowers+deeper&ordering=-best_val_accuracy", 150),
            (f"list: page {middle}, lowest val loss first", f"ordering=best_val_loss&page={middle}", 150),
            ("list: 200 rows of one architecture", "architecture=cnn&page_size=200", None),
        ):
            path = "/api/jobs/?" + query + ("" if "page_size" in query else "&page_size=50")
            rows.append((label, timed(get(path), args.requests), target))

        try:
            reverse("api-compare")
            compare = f"/api/compare/?jobs={','.join(map(str, ids[-10:]))}"
            rows.append(("compare: 10 runs of 50 epochs", timed(get(compare), args.requests), 300))
        except NoReverseMatch:
            print("compare   SKIPPED: /api/compare/ is not routed in this tree yet (webapp/experiments/compare_api.py)")

        browser = Client()
        browser.force_login(user)

        def page():
            response = browser.get("/jobs/")
            assert response.status_code == 200
        rows.append(("page: GET /jobs/ with its filter menus", timed(page, args.requests), None))

        print(f"\n{'':56} {'median':>9} {'p95':>9} {'x COUNT(*)':>11} {'x one job':>10}  target")
        for label, samples, target in rows:
            median, high = statistics.median(samples) * 1000, p95(samples) * 1000
            verdict = "" if target is None else (f"< {target} ms: " + ("met" if median < target else "MISSED"))
            print(f"{label:56} {median:7.1f}ms {high:7.1f}ms {median / count_ms:10.0f}x {median / one_ms:9.1f}x"
                  f"  {verdict}")

        if args.explain:
            from webapp.experiments import job_lists

            class Request:
                def __init__(self, query):
                    from django.http import QueryDict
                    self.query_params, self.user = QueryDict(query), user
            for query in (f"project={project}&ordering=-test_accuracy", f"tag={tag}&kind=train&ordering=-duration",
                          "q=flowers+deeper&ordering=-best_val_accuracy", "", "ordering=best_val_loss"):
                jobs = job_lists.jobs_for(Request(query))  # the ids a page is cut from; then 50 rows by id
                print(f"\nEXPLAIN QUERY PLAN of a page of ?{query}\n  " + jobs[:50].explain().replace("\n", "\n  "))
    finally:
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
