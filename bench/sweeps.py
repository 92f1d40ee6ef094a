#!/usr/bin/env python
"""What a hyperparameter sweep adds per trial, against launching the same training jobs by hand.

Starts the embedded stack (`manage.py runstack`: its own Redis, one job worker, gunicorn with one
web process) on a throwaway DATA_DIR, waits for the built-in datasets it ingests on a first start,
warms the worker and the web process up (TensorFlow, Optuna and its storage) with one job and a
2-trial sweep, so that one-time imports are not counted, then in the same run measures `--trials`
trainings of LeNet-5 on the built-in digits (28x28 grayscale, `--epochs` epochs, batch 64, Adam,
the learning rate drawn log-uniform from 1e-4 to 1e-1), one at a time:

  (a) baseline: plain training jobs through POST /api/jobs/, each launched as soon as the client,
      polling GET /api/jobs/{id}/ every `--poll` seconds, sees the previous one end (its rates
      drawn with a fixed seed);
  (b) the sweep: one POST /api/sweeps/ (method random, parallel 1, the same fixed parameters,
      learning_rate log_uniform), polled with GET /api/sweeps/{id}/ every `--poll` seconds until
      it is no longer running; the sweep launches each trial from the worker that ran the last.

A job's run time is its own started_at -> finished_at (claimed by the worker until its outcome
is saved). Overhead per trial = (wall time from the first POST until the client sees the last
job, or the sweep, ended - the sum of the run times) / trials: queueing, claiming, finishing,
launching and the client's polling, everything except training. The ratio b/a is what the
sweep machinery costs per trial against a user's own script that launches jobs in a loop. The
gaps between one job's finished_at and the next one's started_at (server clocks) are split at
the next job's created_at: before it, what decides and launches the next job ((a): the client
seeing the end and POSTing; (b): the finished job's summary, then the sweep's tell, ask and
launch); after it, the queue's pickup and the claim. The medians are the steady cost; a max far above its median is
one trial that waited (a slow launch, a worker busy elsewhere), worth a look in the worker's log.
Usage: .venv/bin/python bench/sweeps.py [--trials 12] [--epochs 2] [--poll 0.05] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import call, start_stack  # noqa: E402

LOW, HIGH = 1e-4, 1e-1
PARAMS = {"image_size": 28, "color_mode": "grayscale", "batch_size": 64, "optimizer": "adam"}


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def seconds(start: str, end: str) -> float:
    return (at(end) - at(start)).total_seconds()


def digits_dataset(url: str, token: str) -> int:
    """The built-in digits, once every dataset the first start queued has been read (none left ingesting)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        datasets = call(url + "/api/datasets/?page_size=100", token)["results"]
        if datasets and all(d["status"] in ("ready", "failed") for d in datasets):
            break
        time.sleep(0.5)
    else:
        raise SystemExit("The built-in datasets were not read within 600 s.")
    digits = next((d for d in datasets if d["source"] == "builtin:digits"), None)
    if digits is None:  # not seeded (a seeding that could not queue): import it as a person would
        digits = call(url + "/api/datasets/reference/", token, {"name": "digits"})
        while digits["status"] not in ("ready", "failed"):
            time.sleep(0.5)
            digits = call(f"{url}/api/datasets/{digits['id']}/", token)
    if digits["status"] != "ready":
        raise SystemExit(f"The digits dataset failed: {digits['error']}")
    return digits["id"]


class Timed:
    """API calls with their latencies, by what they did ("post", "poll")."""

    def __init__(self, url: str, token: str):
        self.url, self.token, self.seconds = url, token, {"post": [], "poll": []}

    def __call__(self, what: str, path: str, body: dict | None = None) -> dict:
        start = time.perf_counter()
        answer = call(self.url + path, self.token, body)
        self.seconds[what].append(time.perf_counter() - start)
        return answer


def train_job(api: Timed, dataset: int, epochs: int, rate: float, poll: float) -> dict:
    """POST a training job and poll until it ends; its final JSON."""
    job = api("post", "/api/jobs/", {"kind": "train", "dataset": dataset, "architecture": "lenet5",
                                     "params": {**PARAMS, "epochs": epochs, "learning_rate": rate}})
    while job["status"] in ("queued", "running"):
        time.sleep(poll)
        job = api("poll", f"/api/jobs/{job['id']}/")
    if job["status"] != "succeeded":
        raise SystemExit(f"Job {job['id']} ended {job['status']}: {job['error']}")
    return job


def run_sweep(api: Timed, dataset: int, epochs: int, trials: int, seed: int, poll: float) -> dict:
    """POST a random sweep and poll until it is no longer running; its final JSON."""
    sweep = api("post", "/api/sweeps/", {
        "dataset": dataset, "kind": "train", "architecture": "lenet5", "params": {**PARAMS, "epochs": epochs},
        "space": {"learning_rate": {"type": "log_uniform", "low": LOW, "high": HIGH}},
        "method": "random", "trials": trials, "parallel": 1, "seed": seed})
    deadline = time.monotonic() + 60 * trials * max(epochs, 1) + 300
    while sweep["status"] == "running":
        if time.monotonic() > deadline:
            raise SystemExit(f"Sweep {sweep['id']} still runs after the time allowed: {sweep['message']} "
                             f"{[(t['number'], t['status']) for t in sweep['trials']]}")
        time.sleep(poll)
        sweep = api("poll", f"/api/sweeps/{sweep['id']}/")
    return sweep


