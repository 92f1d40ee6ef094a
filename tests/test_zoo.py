"""The model zoo: exact reference parameter counts, buildable defaults, user-readable errors,
layer tables, save/reload, and a registry the web process can import without TensorFlow."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobs.ml import zoo
from jobs.ml.describe import describe
from jobs.ml.zoo import ARCHITECTURES, SCRATCH, build_model, summarize

# Keras 3's own .keras writer converts variables with np.array(); NumPy 2 flags that. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["mlp", "lenet5", "cnn"]
VGG = ["vgg16", "vgg19"]


def images(shape, batch: int = 2, seed: int = 0) -> np.ndarray:
    """Random float images already scaled to 0..1, as the training pipeline feeds them."""
    return np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)


def layer_table(model) -> list[tuple[str, str, int]]:
    return [(layer.name, type(layer).__name__, layer.count_params()) for layer in model.layers]


@pytest.fixture(scope="module")
def vgg_tables():
    """VGG16/19 at 224x224x3 / 1000, ours and keras.applications', each built once (~140M parameters
    apiece). Only their layer tables are kept, so at most one such model is in memory at a time."""
    import keras

    tables = {}
    for name, application in (("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)):
        arch = ARCHITECTURES[name]
        ours = build_model(name, arch.reference_input_shape, arch.reference_classes)
        tables[name] = {"ours": layer_table(ours), "ours_total": ours.count_params(), "summary": summarize(ours)}
        del ours
        gc.collect()
        theirs = application(weights=None, include_top=True, classes=1000)  # weights=None: nothing downloaded
        tables[name].update(theirs=layer_table(theirs), theirs_total=theirs.count_params())
        del theirs
        gc.collect()
    return tables


def test_importing_the_registry_does_not_load_tensorflow():
    code = ("import sys, jobs.ml.zoo as z; assert z.ARCHITECTURES['lenet5'].reference_params == 44426; "
            "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_registry_is_complete_and_consistent():
    assert set(SCRATCH) == {"mlp", "lenet5", "cnn", "vgg16", "vgg19"}
    assert set(ARCHITECTURES) - set(SCRATCH) == {"transfer", "vgg16_transfer", "mobilenet_v2_transfer", "logreg"}
    expected = {"mlp": 101_770, "lenet5": 44_426, "cnn": 10_736_458, "vgg16": 138_357_544, "vgg19": 143_667_240}
    for name, arch in SCRATCH.items():
        assert arch.name == name and arch.title and arch.description.endswith(".")
        assert arch.reference_params == expected[name]
        assert arch.min_image_size <= arch.default_image_size <= arch.reference_input_shape[0]
        assert arch.default_channels in (1, 3)
    assert ARCHITECTURES["lenet5"].title == "LeNet-5"
    assert (ARCHITECTURES["mlp"].default_image_size, ARCHITECTURES["lenet5"].default_image_size) == (28, 28)
    assert ARCHITECTURES["cnn"].default_image_size == 128 and "CPU" in ARCHITECTURES["cnn"].description
    assert ARCHITECTURES["vgg16"].default_image_size == ARCHITECTURES["vgg19"].default_image_size == 224


@pytest.mark.parametrize("name", SMALL)
def test_small_architectures_have_their_exact_reference_parameter_count(name):
    arch = ARCHITECTURES[name]
    model = build_model(name, arch.reference_input_shape, arch.reference_classes)

    assert model.count_params() == arch.reference_params
    assert model.output_shape == (None, arch.reference_classes)


@pytest.mark.parametrize("name", VGG)
def test_vgg_matches_its_reference_count_and_keras_applications_layer_by_layer(vgg_tables, name):
    table = vgg_tables[name]

    assert table["ours_total"] == table["theirs_total"] == ARCHITECTURES[name].reference_params
    ours = [(n, kind, params) for n, kind, params in table["ours"] if kind != "InputLayer"]
    theirs = [(n, kind, params) for n, kind, params in table["theirs"] if kind != "InputLayer"]
    assert ours == theirs
    summary = table["summary"]
    assert summary["total_params"] == summary["trainable_params"] == table["ours_total"]
    assert summary["layers"][-4]["output_shape"] == "(None, 25088)"  # flatten of 7x7x512


def test_lenet5_layer_table_is_the_one_the_seed_prints():
    summary = summarize(build_model("lenet5", (28, 28, 1), 10))

    assert [(row["type"], row["output_shape"], row["params"]) for row in summary["layers"]] == [
        ("Conv2D", "(None, 24, 24, 6)", 156),
        ("MaxPooling2D", "(None, 12, 12, 6)", 0),
        ("Conv2D", "(None, 8, 8, 16)", 2416),
        ("MaxPooling2D", "(None, 4, 4, 16)", 0),
        ("Flatten", "(None, 256)", 0),
        ("Dense", "(None, 120)", 30840),
        ("Dense", "(None, 84)", 10164),
        ("Dense", "(None, 10)", 850),
    ]
    assert (summary["total_params"], summary["trainable_params"], summary["non_trainable_params"]) == (44426, 44426, 0)


def test_cnn_puts_batch_normalization_after_every_conv_and_dense_and_ends_in_a_softmax():
    model = build_model("cnn", (32, 32, 3), 5)
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    kinds = [type(layer).__name__ for layer in layers]

    assert kinds.count("Conv2D") == 9 and kinds.count("MaxPooling2D") == 5
    assert [layer.filters for layer, kind in zip(layers, kinds, strict=True) if kind == "Conv2D"] == [
        64, 64, 128, 128, 256, 256, 512, 512, 1024]
    for index, kind in enumerate(kinds[:-1]):
        if kind in ("Conv2D", "Dense"):
            assert kinds[index + 1] == "BatchNormalization", layers[index].name
            assert layers[index].activation.__name__ == "relu"
    assert "GlobalAveragePooling2D" in kinds
    head = layers[-1]
    assert kinds[-1] == "Dense" and head.units == 5 and head.activation.__name__ == "softmax"
    summary = summarize(model)
    assert summary["non_trainable_params"] == 8448  # BatchNormalization moving means and variances


@pytest.mark.parametrize("name", list(SCRATCH))
def test_every_architecture_builds_at_its_default_size_and_outputs_a_softmax(name):
    arch = ARCHITECTURES[name]
    shape = (arch.default_image_size, arch.default_image_size, arch.default_channels)
    model = build_model(name, shape, 3, seed=1)

    probabilities = np.asarray(model(images(shape), training=False))

    assert probabilities.shape == (2, 3)
    assert np.all(probabilities >= 0) and np.all(probabilities <= 1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    summary = summarize(model)
    names = [row["name"] for row in summary["layers"]]
    assert len(names) == len(set(names))
    assert summary["total_params"] == model.count_params() == sum(row["params"] for row in summary["layers"])
    assert summary["trainable_params"] + summary["non_trainable_params"] == summary["total_params"]
    del model
    gc.collect()


@pytest.mark.parametrize("name", list(SCRATCH))
def test_the_minimum_image_size_builds_and_one_pixel_less_is_refused(name):
    arch = ARCHITECTURES[name]
    size, channels = arch.min_image_size, arch.default_channels

    model = build_model(name, (size, size, channels), 2)
    assert model.output_shape == (None, 2)
    if size > 1:
        with pytest.raises(ValueError, match=f"at least {size}x{size} pixels"):
            build_model(name, (size - 1, size - 1, channels), 2)


def test_too_small_an_image_is_refused_with_a_sentence_for_the_user():
    with pytest.raises(ValueError) as error:
        build_model("lenet5", (15, 15, 1), 10)
    assert str(error.value) == "LeNet-5 needs images of at least 16x16 pixels; 15x15 is too small."

    with pytest.raises(ValueError, match="VGG16 needs images of at least 32x32 pixels; 32x31 is too small"):
        build_model("vgg16", (31, 32, 3), 10)  # one side too short is enough


@pytest.mark.parametrize(("name", "shape", "classes", "message"), [
    ("resnet", (28, 28, 1), 10, "no architecture called 'resnet'; choose one of cnn, lenet5, logreg, mlp, "
                                "mobilenet_v2_transfer, transfer, vgg16, vgg16_transfer, vgg19"),
    ("mlp", (28, 28), 10, "three positive whole numbers"),
    ("mlp", (28, 28, 0), 10, "three positive whole numbers"),
    ("mlp", (28.5, 28, 1), 10, "three positive whole numbers"),
    ("mlp", (28, 28, 1), 1, "at least 2 classes"),
    ("mlp", (28, 28, 1), True, "at least 2 classes"),
    ("mlp", (28, 28, 1), 2.5, "at least 2 classes"),
])
def test_bad_requests_are_refused_before_building(name, shape, classes, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, shape, classes)


def test_a_seed_makes_the_initial_weights_reproducible():
    first, again, other = (build_model("lenet5", (28, 28, 1), np.int64(10), seed=s) for s in (7, 7, 8))

    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])
    # Layers get distinct seeds: a seeded initializer repeats its values, so same-shaped layers would match.
    vgg = build_model("vgg16", (32, 32, 3), 2, seed=7)
    twins = [vgg.get_layer(n).kernel.numpy() for n in ("block3_conv2", "block3_conv3")]
    assert twins[0].shape == twins[1].shape and not np.array_equal(*twins)


@pytest.mark.parametrize(("name", "shape"), [("mlp", (28, 28, 1)), ("lenet5", (28, 28, 1)), ("cnn", (32, 32, 3))])
def test_a_saved_model_reloads_with_identical_predictions(tmp_path, name, shape):
    import keras

    model = build_model(name, shape, 4, seed=3)
    x = images(shape, batch=3)
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)

    reloaded = keras.models.load_model(path)

    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)
    assert layer_table(reloaded) == layer_table(model)


def test_describe_uses_the_reference_shape_by_default_and_caches_a_copy():
    describe.cache_clear()
    result = describe("lenet5")

    assert result["architecture"] == "lenet5"
    assert result["input_shape"] == [28, 28, 1] and result["classes"] == 10
    assert result["total_params"] == 44_426 and result["layers"][0]["output_shape"] == "(None, 24, 24, 6)"

    result["layers"].clear()  # a caller editing its answer must not corrupt the cache
    again = describe("lenet5", [28, 28, 1], 10)
    assert len(again["layers"]) == 8
    assert describe.cache_info().hits == 1

    other = describe("lenet5", (32, 32, 3), 4)
    assert other["input_shape"] == [32, 32, 3] and other["classes"] == 4
    assert other["layers"][0]["output_shape"] == "(None, 28, 28, 6)"
    assert other["total_params"] == summarize(build_model("lenet5", (32, 32, 3), 4)).get("total_params")


def test_describe_refuses_bad_requests_with_the_same_sentences():
    with pytest.raises(ValueError, match="LeNet-5 needs images of at least 16x16 pixels; 8x8 is too small"):
        describe("lenet5", (8, 8, 1))
    with pytest.raises(ValueError, match="no architecture called"):
        describe("alexnet")


def test_the_architecture_lookup_names_the_valid_choices():
    assert zoo.get_architecture("vgg19").title == "VGG19"
    with pytest.raises(ValueError, match="choose one of cnn, lenet5, logreg, mlp, mobilenet_v2_transfer, transfer, "
                                         "vgg16, vgg16_transfer, vgg19"):
        zoo.get_architecture(None)


@pytest.mark.parametrize("name", ["vgg16_transfer", "mobilenet_v2_transfer"])
def test_the_transfer_presets_have_their_reference_parameter_counts(name):
    """Backbone (random weights: the count does not depend on them) plus Dense(256), Dropout, softmax."""
    arch = ARCHITECTURES[name]
    table = describe(name)

    assert table["total_params"] == arch.reference_params
    assert table["input_shape"] == list(arch.reference_input_shape) and table["classes"] == 2
    assert [row["name"] for row in table["layers"]][-3:] == ["head_dense", "head_dropout", "predictions"]
    # The head alone, as seed 003 computes it: features x 256 + 256, then 257 x 2.
    features = 4 * 4 * 512 if name == "vgg16_transfer" else 1280
    assert sum(row["params"] for row in table["layers"][-3:]) == features * 256 + 256 + 257 * 2
    if name == "vgg16_transfer":
        # Seed 003's 16,812,610, plus the 12 frozen weights of a 1x1 convolution that does VGG's
        # caffe preprocessing (RGB to BGR, mean subtraction) inside the model.
        assert table["total_params"] == 14_714_688 + 2_097_408 + 514 + 12
