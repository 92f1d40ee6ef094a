"""Built-in and reference datasets come out as upload zips, offline, through the real code paths.

The reference downloads run `keras.utils.get_file` for real, pointed at tiny local files
through a `file://` mirror: nothing is downloaded from the internet.
"""

from __future__ import annotations

import gzip
import io
import pickle
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.datasets import reference, synthetic
from jobs.ml.datasets.reference import REFERENCE, ReferenceUnavailable, fetch_reference_zip

ROOT = Path(__file__).resolve().parent.parent


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def class_counts(files: dict[str, bytes], top: str) -> Counter:
    counts = Counter()
    for name in files:
        parts = name.split("/")
        assert len(parts) == 3 and parts[0] == top, name
        counts[parts[1]] += 1
    return counts


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- generated shapes ---------------------------------------------------------------------------

def test_shapes_classification_zip_has_one_folder_per_class_of_decodable_pngs(tmp_path):
    path = synthetic.make_shapes_classification_zip(tmp_path / "shapes.zip", per_class=12, size=48)

    files = members(path)
    assert class_counts(files, "shapes") == {"circle": 12, "square": 12, "triangle": 12}
    for name, data in files.items():
        image = decode(data)
        assert name.endswith(".png") and image.format == "PNG"
        assert image.size == (48, 48) and image.mode == "RGB"
    # Not a blank canvas: the shape stands out from its background.
    pixels = np.asarray(decode(next(iter(files.values()))), dtype=np.float32)
    assert pixels.std() > 20


