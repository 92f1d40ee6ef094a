"""Sweeps through the real API, Redis, database and worker: grid, random and TPE searches whose trials
are ordinary jobs, pruning that ends trials as "pruned" with their curves, the time estimate, cancel,
extend, promote, and ownership."""

from __future__ import annotations

import optuna
import pytest

from tests.conftest import wait_for
from webapp.jobs.models import Job
from webapp.sweeps import studies
from webapp.sweeps.models import Sweep

pytestmark = pytest.mark.worker

# The multilayer perceptron on 8x8 digits trains an epoch in well under a second: a sweep of real
# trials fits a test.
FIXED = {"epochs": 4, "batch_size": 64, "image_size": 8, "optimizer": "adam"}


def start(client, dataset_id: int, expect: int = 201, query: str = "", **body) -> dict:
    body = {"dataset": dataset_id, "kind": "train", "architecture": "mlp", "params": dict(FIXED),
            "method": "random", "trials": 3, "parallel": 1, **body}
    response = client.post(f"/api/sweeps/{query}", body, format="json")
    assert response.status_code == expect, response.content
    return response.json()


def wait_for_sweep(client, sweep_id: int, timeout: float = 240.0) -> dict:
    def ended():
        data = client.get(f"/api/sweeps/{sweep_id}/").json()
        return data if data["status"] != "running" else None

    return wait_for(ended, timeout=timeout, interval=0.5, what=f"sweep {sweep_id} to end")


