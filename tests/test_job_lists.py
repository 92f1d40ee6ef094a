"""GET /api/jobs/ as a list that scales: DRF's page envelope, filters, search and sorting on the
summary columns, rows without per-epoch metrics, and never another user's runs.

The runs are real database rows: finished jobs with their epochs as JobMetric rows, summarized by
webapp.experiments.summary.summarize as a worker does when a job ends. No worker is needed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.datasets.models import Dataset
from webapp.experiments.models import Project, Tag, TrainedModel
from webapp.experiments.summary import summarize
from webapp.jobs import live
from webapp.jobs.models import Job, JobMetric

pytestmark = pytest.mark.django_db

ENVELOPE = {"count", "next", "previous", "results"}


def run(owner, name: str, *, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, architecture="lenet5",
        dataset=None, project=None, tags=(), note="", seconds=None, epochs=(), result=None, age=0) -> Job:
    """A run as a worker leaves it: its epochs ({"epoch", ...} dicts) as JobMetric rows, then summarized.
    `name` goes into the note so that a failing assertion names the run."""
    now = timezone.now() - timedelta(hours=age)
    params = {"architecture": architecture, "epochs": len(epochs) or 1}
    if dataset is not None:
        params["dataset"], params["dataset_name"] = dataset.id, dataset.name
    job = Job.objects.create(
        owner=owner, kind=kind, status=status, params=params, dataset=dataset, result=result,
        project=project or Project.default_for(owner), note=f"{name}. {note}".strip(), created_at=now,
        progress=1.0 if status == Job.Status.SUCCEEDED else 0.3,
        started_at=now - timedelta(seconds=seconds) if seconds is not None else None,
        finished_at=now if seconds is not None and status not in Job.ACTIVE else None)
    if tags:
        job.tags.set([Tag.objects.get_or_create(owner=owner, name=tag)[0] for tag in tags])
    JobMetric.objects.bulk_create(JobMetric(job=job, epoch=m["epoch"], values={k: v for k, v in m.items()
                                                                                if k != "epoch"}) for m in epochs)
    if status not in Job.ACTIVE:
        summarize(job.id)
    return Job.objects.get(id=job.id)


def curve(accuracies: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "loss": 1 - a, "accuracy": a, "val_loss": 1.1 - a, "val_accuracy": a - 0.02}
            for i, a in enumerate(accuracies)]


@pytest.fixture
def runs(alice):
    """Alice's five runs: three classifiers, a caption model, a running job and a system check."""
    digits = Dataset.objects.create(owner=alice, name="Handwritten digits", kind="classification", status="ready")
    flowers = Dataset.objects.create(owner=alice, name="Garden flowers", kind="classification", status="ready")
    captions = Dataset.objects.create(owner=alice, name="Shapes with captions", kind="captions", status="ready")
    vision = Project.objects.create(owner=alice, name="Vision")
    words = Project.objects.create(owner=alice, name="Words")
    matrix = [[5, 1], [2, 7]]
    made = {
        "small": run(alice, "small", dataset=digits, project=vision, tags=["baseline"], seconds=100, age=5,
                     note="sigmoid activations", epochs=curve([0.5, 0.7, 0.8, 0.85]),
                     result={"test_accuracy": 0.84, "test_loss": 0.4, "confusion_matrix": matrix,
                             "per_class": [{"name": "a", "precision": 1.0}], "classes": ["a", "b"]}),
        "big": run(alice, "big", architecture="cnn", dataset=flowers, project=vision,
                   tags=["augmented", "baseline"], seconds=300, age=4, epochs=curve([0.6, 0.9, 0.95, 0.93]),
                   result={"test_accuracy": 0.94, "test_loss": 0.2, "confusion_matrix": matrix}),
        "captioner": run(alice, "captioner", kind=Job.Kind.TRAIN_CAPTIONER, architecture="merge", dataset=captions,
                         project=words, seconds=50, age=3,
                         epochs=[{"epoch": e, "loss": 3 - e / 2, "val_loss": 3.2 - e / 3} for e in (1, 2, 3)],
                         result={"bleu1": 0.6, "bleu4": 0.31}),
        "failed": run(alice, "failed", status=Job.Status.FAILED, architecture="vgg16", dataset=digits,
                      tags=["augmented"], seconds=20, age=2, epochs=curve([0.3])),
        "running": run(alice, "running", status=Job.Status.RUNNING, architecture="mobilenet_v2_transfer",
                       dataset=flowers, seconds=30, age=1, epochs=curve([0.7, 0.8])),
        "check": run(alice, "check", kind=Job.Kind.SYSTEM_CHECK, architecture="", seconds=5, age=0.5,
                     result={"devices": [{"name": "CPU", "gflops": 12.5}], "host": "worker-7"}),
    }
    made["digits"], made["flowers"], made["vision"], made["words"] = digits, flowers, vision, words
    return made


