#!/usr/bin/env python
"""The public caption demo under load, while a training job runs (issue 11, item 15).

Starts the embedded stack (`manage.py runstack`: its own Redis, a job worker, an inference
worker, gunicorn) on a throwaway DATA_DIR, trains and shares a small caption model, then in the
same run:

  (a) baseline: a LeNet-5 training job alone, its wall time;
  (b) the same training job again while locust drives the demo with `--users` concurrent clients
      for `--seconds` (each posts a photo to /demo/<token>/caption/ as fast as it gets answers).

It prints requests per second, p50 and p95 latency, errors (429s counted apart: the per-client
limit is raised for the run, since every client here has one address), whether every caption
answer was a caption, and the training job's slowdown b/a.
Usage: .venv/bin/python bench/load.py [--users 20] [--seconds 60]
"""

from __future__ import annotations

from gevent import monkey  # locust's own runtime: patch the standard library before anything else

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.features import wait_job  # noqa: E402
from bench.ingest import upload  # noqa: E402
from bench.stack import call, running_stack  # noqa: E402


def make_user(token: str, photo: bytes, outcomes: dict):
    from locust import HttpUser, constant, task

    class DemoVisitor(HttpUser):
        wait_time = constant(0)

        @task
        def caption(self):
            with self.client.post(f"/demo/{token}/caption/", files={"image": ("photo.jpg", photo, "image/jpeg")},
                                  name="caption", catch_response=True) as response:
                if response.status_code == 429:
                    outcomes["limited"] += 1
                    response.success()  # refused on purpose: counted apart, not as an error
                elif response.status_code == 200 and response.json().get("caption"):
                    outcomes["captions"] += 1
                else:
                    outcomes["wrong"] += 1
                    response.failure(f"{response.status_code}: {response.text[:80]}")

    return DemoVisitor


def drive(url: str, token: str, photo: bytes, users: int, seconds: float) -> tuple[object, dict]:
    """Locust in this process: `users` clients for `seconds`; (its stats entry, our outcome counts)."""
    import gevent
    from locust.env import Environment

    outcomes = {"captions": 0, "limited": 0, "wrong": 0}
    environment = Environment(user_classes=[make_user(token, photo, outcomes)], host=url)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(seconds)
    runner.quit()
    return environment.stats.entries[("caption", "POST")], outcomes


def training_seconds(url: str, token: str, dataset: int) -> float:
    started = time.perf_counter()
    wait_job(url, token, call(url + "/api/jobs/", token, {
        "kind": "train", "dataset": dataset, "architecture": "lenet5", "queue": "cpu",
        "params": {"epochs": 8, "image_size": 28, "color_mode": "grayscale"}}))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    from jobs.ml.datasets.synthetic import make_digits_zip, make_shapes_captions_zip

    with running_stack(DEMO_RATE_PER_MINUTE="1000000") as (tmp, url, token):
        captions = make_shapes_captions_zip(tmp / "captions.zip", n_images=120, size=64, seed=1)
        with zipfile.ZipFile(captions) as zf:
            photo = zf.read(next(m for m in zf.namelist() if m.endswith(".jpg")))

        def ready(archive: Path, kind: str) -> int:
            dataset = call(url + "/api/datasets/", token, {"upload": upload(url, token, archive), "kind": kind,
                                                           "name": archive.stem})
            while dataset["status"] not in ("ready", "failed"):
                time.sleep(0.5)
                dataset = call(f"{url}/api/datasets/{dataset['id']}/", token)
            return dataset["id"]

        digits = ready(make_digits_zip(tmp / "digits.zip"), "classification")
        pixels = {"backbone": "mobilenet_v2", "weights": "random"}
        captioner = wait_job(url, token, call(url + "/api/jobs/", token, {
            "kind": "train_captioner", "dataset": ready(captions, "captions"), "queue": "cpu",
            "params": {**pixels, "epochs": 2, "units": 64}}))
        share = call(f"{url}/api/models/{captioner['model']}/share/", token, method="POST")
        demo = share["url"].rstrip("/").rsplit("/", 1)[-1]
        drive(url, demo, photo, 1, 3)  # load the model into the inference worker

        alone = training_seconds(url, token, digits)
        started = time.perf_counter()
        results: dict = {}

        def load():
            results["stats"], results["outcomes"] = drive(url, demo, photo, args.users, args.seconds)

        import gevent

        loader = gevent.spawn(load)
        gevent.sleep(2)  # the clients are at full speed before the job starts
        loaded = training_seconds(url, token, digits)
        loader.join()
        elapsed = time.perf_counter() - started

    stats, outcomes = results["stats"], results["outcomes"]
    print(f"{args.users} clients on the public caption demo for {args.seconds:.0f} s, with a training job running")
    print(f"requests: {stats.num_requests} in {min(elapsed, args.seconds):.0f} s = "
          f"{stats.num_requests / args.seconds:.1f} requests/s")
    print(f"latency: p50 {stats.get_response_time_percentile(0.5):.0f} ms, "
          f"p95 {stats.get_response_time_percentile(0.95):.0f} ms")
    print(f"captions answered: {outcomes['captions']}; 429 (rate limit): {outcomes['limited']}; "
          f"errors: {stats.num_failures} ({outcomes['wrong']} wrong answers, the rest connection failures)")
    print(f"(a) training job alone: {alone:.1f} s; (b) under load: {loaded:.1f} s; slowdown b/a: {loaded / alone:.2f}")


if __name__ == "__main__":
    main()
