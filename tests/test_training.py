"""Training, the input pipeline and prediction as plain ML code: real (tiny) training on real data.

The data is scikit-learn's digits (1,797 real 8x8 scans) written as 28x28 PNG files, split
70/15/15 by class. No Django, no Celery: a recording sink stands in for the worker's reporter.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.pipeline import augmenter, make_dataset
from jobs.ml.predict import BadImage, load_classifier, predict_image, read_image
from jobs.ml.progress import JobCancelled
from jobs.ml.training import TrainConfig, train_classifier
from tests.sinks import RecordingSink

# Keras 3's own .keras writer converts variables with np.array(); NumPy 2 flags that. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

CLASSES = [str(d) for d in range(10)]

# Sigmoid LeNet-5 sits at chance for a couple of epochs, then learns fast; these settings reach
# about 0.95 test accuracy in 12 epochs (about 10 s on two CPU cores) for every seed tried.
LENET = TrainConfig("lenet5", image_size=28, channels=1, epochs=12, batch_size=32, optimizer="adam",
                    learning_rate=0.005, seed=0)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, list[tuple[str, int]]]:
    """{"train", "val", "test"}: (PNG path, digit) lists, stratified 70/15/15."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root = tmp_path_factory.mktemp("digits")
    data = load_digits()
    pixels = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    items = []
    for index, (scan, label) in enumerate(zip(pixels, data.target, strict=True)):
        path = root / str(label) / f"digit-{index:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(scan, "L").resize((28, 28), Image.Resampling.BILINEAR).save(path)
        items.append((str(path), int(label)))
    train, rest = train_test_split(items, test_size=0.3, stratify=[y for _, y in items], random_state=0)
    val, test = train_test_split(rest, test_size=0.5, stratify=[y for _, y in rest], random_state=0)
    return {"train": train, "val": val, "test": test}


@pytest.fixture(scope="module")
def lenet(digits, tmp_path_factory):
    """LeNet-5 trained once on the digits: (result, sink, workdir, seconds)."""
    workdir = tmp_path_factory.mktemp("lenet")
    sink = RecordingSink()
    started = time.perf_counter()
    result = train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, LENET, workdir, sink)
    return result, sink, workdir, time.perf_counter() - started


# --- training -----------------------------------------------------------------------------------

def test_lenet5_learns_the_digits_and_reports_every_epoch(lenet, digits):
    result, sink, workdir, seconds = lenet

    assert result.test_accuracy >= 0.85, result.history
    assert result.evaluated_on == "test"
    history = result.history
    assert [h["epoch"] for h in history] == list(range(1, LENET.epochs + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.best_epoch == 1 + min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert seconds < 90

    assert sink.fractions == sorted(sink.fractions)
    assert sink.fractions[-1] == 1.0 and 0.9 <= max(f for f in sink.fractions if f < 1.0) <= 0.98
    assert any(m.startswith("Epoch 3/12 · batch ") and "left" in m for m in sink.messages)
    assert [e for e, _ in sink.epochs] == list(range(1, LENET.epochs + 1))
    assert sink.epochs[-1][1] == {k: v for k, v in history[-1].items() if k != "epoch"}
    assert sink.device and sink.device.startswith("CPU") and result.device == sink.device

    matrix = np.array(result.confusion_matrix)
    assert matrix.shape == (10, 10) and matrix.sum() == len(digits["test"])
    assert np.trace(matrix) / matrix.sum() == pytest.approx(result.test_accuracy, abs=1e-6)
    assert [c["name"] for c in result.per_class] == CLASSES
    assert sum(c["support"] for c in result.per_class) == len(digits["test"])
    assert all(0 <= c["precision"] <= 1 and 0 <= c["recall"] <= 1 and 0 <= c["f1"] <= 1 for c in result.per_class)
    assert len(result.mistakes) == min(12, matrix.sum() - np.trace(matrix))
    confidences = [m["confidence"] for m in result.mistakes]
    assert confidences == sorted(confidences, reverse=True)
    assert all(m["true"] != m["predicted"] and Path(m["path"]).parent.name == m["true"] for m in result.mistakes)

    assert result.summary["total_params"] == 44_426  # the reference count at 28x28x1 / 10 classes
    assert result.images_per_second > 0 and result.seconds > 0
    assert (workdir / "checkpoint.keras").exists() and json.loads((workdir / "state.json").read_text())[
        "epochs_done"] == LENET.epochs
    assert not (workdir / "cache").exists()


def test_the_saved_model_takes_raw_pixels_and_reloads_with_the_same_predictions(lenet, digits):
    import keras

    result, _, workdir, _ = lenet
    assert result.model_path == str(workdir / "model.keras")
    metadata = json.loads((workdir / "metadata.json").read_text())
    assert metadata == {"class_names": CLASSES, "image_size": 28, "channels": 1, "architecture": "lenet5",
                        "input": "L pixels 0..255 resized to 28x28"}

    model = keras.models.load_model(workdir / "model.keras")
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float32)[..., None] for p, _ in digits["test"]])
    predicted = model.predict(pixels, verbose=0).argmax(axis=1)
    truth = np.array([y for _, y in digits["test"]])
    from sklearn.metrics import confusion_matrix

    assert confusion_matrix(truth, predicted, labels=range(10)).tolist() == result.confusion_matrix