def listed(client, query: str = "") -> list[str]:
    """The names (first word of the note) of the runs GET /api/jobs/?<query> lists, in order."""
    response = client.get(f"/api/jobs/?page_size=200&{query}")
    assert response.status_code == 200, response.content
    return [row["note"].split(".")[0] for row in response.json()["results"]]


def test_the_list_answers_a_page_of_50_with_the_envelope_and_at_most_200_rows(alice, alice_api):
    Job.objects.bulk_create(Job(owner=alice, kind=Job.Kind.SYSTEM_CHECK, status=Job.Status.SUCCEEDED)
                            for _ in range(205))

    first = alice_api.get("/api/jobs/").json()
    assert set(first) == ENVELOPE
    assert first["count"] == 205 and len(first["results"]) == 50
    assert first["previous"] is None and "page=2" in first["next"]

    second = alice_api.get(first["next"]).json()
    assert {r["id"] for r in second["results"]}.isdisjoint(r["id"] for r in first["results"])
    assert second["previous"] is not None

    assert len(alice_api.get("/api/jobs/?page_size=200").json()["results"]) == 200
    assert len(alice_api.get("/api/jobs/?page_size=5000").json()["results"]) == 200
    last = alice_api.get("/api/jobs/?page_size=50&page=5").json()
    assert len(last["results"]) == 5 and last["next"] is None
    past = alice_api.get("/api/jobs/?page=6")
    assert past.status_code == 404 and past.json()["detail"].startswith("This list has no page 6:")


def test_pages_are_disjoint_and_complete_when_many_runs_share_a_sort_value(alice, alice_api):
    now = timezone.now()
    Job.objects.bulk_create(Job(owner=alice, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, created_at=now,
                                test_accuracy=0.5 if i % 3 else None) for i in range(30))
    for ordering in ("-created_at", "test_accuracy", "-test_accuracy"):
        seen = [row["id"] for page in (1, 2, 3)
                for row in alice_api.get(f"/api/jobs/?ordering={ordering}&page_size=10&page={page}").json()["results"]]
        assert sorted(seen) == sorted(Job.objects.values_list("id", flat=True)), ordering


def test_rows_carry_summary_numbers_tags_project_and_a_curve_but_no_epochs(runs, alice_api):
    big = runs["big"]
    row = next(r for r in alice_api.get("/api/jobs/").json()["results"] if r["id"] == big.id)

    assert "metrics" not in row and "record" not in row
    assert row["result"] == {"test_accuracy": 0.94, "test_loss": 0.2}  # no confusion matrix in a list
    assert row["test_accuracy"] == 0.94 and row["best_val_accuracy"] == pytest.approx(0.93)
    assert row["best_val_loss"] == pytest.approx(0.15) and row["best_epoch"] == 3 and row["epochs_run"] == 4
    assert row["curve"]["metric"] == "val_accuracy"
    assert [p[0] for p in row["curve"]["points"]] == [1, 2, 3, 4]
    assert row["project"] == "Vision" and row["tags"] == ["augmented", "baseline"]
    assert row["note"] == "big." and row["kind_label"] == "Training" and row["duration_seconds"] == 300
    # The run itself still has every epoch and its whole result.
    detail = alice_api.get(f"/api/jobs/{big.id}/").json()
    assert len(detail["metrics"]) == 4 and detail["result"]["confusion_matrix"] == [[5, 1], [2, 7]]


def test_a_long_run_lists_a_curve_of_at_most_40_points_that_keeps_its_best_epoch(alice, alice_api):
    accuracies = [0.5 + 0.4 * (i / 120) for i in range(120)]
    accuracies[76] = 0.99  # the best epoch is 77, not on any regular step
    job = run(alice, "long", seconds=600, epochs=[{"epoch": i + 1, "val_accuracy": a, "val_loss": 1 - a}
                                                  for i, a in enumerate(accuracies)])

    row = alice_api.get("/api/jobs/").json()["results"][0]

    assert row["id"] == job.id and row["best_epoch"] == 77
    points = row["curve"]["points"]
    assert len(points) <= 40 and [77, 0.99] in points and points[0][0] == 1 and points[-1][0] == 120