def test_shapes_classification_is_deterministic_for_a_seed(tmp_path):
    make = synthetic.make_shapes_classification_zip
    first = members(make(tmp_path / "a.zip", per_class=5, seed=3))
    again = members(make(tmp_path / "b.zip", per_class=5, seed=3))
    other = members(make(tmp_path / "c.zip", per_class=5, seed=4))

    assert first == again
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_custom_classes_and_no_partial_file_left_behind(tmp_path):
    path = synthetic.make_shapes_classification_zip(tmp_path / "two.zip", per_class=2,
                                                    classes=("circle", "square"))

    assert class_counts(members(path), "shapes") == {"circle": 2, "square": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.zip"]
    with pytest.raises(ValueError, match="hexagon"):
        synthetic.make_shapes_classification_zip(tmp_path / "bad.zip", per_class=1, classes=("hexagon",))
    assert not (tmp_path / "bad.zip").exists() and not (tmp_path / "bad.zip.part").exists()


# --- generated captions -------------------------------------------------------------------------

def read_captions(files: dict[str, bytes]) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = {}
    for line in files["shapes-captions/Flickr8k.token.txt"].decode("utf-8").splitlines():
        key, caption = line.split("\t")
        name, k = key.split("#")
        assert int(k) == len(captions.setdefault(name, []))
        captions[name].append(caption)
    return captions


def test_captions_zip_is_flickr8k_layout_with_five_different_captions_per_image(tmp_path):
    path = synthetic.make_shapes_captions_zip(tmp_path / "captions.zip", n_images=40, size=64, seed=1)

    files = members(path)
    images = {name.rsplit("/", 1)[1] for name in files if name.startswith("shapes-captions/Images/")}
    assert len(images) == 40 and all(name.endswith(".jpg") for name in images)
    image = decode(files[f"shapes-captions/Images/{sorted(images)[0]}"])
    assert image.format == "JPEG" and image.size == (64, 64)

    captions = read_captions(files)
    assert set(captions) == images
    for texts in captions.values():
        assert len(texts) == 5 and len(set(texts)) == 5
        assert all(text == text.lower() and "\t" not in text for text in texts)
    vocabulary = {word for texts in captions.values() for text in texts for word in text.split()}
    assert {"red", "green", "blue", "circle", "square", "triangle", "left", "right"} <= vocabulary

    splits = {split: files[f"shapes-captions/Flickr_8k.{split}Images.txt"].decode().split()
              for split in ("train", "dev", "test")}
    assert [len(names) for names in splits.values()] == [28, 6, 6]
    assert set().union(*splits.values()) == images
    assert sum(len(names) for names in splits.values()) == len(images)  # no overlap


def test_captions_describe_what_is_drawn(tmp_path):
    """A caption naming a colour on the left means that colour really is on the left."""
    files = members(synthetic.make_shapes_captions_zip(tmp_path / "c.zip", n_images=60, size=96))
    checked = 0
    for name, texts in read_captions(files).items():
        words = texts[0].split()
        colours = [w for w in words if w in synthetic.COLOURS]
        if len(colours) != 1 or not any(place in texts[0] for place in synthetic.PLACES["left"]):
            continue
        pixels = np.asarray(decode(files[f"shapes-captions/Images/{name}"]), dtype=np.float32)
        left = pixels[:, :48].reshape(-1, 3)
        target = np.array(synthetic.COLOURS[colours[0]], dtype=np.float32)
        assert (np.linalg.norm(left - target, axis=1) < 60).sum() > 20, (name, texts[0])
        checked += 1
    assert checked >= 3


def test_captions_are_deterministic_for_a_seed(tmp_path):
    def make(name: str, seed: int) -> dict[str, bytes]:
        return members(synthetic.make_shapes_captions_zip(tmp_path / name, n_images=12, seed=seed))

    assert make("a.zip", 7) == make("b.zip", 7)
    assert make("a.zip", 7) != make("c.zip", 8)


# --- scikit-learn digits ------------------------------------------------------------------------

def test_digits_zip_holds_all_1797_scans_in_ten_classes(tmp_path):
    files = members(synthetic.make_digits_zip(tmp_path / "digits.zip", size=24))

    counts = class_counts(files, "digits")
    assert set(counts) == {str(d) for d in range(10)} and sum(counts.values()) == 1797
    image = decode(files["digits/0/digit-0000.png"])
    assert image.mode == "L" and image.size == (24, 24)
    assert np.asarray(image).max() > 200  # 0..16 was scaled to 0..255


def test_builtin_registry_makes_what_it_promises(tmp_path):
    assert set(synthetic.BUILTIN_OFFLINE) == {"digits", "shapes", "shapes-captions"}
    for name, builtin in synthetic.BUILTIN_OFFLINE.items():
        assert builtin.name == name and builtin.kind in ("classification", "captions")
        assert builtin.title and builtin.description.endswith(".")
    path = synthetic.BUILTIN_OFFLINE["shapes"].make(tmp_path / "shapes.zip")
    assert sum(class_counts(members(path), "shapes").values()) == 180
    path = synthetic.BUILTIN_OFFLINE["shapes-captions"].make(tmp_path / "captions.zip")
    assert len(read_captions(members(path))) == 120


def test_importing_the_modules_does_not_load_tensorflow_or_django():
    code = ("import sys, jobs.ml.datasets.synthetic, jobs.ml.datasets.reference as r; "
            "assert r.REFERENCE['mnist'].title == 'MNIST'; "
            "heavy = [m for m in ('tensorflow', 'keras', 'django', 'celery', 'redis', 'sklearn') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- reference datasets through keras.utils.get_file and a file:// mirror -----------------------

def labels_for(count: int) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format: magic (0, 0, uint8 type 0x08, number of dimensions), big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mirror(tmp_path):
    """A local mirror directory with tiny MNIST, Fashion-MNIST and CIFAR-10 files in Keras's formats."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(folder / "mnist.npz",
             x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_train=labels_for(20),
             x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), y_test=labels_for(10))

    write_idx(folder / "train-labels-idx1-ubyte.gz", labels_for(20))
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels_for(10))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28)))

    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as archive:
        for batch, count in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 10)]:
            data = np.zeros((count, 3, 32, 32), dtype=np.uint8)
            data[:, 0] = 255  # red channel full, green and blue empty: catches a channel mix-up
            data[:, 2, :16] = 100  # blue in the top half only: catches a row/column mix-up
            labels = [(i + len(batch)) % 10 for i in range(count)]
            # The real batches come from Python 2; Python 3 at protocol <= 2 would spell bytes as
            # `_codecs.encode` calls, which the restricted unpickler (like Keras's) refuses.
            body = pickle.dumps({b"batch_label": batch.encode(), b"labels": labels,
                                 b"data": data.reshape(count, 3072)}, protocol=4)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{batch}")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return folder


@pytest.fixture(autouse=True)
def no_mirror_from_the_environment(monkeypatch):
    monkeypatch.delenv(reference.MIRROR_ENV, raising=False)


def test_mnist_through_keras_get_file_from_a_file_mirror(tmp_path, mirror):
    cache, seen = tmp_path / "cache", []
    out = fetch_reference_zip("mnist", tmp_path / "mnist.zip", cache, mirror=f"file://{mirror}/",
                              progress=lambda f, m: seen.append((f, m)))

    files = members(out)
    assert class_counts(files, "mnist") == {str(d): 3 for d in range(10)}
    assert sum(name.split("/")[2].startswith("test-") for name in files) == 10
    image = decode(files["mnist/3/train-00003.png"])
    assert image.mode == "L" and image.size == (28, 28)
    with np.load(mirror / "mnist.npz") as original:
        assert np.array_equal(np.asarray(image), original["x_train"][3])
    assert (cache / "datasets" / "mnist.npz").read_bytes() == (mirror / "mnist.npz").read_bytes()

    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0 <= fractions[0] < 0.1 and fractions[-1] == 1.0
    assert any("Downloading MNIST" in m for _, m in seen) and "30 images" in seen[-1][1]


def test_a_cached_file_is_reused_and_the_limit_keeps_n_per_class(tmp_path, mirror, monkeypatch):
    """An air-gapped site placed mnist.npz in the cache; the mirror (from the environment) is empty."""
    cache, empty = tmp_path / "cache", tmp_path / "empty"
    (cache / "datasets").mkdir(parents=True)
    (cache / "datasets" / "mnist.npz").write_bytes((mirror / "mnist.npz").read_bytes())
    empty.mkdir()
    monkeypatch.setenv(reference.MIRROR_ENV, str(empty))  # a plain path works as well as a URL
    seen = []
    out = fetch_reference_zip("mnist", tmp_path / "m.zip", cache, progress=lambda f, m: seen.append(m),
                              limit_per_class=1)

    assert class_counts(members(out), "mnist") == {str(d): 1 for d in range(10)}
    assert "Using the cached copy of mnist.npz" in seen


def test_fashion_mnist_reads_idx_files_and_makes_class_names_folder_safe(tmp_path, mirror):
    cache = tmp_path / "cache"
    out = fetch_reference_zip("fashion_mnist", tmp_path / "f.zip", cache, mirror=mirror.as_uri() + "/")

    files = members(out)
    counts = class_counts(files, "fashion_mnist")
    assert counts["T-shirt or top"] == 3 and counts["Ankle boot"] == 3 and sum(counts.values()) == 30
    assert REFERENCE["fashion_mnist"].classes[0] == "T-shirt/top"
    image = decode(files["fashion_mnist/Trouser/test-00001.png"])
    assert image.mode == "L" and image.size == (28, 28)
    for remote in REFERENCE["fashion_mnist"].files:
        assert (cache / "datasets" / "fashion-mnist" / remote.fname).is_file()


def test_cifar10_reads_the_pickled_batches_from_the_tarball(tmp_path, mirror):
    cache = tmp_path / "cache"
    out = fetch_reference_zip("cifar10", tmp_path / "c.zip", cache, mirror=f"file://{mirror}/")

    files = members(out)
    counts = class_counts(files, "cifar10")
    assert set(counts) <= set(REFERENCE["cifar10"].classes) and sum(counts.values()) == 30
    image = decode(next(data for name, data in files.items() if "/test-" in name))
    assert image.mode == "RGB" and image.size == (32, 32)
    assert image.getpixel((20, 3)) == (255, 0, 100) and image.getpixel((20, 28)) == (255, 0, 0)
    assert (cache / "datasets" / "cifar-10-python.tar.gz").is_file()


def test_a_mirror_without_the_file_names_the_mirror(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReferenceUnavailable) as caught:
        fetch_reference_zip("cifar10", tmp_path / "c.zip", tmp_path / "cache", mirror=empty.as_uri())
    message = str(caught.value)
    assert "CIFAR-10" in message and empty.as_uri() in message and "cifar-10-python.tar.gz" in message
    assert not (tmp_path / "c.zip").exists()


def test_a_corrupt_file_is_reported_not_crashed_on(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mnist.npz").write_bytes(b"this is not a numpy archive")
    with pytest.raises(ReferenceUnavailable, match="MNIST files in .* could not be read"):
        fetch_reference_zip("mnist", tmp_path / "m.zip", tmp_path / "cache", mirror=bad.as_uri())


def test_unknown_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10"):
        fetch_reference_zip("imagenet", tmp_path / "x.zip", tmp_path / "cache")


def test_origins_and_hashes_are_keras_own():
    import inspect

    from keras.src.datasets import cifar10, fashion_mnist, mnist

    sources = {name: inspect.getsource(module) for name, module in
               (("mnist", mnist), ("fashion_mnist", fashion_mnist), ("cifar10", cifar10))}
    for name, ref in REFERENCE.items():
        for remote in ref.files:
            assert remote.fname in sources[name]
            assert remote.origin.removesuffix(remote.fname) in sources[name]
            assert remote.file_hash is None or remote.file_hash in sources[name]


def internet_reachable(host: str = "storage.googleapis.com") -> bool:
    try:
        socket.create_connection((host, 443), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(internet_reachable(), reason="this machine reaches the internet: the offline failure "
                    "cannot be observed (and MNIST would really be downloaded)")
def test_offline_without_mirror_explains_what_to_do(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(ReferenceUnavailable) as caught:
        fetch_reference_zip("mnist", tmp_path / "m.zip", cache)
    message = str(caught.value)
    assert message.startswith("Could not download MNIST from " + REFERENCE["mnist"].files[0].origin)
    assert "cannot reach the internet" in message and "VISIONLAB_DATASET_MIRROR" in message
    assert str(cache / "datasets") in message and "mnist.npz" in message
    assert not (tmp_path / "m.zip").exists() and not (cache / "datasets" / "mnist.npz").exists()
    assert socket.getdefaulttimeout() is None  # the download's timeout was put back
