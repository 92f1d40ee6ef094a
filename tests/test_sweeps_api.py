"""Sweeps through the real API, Redis, database and worker: grid, random and TPE searches whose trials
are ordinary jobs, pruning that ends trials as "pruned" with their curves, the time estimate, cancel,
extend, promote, and ownership."""

from __future__ import annotations

import optuna
import pytest

from tests.conftest import wait_for
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
