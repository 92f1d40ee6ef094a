"""Input conventions: each scaling does what the ecosystem it names does, in NumPy and as a Keras layer."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.ml.scaling import RAW, SCALINGS, InputScaling, parse

RNG = np.random.default_rng(0)
PIXELS = RNG.uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)


@pytest.mark.parametrize(("kind", "mode"), [("caffe", "caffe"), ("torch", "torch"), ("symmetric", "tf")])
def test_named_scalings_match_keras_applications_preprocessing(kind, mode):
    from keras.applications import imagenet_utils

    expected = imagenet_utils.preprocess_input(PIXELS.copy(), mode=mode)
    np.testing.assert_allclose(InputScaling(kind).apply(PIXELS), expected, rtol=1e-5, atol=1e-4)


def test_simple_ranges_and_explicit_statistics():
    np.testing.assert_allclose(InputScaling("unit").apply(PIXELS), PIXELS / 255.0, rtol=1e-6)
    assert RAW.apply(PIXELS) is not None and np.array_equal(RAW.apply(PIXELS), PIXELS)
    mine = InputScaling("mean_std", (10.0, 20.0, 30.0), (2.0, 4.0, 8.0))
    np.testing.assert_allclose(mine.apply(PIXELS), (PIXELS - [10, 20, 30]) / [2, 4, 8], rtol=1e-5)
    gray = InputScaling("mean_std", (127.5,), (127.5,)).apply(PIXELS[..., :1])
    np.testing.assert_allclose(gray, PIXELS[..., :1] / 127.5 - 1, atol=1e-6)


def test_statistics_from_metadata_get_their_common_names():
    assert InputScaling.from_statistics([127.5], [127.5]) == InputScaling("symmetric")
    assert InputScaling.from_statistics([0, 0, 0], [255, 255, 255]) == InputScaling("unit")
    assert InputScaling.from_statistics([0], [1]) == RAW
    assert InputScaling.from_statistics([123.675, 116.28, 103.53], [58.395, 57.12, 57.375]).kind == "mean_std"
    for value in (InputScaling("torch"), InputScaling("mean_std", (1.0,), (2.0,)), RAW):
        assert InputScaling.from_dict(value.to_dict()) == value
    assert InputScaling.from_dict(None) == RAW  # records from before scalings existed


def test_quantized_inputs_take_the_pixels_themselves_unless_told_otherwise():
    pixels = np.array([[0.0, 1.0, 127.0, 128.0, 255.0]], np.float32)
    assert RAW.feed(pixels, np.uint8, (1 / 128, 128)).tolist() == [[0, 1, 127, 128, 255]]
    assert RAW.feed(pixels, np.int8, (1 / 128, 0)).tolist() == [[-128, -127, -1, 0, 127]]
    # -1..1 quantized with the tensor's own (1/128, 128) is the same pixels again, within rounding.
    symmetric = InputScaling("symmetric").feed(pixels, np.uint8, (1 / 128, 128)).astype(int)
    assert np.abs(symmetric - [[0, 1, 127, 128, 255]]).max() <= 1
    # What VisionLab did before: 0..255 floats pushed through (1/128, 128): every pixel of 1 or more saturates.
    old = InputScaling("mean_std", (0.0,), (1.0,)).feed(pixels, np.uint8, (1 / 128, 128))
    assert old.tolist() == [[128, 255, 255, 255, 255]]
    assert InputScaling("unit").feed(pixels, np.float32).dtype == np.float32


def test_the_keras_layer_does_exactly_what_numpy_does():
    import keras

    for kind in ("unit", "symmetric", "caffe", "torch"):
        layer = InputScaling(kind).keras_layer(3)
        model = keras.Sequential([keras.Input((5, 5, 3)), layer])
        np.testing.assert_allclose(model.predict_on_batch(PIXELS), InputScaling(kind).apply(PIXELS), rtol=1e-5,
                                   atol=1e-4)
        assert not layer.trainable
    assert RAW.keras_layer(3) is None


def test_requests_are_checked_with_sentences():
    assert parse("auto") is None and parse(None) is None
    assert parse("symmetric") == InputScaling("symmetric")
    assert parse("mean_std", "127.5", "127.5, 127.5, 127.5") == InputScaling("mean_std", (127.5,), (127.5,) * 3)
    with pytest.raises(ValueError, match="needs both a mean and a std"):
        parse("mean_std", "127.5", "")
    with pytest.raises(ValueError, match="go with the mean_std scaling"):
        parse("unit", "1", "2")
    with pytest.raises(ValueError, match="one number, or three"):
        parse("mean_std", "a lot", "1")
    with pytest.raises(ValueError, match="positive number"):
        parse("mean_std", "0", "0")
    with pytest.raises(ValueError, match="one number each, or three"):
        parse("mean_std", "1,2", "1")
    with pytest.raises(ValueError, match="no input scaling called 'bgr'"):
        parse("bgr")
    with pytest.raises(ValueError, match="for colour \\(RGB\\) models"):
        InputScaling("caffe").affine(1)
    assert set(SCALINGS) == {"raw", "unit", "symmetric", "caffe", "torch", "mean_std"}
