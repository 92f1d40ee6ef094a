"""Proof that the real-model fixtures in `tests/real_models.py` are real and right.

Tests that feed VisionLab "a float MobileNet" are only worth something if that model really recognises photos when
fed the way it was trained (-1..1) and really fails when fed 0..255. These tests pin both, against the published
quantized model it was rebuilt from, and check that every format the suite hands out (.keras, .h5, float .tflite)
answers the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import real_models as rm

EGYPTIAN_CAT = "Egyptian cat"
HOTDOG = "hotdog, hot dog, red hot"
PHOTOS = [pytest.param(rm.CAT, EGYPTIAN_CAT, id="cat"), pytest.param(rm.HOT_DOG, HOTDOG, id="hot_dog")]


@pytest.fixture(scope="module")
def logits_model():
    """One float twin (logits) for the module: building is cheap, but there is no need to do it per test."""
    return rm.float_mobilenet("logits")


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real_models")


def _predict(model, batch: np.ndarray) -> np.ndarray:
    """One direct call (no `predict` loop): the fastest way to run a tiny batch, as NumPy."""
    import keras

    return keras.ops.convert_to_numpy(model(batch, training=False))


def test_labels_are_the_1001_imagenet_classes() -> None:
    """Index 0 is background, so argmax indices of the 1,001-way output read straight as labels."""
    names = rm.labels()
    assert len(names) == 1001 and names[0] == "background"
    assert EGYPTIAN_CAT in names and HOTDOG in names


@pytest.mark.parametrize(("photo", "expected"), PHOTOS)
def test_quant_model_names_the_photos_from_raw_pixels(photo: Path, expected: str) -> None:
    """The published model itself, fed raw uint8 as its card says: the ground truth the float twin must match."""
    logits = rm.quant_tensors(rm.photo_pixels(photo))[rm.LOGITS_TENSOR]
    assert logits.shape == (1001,)
    top = rm.top_k(logits)
    print(f"quant raw uint8 {photo.name}: {top}")
    assert top[0][0] == expected, top


def test_float_model_uses_stock_layers_only(logits_model) -> None:
    """No Lambda or custom layers, so a user could upload it and VisionLab could load it with safe_mode=True."""
    kinds = {type(layer).__name__ for layer in logits_model.layers}
    assert kinds <= {"InputLayer", "Conv2D", "DepthwiseConv2D", "ReLU", "AveragePooling2D", "Reshape"}, kinds
    assert logits_model.input_shape == (None, 160, 160, 3)
    assert logits_model.output_shape == (None, 1001)
    assert logits_model.count_params() > 1_300_000  # MobileNet v1 0.5 has about 1.34 M weights


@pytest.mark.parametrize(("photo", "expected"), PHOTOS)
def test_float_model_fed_minus_one_one_names_the_photo(logits_model, photo: Path, expected: str) -> None:
    """Fed (p - 127.5) / 127.5 the float twin answers like the quantized original, logit for logit."""
    pixels = rm.photo_pixels(photo)
    logits = _predict(logits_model, rm.to_minus_one_one(pixels)[None])[0]
    top = rm.top_k(logits)
    print(f"float -1..1 {photo.name}: {top}")
    assert top[0][0] == expected, top
    quant = rm.quant_tensors(pixels)[rm.LOGITS_TENSOR]
    correlation = float(np.corrcoef(logits, quant)[0, 1])
    print(f"correlation with quant logits: {correlation:.4f}")
    assert correlation > 0.9, correlation


@pytest.mark.parametrize(("photo", "expected"), PHOTOS)
def test_float_model_fed_0_255_does_not(logits_model, photo: Path, expected: str) -> None:
    """Fed raw 0..255 floats the same model must be wrong, or it could not catch a feeding bug in VisionLab."""
    logits = _predict(logits_model, rm.photo_pixels(photo).astype(np.float32)[None])[0]
    top = rm.top_k(logits)
    print(f"float 0..255 {photo.name}: {top}")
    assert expected not in [label for label, _ in top], top


def test_embedding_and_softmax_heads_match_the_quant_model() -> None:
    """The other two heads are the same network: a 512-d pool like the original's, and probabilities that sum to 1."""
    pixels = rm.photo_pixels(rm.CAT)
    batch = rm.to_minus_one_one(pixels)[None]
    embedding = _predict(rm.float_mobilenet("embedding"), batch)[0]
    assert embedding.shape == (512,)
    quant = rm.quant_tensors(pixels, (rm.EMBEDDING_TENSOR,))[rm.EMBEDDING_TENSOR]
    assert float(np.corrcoef(embedding, quant)[0, 1]) > 0.9
    probabilities = _predict(rm.float_mobilenet("softmax"), batch)[0]
    assert probabilities.shape == (1001,)
    assert abs(float(probabilities.sum()) - 1.0) < 1e-4
    assert rm.top_k(probabilities)[0][0] == EGYPTIAN_CAT


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_saved_model_reloads_in_safe_mode_with_same_outputs(logits_model, saved_dir: Path, fmt: str) -> None:
    """Both upload formats must load the way VisionLab loads user files and give the very same logits."""
    import keras

    path = rm.save_float_keras(saved_dir, "logits", fmt)
    assert path.suffix == f".{fmt}" and path.stat().st_size > 1_000_000
    loaded = keras.models.load_model(path, compile=False, safe_mode=True)
    batch = np.stack([rm.to_minus_one_one(rm.photo_pixels(p)) for p in (rm.CAT, rm.HOT_DOG)])
    np.testing.assert_allclose(_predict(loaded, batch), _predict(logits_model, batch), rtol=1e-5, atol=1e-4)


def test_float_tflite_names_the_photos(saved_dir: Path) -> None:
    """The float32 .tflite the suite hands out takes 1x160x160x3 floats in -1..1 and gives the same answers."""
    import tensorflow as tf

    path = rm.float_tflite(saved_dir, "logits")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.float32 and list(inp["shape"]) == [1, 160, 160, 3]
    assert inp["quantization"] == (0.0, 0)
    assert list(out["shape"]) == [1, 1001]
    for photo, expected in ((rm.CAT, EGYPTIAN_CAT), (rm.HOT_DOG, HOTDOG)):
        interpreter.set_tensor(inp["index"], rm.to_minus_one_one(rm.photo_pixels(photo))[None])
        interpreter.invoke()
        top = rm.top_k(interpreter.get_tensor(out["index"])[0])
        print(f"float tflite -1..1 {photo.name}: {top}")
        assert top[0][0] == expected, top
