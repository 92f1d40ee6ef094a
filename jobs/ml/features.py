"""Feature extraction and the feature cache (workflow 3 in PRODUCT.md).

Running a backbone over a dataset is the slow part of transfer learning, logistic regression
and captioning; training on the result takes seconds. So features are computed once per
(dataset content, backbone, layer, weights, input side) and kept in a `FeatureStore`: one
folder per key holding `features.npy` (one row per image) and `index.json` (the row keys and
how the set was made). Every later job asking for the same features gets the stored ones.

Writing is safe against crashes, cancels and concurrency: a set is built in a temporary folder
and renamed into place only when complete, and a per-key file lock (fcntl) makes a second job
asking for the same features wait for the first and reuse its result instead of computing it
again.

Rows are stored as float16 when that is lossless enough: float16 keeps 11 significant bits, so
each value is within 0.05 % of its float32 value (relative error at most 2**-11 = 4.9e-4), far
below the run-to-run noise of the networks themselves (bfloat16 compute alone differs by about
1 %), and it halves the disk and memory a 4096-d or 8192-d set takes. A batch whose float16 copy
is off by more than 1e-3 overall (values beyond float16's range of +-65504, or so small that
they underflow, as a randomly initialised MobileNetV2's do) switches the whole set to float32.

The input pipeline is tf.data: parallel decode and resize (the training pipeline's
`load_image`), batches in the order of the item list (rows must line up with keys), prefetched
while the backbone computes, so both the decoder threads and the model's threads stay busy.
The output array is preallocated on disk and filled batch by batch: memory does not grow with
the dataset.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from jobs.ml import formats
from jobs.ml.backbones import PRECISIONS, Backbone, load_extractor
from jobs.ml.progress import ProgressSink, format_duration

FEATURES_FILE, INDEX_FILE, LOCK_SUFFIX = "features.npy", "index.json", ".lock"
FORMAT_VERSION = 1
FLOAT16_TOLERANCE = 1e-3  # relative error of a batch's float16 copy above which the set is kept in float32
LOCK_POLL_SECONDS = 0.5


class MissingFeatures(KeyError):
    """Some requested keys have no stored row; str() is a sentence."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Some images have no stored features."


