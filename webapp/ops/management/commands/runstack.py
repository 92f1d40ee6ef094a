"""`manage.py runstack`: the whole embedded stack in the foreground (what `make run` ends in)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from jobs.queues import JOB_QUEUES, Queue
from webapp.env import env_int, env_str
from webapp.ops import stack
from webapp.ops.management.commands.bootstrap import INITIAL_PASSWORD_FILE


class Command(BaseCommand):
    help = ("Run Redis (unless REDIS_URL is set), a Celery job worker and the gunicorn web "
            "server as one group; Ctrl-C stops them all.")

    def handle(self, *args, **options):
        data_dir = settings.DATA_DIR
        (data_dir / "logs").mkdir(exist_ok=True)
        host = env_str("HOST", "127.0.0.1")
        port = env_int("PORT", 8000, minimum=1)
        self._check_port_free(host, port)

        services = []
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            # Its own Redis, on a free port and with a password kept in DATA_DIR: other users of
            # this machine can reach 127.0.0.1 too, and must not read or queue jobs.
            redis_port = stack.free_port()
            password = stack.redis_password(data_dir)
            redis_url = stack.redis_url(redis_port, password)
            services.append(stack.redis_service(data_dir, redis_port, password))
        os.environ["REDIS_URL"] = redis_url  # every child process inherits it
        services += [
            stack.worker_service("jobs", JOB_QUEUES, env_int("WORKER_CONCURRENCY", 1, minimum=1)),
            stack.worker_service("inference", [Queue.INFERENCE], 1),
            stack.web_service(host, port, env_int("WEB_CONCURRENCY", 2, minimum=1),
                              env_int("WEB_THREADS", 4, minimum=1)),
        ]
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        if services[0].name == "redis":  # the password stays in its file, out of the terminal
            shown_redis = (f"{stack.redis_url(redis_port)}  (private to this stack, password in "
                           f"{data_dir / stack.REDIS_PASSWORD_FILE})")
        else:
            shown_redis = _without_password(redis_url)
        banner = "\n".join([
            "",
            "=" * 64,
            f"  VisionLab is running at http://{shown}:{port}/",
            f"  {self._login_hint()}",
            f"  Redis: {shown_redis}",
            f"  Data: {data_dir}",
            "  Press Ctrl-C to stop.",
            "=" * 64,
            "",
        ])

        def on_ready():
            print(banner, flush=True)
            # Now that Redis and a worker run: queue the built-in datasets on a first start.
            subprocess.run([sys.executable, "manage.py", "seed_datasets"], cwd=settings.BASE_DIR, check=False)

        sys.exit(stack.supervise(services, on_ready=on_ready))

    def _check_port_free(self, host: str, port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                raise CommandError(
                    f"Port {port} on {host} is already in use. Stop what uses it, or start "
                    f"VisionLab on another port: make run PORT={port + 1}") from None

    def _login_hint(self) -> str:
        path = settings.DATA_DIR / INITIAL_PASSWORD_FILE
        admin = get_user_model().objects.filter(username="admin").first()
        if admin and path.exists() and admin.check_password(path.read_text().strip()):
            return f"Log in as admin with password {path.read_text().strip()}  (change it under Account)"
        return "Log in with your account (add users in /admin/)."


def _without_password(url: str) -> str:
    """`url` with any password replaced by ***, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
