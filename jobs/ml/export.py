"""Exporting a trained classifier to the files other runtimes load (issue 14), and checking the result.

A VisionLab classifier is `model.keras` (raw 0..255 pixels in, softmax probabilities out, the
rescaling inside) plus `metadata.json`. People deploy elsewhere: TensorFlow Serving wants a
SavedModel, phones and microcontrollers TensorFlow Lite, everything else ONNX. `export_model`
writes one file per format, and every format keeps the model's contract, so nothing but the
pixels needs preparing wherever it runs:

- `savedmodel`: a zip of a TensorFlow SavedModel (folder `saved_model/`, with `visionlab.json`,
  the portable metadata, beside it). Signature `serving_default`: `pixels` float32
  (N, size, size, C) raw 0..255 -> `probabilities` float32 (N, classes).
- `tflite`: TensorFlow Lite, float32 throughout; same input and output.
- `tflite_float16`: the weights stored as float16 (about half the file), dequantized to float32
  when the interpreter loads them; input and output as `tflite`.
- `tflite_int8`: full-integer quantization calibrated on up to `MAX_CALIBRATION` of the model's
  own training images (decoded exactly as training decodes them). The input is uint8 holding the
  raw pixels themselves: the graph starts with a fake-quant node fixed to 0..255, which pins the
  input's quantization to scale 1, zero point 0 whatever the calibration images span (left to
  calibration, a dark dataset would give a scale below 1 and raw pixels would be misread). The
  output is uint8 probabilities: scale 1/256, zero point 0 (probability = value / 256), what
  integer-only accelerators expect; a float output would put a dequantize op back on the CPU.
- `onnx`: tf2onnx on the traced Keras call (opset `ONNX_OPSET`): `pixels` float32 NHWC raw
  0..255 -> `probabilities`; the metadata and the class names ride along as metadata_props.

What cannot be exported is refused with `ExportRefused`, a sentence for the user: a transfer
model whose backbone is a TensorFlow Lite file (the .tflite graph and the Keras head cannot be
merged into one graph), an operation a format cannot express (the converter's error translated,
naming the operation and the layer it came from), a model too large for the format (checked on
the parameter bytes before converting), too few calibration images. Every file is written
beside its final name and moved over it, and the SavedModel is built in a temporary folder, so a
failure or a cancel (`JobCancelled` from the sink, which propagates) leaves no file behind.

`verify_export` runs the exported file in its own runtime (tf.saved_model, the TFLite
interpreter, onnxruntime) next to the original Keras model on the test images and reports
accuracy, agreement, probability differences, size and single-image latency;
`jobs.ml.export_formats` holds the plain tables: the formats, `within_tolerance` (turns those figures into a
sentence when the export drifted too far) and `SNIPPETS`, the copy-paste code the model page shows for each.

No Django here, and no TensorFlow at import time either: the web process may import the
format names, thresholds and snippets; everything heavy is imported inside the functions.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from jobs.ml import formats
from jobs.ml.artifacts import (
    EMBEDDED_METADATA,
    METADATA_FILE,
    MODEL_FILE,
    backbone_record,
    portable,
    write_atomically,
)
from jobs.ml.export_formats import (
    FORMATS,
    INPUT_NAME,
    OUTPUT_NAME,
    SAVED_MODEL_DIR,
    TFLITE_FORMATS,
    ExportRefused,
    check_format,
)
from jobs.ml.progress import JobCancelled, ProgressSink

ONNX_OPSET = 17  # onnxruntime 1.13 and later, and most other ONNX runtimes of the last years, run it

MIN_CALIBRATION, MAX_CALIBRATION = 20, 200
CALIBRATION_SEED = 0

# Both TensorFlow Lite's flatbuffers and ONNX's protobuf stop at 2 GiB. The float32 weights are what
# counts even for float16 and int8 files: the converters build the float32 graph first.
MAX_BYTES: dict[str, int] = {fmt: 2**31 - 1 for fmt in (*TFLITE_FORMATS, "onnx")}
LIMIT_NAMES = {"onnx": "an ONNX file (protobuf's limit)"} | {fmt: "a TensorFlow Lite file" for fmt in TFLITE_FORMATS}

# verify_export: images per batch, and single-image runs for the latency (after the warm-up ones).
VERIFY_BATCH, LATENCY_WARMUP, LATENCY_RUNS = 32, 5, 30


# --- small helpers ---------------------------------------------------------------------------------

def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _gigabytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB"


def read_metadata(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / METADATA_FILE).read_text(encoding="utf-8"))


class _Progress:
    """The sink, with fractions that never go back (a converter may read the calibration data twice)."""

    def __init__(self, sink: ProgressSink):
        self.sink, self.fraction = sink, 0.0

    def __call__(self, fraction: float, message: str) -> None:
        self.fraction = max(self.fraction, min(1.0, fraction))
        self.sink.progress(self.fraction, message)


def _check_exportable(model_dir: Path, metadata: dict) -> None:
    fmt = formats.of_backbone(backbone_record(model_dir, metadata))
    if not fmt.exportable:
        raise ExportRefused(f"This model cannot be exported: its backbone is a {fmt.title} file, which runs in "
                            "its own interpreter before the Keras head, and the two cannot be merged into one "
                            f"graph. Download the backbone's {fmt.suffix} file and the model's .keras head instead.")


def _leaf_layers(model) -> Iterator:
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        yield layer


def _in_float32(model):
    """The model with every layer computing in float32: one trained in mixed precision otherwise exports
    float16 arithmetic (casts around every layer) to runtimes that would run it slowly or not at all.
    Its weights are float32 already; the config's dtype policies are rewritten and the weights copied."""
    import keras

    if all(getattr(layer.dtype_policy, "name", "float32") == "float32" for layer in _leaf_layers(model)):
        return model

    def rewrite(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
                return {**node, "config": {**node.get("config", {}), "name": "float32"}}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    rebuilt = keras.saving.deserialize_keras_object(rewrite(keras.saving.serialize_keras_object(model)),
                                                    safe_mode=True)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _load(model_dir: Path, metadata: dict):
    """The Keras model, in float32, and its input side and channels (checked against the metadata)."""
    import keras

    model = keras.models.load_model(Path(model_dir) / MODEL_FILE, compile=False)
    size, channels = int(metadata["image_size"]), int(metadata["channels"])
    if len(model.inputs) != 1 or tuple(model.input_shape[1:]) != (size, size, channels):
        raise ExportRefused(f"This model does not take one {size}x{size}x{channels} image as its metadata says, "
                            "so it cannot be exported.")
    return _in_float32(model), size, channels


def _check_size(model, fmt: str) -> None:
    if fmt not in MAX_BYTES:
        return
    weights = model.count_params() * 4
    if weights > MAX_BYTES[fmt]:
        raise ExportRefused(f"This model's weights take {_gigabytes(weights)} as float32, more than the "
                            f"{_gigabytes(MAX_BYTES[fmt] + 1)} that {LIMIT_NAMES[fmt]} can hold; export it as a "
                            "SavedModel instead.")


# --- naming what a converter could not convert -------------------------------------------------------

def _layer_names(model) -> set[str]:
    return {layer.name for layer in _leaf_layers(model)}


def _layer_in(scope: str, names: set[str]) -> str | None:
    """The deepest layer named in a TensorFlow name scope ("functional_1/smooth_1/resize/Op"): scopes add a
    "_1"-style suffix to the layer's own name when they repeat."""
    for part in reversed(scope.split("/")):
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in names:
                return candidate
    return None


def _operations(pairs: list[tuple[str, str]], model) -> str:
    """"ResizeBicubic (layer 'resize')" for each distinct (op, scope) pair, in order."""
    names, seen = _layer_names(model), []
    for op, scope in pairs:
        layer = _layer_in(scope, names)
        text = f"{op} (layer '{layer}')" if layer else op
        if text not in seen:
            seen.append(text)
    return ", ".join(seen[:5])


def _tflite_refusal(exc: Exception, fmt: str, model) -> ExportRefused:
    """The TensorFlow Lite converter's error as a sentence, naming the operations it could not express."""
    message = str(exc)
    title = FORMATS[fmt][0]
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    if ops:
        scopes = dict(re.findall(r'fused\["(\w+):", "([^"@]+)', message))
        listed = _operations([(op, scopes.get(op, "")) for op in ops], model)
        return ExportRefused(f"This model cannot be exported as {title}: TensorFlow Lite has no built-in operation "
                             f"for {listed}. Export it as a SavedModel, which keeps every TensorFlow operation.")
    errors = re.findall(r"error: (.+)", message)
    detail = errors[0].strip() if errors else _first_line(exc)
    return ExportRefused(f"The TensorFlow Lite converter could not export this model as {title}: {detail[:300]}")


# --- SavedModel --------------------------------------------------------------------------------------

def _saved_model(model, size: int, channels: int, directory: Path, pin_input_range: bool = False) -> None:
    """A SavedModel whose `serving_default` takes float32 raw pixels `pixels` and returns `probabilities`.

    `pin_input_range` puts a fake-quant node fixed to 0..255 in front (for the int8 conversion): it is
    the identity on whole pixel values and fixes the quantized input to scale 1, zero point 0.
    """
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec((None, size, size, channels), tf.float32, name=INPUT_NAME)

    def serve(pixels):
        if pin_input_range:
            pixels = tf.quantization.fake_quant_with_min_max_args(pixels, min=0.0, max=255.0, num_bits=8)
        return {OUTPUT_NAME: model(pixels, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[spec])
    archive.write_out(str(directory), verbose=False)


def _zip_saved_model(directory: Path, target: Path, metadata: dict) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() or not any(path.iterdir()):
                archive.write(path, f"{SAVED_MODEL_DIR}/{path.relative_to(directory).as_posix()}")
        archive.writestr(EMBEDDED_METADATA, json.dumps(portable(metadata), indent=1))


# --- TensorFlow Lite ---------------------------------------------------------------------------------

def calibration_sample(paths: list[str]) -> list[str]:
    """Up to MAX_CALIBRATION of the training images, drawn evenly at random (the list is often by class)."""
    order = np.random.default_rng(CALIBRATION_SEED).permutation(len(paths))[:MAX_CALIBRATION]
    return [paths[i] for i in sorted(order)]


def _check_calibration(calibration: list[str]) -> None:
    if len(calibration) < MIN_CALIBRATION:
        raise ExportRefused(f"An int8 export is calibrated on the model's own training images; this one has only "
                            f"{len(calibration)}, and at least {MIN_CALIBRATION} are needed.")


def _representative(paths: list[str], size: int, channels: int, progress: _Progress,
                    span: tuple[float, float]) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative dataset: each image decoded as training decodes it, one per batch."""
    import tensorflow as tf

    from jobs.ml.pipeline import load_image

    start, end = span

    def generate():
        for index, path in enumerate(paths):
            progress(start + (end - start) * index / len(paths),
                     f"Calibrating int8 on training image {index + 1}/{len(paths)}")
            try:
                pixels = load_image(tf.constant(path), size, channels).numpy()
            except (tf.errors.OpError, OSError):
                raise ExportRefused(f"The training image {Path(path).name} could not be read for calibration; "
                                    "check the dataset and try again.") from None
            yield [pixels[np.newaxis]]

    return generate


def _tflite_bytes(directory: Path, fmt: str, calibration: list[str], size: int, channels: int,
                  progress: _Progress, model) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(directory))
    if fmt == "tflite_float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(calibration, size, channels, progress, (0.3, 0.85))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        return converter.convert()
    except (ExportRefused, JobCancelled):
        raise
    except Exception as exc:  # ConverterError mostly; calibration failures come as RuntimeError
        raise _tflite_refusal(exc, fmt, model) from None


# --- ONNX --------------------------------------------------------------------------------------------

def _onnx_model(model, size: int, channels: int, metadata: dict):
    """The ONNX ModelProto: tf2onnx on the traced Keras call, its input and output renamed and checked."""
    try:
        import onnx
        import tf2onnx
    except ImportError:
        raise ExportRefused("ONNX export needs the tf2onnx and onnx packages, which this worker does not have; "
                            "install the worker's ML extra again.") from None
    import tensorflow as tf

    spec = tf.TensorSpec((None, size, size, channels), tf.float32, name=INPUT_NAME)
    traced = tf.function(lambda pixels: model(pixels, training=False), input_signature=[spec])
    try:
        proto, _ = tf2onnx.convert.from_function(traced, input_signature=[spec], opset=ONNX_OPSET)
    except Exception as exc:
        raise ExportRefused(f"The ONNX converter (tf2onnx) could not export this model: {_first_line(exc)}") \
            from None
    unknown = [(node.op_type, node.name) for node in proto.graph.node if not onnx.defs.has(node.op_type, node.domain)]
    if unknown:
        raise ExportRefused(f"This model cannot be exported as ONNX: tf2onnx has no ONNX equivalent for "
                            f"{_operations(unknown, model)}. Export it as a SavedModel, which keeps every "
                            "TensorFlow operation.")
    _rename_output(proto, OUTPUT_NAME)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.helper.set_model_props(proto, {"visionlab": json.dumps(portable(metadata)),
                                        "class_names": json.dumps(metadata["class_names"])})
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportRefused(f"The ONNX converter (tf2onnx) produced an invalid model: {_first_line(exc)}") from None
    return proto


def _rename_output(proto, name: str) -> None:
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if out == old else out for out in node.output]
        node.input[:] = [name if inp == old else inp for inp in node.input]
    proto.graph.output[0].name = name


# --- export ------------------------------------------------------------------------------------------

def export_model(model_dir: Path, fmt: str, out_dir: Path, calibration: list[str], sink: ProgressSink) -> Path:
    """Write the classifier in `model_dir` as one `fmt` file in `out_dir` (its name from FORMATS) and return it.

    `calibration`: training-split image paths, used by `tflite_int8` only (a sample of MAX_CALIBRATION).
    Raises ExportRefused (a sentence) when the model cannot be exported that way, JobCancelled when the
    sink does; neither leaves a file behind.
    """
    check_format(fmt)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    metadata = read_metadata(model_dir)
    _check_exportable(model_dir, metadata)
    if fmt == "tflite_int8":
        _check_calibration(calibration)
    title, name = FORMATS[fmt]
    progress = _Progress(sink)
    progress(0.0, "Loading the model")
    model, size, channels = _load(model_dir, metadata)
    _check_size(model, fmt)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as scratch:
        if fmt == "onnx":
            progress(0.1, "Converting to ONNX")
            proto = _onnx_model(model, size, channels, metadata)
            progress(0.9, "Writing the ONNX file")
            write_atomically(target, lambda tmp: tmp.write_bytes(proto.SerializeToString()))
        else:
            progress(0.1, "Tracing the model into a TensorFlow graph")
            directory = Path(scratch) / SAVED_MODEL_DIR
            _saved_model(model, size, channels, directory, pin_input_range=fmt == "tflite_int8")
            if fmt == "savedmodel":
                progress(0.7, "Zipping the SavedModel")
                write_atomically(target, lambda tmp: _zip_saved_model(directory, tmp, metadata))
            else:
                progress(0.3, f"Converting to {title}")
                sample = calibration_sample(calibration) if fmt == "tflite_int8" else []
                content = _tflite_bytes(directory, fmt, sample, size, channels, progress, model)
                progress(0.9, "Writing the TensorFlow Lite file")
                write_atomically(target, lambda tmp: tmp.write_bytes(content))
    try:
        progress(1.0, f"Exported as {title} ({target.stat().st_size / 1e6:.2f} MB)")
    except JobCancelled:
        target.unlink(missing_ok=True)  # cancelled at the last moment: a cancelled job leaves nothing
        raise
    return target


# --- running an exported file ------------------------------------------------------------------------

class _TFLiteRunner:
    """A .tflite file in its interpreter (LiteRT's when installed): float32 raw pixels in, float32 probabilities
    out. A uint8 input gets the raw pixels themselves, as the export promises; a uint8 output is dequantized."""

    def __init__(self, path: Path):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite's deprecation notice
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter  # noqa: N806 - a class
            self.interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = int(self.input["shape"][0])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        from jobs.ml.scaling import RAW

        if len(pixels) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(pixels.shape), strict=False)
            self.interpreter.allocate_tensors()
            self.batch = len(pixels)
        self.interpreter.set_tensor(self.input["index"], RAW.feed(pixels, self.input["dtype"]))
        self.interpreter.invoke()
        values = self.interpreter.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if np.dtype(values.dtype).kind in "iu" and scale:
            return (values.astype(np.float32) - zero) * np.float32(scale)
        return values.astype(np.float32)


class _OnnxRunner:
    def __init__(self, path: Path):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: pixels.astype(np.float32)})[0]


class _SavedModelRunner:
    def __init__(self, path: Path, scratch: Path):
        import tensorflow as tf

        with zipfile.ZipFile(path) as archive:
            archive.extractall(scratch)
        self.tf = tf
        self.signature = tf.saved_model.load(str(scratch / SAVED_MODEL_DIR)).signatures["serving_default"]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.signature(**{INPUT_NAME: self.tf.constant(pixels, self.tf.float32)})[OUTPUT_NAME].numpy()


def _runner(path: Path, fmt: str, stack: ExitStack) -> Callable[[np.ndarray], np.ndarray]:
    try:
        if fmt == "onnx":
            return _OnnxRunner(path)
        if fmt == "savedmodel":
            return _SavedModelRunner(path, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        return _TFLiteRunner(path)
    except Exception as exc:
        raise ExportRefused(f"The exported file {path.name} could not be loaded in its runtime: "
                            f"{_first_line(exc)}") from None


def _batches(items: list[tuple[str, int]], size: int, channels: int) -> Iterator[np.ndarray]:
    """The test images decoded as training and evaluation decode them, VERIFY_BATCH at a time."""
    import tensorflow as tf

    from jobs.ml.pipeline import load_image

    paths = tf.data.Dataset.from_tensor_slices([str(path) for path, _ in items])
    decoded = paths.map(lambda path: load_image(path, size, channels), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
    for batch in decoded.batch(VERIFY_BATCH).prefetch(2):
        yield batch.numpy()


def _median_ms(run: Callable[[np.ndarray], object], pixels: np.ndarray) -> float:
    for _ in range(LATENCY_WARMUP):
        run(pixels)
    times = []
    for _ in range(LATENCY_RUNS):
        started = time.perf_counter()
        run(pixels)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def verify_export(path: Path, fmt: str, model_dir: Path, test_items: list[tuple[str, int]],
                  sink: ProgressSink) -> dict:
    """The exported file run in its own runtime beside the original Keras model on `test_items`.

    Returns {"test_accuracy", "original_accuracy", "accuracy_change" (export minus original),
    "agreement" (fraction of images with the original's top-1 class), "max_prob_diff" (largest absolute
    difference in any class probability, uint8 outputs dequantized), "size" (bytes), "latency_ms" and
    "original_latency_ms" (median of LATENCY_RUNS single-image runs after warm-up, CPU), "images"}.
    """
    from jobs.ml.predict import load_classifier

    check_format(fmt)
    path, model_dir = Path(path), Path(model_dir)
    if not test_items:
        raise ExportRefused("There are no test images to check the export on.")
    progress = _Progress(sink)
    progress(0.0, f"Loading the {FORMATS[fmt][0]} export and the original model")
    original, metadata = load_classifier(model_dir)
    size, channels = int(metadata["image_size"]), int(metadata["channels"])
    labels = np.array([int(label) for _, label in test_items])
    with ExitStack() as stack:
        run = _runner(path, fmt, stack)
        exported, reference, first = [], [], None
        for batch in _batches(test_items, size, channels):
            first = batch[:1] if first is None else first
            exported.append(np.asarray(run(batch), np.float32))
            reference.append(np.asarray(original(batch, training=False), np.float32))
            done = sum(len(b) for b in exported)
            progress(0.85 * done / len(test_items), f"Checking the export on test image {done}/{len(test_items)}")
        progress(0.85, "Timing single-image predictions")
        latency = _median_ms(run, first)
        original_latency = _median_ms(lambda pixels: original(pixels, training=False), first)
    exported_probs, reference_probs = np.concatenate(exported), np.concatenate(reference)
    test_accuracy = float(np.mean(exported_probs.argmax(1) == labels))
    original_accuracy = float(np.mean(reference_probs.argmax(1) == labels))
    figures = {
        "test_accuracy": test_accuracy, "original_accuracy": original_accuracy,
        "accuracy_change": test_accuracy - original_accuracy,
        "agreement": float(np.mean(exported_probs.argmax(1) == reference_probs.argmax(1))),
        "max_prob_diff": float(np.abs(exported_probs - reference_probs).max()),
        "size": path.stat().st_size, "latency_ms": latency, "original_latency_ms": original_latency,
        "images": len(labels),
    }
    progress(1.0, f"Checked the export on {len(labels)} test images")
    return figures