@dataclass
class FeatureSet:
    keys: list[str]  # item keys in row order
    features: np.ndarray  # (N, feature_dim) float16 or float32, usually a read-only memory map
    meta: dict  # backbone cache_key, feature_shape, dtype, count, images_per_second, seconds, precision, created
    directory: Path
    _positions: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.meta["feature_shape"])

    def positions(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = {key: row for row, key in enumerate(self.keys)}
        return self._positions

    def has(self, keys: Sequence[str]) -> bool:
        positions = self.positions()
        return all(key in positions for key in keys)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """float32 (len(keys), feature_dim) features in the order of `keys`; MissingFeatures (a KeyError)
        when one has none."""
        positions = self.positions()
        missing = [key for key in keys if key not in positions]
        if missing:
            raise MissingFeatures(f"{len(missing)} of the images have no stored features (the first is "
                                  f"{missing[0]}); extract the features of this dataset again.")
        index = np.fromiter((positions[key] for key in keys), dtype=np.int64, count=len(keys))
        return np.asarray(self.features[index], dtype=np.float32)


# --- precision -------------------------------------------------------------------------------------

def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def pick_precision(requested: str = "auto") -> str:
    """The compute type for extraction: the requested one, or for "auto" the fastest that is accurate
    enough here: "float16" on GPUs with tensor cores (compute capability 7.0+), "float32" on older
    GPUs, "bfloat16" on CPUs with native bfloat16 (avx512_bf16 or amx_bf16), else "float32"."""
    if requested not in ("auto", *PRECISIONS):
        raise ValueError(f"The precision is auto, {', '.join(PRECISIONS)}; not {requested!r}.")
    if requested != "auto":
        return requested
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
        return "float16" if all(tuple(d.get("compute_capability", (0, 0))) >= (7, 0) for d in details) \
            else "float32"
    return "bfloat16" if _cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


# --- extraction ------------------------------------------------------------------------------------

def _unreadable(paths: Sequence[str], size: int, channels: int) -> str | None:
    """The first of `paths` TensorFlow cannot decode: names the culprit after a batch failed."""
    import tensorflow as tf

    from jobs.ml.pipeline import load_image

    for path in paths:
        try:
            load_image(tf.constant(path), size, channels)
        except (tf.errors.OpError, ValueError):
            return path
    return None


def _check_rows(rows: np.ndarray, count: int, backbone: Backbone) -> None:
    """Refuse a batch of features no head could learn from: one row of the backbone's width per image, numbers only."""
    dim = backbone.feature_dim
    if rows.shape != (count, dim):
        raise ValueError(f"The backbone gave features of shape {rows.shape[1:]} instead of ({dim},).")
    if not np.isfinite(rows).all():
        raise ValueError(f"{backbone.title} produced values that are not numbers (NaN or infinity); it cannot "
                         "be used as a feature extractor.")


def _extract_into(paths: Sequence[str], backbone: Backbone, sink: ProgressSink,
                  write: Callable[[int, np.ndarray], None], *, batch_size: int, precision: str,
                  start: float, end: float) -> dict:
    """Run the backbone over `paths` in order, handing each batch's rows to `write(first_row, rows)`."""
    import tensorflow as tf

    from jobs.ml.pipeline import AUTOTUNE, load_image

    if batch_size < 1:
        raise ValueError("The batch size must be at least 1.")
    total = len(paths)
    label = f"{backbone.title} ({backbone.layer})"
    precision = pick_precision(precision) if formats.by_kind(backbone.kind).mixed_precision else "float32"
    sink.progress(start, f"Loading {label}")
    extractor = load_extractor(backbone, precision)
    precision = getattr(extractor, "precision", precision)
    size, channels = backbone.image_size, backbone.channels

    ds = tf.data.Dataset.from_tensor_slices(np.array([str(p) for p in paths]))
    ds = ds.map(lambda path: load_image(path, size, channels), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size).prefetch(AUTOTUNE)

    sink.progress(start, f"Extracting features with {label} · 0/{total} images")
    began = time.perf_counter()
    first_batch_at: float | None = None
    first_batch = done = 0
    exact = None  # a float32 extractor, made only if a reduced-precision batch overflows
    iterator = iter(ds)
    while done < total:
        try:
            pixels = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as exc:
            culprit = _unreadable(paths[done:done + batch_size], size, channels)
            what = f"The image {culprit}" if culprit else "An image"
            raise ValueError(f"{what} could not be read while extracting features "
                             f"({exc.message.strip().splitlines()[0]}).") from None
        rows = extractor(pixels)
        if precision in ("float16", "bfloat16") and not np.isfinite(rows).all():
            # float16 overflows above 65504: redo this batch in float32 rather than fail the job.
            exact = exact or load_extractor(backbone, "float32")
            rows = exact(pixels)
        _check_rows(rows, len(pixels), backbone)
        write(done, rows)
        done += len(rows)

        now = time.perf_counter()
        message = f"Extracting features with {label} · {done}/{total} images"
        if first_batch_at is None:
            first_batch_at, first_batch = now, done  # leave out the first batch: tracing, loading
        elif done > first_batch:
            rate = (done - first_batch) / max(now - first_batch_at, 1e-9)
            message += f" · {rate:.0f} images/s · about {format_duration((total - done) / rate)} left"
        sink.progress(start + (end - start) * done / total, message)
    if done != total:
        raise ValueError(f"Only {done} of {total} images came out of the input pipeline.")
    seconds = time.perf_counter() - began
    return {"images_per_second": round(total / seconds, 1) if seconds else 0.0, "seconds": round(seconds, 2),
            "precision": precision, "batch_size": batch_size}


def extract(items_paths: Sequence[str], backbone: Backbone, sink: ProgressSink, *, batch_size: int = 32,
            precision: str = "auto", start: float = 0.0, end: float = 1.0) -> tuple[np.ndarray, dict]:
    """(float32 (N, feature_dim) features in the order of `items_paths`, stats) without storing anything.

    stats: {"images_per_second", "seconds", "precision" (what was used), "batch_size"}.
    """
    if not items_paths:
        raise ValueError("There are no images to extract features from.")
    out = np.empty((len(items_paths), backbone.feature_dim), np.float32)

    def write(first: int, rows: np.ndarray) -> None:
        out[first:first + len(rows)] = rows

    stats = _extract_into(list(items_paths), backbone, sink, write, batch_size=batch_size, precision=precision,
                          start=start, end=end)
    return out, stats


def extract_to_file(paths: Sequence[str], backbone: Backbone, target: Path, sink: ProgressSink, *,
                    batch_size: int = 32, precision: str = "auto", start: float = 0.0, end: float = 1.0) -> dict:
    """Write the features of `paths` (in order) to the .npy file `target`; the extraction's stats and
    the `dtype` kept (float16 while that is accurate enough, else float32).

    This is the whole of one extraction, so that a caller can run it in another process: the
    FeatureStore hands it to `isolate` for files its users uploaded (see `jobs.sandbox`).
    """
    rows = _RowFile(Path(target), len(paths), backbone.feature_dim)
    try:
        stats = _extract_into(list(paths), backbone, sink, rows.write, batch_size=batch_size, precision=precision,
                              start=start, end=end)
    finally:
        dtype = rows.close()
    return {**stats, "dtype": dtype}


# How an extraction runs: `extract_to_file` itself, or a function with its signature that runs it elsewhere.
Extraction = Callable[..., dict]


class _RowFile:
    """The .npy file a set is written into: float16 while that is accurate enough, float32 after."""

    def __init__(self, path: Path, count: int, dim: int):
        self.path, self.count, self.dim = path, count, dim
        self.array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(count, dim))

    def write(self, first: int, rows: np.ndarray) -> None:
        if self.array.dtype == np.float16 and not self._fits_float16(rows):
            self._widen(first)
        self.array[first:first + len(rows)] = rows

    @staticmethod
    def _fits_float16(rows: np.ndarray) -> bool:
        with np.errstate(over="ignore"):
            narrow = rows.astype(np.float16).astype(np.float32)
        norm = float(np.linalg.norm(rows))
        if not np.isfinite(narrow).all():
            return False
        return norm == 0.0 or float(np.linalg.norm(rows - narrow)) <= FLOAT16_TOLERANCE * norm

    def _widen(self, filled: int) -> None:
        wide_path = self.path.with_name("wide." + self.path.name)
        wide = np.lib.format.open_memmap(wide_path, mode="w+", dtype=np.float32, shape=(self.count, self.dim))
        wide[:filled] = self.array[:filled]
        del self.array
        os.replace(wide_path, self.path)
        self.array = wide

    def close(self) -> str:
        self.array.flush()
        dtype = self.array.dtype.name
        del self.array
        return dtype