def test_a_random_sweep_runs_its_trials_as_jobs_and_finds_the_best(digits, alice_api, bob_api):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 3e-2}}
    sweep = start(alice_api, digits["id"], space=space, objective={"metric": "val_accuracy"}, project="Search")

    done = wait_for_sweep(alice_api, sweep["id"])

    assert done["status"] == "finished", done
    trials = done["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2]
    assert all(t["status"] == "succeeded" for t in trials), trials
    rates = [t["params"]["learning_rate"] for t in trials]
    assert len(set(rates)) == 3 and all(1e-4 <= r <= 3e-2 for r in rates)
    best = max(trials, key=lambda t: t["value"])
    assert done["best"]["job"] == best["job"] and done["best"]["value"] == best["value"]
    # Trials are ordinary jobs in the sweep's project, found with the sweep filter.
    listed = alice_api.get(f"/api/jobs/?sweep={sweep['id']}").json()
    assert sorted(row["id"] for row in listed["results"]) == sorted(t["job"] for t in trials)
    job = alice_api.get(f"/api/jobs/{best['job']}/").json()
    assert job["project"] == "Search" and job["params"]["learning_rate"] == best["params"]["learning_rate"]
    assert max(m["val_accuracy"] for m in job["metrics"]) == pytest.approx(best["value"])
    # The study in the project's database agrees.
    study = studies.load(Sweep.objects.get(id=sweep["id"]))
    assert sorted(t.value for t in study.trials) == sorted(t["value"] for t in trials)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    # Nobody else sees it.
    assert bob_api.get(f"/api/sweeps/{sweep['id']}/").status_code == 404
    assert bob_api.get("/api/sweeps/").json()["count"] == 0
    assert bob_api.post(f"/api/sweeps/{sweep['id']}/cancel/").status_code == 404


def test_promote_extend_and_duplicate_messages_after_a_sweep(digits, alice_api):
    from jobs.celery import app
    from webapp.sweeps import engine

    space = {"learning_rate": {"type": "choice", "values": [0.01, 0.003]}}
    sweep = start(alice_api, digits["id"], space=space, method="grid", trials=None)
    assert sweep["trials_planned"] == 2  # a grid without a count runs all its points
    done = wait_for_sweep(alice_api, sweep["id"])
    assert sorted(t["params"]["learning_rate"] for t in done["trials"]) == [0.003, 0.01]

    # A redelivered trial message and two processes advancing at once add nothing.
    first = done["trials"][0]["job"]
    app.send_task("jobs.train", args=[first], queue="cpu", task_id=f"job-{first}")
    from threading import Thread

    racers = [Thread(target=engine.advance, args=(sweep["id"],)) for _ in range(2)]
    [racer.start() for racer in racers]
    [racer.join() for racer in racers]
    wait_for(lambda: "not queued any more" in _worker_log() or None, timeout=30, what="the duplicate to be skipped")
    assert Job.objects.filter(sweep_id=sweep["id"]).count() == 2
    assert Job.objects.get(id=first).status == "succeeded"

    # Promote: the best trial trained again with more epochs, in the sweep's project.
    response = alice_api.post(f"/api/sweeps/{sweep['id']}/promote/", {"top": 1, "epochs": 6}, format="json")
    assert response.status_code == 201, response.content
    promoted = response.json()["jobs"][0]
    job = alice_api.get(f"/api/jobs/{promoted['id']}/").json()
    assert job["params"]["epochs"] == 6
    assert job["params"]["learning_rate"] == done["best"]["params"]["learning_rate"]
    assert f"sweep #{sweep['id']}" in job["note"]
    # Fine-tuning is only for transfer heads.
    refused = alice_api.post(f"/api/sweeps/{sweep['id']}/promote/", {"finetune": True}, format="json")
    assert refused.status_code == 400 and "extract" in refused.json()["detail"]

    # A finished grid cannot grow past its points; extending it ends at once with nothing new.
    response = alice_api.post(f"/api/sweeps/{sweep['id']}/extend/", {"trials": 2}, format="json")
    assert response.status_code == 202
    again = wait_for_sweep(alice_api, sweep["id"])
    assert len(again["trials"]) == 2 and again["promoted"][0]["job"] == promoted["id"]


def _worker_log() -> str:
    from django.conf import settings

    return (settings.DATA_DIR / "logs" / "test-worker.log").read_text(errors="replace")


def test_a_grid_with_median_pruning_stops_the_hopeless_trials_and_keeps_their_curves(digits, alice_api):
    # Seed 5 orders this grid good, good, hopeless, hopeless (GridSampler's permutation): two trials
    # complete for the median to exist, then the learning rates that cannot learn in 6 epochs are judged.
    space = {"learning_rate": {"type": "choice", "values": [0.02, 0.01, 1e-7, 2e-7]}}
    sweep = start(alice_api, digits["id"], space=space, method="grid", trials=None, pruning="median", seed=5,
                  params={**FIXED, "epochs": 6})

    done = wait_for_sweep(alice_api, sweep["id"])

    by_rate = {t["params"]["learning_rate"]: t for t in done["trials"]}
    assert [by_rate[r]["status"] for r in (0.02, 0.01)] == ["succeeded", "succeeded"], done["trials"]
    for rate in (1e-7, 2e-7):
        trial = by_rate.get(rate)
        assert trial, [(t["number"], t["params"], t["status"]) for t in done["trials"]]
        assert trial["status"] == "pruned", trial
        assert trial["epochs_run"] < 6 and "Pruned after epoch" in trial["message"]
        job = alice_api.get(f"/api/jobs/{trial['job']}/").json()
        assert job["status"] == "pruned" and len(job["metrics"]) == trial["epochs_run"] >= 2  # curves kept
        assert job["model"] is None
    assert done["epochs_saved_by_pruning"] == sum(6 - by_rate[r]["epochs_run"] for r in (1e-7, 2e-7))
    assert done["seconds_saved_by_pruning"] > 0
    assert done["counts"] == {"succeeded": 2, "pruned": 2}
    assert done["best"]["params"]["learning_rate"] in (0.02, 0.01)
    assert alice_api.get(f"/api/jobs/?sweep={sweep['id']}&status=pruned").json()["count"] == 2
    study = studies.load(Sweep.objects.get(id=sweep["id"]))
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]


def test_tpe_with_hyperband_searches_two_parameters_and_ranks_them(digits, alice_api):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-5, "high": 3e-2},
             "batch_size": {"type": "int", "low": 16, "high": 128}}
    sweep = start(alice_api, digits["id"], space=space, method="tpe", trials=6, pruning="hyperband",
                  objective={"metric": "val_loss"}, params={**FIXED, "epochs": 5})
    assert sweep["objective"] == {"metric": "val_loss", "direction": "min", "label": "Validation loss",
                                  "per_epoch": True}

    done = wait_for_sweep(alice_api, sweep["id"], timeout=300)

    assert len(done["trials"]) == 6 and {t["status"] for t in done["trials"]} <= {"succeeded", "pruned"}
    assert all(16 <= t["params"]["batch_size"] <= 128 for t in done["trials"])
    finished = [t for t in done["trials"] if t["status"] == "succeeded"]
    assert done["best"]["value"] == min(t["value"] for t in finished)  # the first trial of a bracket is never pruned
    if len(finished) >= 2:  # importances need two finished trials
        assert set(done["importance"]) == {"learning_rate", "batch_size"}
        assert sum(done["importance"].values()) == pytest.approx(1.0, abs=0.01)


