"""Start and supervise the processes of the embedded stack: Redis, workers, web server.

Used by `manage.py runstack` (what `make run` ends in) and by the test setup, so both run
the same commands. Processes run as one group: when one dies the rest are stopped, and
SIGINT/SIGTERM stop them all cleanly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it), so we never collide with a Redis
    the machine already runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_file: Path | None = None
    # Blocks until the service answers; the next service starts only after it.
    ready: Callable[[], None] | None = None
    process: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        self.process = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT if out else None,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )
        if out:
            out.close()  # the child has its own copy

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


REDIS_PASSWORD_FILE = "redis-password"


def redis_password(data_dir: Path) -> str:
    """The private Redis's password: generated on the first start, kept in DATA_DIR/redis-password
    (mode 600, like the secret key) so a restart, and everything queued, keeps working."""
    path = data_dir / REDIS_PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        password = path.read_text().strip()
        if password:
            return password
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    password = secrets.token_hex(32)  # hex: safe in a URL without quoting
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password


def redis_url(port: int, password: str | None = None, host: str = "127.0.0.1") -> str:
    return f"redis://{f':{password}@' if password else ''}{host}:{port}/0"


def throwaway_redis(data_dir: Path) -> tuple[Service, str]:
    """(a started, ready Redis with a password on a free port, its URL): the private Redis of a
    throwaway DATA_DIR, as the test suite and the benchmarks use."""
    port, password = free_port(), redis_password(data_dir)
    redis = redis_service(data_dir, port, password)
    redis.start()
    redis.ready()
    return redis, redis_url(port, password)


def redis_service(data_dir: Path, port: int, password: str | None = None) -> Service:
    """A private redis-server on 127.0.0.1:`port`, persisting to DATA_DIR/redis (AOF) so
    queued jobs survive a restart. With `password`, a client must AUTH first (anyone else on
    the machine can reach 127.0.0.1); the password goes in a mode-600 config file, not on the
    command line, where `ps` would show it to every local user."""
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit("redis-server is not installed. Install it with: sudo apt-get install redis-server")
    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "auth.conf"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"requirepass {password}\n" if password else "")
    os.chmod(config, 0o600)
    url = redis_url(port, password)
    return Service("redis", [
        exe, str(config), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
        "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
        "--logfile", str(data_dir / "logs" / "redis.log"),
    ], ready=lambda: wait_for_redis(url))


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except (redis.RedisError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"Redis at {url} did not start within {timeout:.0f} s.") from None
            time.sleep(0.1)


def worker_service(name: str, queues, concurrency: int, log_file: Path | None = None,
                   env: dict | None = None) -> Service:
    return Service(f"{name} worker", [
        sys.executable, "-m", "celery", "-A", "jobs", "worker",
        "--queues", ",".join(str(q) for q in queues),
        "--concurrency", str(concurrency),
        "--hostname", f"{name}@%h",
        "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ], env=env or {}, log_file=log_file)


def web_service(host: str, port: int, workers: int, threads: int = 4) -> Service:
    return Service("web", [
        sys.executable, "-m", "gunicorn", "webapp.wsgi:application",
        "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--timeout", "120", "--graceful-timeout", "10",
        "--access-logfile", "-", "--no-control-socket",
    ])


def supervise(services: list[Service], on_ready=None, max_restarts: int = 3,
              restart_window: float = 60.0) -> int:
    """Start `services` in order and watch them. Returns the exit code for the whole group.

    A service that dies is restarted (a worker killed by the kernel, a crashed Redis); one
    that dies more than `max_restarts` times within `restart_window` seconds is broken, and
    the whole group stops with code 1 rather than limp along without it.
    """
    stopping = False

    def request_stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    started: list[Service] = []
    restarts: dict[str, list[float]] = {}
    code = 0
    try:
        for service in services:
            service.start()
            started.append(service)
            if service.ready:
                service.ready()
        if on_ready:
            on_ready()
        while not stopping and code == 0:
            for service in started:
                if service.alive() or stopping:
                    continue
                now = time.monotonic()
                recent = [t for t in restarts.get(service.name, []) if now - t < restart_window]
                restarts[service.name] = recent + [now]
                print(f"[visionlab] {service.name} exited with code {service.process.returncode}",
                      flush=True)
                if len(recent) >= max_restarts:
                    print(f"[visionlab] {service.name} keeps failing; stopping the stack.", flush=True)
                    code = 1
                    break
                print(f"[visionlab] restarting {service.name}", flush=True)
                service.start()
            time.sleep(0.5)
    finally:
        print("[visionlab] stopping: " + ", ".join(s.name for s in reversed(started)), flush=True)
        for service in reversed(started):
            service.stop()
    return code