def test_the_system_checks_result_in_a_row_loses_its_device_table_and_host(runs, alice_api):
    row = next(r for r in alice_api.get("/api/jobs/").json()["results"] if r["id"] == runs["check"].id)

    assert row["result"] == {}  # devices is a table (the job page reads it); host is for staff only
    assert row["curve"] == {} and row["test_accuracy"] is None


def test_a_running_job_keeps_its_live_progress_in_the_list(runs, alice_api):
    live.publish(runs["running"].id, 0.625, "Epoch 3/4, batch 10/20")

    row = next(r for r in alice_api.get("/api/jobs/?status=running").json()["results"])

    assert row["id"] == runs["running"].id
    assert row["progress"] == 0.625 and row["message"] == "Epoch 3/4, batch 10/20"


@pytest.mark.parametrize("query, expected", [
    ("status=succeeded", ["check", "captioner", "big", "small"]),
    ("status=failed", ["failed"]),
    ("status=active", ["running"]),
    ("kind=train", ["running", "failed", "big", "small"]),
    ("kind=train_captioner", ["captioner"]),
    ("kind=system_check", ["check"]),
    ("architecture=cnn", ["big"]),
    ("architecture=merge", ["captioner"]),
    ("architecture=vgg", []),  # exact: a search finds parts of names
    ("project=Vision", ["big", "small"]),
    ("project=Default", ["check", "running", "failed"]),
    ("project=Nowhere", []),
    ("tag=baseline", ["big", "small"]),
    ("tag=augmented", ["failed", "big"]),
    ("tag=base", []),
    ("tag=baseline&status=succeeded&kind=train&architecture=lenet5&project=Vision", ["small"]),
    ("status=&kind=&dataset=&architecture=&project=&tag=&q=&ordering=", ["check", "running", "failed", "captioner",
                                                                         "big", "small"]),
])
def test_each_filter_narrows_the_list(runs, alice_api, query, expected):
    assert listed(alice_api, query) == expected


def test_dataset_and_project_filter_by_id(runs, alice_api):
    assert listed(alice_api, f"dataset={runs['digits'].id}") == ["failed", "small"]
    assert listed(alice_api, f"dataset={runs['flowers'].id}") == ["running", "big"]
    assert listed(alice_api, f"project={runs['words'].id}") == ["captioner"]
    assert listed(alice_api, "dataset=987654") == []


def test_a_project_whose_name_is_a_number_is_found_by_its_name(alice, alice_api):
    numbered = Project.objects.create(owner=alice, name="2024")
    run(alice, "dated", project=numbered, seconds=1)
    run(alice, "other", seconds=1)

    assert listed(alice_api, "project=2024") == ["dated"]


@pytest.mark.parametrize("q, expected", [
    ("sigmoid", ["small"]),  # the note
    ("GARDEN", ["running", "big"]),  # the dataset's name, any case
    ("digits", ["failed", "small"]),
    ("mobilenet", ["running"]),  # the architecture
    ("augment", ["failed", "big"]),  # a tag
    ("words", ["captioner"]),  # the project
    ("caption", ["captioner"]),  # the kind's label ("Caption training") and the dataset's name
    ("system", ["check"]),
    ("flowers cnn", ["big"]),  # every word must be found, each anywhere
    ("flowers nothing-like-this", []),
])
def test_q_finds_words_in_notes_datasets_architectures_tags_projects_and_kinds(runs, alice_api, q, expected):
    assert listed(alice_api, f"q={q}") == expected


def test_q_finds_a_run_by_its_id(runs, alice_api):
    job = runs["captioner"]
    assert listed(alice_api, f"q=%23{job.id}")[0] == "captioner"
    assert "captioner" in listed(alice_api, f"q={job.id}")


@pytest.mark.parametrize("ordering, expected", [
    ("", ["check", "running", "failed", "captioner", "big", "small"]),  # newest first
    ("-created_at", ["check", "running", "failed", "captioner", "big", "small"]),
    ("created_at", ["small", "big", "captioner", "failed", "running", "check"]),
    ("-test_accuracy", ["big", "small", "check", "running", "failed", "captioner"]),
    ("test_accuracy", ["small", "big", "captioner", "failed", "running", "check"]),
    ("-best_val_accuracy", ["big", "small", "failed", "check", "running", "captioner"]),
    ("best_val_accuracy", ["failed", "small", "big", "captioner", "running", "check"]),
    ("best_val_loss", ["big", "small", "failed", "captioner", "running", "check"]),
    ("-best_val_loss", ["captioner", "failed", "small", "big", "check", "running"]),
    ("-bleu4", ["captioner", "check", "running", "failed", "big", "small"]),
    ("bleu4", ["captioner", "small", "big", "failed", "running", "check"]),
    ("-duration", ["big", "small", "captioner", "failed", "check", "running"]),
    ("duration", ["check", "failed", "captioner", "small", "big", "running"]),
    ("id", ["small", "big", "captioner", "failed", "running", "check"]),
    ("-id", ["check", "running", "failed", "captioner", "big", "small"]),
])
def test_each_ordering_sorts_with_runs_lacking_the_number_last(runs, alice_api, ordering, expected):
    """Ties (runs without the number) come in id order, the same direction as the sort."""
    assert listed(alice_api, f"ordering={ordering}") == expected