def test_the_time_estimate_comes_before_launch_and_a_budget_trims_the_sweep(digits, alice_api):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-1}}
    jobs_before = Job.objects.count()
    body = {"space": space, "trials": 100, "pruning": "median", "architecture": "lenet5",
            "params": {"epochs": 1000, "batch_size": 64}}
    answer = start(alice_api, digits["id"], expect=200, query="?dry_run=1", **body)

    estimate = answer["estimate"]
    assert "probe" in estimate["source"]  # nothing like it ran yet
    assert estimate["seconds"] > estimate["seconds_with_pruning"] > 0
    assert estimate["text"].startswith("About ") and "with pruning" in estimate["text"]
    assert Sweep.objects.count() == 0 and Job.objects.count() == jobs_before

    trimmed = start(alice_api, digits["id"], expect=200, query="?dry_run=1", budget_minutes=30, **body)["estimate"]
    assert trimmed["trimmed_from"] == 100 and 1 <= trimmed["trials"] < 100
    assert trimmed["seconds_with_pruning"] <= 30 * 60 * 1.01
    assert "Trimmed from 100" in trimmed["text"]


def test_sweep_requests_are_checked_with_sentences(digits, alice_api, bob_api):
    def refused(**body) -> dict:
        return start(alice_api, digits["id"], expect=400, **body)

    errors = refused(space={"color_mode": {"type": "choice", "values": ["rgb"]}})
    assert "cannot be searched" in errors["space"]["color_mode"][0]
    errors = refused(space={"learning_rate": {"type": "log_uniform", "low": 0, "high": 1}})
    assert errors["space"]["learning_rate"]
    errors = refused(space={"learning_rate": {"type": "uniform", "low": 0.001, "high": 0.1}}, method="grid")
    assert "grid" in errors["space"]["learning_rate"][0].lower()
    errors = refused(space={"optimizer": {"type": "choice", "values": ["adam", "adagrad"]}})
    assert "adagrad" in errors["space"]["optimizer"][0]
    empty = refused(space={})
    assert "at least one" in empty["space"][0], empty
    errors = refused(space={"learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-1}},
                     objective={"metric": "test_accuracy"}, pruning="median")
    assert "epoch by epoch" in errors["pruning"][0]
    errors = refused(space={"batch_size": {"type": "int", "low": 16, "high": 64}}, objective={"metric": "bleu4"})
    assert "bleu4" in errors["metric"][0]
    errors = refused(space={"batch_size": {"type": "int", "low": 16, "high": 64}}, trials=100_000)
    assert "at most" in errors["trials"][0]
    errors = start(bob_api, digits["id"], expect=400, space={"epochs": {"type": "int", "low": 1, "high": 3}})
    assert errors["dataset"] == ["You have no dataset with this id."]
    assert Sweep.objects.count() == 0


def test_cancelling_a_sweep_cancels_its_trials_and_starts_no_more(digits, alice_api):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-2}}
    sweep = start(alice_api, digits["id"], space=space, trials=10, parallel=2, params={**FIXED, "epochs": 500})
    wait_for(lambda: Job.objects.filter(sweep_id=sweep["id"], status="running").exists(), timeout=60,
             what="a trial to run")

    response = alice_api.post(f"/api/sweeps/{sweep['id']}/cancel/")

    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    wait_for(lambda: not Job.objects.filter(sweep_id=sweep["id"], status__in=Job.ACTIVE).exists(), timeout=30,
             what="its trials to stop")
    assert sorted(Job.objects.filter(sweep_id=sweep["id"]).values_list("status", flat=True)) == ["cancelled"] * 2

    def told():  # the running trial's worker tells the study just after it saved the job's end
        states = [t.state.name for t in studies.load(Sweep.objects.get(id=sweep["id"])).trials]
        return states if "RUNNING" not in states else None

    assert wait_for(told, timeout=30, what="both trials told") == ["FAIL", "FAIL"]
    assert alice_api.post(f"/api/sweeps/{sweep['id']}/cancel/").status_code == 409


