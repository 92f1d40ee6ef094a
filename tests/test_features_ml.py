"""Feature extraction and its cache as plain ML code, on generated PNG and JPEG images.

The backbone is a tiny Keras network saved to .keras and opened the way an upload is
(`inspect_file`), so extraction is real but quick; no weights are downloaded.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from jobs.ml.backbones import builtin, inspect_file
from jobs.ml.features import FeatureStore, MissingFeatures, extract, pick_precision
from jobs.ml.progress import JobCancelled
from tests.sinks import RecordingSink
from tests.test_backbones import tiny_model

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def make_images(root: Path, per_class: int, size: int = 40, seed: int = 0) -> list[tuple[str, int]]:
    """(path, class index) for `per_class` images of each colour: a filled square or circle of that colour at
    a random place and size on a noisy grey background; every third one is a JPEG."""
    rng = np.random.default_rng(seed)
    items = []
    for label, (name, colour) in enumerate(COLOURS.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            background = rng.integers(90, 160, (size, size, 1)) + rng.integers(-20, 20, (size, size, 3))
            image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
            draw = ImageDraw.Draw(image)
            side = int(rng.integers(size // 3, size // 2 + 4))
            left, top = (int(v) for v in rng.integers(0, size - side, 2))
            shade = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in colour)
            (draw.ellipse if index % 2 else draw.rectangle)([left, top, left + side, top + side], fill=shade)
            path = folder / f"{name}-{index:03d}.{'jpg' if index % 3 == 0 else 'png'}"
            image.save(path)
            items.append((str(path), label))
    return items


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[tuple[str, int]]:
    return make_images(tmp_path_factory.mktemp("images"), per_class=12)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backbone") / "tiny.keras"
    tiny_model().save(path)
    return path


@pytest.fixture(scope="module")
def backbone(tiny_file):
    return inspect_file(tiny_file, output="pool2", name="backbones/1")


def keyed(items):
    return [(Path(path).name, path) for path, _ in items]


def test_extract_gives_one_row_per_image_in_the_order_asked(images, backbone):
    paths = [path for path, _ in images]
    sink = RecordingSink()
    features, stats = extract(paths, backbone, sink, batch_size=8, precision="float32")
    assert features.shape == (len(paths), 128) and features.dtype == np.float32
    assert stats["precision"] == "float32" and stats["images_per_second"] > 0 and stats["seconds"] > 0
    assert sink.fractions == sorted(sink.fractions) and sink.fractions[-1] == 1.0
    assert sink.messages[-1].startswith(f"Extracting features with backbones/1 (pool2) · {len(paths)}/{len(paths)}")
    assert any("images/s · about" in m for m in sink.messages)

    order = np.random.default_rng(1).permutation(len(paths))
    permuted, _ = extract([paths[i] for i in order], backbone, RecordingSink(), batch_size=5, precision="float32")
    np.testing.assert_allclose(permuted, features[order], rtol=1e-5, atol=1e-6)


def test_bfloat16_features_stay_close_to_float32(images, backbone):
    paths = [path for path, _ in images]
    full, _ = extract(paths, backbone, RecordingSink(), batch_size=16, precision="float32")
    half, stats = extract(paths, backbone, RecordingSink(), batch_size=16, precision="bfloat16")
    assert stats["precision"] == "bfloat16" and half.dtype == np.float32
    cosine = (full * half).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    assert cosine.min() > 0.999, cosine.min()
    assert np.linalg.norm(full - half) / np.linalg.norm(full) < 0.02


def test_the_store_extracts_once_then_reuses(images, backbone, tmp_path):
    store = FeatureStore(tmp_path / "features")
    items = keyed(images)
    sink = RecordingSink()
    stored, reused = store.ensure("content-1", items, backbone, sink, batch_size=8, precision="float32",
                                  start=0.2, end=0.6)
    assert not reused and sink.extracted()
    assert min(sink.fractions) >= 0.2 and max(sink.fractions) == pytest.approx(0.6)
    assert stored.features.shape == (len(items), 128) and stored.features.dtype == np.float16
    assert stored.keys == [key for key, _ in items] and stored.directory == tmp_path / "features" / stored.meta["key"]
    assert stored.meta["backbone"] == backbone.cache_key() and stored.meta["feature_shape"] == [4, 4, 8]
    assert stored.meta["count"] == len(items) and stored.meta["dtype"] == "float16"
    assert stored.meta["precision"] == "float32" and stored.meta["images_per_second"] > 0

    # float16 on disk loses nothing that matters (at most 2**-11 relative per value).
    exact, _ = extract([path for _, path in items], backbone, RecordingSink(), precision="float32")
    np.testing.assert_allclose(stored.rows([key for key, _ in items]), exact, rtol=2e-3, atol=1e-6)

    mtime = (stored.directory / "features.npy").stat().st_mtime_ns
    again_sink = RecordingSink()
    again, reused = store.ensure("content-1", items[5:], backbone, again_sink)  # a subset is reused too
    assert reused and not again_sink.extracted() and again_sink.fractions == [1.0]
    assert (again.directory / "features.npy").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.rows([items[7][0], items[2][0]]), stored.rows([items[7][0], items[2][0]]))
    assert store.get("content-1", backbone) is not None and store.get("content-2", backbone) is None

    with pytest.raises(MissingFeatures) as missing:
        again.rows(["nope.png"])
    assert isinstance(missing.value, KeyError)
    assert str(missing.value) == ("1 of the images have no stored features (the first is nope.png); extract the "
                                  "features of this dataset again.")
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == sorted(
        [stored.meta["key"], stored.meta["key"] + ".lock"])


def test_the_key_changes_with_content_layer_and_weights(tiny_file, backbone, tmp_path):
    store = FeatureStore(tmp_path)
    key = store.key("abc", backbone)
    assert key == FeatureStore(tmp_path / "elsewhere").key("abc", inspect_file(tiny_file, output="pool2",
                                                                                name="backbones/1"))
    assert len(key) == 64 and int(key, 16) >= 0
    other_layer = inspect_file(tiny_file, output="embedding", name="backbones/1")
    assert len({key, store.key("abd", backbone), store.key("abc", other_layer),
                store.key("abc", builtin("mobilenet_v2", "imagenet")),
                store.key("abc", builtin("mobilenet_v2", "random"))}) == 5


def test_a_cancel_mid_extraction_leaves_nothing_behind(images, backbone, tmp_path):
    store = FeatureStore(tmp_path)
    sink = RecordingSink(cancel_at=4)  # loading, start, first batch, second batch
    with pytest.raises(JobCancelled):
        store.ensure("content-1", keyed(images), backbone, sink, batch_size=4, precision="float32")
    assert sink.extracted()
    assert [p.name for p in tmp_path.iterdir()] == [store.key("content-1", backbone) + ".lock"]
    assert store.get("content-1", backbone) is None


def test_two_jobs_asking_at_once_compute_once(images, backbone, tmp_path):
    store = FeatureStore(tmp_path)
    sinks = [RecordingSink(), RecordingSink()]
    results: list = [None, None]

    def run(index: int) -> None:
        results[index] = store.ensure("content-1", keyed(images), backbone, sinks[index], batch_size=4,
                                      precision="float32")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(reused for _, reused in results) == [False, True]
    assert sum(sink.extracted() for sink in sinks) == 1
    np.testing.assert_array_equal(results[0][0].features, results[1][0].features)


def test_values_float16_cannot_hold_are_stored_as_float32(images, tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Rescaling(1e-9)(x)  # about 1e-7: below float16's normal range
    keras.Model(inputs, outputs).save(tmp_path / "small.keras")
    backbone = inspect_file(tmp_path / "small.keras", name="small")
    stored, _ = FeatureStore(tmp_path / "store").ensure("c", keyed(images[:10]), backbone, RecordingSink(),
                                                         batch_size=4, precision="float32")
    assert stored.meta["dtype"] == "float32" and stored.features.dtype == np.float32
    exact, _ = extract([path for path, _ in images[:10]], backbone, RecordingSink(), precision="float32")
    np.testing.assert_allclose(stored.rows([Path(p).name for p, _ in images[:10]]), exact, rtol=1e-6)


def test_bad_requests_and_unreadable_images_get_a_sentence(images, backbone, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(Image.open(images[0][0]).tobytes()[:100])
    paths = [path for path, _ in images[:6]] + [str(broken)]
    with pytest.raises(ValueError, match=f"The image {broken} could not be read while extracting features"):
        extract(paths, backbone, RecordingSink(), batch_size=4, precision="float32")
    with pytest.raises(ValueError, match="no images"):
        FeatureStore(tmp_path).ensure("c", [], backbone, RecordingSink())
    with pytest.raises(ValueError, match="share the same key"):
        FeatureStore(tmp_path).ensure("c", [("a", images[0][0]), ("a", images[1][0])], backbone, RecordingSink())
    assert not list(tmp_path.glob("*.partial-*"))


def test_pick_precision():
    assert pick_precision("float32") == "float32" and pick_precision("bfloat16") == "bfloat16"
    assert pick_precision() in ("float32", "bfloat16", "float16")
    with pytest.raises(ValueError, match="not 'int4'"):
        pick_precision("int4")
