"""Model export (issue 14) as plain ML code: a really trained LeNet-5 out to every format, run in real runtimes.

The digits of tests.test_training (scikit-learn's real scans as PNG files) train LeNet-5 once; it
is exported as a SavedModel, three TensorFlow Lite files and ONNX, and each file is run in its
own runtime (tf.saved_model, the TFLite interpreter, onnxruntime) against the Keras original on
the test split. The limits people meet are real too: a layer TensorFlow Lite and ONNX cannot
express, too few calibration images, a model too large (the limit made small), a TFLite backbone.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml import export
from jobs.ml.export import export_model, verify_export
from jobs.ml.export_formats import FORMATS, SNIPPETS, ExportRefused, within_tolerance
from jobs.ml.predict import load_classifier, predict_image
from jobs.ml.progress import JobCancelled, NullSink
from jobs.ml.training import TrainConfig, train_classifier
from tests.sinks import RecordingSink
from tests.test_training import CLASSES, LENET, digits  # noqa: F401 - digits is a fixture used here

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

FLOAT_FORMATS = ("savedmodel", "tflite", "tflite_float16", "onnx")
TEST_IMAGES = 150  # of the digits' 270 test images: enough to see a 1% drift, quick in every runtime


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory) -> Path:  # noqa: F811 - the imported fixture
    """LeNet-5 trained once on the digits (about 0.95 test accuracy): its model folder."""
    workdir = tmp_path_factory.mktemp("lenet")
    train_classifier(digits["train"], digits["val"], digits["test"], CLASSES, LENET, workdir, NullSink())
    return workdir


@pytest.fixture(scope="module")
def exported(trained, digits, tmp_path_factory) -> dict[str, tuple[Path, dict, RecordingSink]]:  # noqa: F811
    """Every format exported and verified: fmt -> (file, figures, the export's sink)."""
    out_dir = tmp_path_factory.mktemp("exports")
    calibration = [path for path, _ in digits["train"]]
    results = {}
    for fmt in FORMATS:
        sink = RecordingSink()
        path = export_model(trained, fmt, out_dir, calibration, sink)
        results[fmt] = (path, verify_export(path, fmt, trained, digits["test"][:TEST_IMAGES], NullSink()), sink)
    return results


def tflite_details(path: Path) -> tuple[dict, dict, set]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    types = {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0], types


def save_custom(model, workdir: Path, classes: int = 3) -> Path:
    from jobs.ml.artifacts import save_model

    side, channels = model.input_shape[1], model.input_shape[3]
    workdir.mkdir(parents=True, exist_ok=True)
    save_model(model, workdir, {"class_names": [f"c{i}" for i in range(classes)], "image_size": side,
                                "channels": channels, "architecture": "custom"})
    return workdir


# --- every format -----------------------------------------------------------------------------------

def test_every_format_is_written_alone_and_reports_progress(exported):
    out_dir = exported["tflite"][0].parent
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(name for _, name in FORMATS.values())
    for fmt, (path, _, sink) in exported.items():
        assert path.name == FORMATS[fmt][1] and path.stat().st_size > 10_000
        assert sink.fractions == sorted(sink.fractions) and sink.fractions[0] == 0.0 and sink.fractions[-1] == 1.0
        assert sink.messages[-1].startswith(f"Exported as {FORMATS[fmt][0]} (")
    calibrating = [m for m in exported["tflite_int8"][2].messages if m.startswith("Calibrating int8")]
    assert calibrating[0] == "Calibrating int8 on training image 1/200" and len(calibrating) >= 200


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_the_export_predicts_like_the_original_in_its_own_runtime(exported, fmt):
    _, figures, _ = exported[fmt]
    assert figures["images"] == TEST_IMAGES
    assert figures["original_accuracy"] >= 0.85
    if fmt in FLOAT_FORMATS:
        assert figures["agreement"] >= 0.99 and abs(figures["accuracy_change"]) <= 0.01, figures
        assert figures["max_prob_diff"] < (0.02 if fmt == "tflite_float16" else 1e-4), figures
    else:
        assert figures["agreement"] >= 0.9 and figures["accuracy_change"] >= -0.03, figures
        assert figures["max_prob_diff"] < 0.25, figures
    assert figures["accuracy_change"] == pytest.approx(figures["test_accuracy"] - figures["original_accuracy"])
    assert figures["size"] == exported[fmt][0].stat().st_size
    assert 0 < figures["latency_ms"] < 1000 and figures["original_latency_ms"] > 0
    assert within_tolerance(fmt, figures) is None


def test_float16_is_about_half_and_int8_about_a_quarter_of_float32(exported):
    float32 = exported["tflite"][1]["size"]
    assert 0.4 <= exported["tflite_float16"][1]["size"] / float32 <= 0.65
    assert exported["tflite_int8"][1]["size"] / float32 < 0.4


def test_int8_takes_the_raw_pixels_as_uint8_and_gives_uint8_probabilities(exported):
    path = exported["tflite_int8"][0]
    pixels, probabilities, types = tflite_details(path)
    assert pixels["dtype"] == np.uint8 and pixels["quantization"] == (1.0, 0)  # uint8 value = the pixel itself
    assert probabilities["dtype"] == np.uint8 and probabilities["quantization"] == (1 / 256, 0)
    assert "float16" not in types
    float_pixels, float_out, float_types = tflite_details(exported["tflite"][0])
    assert float_pixels["dtype"] == np.float32 and list(float_pixels["shape_signature"]) == [-1, 28, 28, 1]
    assert float_out["dtype"] == np.float32 and float_types <= {"float32", "int32"}


def test_the_savedmodel_zip_serves_raw_pixels_and_carries_the_class_names(exported, trained):
    import tensorflow as tf

    path = exported["savedmodel"][0]
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"saved_model/saved_model.pb", "visionlab.json"} <= names
        assert json.loads(archive.read("visionlab.json"))["class_names"] == CLASSES
        archive.extractall(path.parent.parent / "unzipped")
    signature = tf.saved_model.load(str(path.parent.parent / "unzipped" / "saved_model")).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["pixels"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 28, 28, 1]
    assert set(signature.structured_outputs) == {"probabilities"}