def test_predict_image_ranks_the_classes_of_an_uploaded_png(lenet, digits):
    _, _, workdir, _ = lenet
    model, metadata = load_classifier(workdir)

    right = 0
    for path, label in digits["test"][:20]:
        top = predict_image(model, metadata, Path(path).read_bytes())
        assert len(top) == 5 and [p["label"] for p in top][0] in CLASSES
        probabilities = [p["probability"] for p in top]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-5
        right += top[0]["label"] == str(label)
    assert right >= 16

    # An RGB JPEG photo of a digit, larger than the model's input: the same answer as its PNG.
    for path, _ in digits["test"]:
        top = predict_image(model, metadata, Path(path).read_bytes(), top=1)[0]
        if top["probability"] > 0.95:
            break
    big = Image.open(path).convert("RGB").resize((200, 200), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=95)
    assert predict_image(model, metadata, buffer.getvalue(), top=3)[0]["label"] == top["label"]


def test_a_cancel_from_the_sink_stops_training_within_a_batch(digits, tmp_path):
    sink = RecordingSink(cancel_at=3)
    config = TrainConfig("lenet5", 28, 1, epochs=5, learning_rate=0.005)
    started = time.perf_counter()
    with pytest.raises(JobCancelled):
        train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, config, tmp_path, sink)
    assert time.perf_counter() - started < 15
    assert len(sink.fractions) == 3 and sink.epochs == []
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "cache").exists()


def test_resume_continues_the_history_from_the_checkpoint(digits, tmp_path):
    first_config = TrainConfig("mlp", 28, 1, epochs=2, learning_rate=0.001, seed=3)
    first = train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, first_config, tmp_path,
                             RecordingSink())
    assert [h["epoch"] for h in first.history] == [1, 2]

    sink = RecordingSink()
    second_config = TrainConfig("mlp", 28, 1, epochs=4, learning_rate=0.001, seed=3)
    second = train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, second_config, tmp_path,
                              sink, resume=True)
    assert [h["epoch"] for h in second.history] == [1, 2, 3, 4]
    assert second.history[:2] == first.history
    assert second.epochs_run == 2 and [e for e, _ in sink.epochs] == [3, 4]
    assert all(set(h) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} for h in second.history)
    # The optimizer state came back too: its step count went on from the first run's.
    import keras

    steps = -(-len(digits["train"]) // 32)
    assert int(keras.models.load_model(tmp_path / "checkpoint.keras").optimizer.iterations) == 4 * steps
    assert second.history[2]["loss"] < first.history[0]["loss"]
    assert sink.fractions == sorted(sink.fractions) and "Epoch 3/4" in " ".join(sink.messages)

    # Resuming a finished run trains nothing; resume=False starts over.
    again = train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, second_config, tmp_path,
                             RecordingSink(), resume=True)
    assert again.history == second.history and again.epochs_run == 0
    fresh = train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, first_config, tmp_path,
                             RecordingSink())
    assert [h["epoch"] for h in fresh.history] == [1, 2]