def test_another_users_runs_never_appear_whatever_the_query(runs, alice, bob, alice_api, bob_api):
    theirs = Project.objects.create(owner=bob, name="Vision")
    bobs = run(bob, "bobs", architecture="cnn", project=theirs, tags=["baseline"], note="sigmoid flowers",
               seconds=1, epochs=curve([0.99]), result={"test_accuracy": 0.99})

    for query in ("", "project=Vision", f"project={theirs.id}", "tag=baseline", "q=bobs", "q=sigmoid",
                  "architecture=cnn", "ordering=-test_accuracy", f"q={bobs.id}", "status=succeeded"):
        rows = alice_api.get(f"/api/jobs/?page_size=200&{query}").json()["results"]
        assert bobs.id not in {row["id"] for row in rows}, query
    assert listed(alice_api, f"project={theirs.id}") == []
    assert listed(bob_api, "") == ["bobs"]
    assert listed(bob_api, "tag=augmented") == []


@pytest.mark.parametrize("query, words", [
    ("status=done", ["status must be one of", "active", '"done" is not one']),
    ("kind=training", ["kind must be one of", "train_captioner"]),
    ("dataset=digits", ["dataset must be a dataset's id"]),
    ("dataset=0", ["dataset must be a dataset's id"]),
    ("dataset=99999999999999999999999", ["dataset must be a dataset's id"]),
    ("ordering=name", ["ordering must be one of", "test_accuracy", "duration"]),
    ("ordering=--id", ["ordering must be one of"]),
    ("q=" + "x" * 201, ["at most 200 characters"]),
    ("tag=a%00b", ["tag cannot hold a NUL character"]),
    ("project=" + "p" * 101, ["at most 100 characters"]),
])
def test_a_value_that_cannot_be_a_filter_answers_400_with_a_sentence(alice_api, query, words):
    response = alice_api.get(f"/api/jobs/?{query}")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail[0].isupper() or detail.split()[0] in ("status", "kind", "dataset", "ordering", "tag", "project")
    assert detail.endswith(".") and all(word in detail for word in words), detail


def test_a_page_of_runs_costs_the_same_few_queries_however_many_rows(alice, alice_api, django_assert_max_num_queries):
    tags = [Tag.objects.create(owner=alice, name=f"t{i}") for i in range(3)]
    vision = Project.objects.create(owner=alice, name="Vision")
    for i in range(60):
        job = Job.objects.create(owner=alice, kind=Job.Kind.TRAIN, status=Job.Status.SUCCEEDED, project=vision,
                                 params={"architecture": "cnn"}, test_accuracy=i / 60)
        job.tags.set(tags[: i % 4])
        if i % 5 == 0:
            TrainedModel.objects.create(owner=alice, job=job, name=f"m{i}", architecture="cnn", image_size=28,
                                        channels=1)

    # Authentication, the tag lookup's subquery, count, the page, its tags: nothing per row.
    with django_assert_max_num_queries(6):
        page = alice_api.get("/api/jobs/?project=Vision&tag=t0&ordering=-test_accuracy&page_size=50").json()
    assert page["count"] == 45 and len(page["results"]) == 45
    assert sum(row["model"] is not None for row in page["results"]) == 9


@pytest.mark.parametrize("path", ["/api/datasets/", "/api/models/", "/api/backbones/"])
def test_every_other_list_answers_the_same_envelope(alice, alice_api, bob_api, path):
    Dataset.objects.bulk_create(Dataset(owner=alice, name=f"d{i}", kind="classification", status="ready")
                                for i in range(3))

    for client in (alice_api, bob_api):
        page = client.get(path + "?page_size=2").json()
        assert set(page) == ENVELOPE
    if path == "/api/datasets/":
        first = alice_api.get(path + "?page_size=2").json()
        assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
        assert bob_api.get(path).json()["count"] == 0
