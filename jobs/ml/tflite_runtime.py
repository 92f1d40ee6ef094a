"""The TensorFlow Lite runtime: everything that opens and runs a `.tflite` file.

The interpreter (LiteRT's when installed, TensorFlow's otherwise: `open_interpreter`), finding a
tensor by name (`find_tensor`), feeding scaled or quantized input and reading quantized output
(`feed`, `dequantize`), inspecting an uploaded file (`inspect`), the batch extractor (`Extractor`) and the
ImageNet classifier a file may end in, for the sanity check (`imagenet_classifier`).

`jobs.ml.formats`' TFLite class calls this module; it imports neither the registry, `jobs.ml.backbones`
nor `jobs.ml.sanity`, so the dependency goes one way. The web process imports `jobs.ml.formats`, so
the interpreter (and TensorFlow) loads only inside the functions here.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jobs.ml.model_checks import IMAGENET_WIDTHS, feature_shape, first_line, image_input, some_names
from jobs.ml.scaling import RAW, InputScaling

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from jobs.ml.backbone_record import Backbone


def open_interpreter(path: str, preserve_all: bool):
    """A TFLite interpreter (LiteRT's when installed, TensorFlow's otherwise), on every core."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite's deprecation notice and the preserve-all-tensors note
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806 - a class
        return Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1,
                           experimental_preserve_all_tensors=preserve_all)


def find_tensor(interpreter, name: str) -> dict:
    """The tensor details for `name`: an exact tensor name, or a layer name that appears in one."""
    details = interpreter.get_tensor_details()
    for detail in details:
        if detail["name"] == name:
            return detail
    batch = int(interpreter.get_input_details()[0]["shape"][0])
    activations = [d for d in details if len(d["shape"]) >= 2 and int(d["shape"][0]) == batch]
    pattern = re.compile(rf"(^|[/;:]){re.escape(name)}(_\d+)?($|[/;:])")
    matches = [d for d in activations if pattern.search(d["name"])]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"Several tensors match {name!r}: {', '.join(d['name'] for d in matches[:5])}; "
                         "give the full tensor name.")
    names = [d["name"] for d in activations]
    raise ValueError(f"The TensorFlow Lite model has no tensor called {name!r}. Tensors near its end: "
                     f"{some_names(names, 6)}.")


def feed(scaling: InputScaling, pixels: np.ndarray, detail: dict) -> np.ndarray:
    """0..255 pixels -> the input tensor `detail` describes, scaled as `scaling` says."""
    scale, zero = detail.get("quantization", (0.0, 0))
    return scaling.feed(pixels, detail["dtype"], (float(scale), int(zero)))


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """A tensor's values as float32, converted with its own scale and zero point when it is quantized."""
    scale, zero = detail.get("quantization", (0.0, 0))
    if np.dtype(values.dtype).kind in "iu" and scale:
        return (values.astype(np.float32) - zero) * np.float32(scale)
    return values.astype(np.float32)


def inspect(path: Path, output: str | None, input_size: int | None) -> tuple[str, int, int, tuple]:
    """(the tensor features come from, input side, channels, feature shape) of a .tflite file, or a sentence."""
    try:
        interpreter = open_interpreter(str(path), preserve_all=output is not None)
        interpreter.allocate_tensors()
    except Exception as exc:
        raise ValueError(f"{path.name} could not be opened as a TensorFlow Lite model ({first_line(exc)}).") \
            from None
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise ValueError(f"The TensorFlow Lite model has {len(inputs)} inputs; a backbone takes one image.")
    detail = inputs[0]
    if np.dtype(detail["dtype"]) not in (np.float32, np.uint8, np.int8):
        raise ValueError(f"The TensorFlow Lite model takes {np.dtype(detail['dtype']).name} input; VisionLab feeds "
                         "float32, uint8 or int8 images.")
    signature = detail.get("shape_signature", detail["shape"])
    size, channels = image_input(tuple(signature), input_size, "TensorFlow Lite model")
    interpreter.resize_tensor_input(detail["index"], [1, size, size, channels], strict=False)
    interpreter.allocate_tensors()
    if output is None:
        outputs = interpreter.get_output_details()
        if len(outputs) != 1:
            raise ValueError(f"The TensorFlow Lite model has {len(outputs)} outputs; choose the tensor to take "
                             "features from.")
        target = outputs[0]
    else:
        target = find_tensor(interpreter, output)
    try:  # one run settles shapes that depend on the input size
        interpreter.set_tensor(detail["index"], feed(RAW, np.zeros((1, size, size, channels), np.float32), detail))
        interpreter.invoke()
        shape = (1, *interpreter.get_tensor(target["index"]).shape[1:])
    except Exception as exc:
        raise ValueError(f"The TensorFlow Lite model does not run on {size}x{size} images ({first_line(exc)}).") \
            from None
    return target["name"], size, channels, feature_shape(shape, "TensorFlow Lite model")