def test_the_onnx_file_takes_nhwc_float_pixels_and_names_its_classes(exported):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported["onnx"][0]), providers=["CPUExecutionProvider"])
    (pixels,), (probabilities,) = session.get_inputs(), session.get_outputs()
    assert (pixels.name, pixels.type, pixels.shape) == ("pixels", "tensor(float)", ["batch", 28, 28, 1])
    assert (probabilities.name, probabilities.shape) == ("probabilities", ["batch", 10])
    assert json.loads(session.get_modelmeta().custom_metadata_map["class_names"]) == CLASSES


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_snippet_runs_on_a_photo_as_pasted(exported, trained, digits, fmt, tmp_path, monkeypatch):  # noqa: F811
    path, _, _ = exported[fmt]
    shutil.copy(path, tmp_path / path.name)
    photo = io.BytesIO()
    Image.open(digits["test"][0][0]).convert("RGB").resize((112, 112)).save(photo, "JPEG", quality=95)
    (tmp_path / "photo.jpg").write_bytes(photo.getvalue())
    model, metadata = load_classifier(trained)
    expected = predict_image(model, metadata, photo.getvalue(), top=1)[0]  # what the model page predicts
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(SNIPPETS[fmt], f"<snippet {fmt}>", "exec"), {"__name__": "__snippet__"})
    top, probability = printed.getvalue().split()
    assert top == expected["label"]  # a class name, or an index: the digits' names are their indices
    assert float(probability) == pytest.approx(expected["probability"], abs=0.05)


# --- progress, cancel and the limits people meet -----------------------------------------------------

