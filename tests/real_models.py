"""Real pretrained models for tests: the published quantized MobileNet v1 and a float twin with its weights.

The suite must test VisionLab against real trained weights, never against networks it made up, because a made-up
network cannot tell a right pixel scaling from a wrong one. The repository holds one real published model,
`mobilenet_v1_0.5_160_quant.tflite` (uint8). VisionLab also feeds float models, so `float_mobilenet` rebuilds that
same network as a float32 Keras model from the .tflite file's own dequantized weights: it reads the flatbuffer
operator by operator, with no weights from anywhere else. It wants (160, 160, 3) floats in -1..1, the real values
the quantized graph's input stands for ((pixel - 128) / 128), so fed 0..255 it answers garbage, as a real float
MobileNet would.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "tests" / "data" / "pretrained"
QUANT_TFLITE = PRETRAINED / "mobilenet_v1_0.5_160_quant.tflite"
SAMPLES = ROOT / "jobs" / "ml" / "samples"
CAT = SAMPLES / "cat_720p.jpg"
HOT_DOG = SAMPLES / "hot_dog.jpg"
LABELS_FILE = SAMPLES / "imagenet_labels.txt"

# Tests read the logits, not the final uint8 softmax: the README reports that softmax as all zeros on some runtimes.
LOGITS_TENSOR = "MobilenetV1/Logits/SpatialSqueeze1"
EMBEDDING_TENSOR = "MobilenetV1/Logits/AvgPool_1a/AvgPool"

INPUT_SIZE = 160
OUTPUTS = ("logits", "softmax", "embedding")


@functools.cache
def labels() -> tuple[str, ...]:
    """The model's 1,001 class names, index 0 being "background", so that argmax indices read as words."""
    names = tuple(LABELS_FILE.read_text(encoding="utf-8").splitlines())
    assert len(names) == 1001, f"{LABELS_FILE} has {len(names)} lines, expected 1001"
    return names


def photo_pixels(path: Path, size: int = INPUT_SIZE) -> np.ndarray:
    """The photo as the model card says to feed it: RGB, resized bilinear to size x size, raw uint8 (H, W, 3)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)


def to_minus_one_one(pixels: np.ndarray) -> np.ndarray:
    """Raw 0..255 pixels to the -1..1 floats the float model was trained on, as (p - 127.5) / 127.5."""
    return ((pixels.astype(np.float32) - 127.5) / 127.5).astype(np.float32)


def top_k(scores: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The k best (label, score) pairs of one 1,001-way score vector, best first, for asserts and messages."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    best = np.argsort(-flat)[:k]
    return [(labels()[i], float(flat[i])) for i in best]


# ---------------------------------------------------------------------------------------------------------------
# Reading the quantized flatbuffer


@dataclass(frozen=True)
class _Step:
    """One layer of the float twin: what kind, its Keras options, and its dequantized weights (if any)."""

    kind: str  # "conv", "depthwise", "avgpool", "reshape", "softmax"
    name: str
    options: dict
    weights: tuple[np.ndarray, ...] = ()
    relu6: bool = False
    output_tensor: str = ""


_NUMPY_TYPES = {0: np.float32, 2: np.int32, 3: np.uint8, 9: np.int8, 7: np.int16, 4: np.int64}


def _constant(model, tensor) -> np.ndarray:
    """A constant tensor's stored values, in its own dtype and shape, read straight from the flatbuffer buffer."""
    buffer = model.buffers[tensor.buffer]
    if buffer.data is None:
        raise ValueError(f"tensor {tensor.name!r} has no inline data (offset buffers are not handled)")
    raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
    return np.frombuffer(raw, dtype=_NUMPY_TYPES[tensor.type]).reshape(tensor.shape).copy()


def _dequantize(model, tensor) -> np.ndarray:
    """Real float values of a quantized constant: (q - zero_point) * scale, per tensor or per channel."""
    values = _constant(model, tensor).astype(np.float64)
    quant = tensor.quantization
    if quant is None or quant.scale is None or len(quant.scale) == 0:
        return values.astype(np.float32)
    scale = np.asarray(quant.scale, dtype=np.float64)
    zero = np.asarray(quant.zeroPoint if quant.zeroPoint is not None else [0] * len(scale), dtype=np.float64)
    if len(scale) > 1:  # per-channel: broadcast along the quantized dimension
        shape = [1] * values.ndim
        shape[quant.quantizedDimension] = len(scale)
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values - zero) * scale).astype(np.float32)


