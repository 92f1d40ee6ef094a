"""`manage.py runstack`, the end of `make run`, as a user runs it: real processes, real ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.conftest import wait_for
from webapp.ops import stack

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.worker


def http(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):  # no answer yet: a slow start on a busy machine
        return 0, {}


class Stack:
    """A `runstack` process group on a fresh DATA_DIR, as `make run` starts it."""

    def __init__(self, tmp_path: Path, redis_url: str | None = None, env: dict | None = None,
                 seed_datasets: bool = True, collectstatic: bool = False):
        self.port = stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
        self.data_dir = tmp_path / "data"
        self.env.update(DATA_DIR=str(self.data_dir), PORT=str(self.port), HOST="127.0.0.1", **(env or {}))
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.manage("migrate", "--noinput", "-v0")
        if collectstatic:  # as `make run` does; without it a page (the 404 page too) cannot name its files
            self.manage("collectstatic", "--noinput", "-v0")
        self.manage("bootstrap")
        if not seed_datasets:  # the marker seed_datasets leaves after queueing them once
            (self.data_dir / "builtin-datasets-seeded").write_text("")
        self.token = self.manage("drf_create_token", "admin").split()[2]
        self.log = open(tmp_path / "runstack.log", "w+")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "manage.py", "runstack"], cwd=ROOT,
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def manage(self, *args: str) -> str:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              check=True, capture_output=True, text=True).stdout

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def healthy(self):
        status, body = http(self.url + "/healthz")
        return body if status == 200 and body["workers"] >= 2 else None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture
def make_stack(tmp_path):
    stacks = []

    def make(**kwargs):
        stacks.append(Stack(tmp_path, **kwargs))
        return stacks[-1]

    yield make
    for running in stacks:
        running.stop()


def test_runstack_serves_the_app_with_its_own_redis_and_a_worker_and_stops_cleanly(make_stack):
    app = make_stack()

    health = wait_for(app.healthy, timeout=90, what="the stack to report a worker")

    # The job worker and the inference worker.
    assert health == {"status": "ok", "db": "ok", "redis": "ok", "workers": 2}
    out = app.output()
    assert f"VisionLab is running at http://localhost:{app.port}/" in out
    assert "Log in as admin with password" in out and "private to this stack" in out

    # Its Redis has a password, generated on the first start and kept in DATA_DIR (mode 600):
    # another user of this machine who finds the port can neither read nor queue anything.
    redis_port = int(out.split("Redis: redis://127.0.0.1:")[1].split("/")[0])
    password_file = Path(app.env["DATA_DIR"]) / "redis-password"
    password = password_file.read_text().strip()
    assert len(password) >= 32 and password_file.stat().st_mode & 0o777 == 0o600
    assert password not in out
    with socket.create_connection(("127.0.0.1", redis_port), timeout=2) as conn:
        conn.sendall(b"PING\r\nKEYS *\r\n")
        assert conn.recv(200).startswith(b"-NOAUTH Authentication required")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_port, password="guess", socket_timeout=2).ping()
    assert redis.Redis(port=redis_port, password=password, socket_timeout=2).ping()
    body = {"kind": "system_check", "params": {"seconds_per_device": 0.3}}
    status, job = http(app.url + "/api/jobs/", body, token=app.token)
    assert status == 201

    def finished():
        body = http(f"{app.url}/api/jobs/{job['id']}/", token=app.token)[1]
        return body if body.get("status") in ("succeeded", "failed") else None

    assert wait_for(finished, timeout=90, what="the job")["status"] == "succeeded"

    # A first start queues the offline built-in datasets, so a newcomer has data at once.
    def builtins_ready():
        datasets = http(app.url + "/api/datasets/", token=app.token)[1]["results"]
        return datasets if len(datasets) == 3 and all(d["status"] == "ready" for d in datasets) else None

    datasets = wait_for(builtins_ready, timeout=120, what="the built-in datasets")
    assert {d["source"] for d in datasets} == {"builtin:digits", "builtin:shapes", "builtin:shapes-captions"}
    assert "Reading the built-in datasets in the background" in app.output()

    # A worker killed by the kernel is restarted by the supervisor.
    workers = http(app.url + "/api/workers/", token=app.token)[1]["workers"]
    worker_pid = next(w["pid"] for w in workers if w["hostname"].startswith("jobs@"))
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: "restarting jobs worker" in app.output(), timeout=10, what="the supervisor to notice")

    def restarted():
        workers = http(app.url + "/api/workers/", token=app.token)[1]["workers"]
        return any(w["hostname"].startswith("jobs@") and w["pid"] != worker_pid for w in workers)

    wait_for(restarted, timeout=90, what="the restarted worker to report in")

    assert app.stop() == 0
    assert http(app.url + "/healthz")[0] == 0  # the web server is gone
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()


def test_when_redis_dies_healthz_is_503_and_launching_says_why_then_it_recovers(make_stack, tmp_path):
    redis_port = stack.free_port()
    (tmp_path / "redis" / "logs").mkdir(parents=True)
    redis = stack.redis_service(tmp_path / "redis", redis_port)
    redis.start()
    redis.ready()
    try:
        # No built-in datasets queued: their ingestions would only load the machine, and hold up the
        # stack's stop at the end (a worker finishes its task first).
        app = make_stack(redis_url=f"redis://127.0.0.1:{redis_port}/0", seed_datasets=False)
        wait_for(app.healthy, timeout=90, what="the stack to report a worker")

        redis.stop()
        status, body = http(app.url + "/healthz")
        launch_status, launch = http(app.url + "/api/jobs/", {"kind": "system_check"}, token=app.token)
        jobs = http(app.url + "/api/jobs/", token=app.token)[1]["results"]

        assert status == 503
        assert body["redis"].startswith("error: ") and body["db"] == "ok"
        assert launch_status == 503 and "Redis is down or unreachable" in launch["detail"]
        # Nothing was created, nothing ran in the web process (no job exists at all).
        assert jobs == []

        redis.start()
        redis.ready()
        assert wait_for(app.healthy, timeout=60, what="the stack to recover")["redis"] == "ok"
        assert app.process.poll() is None
    finally:
        redis.stop()