def test_a_cancel_during_calibration_stops_the_export_and_leaves_no_file(trained, digits, tmp_path):  # noqa: F811
    sink = RecordingSink(cancel_on="Calibrating int8 on training image 5/")
    with pytest.raises(JobCancelled):
        export_model(trained, "tflite_int8", tmp_path, [p for p, _ in digits["train"]], sink)
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_at_the_last_report_removes_the_finished_file(trained, tmp_path):
    with pytest.raises(JobCancelled):
        export_model(trained, "onnx", tmp_path, [], RecordingSink(cancel_on="Exported as"))
    assert list(tmp_path.iterdir()) == []


def test_int8_needs_enough_calibration_images(trained, digits, tmp_path):  # noqa: F811
    few = [p for p, _ in digits["train"][:7]]
    with pytest.raises(ExportRefused) as refused:
        export_model(trained, "tflite_int8", tmp_path, few, RecordingSink())
    assert str(refused.value) == ("An int8 export is calibrated on the model's own training images; this one has "
                                  "only 7, and at least 20 are needed.")
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_calibration_image_is_named(trained, digits, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    calibration = [p for p, _ in digits["train"][:24]] + [str(broken)]
    with pytest.raises(ExportRefused, match="The training image broken.png could not be read for calibration"):
        export_model(trained, "tflite_int8", tmp_path / "out", calibration, RecordingSink())
    assert list((tmp_path / "out").iterdir()) == []


@pytest.fixture(scope="module")
def smoothing_model(tmp_path_factory) -> Path:
    """A model with an antialiased Resizing layer: TensorFlow's ScaleAndTranslate, in neither TFLite nor ONNX."""
    import keras

    pixels = keras.Input((28, 28, 1), name="pixels")
    x = keras.layers.Resizing(14, 14, antialias=True, name="smooth")(pixels)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(pixels, keras.layers.Dense(3, activation="softmax", name="predictions")(x))
    return save_custom(model, tmp_path_factory.mktemp("smooth"))


@pytest.mark.parametrize("fmt", ["tflite", "tflite_int8", "onnx"])
def test_an_operation_the_format_lacks_is_named_with_its_layer(smoothing_model, digits, fmt, tmp_path):  # noqa: F811
    with pytest.raises(ExportRefused) as refused:
        export_model(smoothing_model, fmt, tmp_path, [p for p, _ in digits["train"][:30]], RecordingSink())
    message = str(refused.value)
    assert "ScaleAndTranslate (layer 'smooth')" in message and "SavedModel" in message, message
    assert list(tmp_path.iterdir()) == []


def test_the_savedmodel_keeps_an_operation_tflite_lacks(smoothing_model, digits, tmp_path):  # noqa: F811
    path = export_model(smoothing_model, "savedmodel", tmp_path, [], RecordingSink())
    figures = verify_export(path, "savedmodel", smoothing_model, digits["test"][:20], NullSink())
    assert figures["agreement"] == 1.0 and figures["max_prob_diff"] < 1e-5


def test_a_converter_failure_without_an_operation_is_still_a_sentence(trained, tmp_path, monkeypatch):
    from tensorflow.lite.python import lite
    from tensorflow.lite.python.convert_phase import ConverterError

    def fail(self):
        raise ConverterError("<unknown>:0: error: something the converter did not like\nmore details")

    monkeypatch.setattr(lite.TFLiteSavedModelConverterV2, "convert", fail)  # what from_saved_model returns
    with pytest.raises(ExportRefused) as refused:
        export_model(trained, "tflite_float16", tmp_path, [], RecordingSink())
    assert str(refused.value) == ("The TensorFlow Lite converter could not export this model as TensorFlow Lite, "
                                  "float16 weights: something the converter did not like")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_model_too_large_for_the_format_is_refused_before_converting(trained, fmt, tmp_path, monkeypatch):
    monkeypatch.setitem(export.MAX_BYTES, fmt, 100_000)  # LeNet-5's 44,426 weights take 177,704 bytes
    sink = RecordingSink()
    with pytest.raises(ExportRefused) as refused:
        export_model(trained, fmt, tmp_path, [], sink)
    assert "This model's weights take 0.0 GB as float32, more than the 0.0 GB that" in str(refused.value)
    assert "export it as a SavedModel instead" in str(refused.value)
    assert sink.messages == ["Loading the model"] and list(tmp_path.iterdir()) == []


def test_a_transfer_model_on_a_tflite_backbone_is_refused_in_every_format(trained, tmp_path):
    model_dir = tmp_path / "transfer"
    shutil.copytree(trained, model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["backbone"] = {"name": "backbones/1", "layer": "features", "weights": "sha256:0", "image_size": 28,
                            "channels": 1, "feature_shape": [8], "kind": "tflite", "source": "backbone.tflite"}
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    for fmt in FORMATS:
        with pytest.raises(ExportRefused, match="its backbone is a TensorFlow Lite file"):
            export_model(model_dir, fmt, tmp_path / "out", [], RecordingSink())
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_is_refused_with_the_choices(trained, tmp_path):
    with pytest.raises(ExportRefused, match="no export format called 'coreml'; choose one of savedmodel, tflite"):
        export_model(trained, "coreml", tmp_path, [], RecordingSink())


def test_a_mixed_precision_model_is_exported_in_float32(tmp_path):
    import keras

    from jobs.ml.training import _build

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _build(TrainConfig("mlp", image_size=16, channels=1), 3, steps=100)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model_dir = save_custom(model, tmp_path / "mixed")
    path = export_model(model_dir, "tflite", tmp_path / "out", [], RecordingSink())
    _, _, types = tflite_details(path)
    assert "float16" not in types
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype(np.float32)
    exported = export._TFLiteRunner(path)(pixels)
    np.testing.assert_allclose(exported, np.asarray(model(pixels), np.float32), atol=5e-3)


# --- tolerances --------------------------------------------------------------------------------------

def test_within_tolerance_names_what_drifted():
    good = {"agreement": 0.995, "accuracy_change": -0.005, "max_prob_diff": 1e-6, "images": 200}
    assert within_tolerance("tflite", good) is None
    assert within_tolerance("tflite_int8", {**good, "agreement": 0.96, "accuracy_change": -0.02,
                                            "max_prob_diff": 0.2}) is None
    assert within_tolerance("tflite_int8", {**good, "agreement": 0.9, "accuracy_change": -0.05}) == (
        "The TensorFlow Lite, full integer (uint8 in and out) export drifted from the original model: it gives the "
        "original's top class on only 90.0% of the 200 test images (at least 95% is expected); its test accuracy "
        "is 5.0 points lower (at most 3 is expected).")
    assert within_tolerance("onnx", {**good, "max_prob_diff": 0.3}) == (
        "The ONNX export drifted from the original model: its probabilities differ from the original's by up to 0.3 "
        "(at most 0.001 is expected).")


# --- a transfer model with its real pretrained backbone inside ---------------------------------------

TRANSFER_FORMATS = ("tflite_float16", "tflite_int8", "onnx")  # the SavedModel and float32 TFLite follow float16's path
SHAPES_PER_CLASS, SHAPES_TEST, SHAPES_VAL = 30, 10, 5  # per class: 10 test, 5 validation, 15 training images
BYTES_PER_WEIGHT = {"tflite_float16": 2, "tflite_int8": 1, "onnx": 4}


@pytest.fixture(scope="module")
def mobilenet_transfer(tmp_path_factory) -> tuple[Path, dict[str, list[tuple[str, int]]]]:
    """A transfer head (extract mode) on the real MobileNet v1 0.5/160 embedding, uploaded as a .keras file that
    wants -1..1, learning circles, squares and triangles at 160 px: (its model folder, the splits)."""
    from jobs.ml.backbones import inspect_file
    from jobs.ml.datasets.synthetic import SHAPES, make_shapes_classification_zip
    from jobs.ml.features import FeatureStore
    from jobs.ml.scaling import InputScaling
    from jobs.ml.transfer import TransferConfig, train_transfer
    from tests.real_models import INPUT_SIZE, save_float_keras

    root = tmp_path_factory.mktemp("mobilenet-transfer")
    archive = make_shapes_classification_zip(root / "shapes.zip", per_class=SHAPES_PER_CLASS, size=INPUT_SIZE)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root / "images")
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    for label, shape in enumerate(SHAPES):
        paths = sorted(str(p) for p in (root / "images" / "shapes" / shape).iterdir())
        splits["test"] += [(p, label) for p in paths[:SHAPES_TEST]]
        splits["val"] += [(p, label) for p in paths[SHAPES_TEST:SHAPES_TEST + SHAPES_VAL]]
        splits["train"] += [(p, label) for p in paths[SHAPES_TEST + SHAPES_VAL:]]
    backbone = inspect_file(save_float_keras(root / "upload", output="embedding"), name="backbones/1",
                            scaling=InputScaling("symmetric"))
    items = [(path, path) for split in splits.values() for path, _ in split]
    features, _ = FeatureStore(root / "features").ensure("shapes", items, backbone, NullSink(), precision="float32")
    config = TransferConfig(mode="extract", epochs=20, batch_size=16, learning_rate=1e-3, seed=0)
    train_transfer(splits["train"], splits["val"], splits["test"], list(SHAPES), backbone, features, config,
                   root / "model", NullSink())
    return root / "model", splits


def test_a_transfer_model_exports_with_its_real_pretrained_backbone_inside(mobilenet_transfer, tmp_path):
    import collections

    import keras
    import onnx

    model_dir, splits = mobilenet_transfer
    model = keras.models.load_model(model_dir / "model.keras", compile=False)
    weights = model.count_params()  # about 945,000: 813,000 of them MobileNet's, 132,000 the head's
    head = model.get_layer("head_dense").count_params() + model.get_layer("predictions").count_params()
    assert weights > 6 * head
    calibration = [path for path, _ in splits["train"]]
    for fmt in TRANSFER_FORMATS:
        path = export_model(model_dir, fmt, tmp_path, calibration, RecordingSink())
        figures = verify_export(path, fmt, model_dir, splits["test"], NullSink())
        assert figures["images"] == 3 * SHAPES_TEST and figures["original_accuracy"] >= 0.8, figures
        # Every weight is in the file, the backbone's too: the head alone would be a seventh of this.
        assert figures["size"] >= BYTES_PER_WEIGHT[fmt] * weights, (fmt, figures["size"], weights)
        if fmt == "onnx":
            nodes = onnx.load(str(path)).graph.node
            convolutions = [node for node in nodes if node.op_type == "Conv"]
            depthwise = [node for node in convolutions
                         if any(a.name == "group" and a.i > 1 for a in node.attribute)]
            # 1 input scaling + MobileNet's stem + 13 depthwise-separable blocks (depthwise + pointwise)
            assert (len(convolutions), len(depthwise)) == (28, 13), collections.Counter(n.op_type for n in nodes)
        else:
            interpreter = export._TFLiteRunner(path).interpreter
            ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
            assert (ops["CONV_2D"], ops["DEPTHWISE_CONV_2D"]) == (15, 13), ops
            if fmt == "tflite_int8":  # the -1..1 scaling is inside: the uint8 input is still the raw pixel
                assert interpreter.get_input_details()[0]["quantization"] == (1.0, 0)
        if fmt == "tflite_int8":
            assert figures["agreement"] >= 0.9 and figures["accuracy_change"] >= -0.05, figures
        else:
            assert figures["agreement"] >= 0.99 and within_tolerance(fmt, figures) is None, figures