def test_early_stopping_stops_and_restores_the_best_weights(digits, tmp_path):
    # Random labels: nothing generalises, so the validation loss is lowest early and then rises.
    rng = np.random.default_rng(0)
    train = [(path, int(rng.integers(10))) for path, _ in digits["train"][:400]]
    val = [(path, int(rng.integers(10))) for path, _ in digits["val"]]
    config = TrainConfig("mlp", 28, 1, epochs=30, learning_rate=0.003, early_stopping_patience=2)

    result = train_classifier(train, val, [], CLASSES, config, tmp_path, RecordingSink())

    assert result.stopped_early and len(result.history) < config.epochs
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmin(losses)) <= len(result.history) - 2
    # Evaluated on the validation split with the restored weights: the best epoch's loss again.
    assert result.evaluated_on == "validation"
    assert result.test_loss == pytest.approx(min(losses), rel=1e-4)


def test_the_mixed_precision_path_trains_and_leaves_the_global_policy_alone(digits, tmp_path, monkeypatch):
    """The GPU path's model building on the CPU: float16 compute, float32 probabilities."""
    import keras
    import tensorflow as tf

    from jobs.ml import training

    monkeypatch.setattr(training, "device_plan", lambda: training.DevicePlan(
        tf.distribute.get_strategy(), True, "Test GPU · mixed precision (float16)"))
    config = TrainConfig("mlp", 28, 1, epochs=1)
    result = train_classifier(digits["train"][:200], digits["val"][:50], digits["test"][:50], CLASSES, config,
                              tmp_path, RecordingSink())

    assert keras.mixed_precision.global_policy().name == "float32"
    assert result.device.endswith("mixed precision (float16)")
    trained = keras.models.load_model(tmp_path / "checkpoint.keras", compile=False)
    assert trained.get_layer("mlp").get_layer("fc1").dtype_policy.name == "mixed_float16"
    # The model kept for use computes in float32 (an inference worker may have no GPU), same weights.
    model, _ = load_classifier(tmp_path)
    assert {layer.dtype_policy.name for layer in model.get_layer("mlp").layers} == {"float32"}
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.float32)[..., None] for p, _ in digits["test"][:8]])
    probabilities = np.asarray(model(pixels))
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(probabilities, np.asarray(trained(pixels), dtype=np.float32), atol=0.02)


# --- the input pipeline -------------------------------------------------------------------------

def first_labels(items, seed):
    ds = make_dataset(items, 28, 1, 16, training=True, seed=seed)
    return next(iter(ds))[1].numpy().tolist()


def test_shuffling_is_deterministic_for_a_seed_and_differs_between_epochs(digits):
    items = digits["train"][:300]
    assert first_labels(items, 7) == first_labels(items, 7)
    assert first_labels(items, 7) != first_labels(items, 8)

    ds = make_dataset(items, 28, 1, 300, training=True, seed=7)
    epoch1, epoch2 = (next(iter(ds))[1].numpy() for _ in range(2))
    assert sorted(epoch1) == sorted(epoch2) and epoch1.tolist() != epoch2.tolist()

    # Not training: the order of the list, so predictions line up with it.
    plain = make_dataset(items, 28, 1, 300)
    assert next(iter(plain))[1].numpy().tolist() == [y for _, y in items]


