"""One-click reference datasets (MNIST, Fashion-MNIST, CIFAR-10), converted to an upload zip.

The files come through Keras's own download code (`keras.utils.get_file`): the same origins,
file names and sha256 hashes as `keras.datasets`, so a cache copied from any Keras install
works, and what Keras fixes in downloading we get. They are read the way `keras.datasets`
reads them and written as a folder-per-class zip of PNGs, the format a user uploads, so the
reference data goes through the same ingestion as everything else.

Air-gapped sites have two ways in, both through the same code path:
- place the files in `<cache_dir>/datasets/` (Keras finds them and downloads nothing), or
- point `mirror` (or `VISIONLAB_DATASET_MIRROR`) at a base URL holding the files under their
  original names, e.g. `file:///srv/mirror/` or `http://intranet/keras-datasets/`. Keras
  downloads with urllib's `urlretrieve`, which opens `file://` URLs like any other, so the
  real download code runs. A mirror is the site's own copy, so the hash check is skipped
  (it is also what lets tests feed tiny fake files through the real path).

Keras and TensorFlow are imported inside `fetch_reference_zip` only; the web process reads the
menu from `jobs.ml.catalog.REFERENCE_DATASETS`, without this module.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import socket
import tarfile
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.ml.catalog import REFERENCE_DATASETS
from jobs.ml.datasets.synthetic import encode_png, zip_writer

MIRROR_ENV = "VISIONLAB_DATASET_MIRROR"

# urlretrieve has no timeout of its own: behind a firewall that drops packets a worker would
# wait forever. This bounds each socket operation (not the whole download) while we fetch.
DOWNLOAD_TIMEOUT_S = 60.0

# Share of the progress bar spent downloading; the rest is conversion.
DOWNLOAD_SHARE = 0.4

Progress = Callable[[float, str], None]
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test


class ReferenceUnavailable(Exception):
    """The dataset could not be fetched or read; the message says why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """One file as `keras.datasets` fetches it: origin URL, sha256 (None: Keras checks none)."""

    origin: str
    file_hash: str | None
    cache_subdir: str = "datasets"

    @property
    def fname(self) -> str:
        return self.origin.rsplit("/", 1)[1]


@dataclass(frozen=True)
class Reference:
    """A downloadable reference dataset: what the UI shows and how to fetch and read it."""

    name: str
    title: str
    description: str
    classes: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    download_mb: int
    read: Callable[[list[Path]], Arrays]

    @property
    def folders(self) -> tuple[str, ...]:
        """Class folder names in the zip: the class names made safe for a path."""
        return tuple(folder_name(c) for c in self.classes)


def folder_name(class_name: str) -> str:
    """A class name usable as one folder name: "T-shirt/top" -> "T-shirt or top"."""
    return re.sub(r"\s*[/\\]\s*", " or ", class_name).strip(" .") or "unnamed"


# --- readers: the same files, read the way keras.datasets reads them -------------------------

def _read_mnist(paths: list[Path]) -> Arrays:
    with np.load(paths[0], allow_pickle=False) as f:
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _read_idx(path: Path, offset: int) -> np.ndarray:
    """The body of a gzipped idx file after its header (8 bytes for labels, 16 for images)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _read_fashion_mnist(paths: list[Path]) -> Arrays:
    y_train = _read_idx(paths[0], 8)
    x_train = _read_idx(paths[1], 16).reshape(len(y_train), 28, 28)
    y_test = _read_idx(paths[2], 8)
    x_test = _read_idx(paths[3], 16).reshape(len(y_test), 28, 28)
    return x_train, y_train, x_test, y_test


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain values only: a tampered batch cannot run code.

    The same rule as Keras's own `RestrictedUnpickler` (a private module, so not imported).
    """

    ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _read_cifar10(paths: list[Path]) -> Arrays:
    """The python-pickle batches, read straight from the tar.gz in one pass (nothing extracted).

    Keras extracts the archive to disk first; reading members in place needs no extra space
    and no trust in the archive's paths.
    """
    wanted = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] + ["cifar-10-batches-py/test_batch"]
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tarfile.open(paths[0], "r:gz") as archive:
        for member in archive:
            if member.name in wanted and member.isfile():
                batch = _ArrayUnpickler(archive.extractfile(member), encoding="bytes").load()
                data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                batches[member.name] = (data.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], np.uint8))
    missing = [name for name in wanted if name not in batches]
    if missing:
        raise ValueError(f"the archive lacks {', '.join(missing)}")
    x_train = np.concatenate([batches[name][0] for name in wanted[:5]])
    y_train = np.concatenate([batches[name][1] for name in wanted[:5]])
    return x_train, y_train, *batches[wanted[5]]


KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def _shown(name: str) -> tuple[str, str]:
    """Title and description, from the plain catalogue the web process reads (jobs.ml.catalog)."""
    return REFERENCE_DATASETS[name].title, REFERENCE_DATASETS[name].description


REFERENCE: dict[str, Reference] = {
    "mnist": Reference(
        "mnist", *_shown("mnist"),
        tuple(str(d) for d in range(10)),
        (RemoteFile(f"{KERAS_ORIGIN}mnist.npz",
                    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),),
        11, _read_mnist,
    ),
    "fashion_mnist": Reference(
        "fashion_mnist", *_shown("fashion_mnist"),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"),
        tuple(RemoteFile(f"{KERAS_ORIGIN}{fname}", None, "datasets/fashion-mnist") for fname in (
            "train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")),
        30, _read_fashion_mnist,
    ),
    "cifar10": Reference(
        "cifar10", *_shown("cifar10"),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),),
        163, _read_cifar10,
    ),
}


# --- downloading --------------------------------------------------------------------------------

def resolve_mirror(mirror: str | None) -> str | None:
    """The mirror base URL ending in "/": the argument, else VISIONLAB_DATASET_MIRROR, else None.

    A plain directory path is accepted too and becomes its `file://` URL.
    """
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")
    mirror = mirror.strip()
    if not mirror:
        return None
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return mirror if mirror.endswith("/") else mirror + "/"


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound blocking socket calls while downloading, unless the process already set a bound."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _short_reason(error: BaseException) -> str:
    """The most telling cause in an exception chain, in a few words.

    Keras turns urllib's errors into a bare `Exception("URL fetch failure on ...")`; the
    original (HTTP status, DNS failure, refused connection) is its `__context__`.
    """
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    for cause in chain:
        if isinstance(cause, urllib.error.HTTPError):
            return f"the server answered HTTP {cause.code} {cause.reason}".strip()
    for cause in chain:
        if isinstance(cause, urllib.error.URLError):
            reason = cause.reason
            text = getattr(reason, "strerror", None) or str(reason)
            break
    else:
        cause = chain[-1]
        text = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(text)).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def _explain(ref: Reference, remote: RemoteFile, origin: str, cache_dir: Path, mirror: str | None,
             error: BaseException) -> str:
    """A sentence a person can act on: what failed, the likely reason, and the way around it."""
    folder = cache_dir / remote.cache_subdir
    names = ", ".join(f.fname for f in ref.files)
    reason = _short_reason(error)
    if isinstance(error, ValueError) and "hash" in str(error):
        return (f"Could not download {ref.title} from {origin}: the file that arrived is not the "
                f"expected one (its sha256 does not match), so it was not used. Try again later, or "
                f"place a trusted copy of {names} in {folder}/.")
    if mirror:
        return (f"Could not download {ref.title} from {origin}: the mirror {mirror} did not provide "
                f"{remote.fname} ({reason}). Put {names} there, or place them in {folder}/.")
    if "HTTP" in reason:
        return (f"Could not download {ref.title} from {origin}: {reason}. Try again later; on an "
                f"air-gapped machine, place {names} in {folder}/ or set {MIRROR_ENV}.")
    return (f"Could not download {ref.title} from {origin}: this machine cannot reach the internet "
            f"({reason}). On an air-gapped machine, place {names} in {folder}/ or set {MIRROR_ENV}.")


def _download(ref: Reference, remote: RemoteFile, cache_dir: Path, mirror: str | None) -> Path:
    """Fetch one file into `cache_dir/<subdir>` with keras.utils.get_file (a cached copy is reused)."""
    from keras.utils import get_file

    origin = mirror + remote.fname if mirror else remote.origin
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            path = Path(get_file(remote.fname, origin, cache_dir=str(cache_dir),
                                 cache_subdir=remote.cache_subdir,
                                 file_hash=None if mirror else remote.file_hash))
    except Exception as error:
        raise ReferenceUnavailable(_explain(ref, remote, origin, cache_dir, mirror, error)) from error
    if not path.resolve().is_relative_to(cache_dir.resolve()):
        # get_file quietly falls back to /tmp/.keras when cache_dir is not writable.
        raise ReferenceUnavailable(f"Keras stored {remote.fname} in {path}, outside {cache_dir}.")
    return path