# --- the store -------------------------------------------------------------------------------------

class FeatureStore:
    """Feature sets under `root`, one folder per (dataset content, backbone, layer, weights, side)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def key(self, content_hash: str, backbone: Backbone) -> str:
        """A stable hex digest of what the features depend on."""
        identity = {"content": content_hash, **backbone.cache_key(), "format": FORMAT_VERSION}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def directory(self, content_hash: str, backbone: Backbone) -> Path:
        return self.root / self.key(content_hash, backbone)

    @staticmethod
    def _load(directory: Path) -> FeatureSet | None:
        """The complete set in `directory`, or None when there is none (or it is unreadable)."""
        try:
            index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
            features = np.load(directory / FEATURES_FILE, mmap_mode="r")
            keys = list(index["keys"])
            meta = dict(index["meta"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if features.ndim != 2 or features.shape[0] != len(keys):
            return None
        return FeatureSet(keys=keys, features=features, meta=meta, directory=directory)

    def get(self, content_hash: str, backbone: Backbone) -> FeatureSet | None:
        return self._load(self.directory(content_hash, backbone))

    @contextlib.contextmanager
    def _locked(self, key: str, sink: ProgressSink, fraction: float) -> Iterator[None]:
        """Hold the key's lock; while another job holds it, wait (reporting, so a cancel gets through)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}{LOCK_SUFFIX}", "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    sink.progress(fraction, "Waiting for another job that is extracting the same features")
                    time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clear_leftovers(self, key: str) -> None:
        """Temporary folders of a run that died: only the lock holder writes under this key."""
        for leftover in self.root.glob(f"{key}.*-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)

    def ensure(self, content_hash: str, items: Sequence[tuple[str, str]], backbone: Backbone, sink: ProgressSink,
               *, batch_size: int = 32, precision: str = "auto", start: float = 0.0,
               end: float = 1.0, isolate: Extraction | None = None) -> tuple[FeatureSet, bool]:
        """(the features of `items` = (key, image path) pairs, reused) — the stored set when it holds
        every key (no backbone is loaded then), else a freshly extracted and stored one.

        Progress goes to `sink` between `start` and `end`; a JobCancelled from it leaves nothing
        behind. ValueError (a sentence) for unusable input. `isolate`, when given, runs the
        extraction in place of `extract_to_file` (same arguments), e.g. in a sandboxed process.
        """
        items = [(str(key), str(path)) for key, path in items]
        if not items:
            raise ValueError("There are no images to extract features from.")
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("Two images share the same key, so their features could not be told apart.")
        key = self.key(content_hash, backbone)
        final = self.root / key

        found = self._load(final)
        if found is not None and found.has(keys):
            sink.progress(end, f"Reusing the stored {backbone.title} features of {len(found)} images")
            return found, True
        with self._locked(key, sink, start):
            found = self._load(final)  # another job may have made them while this one waited
            if found is not None and found.has(keys):
                sink.progress(end, f"Reusing the stored {backbone.title} features of {len(found)} images")
                return found, True
            self._clear_leftovers(key)
            partial = self.root / f"{key}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            partial.mkdir(parents=True)
            try:
                stats = (isolate or extract_to_file)([path for _, path in items], backbone, partial / FEATURES_FILE,
                                                     sink, batch_size=batch_size, precision=precision, start=start,
                                                     end=end)
                meta = {
                    "backbone": backbone.cache_key(), "kind": backbone.kind,
                    "feature_shape": list(backbone.feature_shape), "count": len(items), **stats,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"), "content_hash": content_hash,
                    "key": key, "format": FORMAT_VERSION,
                }
                (partial / INDEX_FILE).write_text(json.dumps({"keys": keys, "meta": meta}), encoding="utf-8")
                self._publish(partial, final, key)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        stored = self._load(final)
        if stored is None:  # pragma: no cover - only a disk failing under us
            raise OSError(f"The features stored in {final} could not be read back.")
        return stored, False

    def remove_content(self, content_hash: str) -> int:
        """Delete every feature set computed from images with this content hash; returns how many.

        Features are derived from the images, so when the last dataset holding them is deleted
        they go too. A job still reading a set keeps its open files until it closes them.
        """
        removed = 0
        for directory in self.root.glob("*/") if self.root.is_dir() else ():
            try:
                index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if index.get("meta", {}).get("content_hash") == content_hash:
                gone = self.root / f"{directory.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(directory, gone)  # one rename: no reader ever sees half a set
                shutil.rmtree(gone, ignore_errors=True)
                removed += 1
        return removed

    def _publish(self, partial: Path, final: Path, key: str) -> None:
        """Rename the finished set into place; an older, smaller set is moved aside first and deleted.

        Readers holding the old files open (memory maps) keep reading them: on POSIX a deleted
        file lives on until its last reader closes it.
        """
        if final.exists():
            old = self.root / f"{key}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(partial, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, final)