def gaps(jobs: list[dict]) -> dict[str, list[float]]:
    """Between consecutive jobs (server clocks): finished -> next created -> next started."""
    pairs = list(zip(jobs, jobs[1:], strict=False))
    return {"decide": [seconds(a["finished_at"], b["created_at"]) for a, b in pairs],
            "pickup": [seconds(b["created_at"], b["started_at"]) for _, b in pairs],
            "gap": [seconds(a["finished_at"], b["started_at"]) for a, b in pairs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.05, help="the client's poll interval, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    draw = random.Random(args.seed)
    rates = [math.exp(draw.uniform(math.log(LOW), math.log(HIGH))) for _ in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        # One web process, so that the warm-up warms the one that answers the measured requests.
        process, url, token = start_stack(Path(tmp) / "data", WEB_CONCURRENCY="1")
        try:
            dataset = digits_dataset(url, token)
            # Warm up: the worker imports TensorFlow on its first job, and Optuna on its first trial.
            warm_api = Timed(url, token)
            train_job(warm_api, dataset, 1, 1e-3, args.poll)
            warm = run_sweep(warm_api, dataset, 1, 2, args.seed + 1, args.poll)
            if warm["status"] != "finished":
                raise SystemExit(f"The warm-up sweep ended {warm['status']}: {warm['message']}")

            # (a) plain jobs, each launched when the client sees the last one end.
            plain_api, launches, plain = Timed(url, token), [], []
            started = time.perf_counter()
            for rate in rates:
                launches.append(time.perf_counter())
                plain.append(train_job(plain_api, dataset, args.epochs, rate, args.poll))
            plain_wall = time.perf_counter() - started
            launches.append(started + plain_wall)

            # (b) the sweep.
            sweep_api = Timed(url, token)
            started = time.perf_counter()
            sweep = run_sweep(sweep_api, dataset, args.epochs, args.trials, args.seed, args.poll)
            sweep_wall = time.perf_counter() - started
            trials = [call(f"{url}/api/jobs/{t['job']}/", token) for t in sweep["trials"]]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)

    ended = {t["status"] for t in trials}
    if sweep["status"] != "finished" or len(trials) != args.trials or ended != {"succeeded"}:
        raise SystemExit(f"The sweep ended {sweep['status']} ({sweep['message']}) with {len(trials)} trials: "
                         f"{[(t['id'], t['status'], t['error']) for t in trials]}")

    plain_runs = [seconds(job["started_at"], job["finished_at"]) for job in plain]
    trial_runs = [seconds(job["started_at"], job["finished_at"]) for job in trials]
    per_job = [launches[i + 1] - launches[i] - run for i, run in enumerate(plain_runs)]
    a = (plain_wall - sum(plain_runs)) / args.trials
    b = (sweep_wall - sum(trial_runs)) / args.trials
    ga, gb = gaps(plain), gaps(trials)
    first = seconds(trials[0]["created_at"], trials[0]["started_at"])
    to_first = seconds(sweep["created_at"], trials[0]["started_at"])

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f} ms"

    pa, pb = plain_api.seconds, sweep_api.seconds
    rows = [
        ("trials", str(len(plain)), str(len(trials))),
        ("run time, started_at -> finished_at: median / max", spread(plain_runs), spread(trial_runs)),
        ("sum of the run times", f"{sum(plain_runs):.1f} s", f"{sum(trial_runs):.1f} s"),
        ("wall time, first POST -> the client sees the end", f"{plain_wall:.1f} s", f"{sweep_wall:.1f} s"),
        ("OVERHEAD PER TRIAL, (wall - sum of runs) / trials", f"{a * 1000:.0f} ms", f"{b * 1000:.0f} ms"),
        ("  (a) per job, next launch - launch - run: median / max", spread(per_job), ""),
        ("finished_at -> next started_at: median / max", spread(ga["gap"]), spread(gb["gap"])),
        ("  finished_at -> next created_at (decide, launch)", spread(ga["decide"]), spread(gb["decide"])),
        ("  created_at -> started_at (queue pickup, claim)", spread(ga["pickup"]), spread(gb["pickup"])),
        ("the client's POSTs: median / max", spread(pa["post"]), spread(pb["post"])),
        ("the client's polls: how many", str(len(pa["poll"])), str(len(pb["poll"]))),
        ("  each answered in: median / max", spread(pa["poll"]), spread(pb["poll"])),
    ]
    print(f"{args.trials} trainings of LeNet-5 on the built-in digits (28x28 grayscale, {args.epochs} epochs, "
          f"batch 64), one at a time; the client polls every {args.poll * 1000:.0f} ms")
    print(f"{'':56} {'(a) plain jobs':>16} {'(b) sweep':>16}")
    for label, plain_figure, sweep_figure in rows:
        print(f"{label:56} {plain_figure:>16} {sweep_figure:>16}")
    print(f"(b) sweep created -> trial 0 started: {to_first * 1000:.0f} ms "
          f"(trial 0 created -> started: {first * 1000:.0f} ms)")
    print(f"ratio b/a of the overhead per trial: {b / a:.2f}   "
          f"(the sweep machinery per trial, beyond a user's own loop of jobs: {(b - a) * 1000:+.0f} ms)")

if __name__ == "__main__":
    main()
