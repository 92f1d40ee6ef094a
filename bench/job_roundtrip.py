#!/usr/bin/env python
"""How much time the platform adds to a job, as a ratio against running the same work directly.

Starts the embedded stack (`manage.py runstack`, its own Redis, one worker, gunicorn) on a
throwaway DATA_DIR, then in the same run measures:

  (a) baseline: `run_system_check` called in this process (TensorFlow already imported),
  (b) VisionLab: the same check as a job, from `POST /api/jobs/` until the API says it
      succeeded (queue, claim, progress through Redis, result in the database, polling).

It prints the medians and the ratio b/a; the difference is the platform's overhead per job.
Usage: .venv/bin/python bench/job_roundtrip.py [--runs 10] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import call, start_stack  # noqa: E402


def job_seconds(url: str, token: str, seconds: float) -> float:
    start = time.perf_counter()
    job = call(url + "/api/jobs/", token, {"kind": "system_check",
                                          "params": {"seconds_per_device": seconds}})
    while True:
        job = call(f"{url}/api/jobs/{job['id']}/", token)
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    if job["status"] != "succeeded":
        raise SystemExit(f"Job {job['id']} ended {job['status']}: {job['error']}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.5, help="benchmark seconds per device")
    args = parser.parse_args()

    from jobs.ml.progress import NullSink
    from jobs.ml.system_check import run_system_check

    run_system_check(NullSink(), seconds_per_device=0.2)  # import TensorFlow, warm up
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        process, url, token = start_stack(Path(tmp))
        try:
            job_seconds(url, token, 0.2)  # the worker imports TensorFlow once
            platform, direct = [], []
            for _ in range(args.runs):  # interleaved, so machine noise hits both alike
                started = time.perf_counter()
                run_system_check(NullSink(), seconds_per_device=args.seconds)
                direct.append(time.perf_counter() - started)
                platform.append(job_seconds(url, token, args.seconds))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)

    a, b = statistics.median(direct), statistics.median(platform)
    print(f"runs: {args.runs}, benchmark seconds per device: {args.seconds}")
    print(f"(a) direct call, median:            {a * 1000:8.1f} ms")
    print(f"(b) VisionLab job via API, median:  {b * 1000:8.1f} ms")
    print(f"ratio b/a: {b / a:.3f}  (platform overhead per job: {(b - a) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