def _layer_name(tensor_name: str, fallback: str, taken: set[str]) -> str:
    """A Keras-safe, unique layer name from a TFLite weight name, e.g. 'Conv2d_1_depthwise', so layers stay legible."""
    parts = tensor_name.split(";")[0].split("/")
    base = parts[-2] if len(parts) >= 2 else fallback
    base = re.sub(r"[^A-Za-z0-9_]", "_", base) or fallback
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


@functools.cache
def _steps() -> tuple[_Step, ...]:
    """The quantized graph, operator by operator, as float layers with dequantized weights (parsed once a process).

    Reads the flatbuffer with TensorFlow's generated schema rather than the interpreter: the interpreter does not
    expose builtin options (strides, padding, fused activation), and its XNNPACK delegate rewrites the op list.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(QUANT_TFLITE.read_bytes(), 0))
    (graph,) = model.subgraphs
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    paddings = {schema.Padding.SAME: "same", schema.Padding.VALID: "valid"}
    act = schema.ActivationFunctionType

    steps: list[_Step] = []
    taken: set[str] = set()
    for index, op in enumerate(graph.operators):
        kind = op_names[codes[op.opcodeIndex]]
        tensors = [graph.tensors[i] if i >= 0 else None for i in op.inputs]
        out_name = graph.tensors[op.outputs[0]].name.decode() if graph.tensors[op.outputs[0]].name else ""
        opts = op.builtinOptions
        fused = getattr(opts, "fusedActivationFunction", act.NONE)
        if fused not in (act.NONE, act.RELU6):
            raise NotImplementedError(f"op {index} {kind}: fused activation {fused} is not handled")
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            weight_t, bias_t = tensors[1], tensors[2]
            kernel = _dequantize(model, weight_t)
            bias = _dequantize(model, bias_t) if bias_t is not None else np.zeros(kernel.shape[0], np.float32)
            options = {
                "strides": (opts.strideH, opts.strideW),
                "padding": paddings[opts.padding],
                "dilation_rate": (opts.dilationHFactor, opts.dilationWFactor),
            }
            if kind == "CONV_2D":  # TFLite [out, h, w, in] -> Keras (h, w, in, out)
                kernel = kernel.transpose(1, 2, 3, 0)
                options |= {"filters": kernel.shape[-1], "kernel_size": kernel.shape[:2]}
                step_kind = "conv"
            else:  # TFLite [1, h, w, in * m] (channel-major) -> Keras (h, w, in, m)
                multiplier = opts.depthMultiplier
                _, h, w, cm = kernel.shape
                kernel = kernel.reshape(h, w, cm // multiplier, multiplier)
                options |= {"depth_multiplier": multiplier, "kernel_size": (h, w)}
                step_kind = "depthwise"
            name = _layer_name(weight_t.name.decode(), step_kind, taken)
            steps.append(_Step(step_kind, name, options, (kernel, bias), fused == act.RELU6, out_name))
        elif kind == "AVERAGE_POOL_2D":
            options = {
                "pool_size": (opts.filterHeight, opts.filterWidth),
                "strides": (opts.strideH, opts.strideW),
                "padding": paddings[opts.padding],
            }
            steps.append(_Step("avgpool", _layer_name(out_name, "avgpool", taken), options, (), fused == act.RELU6,
                               out_name))
        elif kind == "RESHAPE":
            target = tuple(int(d) for d in graph.tensors[op.outputs[0]].shape[1:])
            steps.append(_Step("reshape", _layer_name(out_name, "reshape", taken), {"target_shape": target},
                               output_tensor=out_name))
        elif kind == "SOFTMAX":
            steps.append(_Step("softmax", "Predictions", {}, output_tensor=out_name))
        else:
            raise NotImplementedError(f"op {index}: {kind} is not handled")
    return tuple(steps)


def float_mobilenet(output: str = "logits", batch_size: int | None = None) -> keras.Model:
    """The real MobileNet v1 0.5/160 as a float32 Keras model, built from the .tflite's dequantized weights.

    Stock layers only (Conv2D, DepthwiseConv2D, ReLU(max_value=6), AveragePooling2D, Reshape/Flatten, Softmax), so it
    saves as .keras and .h5 and loads with `safe_mode=True` like any user's upload. Input: (160, 160, 3) floats in
    -1..1. `output`: "logits" (1001, the default, since that is what the quantized model can be compared on),
    "softmax" (1001 probabilities) or "embedding" (the 512-d global average pool, flattened). Builds in about a second:
    the flatbuffer is parsed once a process, and each call returns a fresh model. `batch_size` fixes the batch
    dimension (1 for a .tflite shaped like the published one); None leaves it free, as uploaded models have it.
    """
    import keras

    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), batch_size=batch_size, dtype="float32", name="input")
    x = inputs
    weights: list[tuple[keras.layers.Layer, tuple[np.ndarray, ...]]] = []
    for step in _steps():
        if step.kind == "conv":
            layer = keras.layers.Conv2D(name=step.name, use_bias=True, **step.options)
        elif step.kind == "depthwise":
            layer = keras.layers.DepthwiseConv2D(name=step.name, use_bias=True, **step.options)
        elif step.kind == "avgpool":
            layer = keras.layers.AveragePooling2D(name=step.name, **step.options)
        elif step.kind == "reshape":
            layer = keras.layers.Reshape(name=step.name, **step.options)
        else:  # softmax
            if output == "softmax":
                x = keras.layers.Softmax(name=step.name)(x)
            continue
        x = layer(x)
        if step.weights:
            weights.append((layer, step.weights))
        if step.relu6:
            x = keras.layers.ReLU(max_value=6.0, name=f"{step.name}_relu6")(x)
        if step.output_tensor == EMBEDDING_TENSOR and output == "embedding":
            x = keras.layers.Flatten(name="embedding")(x)
            break
    for layer, values in weights:
        layer.set_weights(list(values))
    return keras.Model(inputs, x, name=f"mobilenet_v1_0.5_160_float_{output}")


def save_float_keras(folder: Path | str, output: str = "logits", fmt: str = "keras") -> Path:
    """Save the float twin as `<folder>/mobilenet_v1_0.5_160_float_<output>.<fmt>` (keras or h5) for upload tests."""
    if fmt not in ("keras", "h5"):
        raise ValueError(f"fmt must be 'keras' or 'h5', not {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mobilenet_v1_0.5_160_float_{output}.{fmt}"
    float_mobilenet(output).save(path)
    return path


def float_tflite(folder: Path | str, output: str = "logits") -> Path:
    """Convert the float twin to a float32 .tflite (input float32 1x160x160x3 in -1..1), for TFLite float tests."""
    import tensorflow as tf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A fixed batch of 1, as the published quantized model has, rather than a free batch dimension.
    converter = tf.lite.TFLiteConverter.from_keras_model(float_mobilenet(output, batch_size=1))
    path = folder / f"mobilenet_v1_0.5_160_float_{output}.tflite"
    path.write_bytes(converter.convert())
    return path


def quant_tensors(pixels: np.ndarray, names: tuple[str, ...] = (LOGITS_TENSOR,)) -> dict[str, np.ndarray]:
    """Run the published quantized model on raw uint8 pixels (H, W, 3) and return the named tensors dequantized.

    All tensors are preserved so that inner ones (the logits, the 512-d pool) can be read, not just the output: the
    float twin is checked against these real values.
    """
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(QUANT_TFLITE), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.asarray(pixels, dtype=np.uint8)[None])
    interpreter.invoke()
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    values: dict[str, np.ndarray] = {}
    for name in names:
        detail = details[name]
        scale, zero = detail["quantization"]
        raw = interpreter.get_tensor(detail["index"]).astype(np.float32)
        values[name] = ((raw - zero) * scale if scale else raw).reshape(-1)
    return values