class Extractor:
    """Runs a .tflite backbone on batches: the input resized to the batch when the model allows it,
    one image at a time otherwise; quantized inputs and outputs converted with their own scales."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        probe = open_interpreter(backbone.source, preserve_all=False)
        outputs = {d["name"] for d in probe.get_output_details()}
        self.interpreter = open_interpreter(backbone.source, preserve_all=backbone.layer not in outputs)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.target = find_tensor(self.interpreter, backbone.layer)
        self.batch: int | None = None
        self.batched = True
        self.lock = threading.Lock()  # an interpreter runs one call at a time
        self.precision = np.dtype(self.input["dtype"]).name

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        count, size, channels = len(pixels), self.backbone.image_size, self.backbone.channels
        if self.batch != count:
            self.interpreter.resize_tensor_input(self.input["index"], [count, size, size, channels], strict=False)
            self.interpreter.allocate_tensors()
            self.batch = count
        self.interpreter.set_tensor(self.input["index"], feed(self.backbone.scaling, pixels, self.input))
        self.interpreter.invoke()
        values = self.interpreter.get_tensor(self.target["index"])
        if values.shape[0] != count:
            raise ValueError("the model does not take batches")
        return dequantize(values, self.target).reshape(count, -1)

    def __call__(self, pixels) -> np.ndarray:
        pixels = np.asarray(pixels, dtype=np.float32)
        with self.lock:
            return self._call(pixels)

    def _call(self, pixels: np.ndarray) -> np.ndarray:
        if self.batched and len(pixels) > 1:
            try:
                return self._run(pixels)
            except (RuntimeError, ValueError):
                self.batched = False  # a fixed batch of 1 inside the graph: go image by image from now on
        return np.concatenate([self._run(pixels[i:i + 1]) for i in range(len(pixels))])


# --- the ImageNet classifier a file may end in (the sanity check's labels) -------------------------

def logits_tensor(interpreter, output: dict) -> dict:
    """The logits feeding a final SOFTMAX (through reshapes), else the output itself.

    Logits are what a person compares, and reading them sidesteps quantized softmax kernels (one
    run here saw the real MobileNet's uint8 softmax answer all zeros while its logits were right).
    """
    try:
        ops = interpreter._get_ops_details()  # noqa: SLF001 - the only way to walk the graph from Python
    except Exception:
        return output
    producers = {int(index): op for op in ops for index in op.get("outputs", ())}
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    index = output["index"]
    for _ in range(4):
        op = producers.get(int(index))
        if op is None or len(op.get("inputs", ())) == 0:
            break
        if op["op_name"] == "SOFTMAX":
            return details.get(int(op["inputs"][0]), output)
        if op["op_name"] not in ("RESHAPE", "SQUEEZE"):
            break
        index = op["inputs"][0]
    return output


def imagenet_classifier(backbone: Backbone) -> Callable[[InputScaling, np.ndarray], np.ndarray] | None:
    """scores(scaling, pixels) of the model when it ends in one ImageNet-wide output (its logits where it
    can), else None."""
    interpreter = open_interpreter(backbone.source, preserve_all=True)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    outputs = interpreter.get_output_details()
    if len(outputs) != 1 or int(np.prod(outputs[0]["shape"][1:])) not in IMAGENET_WIDTHS:
        return None
    interpreter.resize_tensor_input(detail["index"], [1, backbone.image_size, backbone.image_size,
                                                      backbone.channels], strict=False)
    interpreter.allocate_tensors()
    target = logits_tensor(interpreter, interpreter.get_output_details()[0])

    def run(scaling: InputScaling, pixels: np.ndarray) -> np.ndarray:
        rows = []
        for image in pixels:  # one at a time: many TFLite models fix a batch of 1
            interpreter.set_tensor(detail["index"], feed(scaling, image[None], detail))
            interpreter.invoke()
            rows.append(dequantize(interpreter.get_tensor(target["index"]), target).reshape(-1))
        return np.stack(rows).astype(np.float64)

    return run
