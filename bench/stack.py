"""What the benchmarks share: an embedded stack on a throwaway DATA_DIR, and API calls to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, token: str, body: dict | None = None, method: str | None = None,
         data: bytes | None = None, headers: dict | None = None) -> dict:
    """One API call with a token; JSON in and out (or raw `data` with its own headers)."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=payload, method=method, headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start_stack(data_dir: Path, **settings: str) -> tuple[subprocess.Popen, str, str]:
    """`runstack` on `data_dir` with a token for `admin`; `settings` are extra environment variables."""
    from webapp.ops.stack import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), **settings)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True).stdout

    manage("migrate", "--noinput", "-v0")
    manage("bootstrap")
    token = manage("drf_create_token", "admin").split()[2]
    process = subprocess.Popen([sys.executable, "manage.py", "runstack"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                if json.loads(response.read())["workers"] >= 1:
                    return process, url, token
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("The stack did not come up within 120 s.")


@contextmanager
def running_stack(**settings: str) -> Iterator[tuple[Path, str, str]]:
    """A scratch folder with the stack running on its data/ until the block ends, then stopped and the
    folder removed: yields (the folder, the stack's URL, admin's token). `settings` as for start_stack."""
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        process, url, token = start_stack(Path(tmp) / "data", **settings)
        try:
            yield Path(tmp), url, token
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (the stack's web server and worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def peak_rss_mib(pids: list[int], command_contains: str) -> float:
    """The largest peak resident memory (VmHWM) among the processes whose command matches."""
    peak = 0
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if command_contains not in cmdline:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024
