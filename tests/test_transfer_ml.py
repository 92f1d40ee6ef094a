"""Transfer learning and logistic regression on cached features, as plain ML code.

Three colour classes of generated shapes, a tiny Keras backbone with fixed random weights (its
features already separate colours, as ImageNet features separate everyday things), the real
feature cache, and the saved models checked through `jobs.ml.predict` in this process and in a
fresh one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobs.ml.backbones import from_trained_model, inspect_file, load_extractor
from jobs.ml.features import FeatureStore
from jobs.ml.pipeline import load_image
from jobs.ml.predict import FeaturePipeline, load_classifier, predict_image
from jobs.ml.transfer import TransferConfig, train_logreg, train_transfer
from tests.sinks import RecordingSink
from tests.test_backbones import save_tflite, tiny_model
from tests.test_features_ml import COLOURS, make_images

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

ROOT = Path(__file__).resolve().parent.parent
CLASSES = list(COLOURS)
METRICS = {"loss", "accuracy", "val_loss", "val_accuracy"}


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, list[tuple[str, int]]]:
    """{"train", "val", "test"}: 14 / 5 / 5 images of each of the three colours."""
    items = make_images(tmp_path_factory.mktemp("colours"), per_class=24, size=40, seed=3)
    by_class = [[item for item in items if item[1] == label] for label in range(len(CLASSES))]
    return {"train": [i for c in by_class for i in c[:14]], "val": [i for c in by_class for i in c[14:19]],
            "test": [i for c in by_class for i in c[19:]]}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backbone") / "tiny.keras"
    tiny_model().save(path)
    return path


def cached(backbone, splits, root: Path):
    items = [(path, path) for split in splits.values() for path, _ in split]  # keys = the paths themselves
    features, _ = FeatureStore(root).ensure("colours", items, backbone, RecordingSink(), batch_size=16,
                                            precision="float32")
    return features


@pytest.fixture(scope="module")
def embedding(tiny_file, splits, tmp_path_factory):
    backbone = inspect_file(tiny_file, output="embedding", name="backbones/1")
    return backbone, cached(backbone, splits, tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def extract_run(embedding, splits, tmp_path_factory):
    backbone, features = embedding
    workdir = tmp_path_factory.mktemp("extract")
    sink = RecordingSink()
    config = TransferConfig(mode="extract", epochs=40, batch_size=16, learning_rate=3e-3, seed=1)
    result = train_transfer(splits["train"], splits["val"], splits["test"], CLASSES, backbone, features, config,
                            workdir, sink)
    return result, sink, workdir


@pytest.fixture(scope="module")
def logreg_run(tiny_file, splits, tmp_path_factory):
    backbone = inspect_file(tiny_file, output="pool2", name="backbones/1")  # a 4x4x8 map, flattened
    features = cached(backbone, splits, tmp_path_factory.mktemp("features"))
    workdir = tmp_path_factory.mktemp("logreg")
    sink = RecordingSink()
    result = train_logreg(splits["train"], splits["val"], splits["test"], CLASSES, backbone, features, workdir, sink)
    return result, sink, workdir, features


def pixel_batch(items, size: int, channels: int = 3) -> np.ndarray:
    import tensorflow as tf

    return np.stack([load_image(tf.constant(path), size, channels).numpy() for path, _ in items])


def test_extract_mode_learns_the_colours_from_cached_features(extract_run, splits):
    result, sink, workdir = extract_run
    assert result.test_accuracy >= 0.9, result.history
    assert result.history[0]["accuracy"] < 0.6 and result.history[-1]["val_accuracy"] >= 0.8  # from chance
    assert [h["epoch"] for h in result.history] == list(range(1, 41)) and set(result.history[0]) == {"epoch", *METRICS}
    assert [e for e, _ in sink.epochs] == list(range(1, 41)) and sink.device == result.device
    assert sink.fractions == sorted(sink.fractions) and sink.fractions[-1] == 1.0
    assert np.array(result.confusion_matrix).sum() == len(splits["test"]) and result.evaluated_on == "test"
    assert result.classes == CLASSES and [c["name"] for c in result.per_class] == CLASSES
    assert result.images_per_second > 0 and result.epochs_run == 40 and result.best_epoch >= 1

    layers = {layer["name"]: layer for layer in result.summary["layers"]}
    assert layers["head_dense"]["params"] == 32 * 256 + 256 and layers["predictions"]["params"] == 256 * 3 + 3
    assert result.summary["total_params"] == result.summary["trainable_params"] + result.summary[
        "non_trainable_params"]
    assert sorted(p.name for p in workdir.iterdir()) == ["metadata.json", "model.keras"]
    metadata = json.loads((workdir / "metadata.json").read_text())
    assert metadata["class_names"] == CLASSES and metadata["image_size"] == 32 and metadata["channels"] == 3
    assert metadata["architecture"] == "transfer" and metadata["mode"] == "extract"
    assert metadata["backbone"]["kind"] == "keras" and metadata["backbone"]["layer"] == "embedding"


def test_the_saved_transfer_model_runs_on_pixels_like_the_head_on_features(extract_run, splits):
    result, _, workdir = extract_run
    model, metadata = load_classifier(workdir)
    probabilities = np.asarray(model(pixel_batch(splits["test"], 32), training=False))
    predicted = probabilities.argmax(1)
    truth = np.array([label for _, label in splits["test"]])
    assert np.mean(predicted == truth) == pytest.approx(result.test_accuracy, abs=0.07)  # float16 cache vs float32
    top = predict_image(model, metadata, Path(splits["test"][0][0]).read_bytes(), top=3)
    assert [p["label"] for p in top][0] in CLASSES and sum(p["probability"] for p in top) == pytest.approx(1, abs=1e-4)

    # As a backbone itself ("models/<id>"): the head's hidden layer, the input of its softmax.
    backbone = from_trained_model(workdir, "models/5")
    assert (backbone.layer, backbone.feature_shape, backbone.image_size) == ("head_dropout", (256,), 32)
    hidden = load_extractor(backbone)(pixel_batch(splits["test"][:4], 32))
    assert hidden.shape == (4, 256) and hidden.min() >= 0  # after the ReLU


def test_logistic_regression_is_a_classifier_too(logreg_run, splits):
    result, sink, workdir, features = logreg_run
    assert result.test_accuracy >= 0.9, result
    assert len(result.history) == 1 and set(result.history[0]) == {"epoch", *METRICS}
    assert sink.epochs == [(1, {k: v for k, v in result.history[0].items() if k != "epoch"})]
    assert result.history[0]["accuracy"] >= 0.9 and result.epochs_run == 1 and result.best_epoch == 1
    assert sink.device.startswith("CPU") and sink.fractions[-1] == 1.0
    assert result.summary["layers"][-1]["name"] == "predictions"

    # The folded softmax layer on raw pixels gives what the fitted model gives on standardised features.
    from sklearn.linear_model import LogisticRegression

    x = features.rows([p for p, _ in splits["train"]]).astype(np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1
    reference = LogisticRegression(max_iter=2000).fit((x - mean) / scale, [y for _, y in splits["train"]])
    test_x = features.rows([p for p, _ in splits["test"]]).astype(np.float64)
    expected = reference.predict_proba((test_x - mean) / scale)
    model, metadata = load_classifier(workdir)
    assert metadata["mode"] == "logreg" and metadata["architecture"] == "logreg"
    got = np.asarray(model(pixel_batch(splits["test"], 32), training=False))
    np.testing.assert_allclose(got, expected, atol=0.02)

    # As a backbone, a logistic regression gives back the backbone's own (flattened) features.
    backbone = from_trained_model(workdir, "models/6")
    assert (backbone.layer, backbone.feature_shape) == ("flatten", (128,))
    again = load_extractor(backbone)(pixel_batch(splits["test"], 32))
    np.testing.assert_allclose(again, test_x, rtol=5e-3, atol=1e-3)


def test_finetune_trains_the_last_layers_end_to_end_and_saves_a_loadable_model(tiny_file, embedding, splits,
                                                                               tmp_path):
    backbone = inspect_file(tiny_file, output="pool2", name="backbones/1")
    sink = RecordingSink()
    config = TransferConfig(mode="finetune", epochs=1, batch_size=16, augment_rotation=0.05, seed=2,
                            architecture="tiny_transfer")
    result = train_transfer(splits["train"], splits["val"], [], CLASSES, backbone, None, config, tmp_path, sink)
    assert len(result.history) == 1 and set(result.history[0]) == {"epoch", *METRICS}
    assert result.evaluated_on == "validation" and np.array(result.confusion_matrix).sum() == len(splits["val"])
    assert any(m.startswith("Epoch 1/1 · batch") for m in sink.messages)
    # Only the backbone's last quarter (its second convolution) and the head learn.
    assert 0 < result.summary["trainable_params"] < result.summary["total_params"]
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["mode"] == "finetune" and metadata["trainable_layers"] == ["conv2"]
    assert metadata["architecture"] == "tiny_transfer"
    model, metadata = load_classifier(tmp_path)
    assert np.asarray(model(pixel_batch(splits["val"][:2], 32), training=False)).shape == (2, 3)

    # Warm-started from the cached features, the same epoch starts from a trained head.
    emb, features = embedding
    warm = train_transfer(splits["train"], splits["val"], splits["test"], CLASSES, emb, features, config,
                          tmp_path / "warm", RecordingSink())
    assert warm.test_accuracy >= 0.8, warm.history


def test_saved_models_reload_in_a_fresh_process_with_the_same_predictions(extract_run, logreg_run, splits):
    image = splits["test"][4][0]
    folders = [str(extract_run[2]), str(logreg_run[2])]
    here = []
    for folder in folders:
        model, metadata = load_classifier(Path(folder))
        here.append(predict_image(model, metadata, Path(image).read_bytes(), top=3))
    script = ("import json, sys\nfrom pathlib import Path\nfrom jobs.ml.predict import load_classifier, predict_image\n"
              "out = []\nfor folder in sys.argv[2:]:\n    model, metadata = load_classifier(Path(folder))\n"
              "    out.append(predict_image(model, metadata, Path(sys.argv[1]).read_bytes(), top=3))\n"
              "print('RESULT' + json.dumps(out))\n")
    done = subprocess.run([sys.executable, "-c", script, image, *folders], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    there = json.loads(done.stdout.split("RESULT", 1)[1])
    for a, b in zip(here, there, strict=True):
        assert [p["label"] for p in a] == [p["label"] for p in b]
        np.testing.assert_allclose([p["probability"] for p in a], [p["probability"] for p in b], atol=1e-5)


def test_a_tflite_backbone_trains_a_head_that_predicts_through_predict_py(splits, tmp_path):
    model = tiny_model()
    samples = pixel_batch(splits["train"][::3], 32)
    path = save_tflite(model, tmp_path / "tiny_int8.tflite", quantized=True, samples=samples)
    backbone = inspect_file(path, output="embedding", name="backbones/9")
    features = cached(backbone, splits, tmp_path / "features")
    config = TransferConfig(epochs=40, batch_size=16, learning_rate=3e-3, seed=1)
    result = train_transfer(splits["train"], splits["val"], splits["test"], CLASSES, backbone, features, config,
                            tmp_path / "run", RecordingSink())
    assert result.test_accuracy >= 0.8, result.history
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["backbone"]["kind"] == "tflite" and metadata["backbone"]["source"] == str(path)

    loaded, metadata = load_classifier(tmp_path / "run")
    assert isinstance(loaded, FeaturePipeline)
    assert tuple(loaded.head.input.shape[1:]) == (32,)
    image = Path(splits["test"][0][0]).read_bytes()
    top = predict_image(loaded, metadata, image, top=3)
    assert sorted(p["label"] for p in top) == sorted(CLASSES)
    assert sum(p["probability"] for p in top) == pytest.approx(1, abs=1e-4)


def test_early_stopping_keeps_the_best_epoch(embedding, splits, tmp_path):
    backbone, features = embedding
    config = TransferConfig(epochs=60, batch_size=8, learning_rate=0.05, early_stopping_patience=2, seed=4)
    result = train_transfer(splits["train"], splits["val"], splits["test"], CLASSES, backbone, features, config,
                            tmp_path, RecordingSink())
    assert result.stopped_early and result.epochs_run == len(result.history) < 60
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses)) == len(result.history) - 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.json", "model.keras"]


def test_requests_that_cannot_work_get_a_sentence(embedding, splits, tmp_path):
    backbone, features = embedding
    train, val, test = splits["train"], splits["val"], splits["test"]
    with pytest.raises(ValueError, match="extract them first"):
        train_transfer(train, val, test, CLASSES, backbone, None, TransferConfig(), tmp_path, RecordingSink())
    with pytest.raises(ValueError, match="mode extract or finetune"):
        train_transfer(train, val, test, CLASSES, backbone, features, TransferConfig(mode="freeze"), tmp_path,
                       RecordingSink())
    with pytest.raises(ValueError, match="at least 2 classes"):
        train_transfer(train, val, test, CLASSES[:1], backbone, features, TransferConfig(), tmp_path, RecordingSink())
    with pytest.raises(ValueError, match="validation split has no images"):
        train_transfer(train, [], test, CLASSES, backbone, features, TransferConfig(), tmp_path, RecordingSink())
    tflite_like = type(backbone)(**{**backbone.__dict__, "kind": "tflite"})
    with pytest.raises(ValueError, match="Fine-tuning needs a Keras backbone"):
        train_transfer(train, val, test, CLASSES, tflite_like, None, TransferConfig(mode="finetune"), tmp_path,
                       RecordingSink())
    other = type(backbone)(**{**backbone.__dict__, "layer": "pool2"})
    with pytest.raises(ValueError, match="made by another backbone"):
        train_logreg(train, val, test, CLASSES, other, features, tmp_path, RecordingSink())
    with pytest.raises(ValueError, match="C must be a positive number"):
        train_logreg(train, val, test, CLASSES, backbone, features, tmp_path, RecordingSink(), C=0)
    assert not (tmp_path / "model.keras").exists()
