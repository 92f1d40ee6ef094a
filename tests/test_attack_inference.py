"""Attacks on inference and on what a user can read, against a running stack (`runstack`).

One stack for the module: its own Redis, the job worker, the inference worker and gunicorn, as
`make run` starts them. A user without staff rights (carol) uploads a feature extractor, a
classification dataset and a caption dataset of camera JPEGs (EXIF, telling file names), trains
a transfer classifier and a caption model on her backbone, and shares the caption model's demo.
Then:

- hostile photos (a float TIFF and a PNG that decode to gigabytes, a huge JPEG) sent to predict,
  caption and the public demo are answered within a second, and the inference worker's memory
  stays small (its pool process's peak RSS, read from /proc);
- questions whose callers gave up while the inference worker was stopped (SIGSTOP) are not
  computed when it resumes, the `inference` queue in Redis stays bounded, answers expire soon;
- nothing carol or a demo visitor can read (API answers, errors, pages, the downloaded .keras,
  the demo page and its example photos) names a server path or the machine's host name, and the
  examples carry no EXIF and no original file name.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from PIL import Image

from jobs.ml.datasets.synthetic import make_shapes_captions_zip, make_shapes_classification_zip
from tests.backbone_files import pixels_backbone
from tests.collected_static import install_static
from tests.conftest import wait_for
from tests.test_stack import Stack

pytestmark = pytest.mark.worker

PASSWORD = "carol's long passphrase"
MAX_QUEUE = 3  # INFERENCE_MAX_QUEUE of this stack
TIMEOUT = 6  # INFERENCE_TIMEOUT of this stack, seconds
NAME_STEM = "carol-at-the-lake"  # the caption photos' original names
CAMERA = "CarolCam X100"  # and the camera their EXIF names

USER = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

carol = get_user_model().objects.create_user("carol", password={password!r})
print(Token.objects.create(user=carol).key)
"""