def _prepare_cache(cache_dir: Path) -> Path:
    """Create the cache directory; refuse one we cannot write (Keras would use /tmp instead)."""
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"Cannot create the dataset cache {cache_dir}: {error.strerror}."
        raise ReferenceUnavailable(message) from error
    if not os.access(cache_dir, os.W_OK):
        raise ReferenceUnavailable(f"Cannot write to the dataset cache {cache_dir}: check its permissions.")
    return cache_dir


# --- conversion ---------------------------------------------------------------------------------

def _write_zip(ref: Reference, arrays: Arrays, out: Path, progress: Progress,
               limit_per_class: int | None) -> int:
    """Write every (or the first `limit_per_class` per class) image as `<name>/<class>/<split>-N.png`."""
    x_train, y_train, x_test, y_test = arrays
    total = len(y_train) + len(y_test)
    if limit_per_class is not None:
        total = min(total, limit_per_class * len(ref.classes))
    counts = [0] * len(ref.classes)
    written, report_every = 0, max(1, total // 50)
    span = 0.99 - DOWNLOAD_SHARE
    with zip_writer(out) as add:
        for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
            for index, (pixels, label) in enumerate(zip(images, np.asarray(labels).reshape(-1), strict=True)):
                label = int(label)
                if limit_per_class is not None and counts[label] >= limit_per_class:
                    continue
                counts[label] += 1
                image = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
                add(f"{ref.name}/{ref.folders[label]}/{split}-{index:05d}.png", encode_png(image))
                written += 1
                if written % report_every == 0:
                    progress(DOWNLOAD_SHARE + span * written / total,
                             f"Converting {ref.title}: {written:,} of {total:,} images")
    return written


def _check(ref: Reference, arrays: Arrays) -> None:
    x_train, y_train, x_test, y_test = arrays
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        labels = np.asarray(labels).reshape(-1)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(ref.classes)):
            raise ValueError(f"labels outside 0..{len(ref.classes) - 1}")
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"unexpected image array {images.dtype} {images.shape}")


def fetch_reference_zip(name: str, out: Path, cache_dir: Path, mirror: str | None = None,
                        progress: Progress = lambda f, m: None,
                        limit_per_class: int | None = None) -> Path:
    """Download reference dataset `name` into `cache_dir` and write it to `out` as a class-folder zip.

    Train and test images are all included (file names start with `train-` or `test-`);
    `limit_per_class` keeps the first N of each class, for quick tests. Nothing is written
    outside `cache_dir` and `out`. Raises ReferenceUnavailable with a readable reason when the
    files cannot be downloaded or read; `progress(fraction, sentence)` may raise to cancel.
    """
    if name not in REFERENCE:
        raise ValueError(f"Unknown reference dataset {name!r}; choose one of {', '.join(REFERENCE)}.")
    ref = REFERENCE[name]
    cache_dir = _prepare_cache(cache_dir)
    mirror = resolve_mirror(mirror)
    paths = []
    for index, remote in enumerate(ref.files):
        fraction = DOWNLOAD_SHARE * index / len(ref.files)
        if (cache_dir / remote.cache_subdir / remote.fname).exists():
            progress(fraction, f"Using the cached copy of {remote.fname}")
        else:
            source = "the mirror" if mirror else f"{ref.download_mb} MB in all"
            progress(fraction, f"Downloading {ref.title}: {remote.fname} ({source})")
        paths.append(_download(ref, remote, cache_dir, mirror))
    progress(DOWNLOAD_SHARE, f"Reading {ref.title}")
    try:
        arrays = ref.read(paths)
        _check(ref, arrays)
    except (OSError, ValueError, KeyError, EOFError, tarfile.TarError, pickle.UnpicklingError) as error:
        folder = cache_dir / ref.files[0].cache_subdir
        raise ReferenceUnavailable(
            f"The {ref.title} files in {folder}/ could not be read ({_short_reason(error)}). "
            f"Delete them and try again.") from error
    written = _write_zip(ref, arrays, Path(out), progress, limit_per_class)
    progress(1.0, f"{ref.title} ready: {written:,} images in {len(ref.classes)} classes")
    return Path(out)