@pytest.fixture
def odd_images(tmp_path) -> dict[str, str]:
    """One 12x10 image per colour mode, saved as the format a user's upload would have."""
    red = Image.new("RGB", (12, 10), (255, 0, 0))
    images = {
        "gray.png": Image.new("L", (12, 10), 100),
        "rgb.png": red,
        "rgba.png": Image.new("RGBA", (12, 10), (255, 0, 0, 128)),
        "palette.png": red.convert("P", palette=Image.Palette.ADAPTIVE, colors=4),
        "photo.jpg": red,
    }
    paths = {}
    for name, image in images.items():
        image.save(tmp_path / name)
        paths[name] = str(tmp_path / name)
    return paths


@pytest.mark.parametrize("channels", [1, 3])
def test_every_colour_mode_decodes_to_the_requested_channels(odd_images, channels):
    items = [(path, i) for i, path in enumerate(odd_images.values())]
    pixels, labels = next(iter(make_dataset(items, 8, channels, 8)))
    assert pixels.shape == (5, 8, 8, channels) and pixels.dtype == "float32"
    assert labels.numpy().tolist() == [0, 1, 2, 3, 4]
    means = pixels.numpy().mean(axis=(1, 2))
    assert means[0] == pytest.approx([100.0] * channels, abs=1)  # gray read as RGB: three equal channels
    for red in means[1:]:  # RGB, RGBA (alpha dropped), palette, JPEG
        assert red == pytest.approx([255, 0, 0] if channels == 3 else [76], abs=6)


def test_augmentation_and_the_file_cache(digits, tmp_path):
    items = digits["train"][:64]
    augment = augmenter(flip=True, rotation=0.1, zoom=0.1, seed=0)
    ds = make_dataset(items, 28, 1, 16, training=True, augment=augment, cache_dir=tmp_path, name="train",
                      memory_cache_bytes=0)
    batches = [x for x, _ in ds]
    assert sum(len(b) for b in batches) == 64 and batches[0].shape[1:] == (28, 28, 1)
    assert float(min(b.numpy().min() for b in batches)) >= -1e-3
    assert any(p.name.startswith("train") for p in tmp_path.iterdir())
    assert [len(x) for x, _ in ds] == [16, 16, 16, 16]  # the second epoch reads the finished cache
    assert augmenter(False, 0.0, 0.0, 0) is None


# --- predict_image on bad uploads ---------------------------------------------------------------

def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose IHDR claims width x height 8-bit RGB pixels.

    Only the chunks are real: a few bytes of compressed zeros stand in for the pixel data, so
    decoding it would fail; reading its header must already refuse it.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize(("data", "says"), [
    (b"", "empty"),
    (bytes(range(256)) * 4, "not an image"),
    (b"class,count\ncat,3\n", "not an image"),
    (png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)))[:300], "damaged"),
    (png_claiming(40_000, 25_000), "40000 x 25000"),
])
def test_predict_image_refuses_bad_uploads_with_a_sentence(data, says):
    metadata = {"class_names": ["a", "b"], "image_size": 8, "channels": 3}

    def model(batch, training=False):
        raise AssertionError("a bad upload must not reach the model")

    with pytest.raises(BadImage) as caught:
        predict_image(model, metadata, data)
    message = str(caught.value)
    assert says in message and message[0].isupper() and message.endswith(".")


def test_read_image_turns_uploads_upright_and_into_the_models_mode():
    # EXIF orientation 6: the camera was turned, the stored pixels are sideways (10 wide, 20 tall).
    sideways = Image.new("RGB", (10, 20), (0, 0, 0))
    sideways.paste((255, 255, 255), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "PNG", exif=exif)
    pixels = read_image(buffer.getvalue(), 20, 1)
    assert pixels.shape == (20, 20, 1)
    # Rotated upright the image is 20 wide and 10 tall, white on the right half.
    assert pixels[:, :8].mean() < 30 and pixels[:, 12:].mean() > 225

    rgba = png_bytes(Image.new("RGBA", (5, 5), (0, 255, 0, 0)))
    assert read_image(rgba, 4, 3).shape == (4, 4, 3)
