"""Attacks on request bodies, against the real web server (`runstack`: gunicorn) over raw sockets.

Django streams every multipart file part above FILE_UPLOAD_MAX_MEMORY_SIZE to DATA_DIR/tmp and
the views compare sizes only once the whole body is in; so a request declaring 50 GB, or one
streaming without a length, could fill the disk. Each endpoint's cap must hold before the body is
read: 413 with a sentence at once, and nothing written under DATA_DIR/tmp.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.test_stack import Stack

pytestmark = pytest.mark.worker

BOUNDARY = "visionlab-attack"
FIFTY_GB = 50 * 10**9
BLOCK = bytes(1 << 20)


ROWS = """
from django.contrib.auth import get_user_model
from django.utils import timezone
from webapp.demos.models import ShareLink
from webapp.experiments.models import TrainedModel
from webapp.jobs.models import Job

admin = get_user_model().objects.get(username="admin")
ids = {}
for task, kind in (("caption", "train_captioner"), ("classify", "train")):
    job = Job.objects.create(owner=admin, kind=kind, status="succeeded", finished_at=timezone.now())
    ids[task] = TrainedModel.objects.create(owner=admin, job=job, task=task, name=task, architecture="x",
                                            image_size=32, channels=3).id
print(ids["caption"], ids["classify"], ShareLink.objects.create(model_id=ids["caption"]).token)
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One stack for the module, with a caption model shared as a demo and a classifier, both of the
    admin (rows only: the bodies are attacked before any model would be loaded)."""
    running = Stack(tmp_path_factory.mktemp("bodies"), seed_datasets=False)
    try:
        wait_for(running.healthy, timeout=120, what="the stack to report its workers")
        caption_model, classifier, token = running.manage("shell", "-c", ROWS).split()[-3:]
        running.caption_model, running.classifier, running.demo = int(caption_model), int(classifier), token
        yield running
    finally:
        running.stop()


def tmp_listing(app: Stack) -> dict[str, int]:
    folder = app.data_dir / "tmp"
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.is_dir() else {}


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


class Attack:
    """One raw HTTP request: headers, then a body streamed from a thread while the answer is awaited."""

    def __init__(self, app: Stack, path: str, headers: dict[str, str], body_head: bytes, chunked: bool,
                 stream_bytes: int, method: str = "POST"):
        self.sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{app.port}",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.started = time.monotonic()
        self.sock.sendall("\r\n".join(lines).encode())
        self.sent = 0
        self.chunked = chunked
        self.sender = threading.Thread(target=self._send, args=(body_head, stream_bytes), daemon=True)
        self.sender.start()

    def _frame(self, data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if self.chunked else data

    def _send(self, head: bytes, total: int) -> None:
        try:
            if head:
                self.sock.sendall(self._frame(head))
            while self.sent < total:
                self.sock.sendall(self._frame(BLOCK))
                self.sent += len(BLOCK)
        except OSError:  # the server answered and closed: the point of the exercise
            pass

    def answer(self, timeout: float) -> tuple[int | None, dict | None, float]:
        """(status, JSON body, seconds from the headers to the first byte of the answer); no answer: None, None."""
        self.sock.settimeout(timeout)
        raw, elapsed = b"", timeout
        try:
            while True:
                head, found, rest = raw.partition(b"\r\n\r\n")
                if found and len(rest) >= content_length(head):
                    break
                chunk = self.sock.recv(65536)
                if not raw:
                    elapsed = time.monotonic() - self.started
                if not chunk:
                    break
                raw += chunk
        except OSError:  # a timeout, or the connection reset once the server stopped reading
            pass
        finally:
            self.sock.close()
            self.sender.join(5)
        if not raw.startswith(b"HTTP/"):
            return None, None, elapsed
        head, _, rest = raw.partition(b"\r\n\r\n")
        try:
            body = json.loads(rest)
        except ValueError:
            body = {"raw": rest[:200].decode("latin-1")}
        return int(head.split(b" ")[1]), body, elapsed


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def multipart_head(field: str = "image", filename: str = "photo.jpg") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def test_a_declared_50_gb_body_is_answered_413_at_once_and_never_read(app):
    """Every way in that takes a file, and a plain form page, with Content-Length: 50 GB."""
    targets = [
        ("the public demo, anonymous", f"/demo/{app.demo}/caption/", {}, "image", "photo"),
        ("predict", f"/api/models/{app.classifier}/predict/", {"Authorization": f"Token {app.token}"},
         "image", "photo"),
        ("caption", f"/api/models/{app.caption_model}/caption/", {"Authorization": f"Token {app.token}"},
         "image", "photo"),
        ("a backbone upload", "/api/backbones/", {"Authorization": f"Token {app.token}"}, "file", "backbone"),
        ("the login form, anonymous", "/login/", {}, "file", "request"),
    ]
    before_free = free_bytes(app.data_dir)
    for what, path, extra, field, word in targets:
        attack = Attack(app, path, {**extra, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                                    "Content-Length": str(FIFTY_GB)},
                        multipart_head(field), chunked=False, stream_bytes=64 * len(BLOCK))
        status, body, seconds = attack.answer(timeout=5)
        leftovers = tmp_listing(app)
        print(f"{what}: {status} after {seconds * 1000:.0f} ms, {attack.sent / 2**20:.0f} MiB of body sent")

        assert status == 413, (what, status, body, f"{attack.sent / 2**20:.0f} MiB sent", leftovers)
        assert seconds < 1.0, (what, seconds)
        assert "too large" in body["detail"] and word in body["detail"], (what, body)
        assert leftovers == {}, (what, leftovers)
    assert free_bytes(app.data_dir) > before_free - 32 * 2**20


def test_a_chunked_body_past_the_cap_is_cut_off_with_413_and_leaves_nothing_on_disk(app):
    """No Content-Length at all: the demo's 8 MiB cap still holds while the bytes stream in."""
    seen: list[dict[str, int]] = []
    done = threading.Event()

    def watch():  # what a person listing DATA_DIR/tmp would see while the bytes come in
        while not done.is_set():
            seen.append(tmp_listing(app))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    attack = Attack(app, f"/demo/{app.demo}/caption/",
                    {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding": "chunked"},
                    multipart_head(), chunked=True, stream_bytes=200 * len(BLOCK))
    status, body, seconds = attack.answer(timeout=20)
    print(f"chunked: {status} after {seconds:.2f} s, {attack.sent / 2**20:.0f} MiB sent")
    done.set()
    watcher.join()

    assert status == 413, (status, body, f"{attack.sent / 2**20:.0f} MiB sent")
    assert "too large" in body["detail"] and "8 MiB" in body["detail"]
    assert attack.sent < 100 * len(BLOCK)  # cut off near the cap, not read to its end
    assert tmp_listing(app) == {}
    assert all(listing == {} for listing in seen), [s for s in seen if s][:3]  # never a named file in the tmp folder


def test_a_chunked_body_within_its_cap_still_reaches_the_endpoint(app):
    """The cut-off reads a chunked body only to hand it on: a resumable upload's chunk sent that way is stored."""
    import urllib.request

    request = urllib.request.Request(app.url + "/api/uploads/", data=json.dumps(
        {"filename": "data.zip", "size": 3 * 2**20}).encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Token {app.token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        upload = json.loads(response.read())
    attack = Attack(app, f"/api/uploads/{upload['id']}/", {
        "Authorization": f"Token {app.token}", "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes 0-{2**20 - 1}/{3 * 2**20}", "Transfer-Encoding": "chunked"},
        b"", chunked=True, stream_bytes=len(BLOCK), method="PUT")
    attack.sender.join(10)
    attack.sock.sendall(b"0\r\n\r\n")  # the last chunk

    status, body, _ = attack.answer(timeout=10)

    assert status == 200, (status, body)
    assert body["offset"] == 2**20
