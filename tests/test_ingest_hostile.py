"""Broken and hostile archives through the real API, Redis and worker.

Each case states the outcome a person gets: a ready dataset with the bad files listed as
skipped, or a failed dataset with a sentence saying why. Afterwards nothing was written
outside DATA_DIR and the worker still serves the next dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests import archives
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def upload(client, path: Path, kind: str = "classification") -> dict:
    with open(path, "rb") as handle:
        response = client.post("/api/datasets/", {"name": path.stem, "kind": kind, "file": handle},
                               format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def outcome(client, dataset_id: int, timeout: float = 120) -> dict:
    def ended():
        data = client.get(f"/api/datasets/{dataset_id}/").json()
        return data if data["status"] in ("ready", "failed") else None

    return wait_for(ended, timeout=timeout, interval=0.2, what=f"dataset {dataset_id} to be read")


def reasons(data: dict) -> dict[str, str]:
    return {entry["path"]: entry["reason"] for entry in data["skipped"]}


@pytest.fixture
def ingest(worker, alice_api, tmp_path):
    def run(name: str, build, kind: str = "classification") -> dict:
        path = build(tmp_path / name)
        return outcome(alice_api, upload(alice_api, path, kind)["id"])

    return run


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


FAILURES = {
    "not-a-zip.zip": (lambda p: written(p, b"just some text, not an archive"), "not a zip"),
    "truncated.zip": (lambda p: written(p, archives.classification_zip(p).read_bytes()[:300]), "not a zip"),
    "empty.zip": (lambda p: archives.write_zip(p, {}), "empty"),
    "one-class.zip": (lambda p: archives.classification_zip(p, classes=("cats",)), "only one class"),
    "no-images.zip": (lambda p: archives.write_zip(p, {"a/readme.txt": b"hi", "b/notes.txt": b"x"}),
                      "no images"),
    "dotdot.zip": (lambda p: archives.write_zip(p, {**archives.classification_members(),
                                                    "../../escaped.txt": b"owned"}), "leaves"),
    "absolute.zip": (lambda p: archives.write_zip(p, {**archives.classification_members(),
                                                      "/tmp/visionlab-absolute.txt": b"owned"}), "absolute"),
    "symlink.zip": (lambda p: archives.with_symlink(p, archives.classification_members(),
                                                    "pets/cat/link.png", "/etc/passwd"), "link"),
    "bomb.zip": (lambda p: archives.zip_bomb(p, 2_200_000_000), "zip bomb"),
    "no-captions.zip": (lambda p: archives.write_zip(p, {"x/Images/a.jpg": archives.image_bytes("JPEG")}),
                        "No captions file"),
}


@pytest.mark.parametrize("name", FAILURES)
def test_unusable_and_hostile_archives_fail_the_dataset_with_a_reason(ingest, name):
    build, words = FAILURES[name]
    kind = "captions" if "captions" in name else "classification"

    data = ingest(name, build, kind)

    assert data["status"] == "failed"
    assert words.lower() in data["error"].lower(), data["error"]
    assert data["error"].endswith("."), "the reason is a sentence"
    assert data["num_items"] == 0
    assert data["job"]["status"] == "failed"


def test_broken_files_are_skipped_and_listed_while_the_rest_is_ready(ingest):
    members = {
        **archives.classification_members(classes=("cat", "dog"), per_class=3),
        "pets/cat/huge.png": archives.giant_png(),
        "pets/cat/truncated.jpg": archives.image_bytes("JPEG", size=64)[:400],
        "pets/dog/garbage.jpg": os.urandom(2048),
        "pets/dog/notes.txt": b"this is not an image",
        "pets/loose.png": archives.image_bytes(),
        "__MACOSX/pets/cat/._cat_0.png": b"resource fork",
        "pets/.DS_Store": b"finder",
    }

    data = ingest("mixed.zip", lambda p: archives.write_zip(p, members))

    assert data["status"] == "ready", data["error"]
    assert data["classes"] == [{"name": "cat", "count": 3}, {"name": "dog", "count": 3}]
    skipped = reasons(data)
    assert set(skipped) == {"pets/cat/huge.png", "pets/cat/truncated.jpg", "pets/dog/garbage.jpg",
                            "pets/dog/notes.txt", "pets/loose.png"}
    assert "too large" in skipped["pets/cat/huge.png"]
    assert "damaged" in skipped["pets/cat/truncated.jpg"]
    assert "not an image" in skipped["pets/dog/notes.txt"]
    assert sum(data["split_counts"].values()) == 6


def test_non_ascii_names_and_mixed_colour_modes_are_ingested(ingest):
    members = {}
    for i, (fmt, mode) in enumerate([("PNG", "L"), ("PNG", "P"), ("PNG", "RGBA"), ("JPEG", "CMYK"),
                                     ("GIF", "P"), ("BMP", "RGB"), ("WEBP", "RGB"), ("TIFF", "RGB")]):
        label = "chat_été" if i % 2 else "犬"
        members[f"animaux/{label}/photo_{i}_ünïcode.{fmt.lower()}"] = archives.image_bytes(fmt, mode=mode, seed=i)

    data = ingest("unicode.zip", lambda p: archives.write_zip(p, members))

    assert data["status"] == "ready", data["error"]
    assert {c["name"] for c in data["classes"]} == {"chat_été", "犬"}
    assert data["num_items"] == 8 and data["skipped"] == []
    assert set(data["stats"]["modes"]) >= {"L", "P", "RGBA", "CMYK"}


def test_a_caption_file_naming_missing_images_lists_them(ingest):
    members = archives.flickr_members(n=4, missing=("ghost.jpg",))

    data = ingest("captions.zip", lambda p: archives.write_zip(p, members), kind="captions")

    assert data["status"] == "ready", data["error"]
    assert data["num_items"] == 4 and data["num_captions"] == 20
    assert "does not contain" in reasons(data)["ghost.jpg"]


def test_latin1_captions_are_read(ingest):
    members = {f"set/{i}.jpg": archives.image_bytes("JPEG", seed=i) for i in range(4)}
    members["set/captions.txt"] = ("image,caption\n" + "".join(
        f'{i}.jpg,"un café très bon, à côté {i}"\n' for i in range(4))).encode("latin-1")

    data = ingest("latin1.zip", lambda p: archives.write_zip(p, members), kind="captions")

    assert data["status"] == "ready", data["error"]
    assert data["num_captions"] == 4
    assert any("café" in " ".join(s["captions"]) for s in data["stats"]["samples"])


def test_nothing_is_written_outside_data_dir_and_the_worker_keeps_serving(ingest, tmp_path):
    outside = Path(settings.DATA_DIR).parent
    before = sorted(os.listdir(outside))

    for name in ("dotdot.zip", "absolute.zip", "symlink.zip"):
        assert ingest(name, FAILURES[name][0])["status"] == "failed"
    good = ingest("good.zip", archives.classification_zip)

    assert sorted(os.listdir(outside)) == before
    assert not Path("/tmp/visionlab-absolute.txt").exists()
    assert good["status"] == "ready" and good["num_items"] == 8



def test_a_reference_dataset_without_internet_fails_with_what_to_do(worker, alice_api):
    from tests.test_reference_datasets import internet_reachable

    if internet_reachable():
        pytest.skip("this machine reaches the internet; the offline message cannot be shown here")

    created = alice_api.post("/api/datasets/reference/", {"name": "mnist"}, format="json")

    assert created.status_code == 201 and created.json()["name"] == "MNIST"
    data = outcome(alice_api, created.json()["id"])
    assert data["status"] == "failed"
    assert "cannot reach the internet" in data["error"] and "mnist.npz" in data["error"]
    assert "VISIONLAB_DATASET_MIRROR" in data["error"]


def test_the_same_archive_gets_the_same_split_on_every_upload(ingest):
    first = ingest("a.zip", lambda p: archives.classification_zip(p, per_class=10))
    second = ingest("b.zip", lambda p: archives.classification_zip(p, per_class=10))

    from webapp.datasets.models import DatasetItem

    def split_of(data):
        return dict(DatasetItem.objects.filter(dataset_id=data["id"]).values_list("path", "split"))

    assert split_of(first) == split_of(second)
    assert set(split_of(first).values()) == {"train", "val", "test"}