# --- HTTP -----------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def call(url: str, method: str = "GET", *, token: str | None = None, json_body=None, files: dict | None = None,
         fields: dict | None = None, opener=None, headers: dict | None = None, timeout: float = 120) -> Answer:
    headers = dict(headers or {})
    data = None
    if json_body is not None:
        data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    elif files or fields:
        uploads = {name: SimpleUploadedFile(filename, content) for name, (filename, content) in (files or {}).items()}
        data, headers["Content-Type"] = encode_multipart(BOUNDARY, {**(fields or {}), **uploads}), MULTIPART_CONTENT
    if token:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    started = time.monotonic()
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=timeout) as response:
            body = response.read()
            return Answer(response.status, dict(response.headers), body, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return Answer(exc.code, dict(exc.headers), body, time.monotonic() - started)


class Lab:
    """The running stack and what carol made on it."""

    def __init__(self, stack: Stack, token: str):
        self.stack, self.url, self.token = stack, stack.url, token
        self.ids: dict = {}

    def api(self, path: str, method: str = "GET", **kwargs) -> Answer:
        return call(self.url + path, method, token=kwargs.pop("token", self.token), **kwargs)

    def ok(self, path: str, method: str = "GET", status: int = 200, **kwargs):
        answer = self.api(path, method, **kwargs)
        assert answer.status == status, (path, answer.status, answer.text[:500])
        return answer.json()

    def wait_job(self, job_id: int, timeout: float = 300) -> dict:
        def ended():
            job = self.ok(f"/api/jobs/{job_id}/")
            return job if job["status"] not in ("queued", "running") else None

        job = wait_for(ended, timeout=timeout, interval=0.5, what=f"job {job_id}")
        assert job["status"] == "succeeded", (job["error"], self.stack.output()[-3000:])
        return job

    def upload_dataset(self, archive: Path, kind: str, name: str) -> dict:
        dataset = self.ok("/api/datasets/", "POST", status=201, fields={"name": name, "kind": kind},
                          files={"file": (archive.name, archive.read_bytes())})

        def ready():
            data = self.ok(f"/api/datasets/{dataset['id']}/")
            assert data["status"] != "failed", data["error"]
            return data if data["status"] == "ready" else None

        return wait_for(ready, timeout=180, interval=0.5, what=f"the {name} dataset")

    def worker_pid(self, prefix: str) -> int:
        workers = self.ok("/api/workers/", token=self.stack.token)["workers"]  # the admin sees hosts and pids
        return next(w["pid"] for w in workers if w["hostname"].startswith(prefix + "@"))

    def redis(self):
        import redis

        url = self.stack.output().split("Redis: ")[1].split()[0]
        password_file = self.stack.data_dir / "redis-password"
        password = password_file.read_text().strip() if password_file.exists() else None
        return redis.Redis.from_url(url, password=password, socket_timeout=5)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


# --- files ----------------------------------------------------------------------------------------

def _deflated_zeros(total: int) -> bytes:
    """zlib data that inflates to `total` zero bytes, made a megabyte at a time."""
    compressor, block, out = __import__("zlib").compressobj(9), bytes(1 << 20), []
    while total > 0:
        out.append(compressor.compress(block[:min(total, len(block))]))
        total -= len(block)
    return b"".join(out) + compressor.flush()


def float_tiff(side: int = 7745) -> bytes:
    """A 32-bit float TIFF of side x side pixels (60 megapixels, under ingestion's limit) in ~230 KB."""
    import struct

    data = _deflated_zeros(side * side * 4)
    tags = [(256, 4, side), (257, 4, side), (258, 3, 32), (259, 3, 8), (262, 3, 1), (273, 4, 0), (277, 3, 1),
            (278, 4, side), (279, 4, len(data)), (339, 3, 3)]  # ..., deflate, one strip, IEEE float samples
    offset = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        value = offset if tag == 273 else value
        ifd += struct.pack("<HHIHH", tag, kind, 1, value, 0) if kind == 3 else struct.pack("<HHII", tag, kind, 1, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + data


def png_bomb(side: int = 7745) -> bytes:
    """An RGBA PNG of side x side pixels (60 megapixels, 240 MB decoded) in ~230 KB."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    rows = _deflated_zeros((1 + side * 4) * side)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def big_jpeg(side: int = 7745) -> bytes:
    """A flat grey JPEG of side x side pixels: 700 KB, 60 megapixels decoded in full."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 128).save(buffer, "JPEG", quality=50)
    return buffer.getvalue()


def camera_captions_zip(folder: Path, leak: str) -> Path:
    """The generated shape captions as camera photos: JPEGs with EXIF (a camera, a description naming
    `leak`) under telling names, in the Flickr8k layout."""
    plain = make_shapes_captions_zip(folder / "plain.zip", n_images=40, size=64, seed=5)
    path = folder / "holiday.zip"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            name = info.filename.replace("shapes_", f"{NAME_STEM}-")
            if name.endswith(".jpg"):
                exif = Image.Exif()
                exif[0x010F], exif[0x0110], exif[0x010E] = "CarolCam", CAMERA, leak  # Make, Model, ImageDescription
                buffer = io.BytesIO()
                Image.open(io.BytesIO(data)).save(buffer, "JPEG", quality=92, exif=exif.tobytes())
                data = buffer.getvalue()
            elif name.endswith(".txt"):
                data = data.replace(b"shapes_", f"{NAME_STEM}-".encode())
            target.writestr(name, data)
    return path


def first_photo(archive: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(next(n for n in sorted(zf.namelist()) if n.endswith(suffix)))


# --- the stack ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab")
    # Pages need the collected static files (the manifest names them), as `make run` has them.
    install_static(tmp_path_factory, folder / "data")
    # One web process with a thread for every asker: gunicorn queues a process's requests behind its busy
    # threads, so with two processes of four a refusal could wait seconds for a thread (seen once: 4.5 s).
    stack = Stack(folder, seed_datasets=False, env={
        "INFERENCE_TIMEOUT": str(TIMEOUT), "INFERENCE_MAX_QUEUE": str(MAX_QUEUE), "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "16"})
    try:
        wait_for(stack.healthy, timeout=180, what="the stack to report its workers")
        lab = Lab(stack, stack.manage("shell", "-c", USER.format(password=PASSWORD)).split()[-1])
        lab.folder = folder
        backbone_file = pixels_backbone(folder)
        lab.ids["backbone"] = lab.ok("/api/backbones/", "POST", status=201, fields={"name": "my pixels"},
                                     files={"file": (backbone_file.name, backbone_file.read_bytes())}, timeout=300)
        shapes = make_shapes_classification_zip(folder / "shapes.zip", per_class=16, size=32, seed=2)
        holiday = camera_captions_zip(folder, leak=f"shot on {socket.gethostname()} into {stack.data_dir}")
        lab.archives = {"shapes": shapes, "holiday": holiday}
        classes = lab.upload_dataset(shapes, "classification", "shapes")
        captions = lab.upload_dataset(holiday, "captions", "holiday")
        key = lab.ids["backbone"]["key"]
        transfer = lab.ok("/api/jobs/", "POST", status=201, json_body={
            "kind": "train", "dataset": classes["id"], "architecture": "transfer", "queue": "cpu",
            "params": {"backbone": key, "epochs": 2, "batch_size": 32}})
        captioner = lab.ok("/api/jobs/", "POST", status=201, json_body={
            "kind": "train_captioner", "dataset": captions["id"], "queue": "cpu",
            "params": {"backbone": key, "epochs": 2, "batch_size": 64, "units": 16}})
        lab.ids.update(datasets=[classes["id"], captions["id"]],
                       transfer=lab.wait_job(transfer["id"]), captioner=lab.wait_job(captioner["id"]))
        url = lab.ok(f"/api/models/{lab.ids['captioner']['model']}/share/", "POST", status=201)["url"]
        lab.demo = url.rstrip("/").rsplit("/", 1)[-1]
        lab.photos = {"png": first_photo(shapes, ".png"), "jpg": first_photo(holiday, ".jpg")}
        # The inference worker loads TensorFlow and each model on first use: wait until all three answer.
        for path, photo in lab.endpoints():
            wait_for(lambda path=path, photo=photo: call(lab.url + path, "POST", token=lab.token, files={
                "image": ("photo.jpg", photo)}).status == 200, timeout=180, interval=1,
                what=f"{path} to answer")
        yield lab
    finally:
        stack.stop()


def _endpoints(self) -> list[tuple[str, bytes]]:
    """(path, a photo it answers for) of predict, caption and the public demo."""
    return [(f"/api/models/{self.ids['transfer']['model']}/predict/", self.photos["png"]),
            (f"/api/models/{self.ids['captioner']['model']}/caption/", self.photos["jpg"]),
            (f"/demo/{self.demo}/caption/", self.photos["jpg"])]


Lab.endpoints = _endpoints


# --- 1. bounded decoding --------------------------------------------------------------------------

def test_hostile_photos_are_refused_within_a_second_and_the_inference_worker_stays_small(lab):
    pool = children(lab.worker_pid("inference"))
    assert len(pool) == 1, pool
    Path(f"/proc/{pool[0]}/clear_refs").write_text("5")  # restart the peak (VmHWM) from the current RSS
    before = memory(pool[0])
    hostile = {"float TIFF": ("bomb.tiff", float_tiff()), "PNG": ("bomb.png", png_bomb())}
    large_jpeg = ("large.jpg", big_jpeg())

    answers = {}
    for path, _ in lab.endpoints():
        for what, photo in hostile.items():
            answers[what, path] = call(lab.url + path, "POST", token=lab.token, files={"image": photo})
        answers["JPEG", path] = call(lab.url + path, "POST", token=lab.token, files={"image": large_jpeg})
    after = memory(pool[0])

    report = {f"{what} {path}": (a.status, round(a.seconds, 2), a.text[:120]) for (what, path), a in answers.items()}
    print("answers", json.dumps(report, indent=1))
    print(f"inference pool RSS {before['VmRSS'] / 2**20:.0f} MiB before, peak {after['VmHWM'] / 2**20:.0f} MiB after")
    for (what, _), answer in answers.items():
        assert answer.seconds < 1.0, report
        if what == "JPEG":  # a valid photo, decoded at an eighth of its size
            assert answer.status == 200, report
        else:
            assert answer.status == 400, report
            assert answer.json()["detail"].startswith("This image is too large (7745 x 7745 pixels"), report
    assert after["VmHWM"] - before["VmRSS"] < 64 * 2**20, (before, after)
    assert children(lab.worker_pid("inference")) == pool  # the same pool process: nothing was killed


# --- 4. questions expire --------------------------------------------------------------------------

def test_questions_nobody_waits_for_are_not_computed_and_the_queue_stays_bounded(lab):
    redis = lab.redis()
    worker = lab.worker_pid("inference")
    path, photo = lab.endpoints()[0]
    log_start = len(lab.stack.output())
    lengths: list[int] = []
    answers: list[Answer] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            lengths.append(redis.llen("inference"))
            time.sleep(0.05)

    def ask():
        answers.append(call(lab.url + path, "POST", token=lab.token, files={"image": ("p.png", photo)}))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    os.kill(worker, signal.SIGSTOP)  # the inference worker stops taking questions: an outage, or a stuck model
    try:
        askers = [threading.Thread(target=ask) for _ in range(MAX_QUEUE + 3)]
        for asker in askers:
            asker.start()
            time.sleep(0.3)
        for asker in askers:
            asker.join(TIMEOUT + 30)
    finally:
        os.kill(worker, signal.SIGCONT)
    gave_up = [a for a in answers if "answered in time" in a.text]
    refused = [a for a in answers if "too many photos waiting" in a.text]
    assert len(answers) == MAX_QUEUE + 3 and all(a.status == 503 for a in answers), [a.text for a in answers]
    assert len(gave_up) + len(refused) == len(answers) and refused, [a.text for a in answers]
    assert all(a.seconds < 1.0 for a in refused), [a.seconds for a in refused]
    assert max(lengths) <= MAX_QUEUE, lengths

    # Resumed, the worker empties the queue without computing a single one of them.
    wait_for(lambda: redis.llen("inference") == 0 and lab.stack.output()[log_start:].count(
        "Discarding revoked task: inference.predict") >= len(gave_up), timeout=30, what="the queue to drain")
    time.sleep(1.0)
    log = lab.stack.output()[log_start:]
    done.set()
    watcher.join()
    assert log.count("Discarding revoked task: inference.predict") == len(gave_up), log[-3000:]
    assert not re.search(r"Task inference\.predict\[[^\]]+\] succeeded", log), log[-3000:]
    # What Redis keeps of answers (and of expired questions) goes away within a minute.
    # (-2: the key expired between the scan and the question; 0: it expires within the second.)
    ttls = [ttl for ttl in (redis.ttl(key) for key in redis.scan_iter("celery-task-meta-*")) if ttl != -2]
    assert ttls and all(0 <= ttl <= 60 for ttl in ttls), [ttl for ttl in ttls if not 0 <= ttl <= 60]
    assert lab.api(path, "POST", files={"image": ("p.png", photo)}).status == 200  # and it serves again


# --- 5. nothing leaks -----------------------------------------------------------------------------

def test_nothing_a_user_or_a_demo_visitor_reads_names_a_server_path_or_the_host(lab):
    host = socket.gethostname()
    paths = {str(lab.stack.data_dir), str(lab.stack.data_dir.resolve())}
    host_word = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w-])")
    transfer, captioner = lab.ids["transfer"], lab.ids["captioner"]
    models = [transfer["model"], captioner["model"]]
    read: dict[str, str] = {}  # where -> what a user reads there
    problems: list[str] = []  # every leak found, so one run lists them all

    # Every API answer about carol's jobs, models, backbone and datasets, and a few error answers.
    api = ["/api/jobs/", *(f"/api/jobs/{job['id']}/" for job in (transfer, captioner)),
           "/api/models/", *(f"/api/models/{m}/" for m in models),
           "/api/backbones/", f"/api/backbones/{lab.ids['backbone']['id']}/",
           "/api/datasets/", *(f"/api/datasets/{d}/" for d in lab.ids["datasets"]),
           *(f"/api/datasets/{d}/items/" for d in lab.ids["datasets"]), "/api/models/999/", "/api/jobs/999/",
           "/api/workers/"]
    for path in api:
        answer = lab.api(path)
        assert answer.status in (200, 404), (path, answer.status)
        read[path] = answer.text
    for path, _ in lab.endpoints():
        read[f"POST {path} garbage"] = lab.api(path, "POST", files={"image": ("x.jpg", b"not a photo")}).text
    live = json.loads(read["/api/workers/"])["workers"]
    if not live or any(w["pid"] is not None or not w["hostname"].startswith("Worker ") for w in live):
        problems.append(f"the workers are shown to carol by host and process: {live}")
    workers = {job["worker"] for job in json.loads(read["/api/jobs/"])["results"]}
    if workers != {"jobs"}:
        problems.append(f"the jobs name their workers {workers}, not just the kind of worker")

    # The downloads: every text member of each .keras, with the metadata VisionLab embeds.
    for model in models:
        answer = lab.api(f"/api/models/{model}/download/")
        assert answer.status == 200
        read[f"download {model} headers"] = json.dumps(answer.headers)
        with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
            embedded = json.loads(archive.read("visionlab.json"))
            assert embedded["backbone"]["name"] == lab.ids["backbone"]["key"]  # it still says which backbone
            if "source" in embedded["backbone"]:
                problems.append(f"download {model}: visionlab.json's backbone has a source: {embedded['backbone']}")
            for name in archive.namelist():
                if name.endswith((".json", ".txt")):
                    read[f"download {model} {name}"] = archive.read(name).decode("utf-8", errors="replace")

    # The pages carol sees, logged in with a session like a browser.
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = call(lab.url + "/login/", opener=browser)
    assert form.status == 200, form.text[:500]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    login = urllib.parse.urlencode({"username": "carol", "password": PASSWORD, "csrfmiddlewaretoken": csrf})
    browser.open(urllib.request.Request(lab.url + "/login/", data=login.encode(), method="POST"), timeout=30)
    for page in ("/jobs/", *(f"/jobs/{job['id']}/" for job in (transfer, captioner)),
                 *(f"/models/{m}/" for m in models), "/features/", "/datasets/", "/workers/"):
        answer = call(lab.url + page, opener=browser)
        assert answer.status == 200 and "carol" in answer.text, page
        read[page] = answer.text

    # The public demo, as a visitor with no account: the page and every example photo.
    demo = call(f"{lab.url}/demo/{lab.demo}/")
    assert demo.status == 200
    read["demo page"] = demo.text
    examples = sorted(set(re.findall(rf"/demo/{lab.demo}/examples/\d+", demo.text)))
    assert examples
    for example in examples:
        answer = call(lab.url + example)
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("image/"), example
        read[f"{example} headers"] = json.dumps(answer.headers)
        image = Image.open(io.BytesIO(answer.body))
        if image.getexif() or image.info.get("exif") or CAMERA.encode() in answer.body:
            problems.append(f"{example} carries EXIF: {dict(image.getexif())}")
        if "Content-Disposition" in answer.headers:
            problems.append(f"{example} is sent as a file: {answer.headers['Content-Disposition']}")

    for where, text in read.items():
        for path in paths:
            if path in text:
                at = text.index(path)
                problems.append(f"{where} names DATA_DIR: ...{text[max(0, at - 100):at + 100]}...")
        if found := host_word.search(text):
            problems.append(f"{where} names the host: ...{text[max(0, found.start() - 100):found.end() + 60]}...")
        if where.startswith(("demo", "/demo/")) and NAME_STEM in text:  # carol's own pages may name her files
            problems.append(f"{where} names an original file: {text[text.index(NAME_STEM) - 60:][:160]}")
    assert not problems, "\n".join(problems)
