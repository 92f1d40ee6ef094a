"""Backbones as plain ML code: builtins, uploaded .keras/.h5/.tflite files, trained models, ImageNet weights.

Nothing is downloaded: builtins run with random weights, "ImageNet" weights are a local file
placed where Keras's cache keeps them, and the download address points at a file that does not
exist. Models are tiny except for one construction of each builtin.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from jobs.ml import backbones
from jobs.ml.backbones import (
    BUILTIN_BACKBONES,
    Backbone,
    WeightsMissing,
    builtin,
    from_trained_model,
    inspect_file,
    keras_feature_model,
    load_extractor,
    weights_path,
)

# Keras 3's own .keras writer converts variables with np.array(); NumPy 2 flags that. Not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

SIZE = 32


def tiny_model(size: int | None = SIZE, channels: int = 3, seed: int = 0):
    """A small conv net with named layers: pixels 0..255 -> ... -> pool2 (4x4x8 at 32) -> embedding (32) -> logits."""
    import keras

    init = keras.initializers.GlorotUniform
    inputs = keras.Input((size, size, channels), name="pixels")
    x = keras.layers.Rescaling(1 / 32, name="rescale")(inputs)  # features of order 0.1-1, like pretrained ones
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1", kernel_initializer=init(seed))(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2",
                            kernel_initializer=init(seed + 1))(x)
    x = keras.layers.MaxPooling2D(4, name="pool2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(32, activation="relu", name="embedding", kernel_initializer=init(seed + 2))(x)
    outputs = keras.layers.Dense(10, name="logits", kernel_initializer=init(seed + 3))(x)
    return keras.Model(inputs, outputs, name="tiny")


def save_tflite(model, path: Path, quantized: bool, samples: np.ndarray) -> Path:
    """Convert `model` with TFLiteConverter; quantized: int8 weights and activations, uint8 in, int8 out."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantized:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def pixels(count: int, size: int = SIZE, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth random images (blurred blocks of colour), 0..255 float32: more like photos than pure noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, 4, 4, channels))
    block = -(-size // 4)
    return np.repeat(np.repeat(coarse, block, axis=1), block, axis=2)[:, :size, :size].astype(np.float32)


# --- builtins ------------------------------------------------------------------------------------

def test_builtin_records_match_the_product_spec():
    assert set(BUILTIN_BACKBONES) == {"vgg16", "vgg16_conv", "mobilenet_v2"}
    vgg = builtin("vgg16")
    assert (vgg.layer, vgg.image_size, vgg.channels, vgg.feature_shape, vgg.feature_dim, vgg.weights) == (
        "fc2", 224, 3, (4096,), 4096, "imagenet")
    conv = builtin("vgg16_conv", "random")
    assert (conv.layer, conv.image_size, conv.feature_shape, conv.feature_dim) == ("block5_pool", 150, (4, 4, 512),
                                                                                    8192)
    mobile = builtin("mobilenet_v2")
    assert (mobile.image_size, mobile.feature_shape, mobile.kind, mobile.source) == (224, (1280,), "keras", "")
    assert mobile.cache_key() == {"backbone": "mobilenet_v2", "layer": "global_average_pooling2d",
                                  "weights": "imagenet", "image_size": 224, "input": {"kind": "raw"}}
    assert Backbone.from_dict(json.loads(json.dumps(conv.to_dict()))) == conv

    with pytest.raises(ValueError, match="no built-in backbone called 'resnet'.*vgg16, vgg16_conv, mobilenet_v2"):
        builtin("resnet")
    with pytest.raises(ValueError, match="'imagenet' or 'random'"):
        builtin("vgg16", "places365")
    with pytest.raises(ValueError, match="only takes 224x224"):
        builtin("vgg16", "random", image_size=150)


def test_builtin_extractors_give_the_documented_shapes():
    mobile = load_extractor(builtin("mobilenet_v2", "random"))
    features = mobile(pixels(2, 224))
    assert features.shape == (2, 1280) and features.dtype == np.float32
    # "random" weights are always the same random weights: their cached features stay valid.
    assert np.array_equal(load_extractor(builtin("mobilenet_v2", "random"))(pixels(2, 224)), features)

    conv = builtin("vgg16_conv", "random")
    model = keras_feature_model(conv)
    assert tuple(model.output.shape[1:]) == (4, 4, 512)
    batch = pixels(1, 150)
    assert load_extractor(conv)(batch).shape == (1, 8192)
    # The caffe preprocessing layer is keras.applications.vgg16.preprocess_input, exactly.
    import keras

    caffe = np.asarray(model.get_layer("caffe_preprocess")(batch))
    np.testing.assert_allclose(caffe, keras.applications.vgg16.preprocess_input(batch.copy()), atol=1e-4)


def test_vgg16_fc2_builds_with_its_dense_layers():
    started = time.perf_counter()
    model = keras_feature_model(builtin("vgg16", "random"))
    assert tuple(model.output.shape[1:]) == (4096,) and tuple(model.input.shape[1:]) == (224, 224, 3)
    assert model.count_params() == 138_357_544 - (4096 * 1000 + 1000) + 12  # minus predictions, plus the 1x1 caffe
    assert time.perf_counter() - started < 20


# --- ImageNet weights ----------------------------------------------------------------------------

def test_imagenet_weights_are_read_from_the_keras_cache_and_missing_ones_are_explained(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(backbones, "KERAS_APPLICATIONS_URL", (tmp_path / "offline").as_uri() + "/")
    backbone = builtin("mobilenet_v2", "imagenet", image_size=96)
    target = weights_path("mobilenet_v2", 96)
    assert target == tmp_path / "keras" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert weights_path("vgg16").name == "vgg16_weights_tf_dim_ordering_tf_kernels.h5"

    with pytest.raises(WeightsMissing) as missing:
        load_extractor(backbone)
    message = str(missing.value)
    assert "ImageNet weights for MobileNetV2 are not on this server" in message
    assert f"put it at {target}," in message
    assert (tmp_path / "offline").as_uri() + "/mobilenet_v2/" + target.name in message
    assert missing.value.path == target and not target.exists()

    # Where the address answers (here a local file:// one), Keras's download fills the cache.
    keras.utils.set_random_seed(123)
    reference = keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=None, input_shape=(96, 96, 3))
    published = tmp_path / "offline" / "mobilenet_v2" / target.name
    published.parent.mkdir(parents=True)
    reference.save(published)
    batch = pixels(2, 96)
    expected = reference.predict_on_batch(batch / 127.5 - 1.0)
    np.testing.assert_allclose(load_extractor(backbone)(batch), expected, rtol=1e-4, atol=1e-6)
    assert target.is_file() and sorted(p.name for p in target.parent.iterdir()) == [target.name]

    # An air-gapped site drops the file there itself (any copy that loads; no hash check): used as is.
    published.unlink()
    np.testing.assert_allclose(load_extractor(backbone)(batch), expected, rtol=1e-4, atol=1e-6)

    target.write_bytes(b"not weights")
    with pytest.raises(WeightsMissing, match="is not a usable copy of the ImageNet weights for MobileNetV2"):
        load_extractor(backbone)


# --- uploaded Keras files ------------------------------------------------------------------------

def test_an_uploaded_keras_file_gives_its_output_or_a_chosen_inner_layer(tmp_path):
    import keras

    model = tiny_model()
    path = tmp_path / "tiny.keras"
    model.save(path)

    default = inspect_file(path, name="backbones/7")
    assert (default.name, default.layer, default.image_size, default.channels, default.feature_shape,
            default.kind, default.source) == ("backbones/7", "logits", SIZE, 3, (10,), "keras", str(path))
    assert default.weights.startswith("sha256:") and len(default.weights) == 7 + 64

    inner = inspect_file(path, output="pool2", name="backbones/7")
    assert inner.feature_shape == (4, 4, 8) and inner.feature_dim == 128 and inner.cache_key() != default.cache_key()
    batch = pixels(3)
    expected = keras.Model(model.input, model.get_layer("pool2").output).predict_on_batch(batch).reshape(3, -1)
    np.testing.assert_allclose(load_extractor(inner)(batch), expected, rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError) as unknown:
        inspect_file(path, output="fc7")
    assert "has no layer called 'fc7'" in str(unknown.value) and "embedding" in str(unknown.value)


def test_a_layer_inside_a_nested_model_and_a_legacy_h5_file(tmp_path):
    import keras

    inner = tiny_model()
    outer = keras.Sequential([keras.Input((SIZE, SIZE, 3)), inner, keras.layers.Dense(2, activation="softmax")],
                             name="outer")
    outer.save(tmp_path / "outer.keras")
    outer.save(tmp_path / "outer.h5")  # the legacy HDF5 format
    batch = pixels(2)
    expected = keras.Model(inner.input, inner.get_layer("embedding").output).predict_on_batch(batch)

    nested = inspect_file(tmp_path / "outer.keras", output="embedding")  # found inside by its own name
    assert nested.layer == "tiny/embedding" and nested.feature_shape == (32,)
    assert inspect_file(tmp_path / "outer.keras", output="tiny/embedding") == nested
    np.testing.assert_allclose(load_extractor(nested)(batch), expected, rtol=1e-5, atol=1e-6)

    legacy = inspect_file(tmp_path / "outer.h5", output="embedding")
    assert legacy.layer.endswith("embedding") and legacy.feature_shape == (32,)
    np.testing.assert_allclose(load_extractor(legacy)(batch), expected, rtol=1e-5, atol=1e-6)


def test_uploads_that_cannot_be_backbones_get_a_sentence(tmp_path):
    import keras

    not_model = tmp_path / "notes.keras"
    not_model.write_bytes(b"hello")
    with pytest.raises(ValueError, match="notes.keras could not be opened as a Keras model"):
        inspect_file(not_model)
    with pytest.raises(ValueError, match="is a .keras, .h5 or .tflite file; model.onnx is none of these"):
        inspect_file(tmp_path / "model.onnx")

    vector = keras.Sequential([keras.Input((20,)), keras.layers.Dense(4)])
    vector.save(tmp_path / "vector.keras")
    with pytest.raises(ValueError, match="not an image"):
        inspect_file(tmp_path / "vector.keras")

    code = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Lambda(lambda x: x * 2)])
    code.save(tmp_path / "code.keras")
    with pytest.raises(ValueError, match="contains a Lambda layer"):
        inspect_file(tmp_path / "code.keras")

    weights_only = tmp_path / "weights.h5"
    import h5py

    with h5py.File(weights_only, "w") as handle:
        handle.attrs["layer_names"] = []
    with pytest.raises(ValueError, match="holds only weights"):
        inspect_file(weights_only)

    # Any-size inputs need an input size; a grayscale model reads one channel.
    tiny_model(size=None, channels=1).save(tmp_path / "any.keras")
    with pytest.raises(ValueError, match="accepts images of any size"):
        inspect_file(tmp_path / "any.keras", output="embedding")
    gray = inspect_file(tmp_path / "any.keras", output="pool2", input_size=64)
    assert (gray.image_size, gray.channels, gray.feature_shape) == (64, 1, (8, 8, 8))
    assert load_extractor(gray)(pixels(2, 64, channels=1)).shape == (2, 512)
    with pytest.raises(ValueError, match="between 16 and 1024"):
        inspect_file(tmp_path / "any.keras", input_size=4)


