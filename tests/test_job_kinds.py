"""A job kind is one registered entry: every kind's task is on the worker, and a new kind needs one module.

The toy kind (tests/toy_kind.py) is registered in this process and in a worker of its own, through
EXTRA_JOB_KINDS as a site would; then it is found in /api/params/ and the OpenAPI schema, refused
with bad parameters, launched through the API, run by the worker with live progress, and shown
on its job page, with no other file naming it.
"""

from __future__ import annotations

import importlib

import pytest

from jobs.celery import app
from tests.conftest import extra_worker, wait_for, wait_for_job
from webapp.jobs import registry

pytestmark = pytest.mark.worker


def test_every_registered_kind_has_its_task_registered_on_the_worker(worker):
    answers = wait_for(lambda: app.control.inspect(timeout=2).registered(), timeout=30,
                       what="the worker to list its tasks")
    names = {task for node, tasks in answers.items() if node.startswith("test-jobs@") for task in tasks}
    missing = [kind.name for kind in registry.all_kinds() if kind.task_name not in names]
    assert not missing, f"kinds whose Celery task the worker does not have: {missing}"
    assert {"system_check", "ingest_dataset", "train", "extract_features", "train_captioner",
            "export_model"} <= {kind.name for kind in registry.all_kinds()}


@pytest.fixture
def toy_kind():
    from drf_spectacular.plumbing import _load_enum_name_overrides

    module = importlib.import_module("tests.toy_kind")
    importlib.reload(module)  # registers it again if an earlier test dropped it
    toy_worker = extra_worker("test-toy", ["toy"], env={"EXTRA_JOB_KINDS": "tests.toy_kind"})
    toy_worker.start()
    try:
        def answering() -> bool:
            return any(name.startswith("test-toy@") for answer in app.control.ping(timeout=0.5) for name in answer)

        wait_for(lambda: answering() or not toy_worker.alive(), timeout=90, what="the toy kind's worker to answer")
        assert toy_worker.alive(), "the toy kind's worker exited"
        _load_enum_name_overrides.cache_clear()  # the schema's enum of kinds was read before this one existed
        yield registry.get("toy_add_up")
    finally:
        toy_worker.stop()
        registry.unregister("toy_add_up")
        _load_enum_name_overrides.cache_clear()


def test_a_kind_added_in_one_module_is_declared_launched_run_and_shown(worker, toy_kind, alice, alice_api, client):
    params = alice_api.get("/api/params/").json()
    assert [p["name"] for p in params["toy_add_up"]] == ["count"]
    assert params["toy_add_up"][0]["max"] == 1000
    schema = alice_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "toy_add_up" in schema["components"]["schemas"]["JobKindEnum"]["enum"]

    refused = alice_api.post("/api/jobs/", {"kind": "toy_add_up", "params": {"count": 0}}, format="json")
    assert refused.status_code == 400
    assert "count" in refused.json()["params"]

    created = alice_api.post("/api/jobs/", {"kind": "toy_add_up", "params": {"count": 200}}, format="json")
    assert created.status_code == 201, created.content
    seen = []
    job = wait_for_job(alice_api, created.json()["id"], seen=seen)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == {"total": 200 * 201 // 2}
    assert job["queue"] == "toy" and job["worker"]
    assert job["kind_label"] == "Toy sum"

    client.force_login(alice)
    page = client.get(f"/jobs/{job['id']}/").content.decode()
    assert f"Toy sum #{job['id']}" in page
    assert 'id="result-card"' in page  # the generic result section every kind gets unless it says otherwise
    assert 'id="train-headline"' not in page and 'id="resume-form"' not in page