def test_a_sweep_waits_at_the_active_job_quota_and_stops_starting_trials_past_its_budget(digits, alice_api,
                                                                                         settings):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 1e-2}}
    settings.USER_MAX_ACTIVE_JOBS = 1  # here, in the web process; the worker has no quota
    sweep = start(alice_api, digits["id"], space=space, trials=3, parallel=3)
    # The same launch checks as a job a person starts: one trial fits the quota, the sweep says it waits.
    assert len(sweep["trials"]) == 1 and sweep["message"].startswith("Waiting: You already have 1 jobs"), sweep
    settings.USER_MAX_ACTIVE_JOBS = 0
    assert len(wait_for_sweep(alice_api, sweep["id"])["trials"]) == 3  # the worker moved it on as trials ended

    sweep = start(alice_api, digits["id"], space=space, trials=5, budget_minutes=60)
    Sweep.objects.filter(id=sweep["id"]).update(budget_seconds=1)  # spent before the first trial ends
    done = wait_for_sweep(alice_api, sweep["id"])
    assert len(done["trials"]) == 1 and done["message"].startswith("Its time budget is spent"), done["message"]


def test_transfer_trials_train_heads_on_cached_features_and_the_best_is_promoted_to_a_fine_tune(
        digits, alice_api, tmp_path):
    from tests.api_helpers import upload_backbone
    from tests.backbone_files import pixels_backbone
    from webapp.jobs.workers import remove_presence, write_presence

    backbone = upload_backbone(alice_api, pixels_backbone(tmp_path))
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 3e-2}}
    sweep = start(alice_api, digits["id"], architecture="transfer", space=space, queue="gpu",
                  params={"backbone": backbone["key"], "epochs": 8, "batch_size": 64})
    assert sweep["queue"] == "cpu"  # heads on cached features: seconds each, never waiting for a GPU

    done = wait_for_sweep(alice_api, sweep["id"])

    assert [t["status"] for t in done["trials"]] == ["succeeded"] * 3, done["trials"]
    jobs = [alice_api.get(f"/api/jobs/{t['job']}/").json() for t in done["trials"]]
    assert [job["result"]["features"]["reused"] for job in jobs] == [False, True, True]  # extracted once
    assert {job["queue"] for job in jobs} == {"cpu"} and {job["params"]["mode"] for job in jobs} == {"extract"}

    # Promote: the best head fine-tuned with its backbone, on the GPU queue when a GPU worker is alive
    # (its heartbeat record stands in for one: this machine has no GPU).
    write_presence({"hostname": "gpu-worker@test", "queues": ["gpu"], "concurrency": 1,
                    "devices": [{"type": "GPU", "name": "Test GPU"}]})
    try:
        response = alice_api.post(f"/api/sweeps/{sweep['id']}/promote/", {"finetune": True, "epochs": 3},
                                  format="json")
    finally:
        remove_presence("gpu-worker@test")
    assert response.status_code == 201, response.content
    promoted = alice_api.get(f"/api/jobs/{response.json()['jobs'][0]['id']}/").json()
    assert promoted["queue"] == "gpu" and promoted["params"]["mode"] == "finetune"
    assert promoted["params"]["learning_rate"] == 1e-5  # the fine-tune default, not the head's rate
    assert promoted["params"]["epochs"] == 3
    assert alice_api.post(f"/api/jobs/{promoted['id']}/cancel/").status_code == 202


def test_a_sweep_whose_dataset_is_deleted_stops_with_a_sentence(digits, alice_api):
    space = {"learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 1e-2}}
    sweep = start(alice_api, digits["id"], space=space, trials=4)

    assert alice_api.delete(f"/api/datasets/{digits['id']}/").status_code == 204
    done = wait_for_sweep(alice_api, sweep["id"])

    assert done["message"].startswith("Stopped: This trial was not started: dataset:"), done["message"]
    # The deletion cancels the running trial; a trial the sweep started in the moment before the row
    # was gone is cancelled too. The refused trial is the last: none starts after it.
    *before, refused = done["trials"]
    assert refused["status"] == "failed" and 1 <= len(before) <= 2, done["trials"]
    assert {trial["status"] for trial in before} <= {"cancelled", "failed"}, done["trials"]


def test_deleting_a_project_moves_its_sweeps_to_default(alice, alice_api):
    from webapp.experiments.models import Project

    project = Project.objects.create(owner=alice, name="Search")
    sweep = Sweep.objects.create(owner=alice, project=project, kind="train", params={}, method="random", trials=1,
                                 metric="val_accuracy", direction="max", study_name="moved")

    assert alice_api.delete(f"/api/projects/{project.id}/").status_code == 204
    sweep.refresh_from_db()
    assert sweep.project.name == "Default"