# --- TFLite --------------------------------------------------------------------------------------

def test_tflite_backbones_float_and_quantized_agree_with_the_keras_model(tmp_path):
    import keras

    model = tiny_model()
    samples = pixels(24, seed=1)
    batch = pixels(6, seed=2)
    expected = keras.Model(model.input, model.get_layer("embedding").output).predict_on_batch(batch)

    plain = save_tflite(model, tmp_path / "tiny.tflite", quantized=False, samples=samples)
    output = inspect_file(plain, name="backbones/3")
    assert (output.kind, output.feature_shape, output.image_size, output.channels) == ("tflite", (10,), SIZE, 3)
    inner = inspect_file(plain, output="embedding")  # a layer name found inside the tensor names
    assert inner.feature_shape == (32,) and "embedding" in inner.layer
    extractor = load_extractor(inner)
    np.testing.assert_allclose(extractor(batch), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(extractor(batch[:1]), expected[:1], rtol=1e-4, atol=1e-4)

    quantized = save_tflite(model, tmp_path / "tiny_int8.tflite", quantized=True, samples=samples)
    backbone = inspect_file(quantized, output="embedding")
    features = load_extractor(backbone)(batch)
    assert features.shape == (6, 32) and features.dtype == np.float32
    correlation = np.corrcoef(features.ravel(), expected.ravel())[0, 1]
    assert correlation > 0.95, correlation
    logits = load_extractor(inspect_file(quantized))(batch)  # int8 output, dequantized
    assert np.corrcoef(logits.ravel(), model.predict_on_batch(batch).ravel())[0, 1] > 0.95

    with pytest.raises(ValueError, match="no tensor called 'fc7'"):
        inspect_file(quantized, output="fc7")
    (tmp_path / "junk.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="could not be opened as a TensorFlow Lite model"):
        inspect_file(tmp_path / "junk.tflite")


# --- VisionLab-trained models --------------------------------------------------------------------

def test_a_trained_classifier_serves_its_penultimate_layer(tmp_path):
    import keras

    from jobs.ml.training import TrainConfig, _build, _save_for_use

    config = TrainConfig("mlp", image_size=28, channels=1)
    model = _build(config, 3, steps=100)
    _save_for_use(model, tmp_path, config, ["a", "b", "c"])

    backbone = from_trained_model(tmp_path, "models/12")
    assert (backbone.name, backbone.layer, backbone.image_size, backbone.channels, backbone.feature_shape) == (
        "models/12", "mlp/fc1", 28, 1, (128,))
    assert backbone.source == str(tmp_path / "model.keras")
    batch = pixels(4, 28, channels=1)
    zoo_model = model.get_layer("mlp")
    expected = keras.Model(zoo_model.input, zoo_model.get_layer("fc1").output).predict_on_batch(batch / 255.0)
    features = load_extractor(backbone)(batch)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)

    half = load_extractor(backbone, precision="bfloat16")(batch)  # the loaded model rebuilt in bfloat16
    assert np.linalg.norm(half - features) / np.linalg.norm(features) < 0.02

    (tmp_path / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="missing or damaged"):
        from_trained_model(tmp_path, "models/12")
