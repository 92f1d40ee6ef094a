"""An upgraded database keeps every row: Job and JobMetric moved from the experiments app to the job platform
(webapp.jobs) without touching a table. A database made by the schema before the move, with a run, its epochs
and tags, its model shared as a demo, a backbone, a sweep's trial and an export in it, reads back whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = "tests/upgrade_from_experiments_jobs.py"


def step(name: str, data_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, SCRIPT, name], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_database_from_before_the_job_platform_keeps_every_row_after_the_upgrade(tmp_path):
    (tmp_path / "logs").mkdir()
    step("old", tmp_path)
    found = json.loads(step("new", tmp_path).stdout.strip().splitlines()[-1])

    assert found["jobs"] == [["export_model", "succeeded"], ["train", "pruned"], ["train", "succeeded"]]
    assert found["run"] == {"project": "Vision", "tags": ["baseline"], "dataset": "digits",
                            "metrics": [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}],
                            "kind_label": "Training", "model": "lenet5 on digits"}
    assert found["metric_rows"] == 2
    assert found["model_job"] and found["share_link"]
    assert found["backbones"] == ["mobilenet"]
    assert found["sweep_trials"] == [[0, "pruned"]]
