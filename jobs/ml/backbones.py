"""Backbones: the networks that turn images into feature vectors (workflow 3 in PRODUCT.md).

A backbone is described by a small frozen `Backbone` record (what it is, which layer the features
come from, which weights, what input it takes) and turned into a working extractor only on a
worker, by `load_extractor`. The record is what the feature cache keys on and what a trained
transfer model remembers, so it holds nothing that cannot be written to JSON.

Four sources:
- the builtins (`vgg16` fc2, `vgg16_conv` block5_pool, `mobilenet_v2` average pool), built from
  `keras.applications` with their own preprocessing in front, so every extractor takes raw
  0..255 pixels like every other VisionLab model. The preprocessing is made of stock layers
  (a frozen 1x1 convolution does VGG's RGB->BGR swap and mean subtraction exactly), so a saved
  transfer model reloads anywhere without VisionLab's code;
- an uploaded `.keras` / `.h5` / `.tflite` file (`inspect_file`; what each format does is on its
  class in `jobs.ml.formats`), fed the way its `InputScaling` says (`jobs.ml.scaling`): decided by
  the file where it can say (a quantized input takes the pixels themselves, TFLite metadata names
  its mean and std), by its owner otherwise;
- a VisionLab-trained classifier (`from_trained_model`), cut before its softmax layer.

ImageNet weights come from Keras's own cache (`$KERAS_HOME/models/`, `~/.keras/models/` when
the variable is unset), downloaded by Keras on first use; an air-gapped site drops the file
there itself, and `WeightsMissing` says exactly which file, where and from which address.

This module is imported by the web process for `BUILTIN_BACKBONES`, so Keras and TensorFlow are
imported only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jobs.ml import formats
from jobs.ml.scaling import RAW, InputScaling

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import keras

PRECISIONS = ("float32", "bfloat16", "float16")
RANDOM_SEED = 0  # "random" weights are always the same random weights, so their features can be cached
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024

# The built-in backbones' catalogue lives with the other plain catalogues (the web reads it there).
from jobs.ml.catalog import BUILTIN_BACKBONES, imagenet_weights_file, look_up  # noqa: E402, F401

# Where keras.applications downloads from; a module attribute so a test can point it elsewhere.
KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


class WeightsMissing(ValueError):
    """The ImageNet weights file is neither in the Keras cache nor downloadable; str() says what to do."""

    def __init__(self, message: str, path: Path, url: str):
        super().__init__(message)
        self.path, self.url = path, url
        self.reason = ""


@dataclass(frozen=True)
class Backbone:
    name: str  # "vgg16" | "vgg16_conv" | "mobilenet_v2" | "backbones/<id>" | "models/<id>"
    layer: str  # layer (or "outer/inner" path in nested models) or TFLite tensor the features come from
    weights: str  # "imagenet" | "random" | "sha256:<hex of the file>"
    image_size: int  # square input side in px
    channels: int  # 1 or 3
    feature_shape: tuple[int, ...]  # e.g. (4096,), (4, 4, 512), (1280,)
    kind: str  # the runtime: a jobs.ml.formats kind, "keras" | "tflite"
    source: str = ""  # the model file for uploaded and trained backbones, "" for builtins
    scaling: InputScaling = RAW  # how 0..255 pixels become the model's input (builtins rescale inside: raw)

    @property
    def feature_dim(self) -> int:
        return math.prod(self.feature_shape)

    @property
    def title(self) -> str:
        """How progress messages name it: "VGG16", "MobileNetV2", or the name it was given."""
        spec = BUILTIN_BACKBONES.get(self.name)
        return spec["title"] if spec else self.name

    def cache_key(self) -> dict:
        """What features depend on: the backbone, its layer, its weights, the input side and scaling."""
        return {"backbone": self.name, "layer": self.layer, "weights": self.weights, "image_size": self.image_size,
                "input": self.scaling.to_dict()}

    def to_dict(self) -> dict:
        """JSON-ready; `from_dict` reverses it (a transfer model's metadata stores its backbone this way)."""
        return {"name": self.name, "layer": self.layer, "weights": self.weights, "image_size": self.image_size,
                "channels": self.channels, "feature_shape": list(self.feature_shape), "kind": self.kind,
                "source": self.source, "scaling": self.scaling.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Backbone:
        return cls(name=data["name"], layer=data["layer"], weights=data["weights"],
                   image_size=int(data["image_size"]), channels=int(data["channels"]),
                   feature_shape=tuple(int(v) for v in data["feature_shape"]), kind=data["kind"],
                   source=data.get("source", ""), scaling=InputScaling.from_dict(data.get("scaling")))


# --- builtins and their ImageNet weights -----------------------------------------------------------

def _check_builtin_name(name: str) -> dict:
    return look_up(BUILTIN_BACKBONES, name, "built-in backbone")


def _builtin_shape(name: str, image_size: int) -> tuple[int, ...]:
    if name == "vgg16_conv":
        return (image_size // 32, image_size // 32, 512)
    return tuple(BUILTIN_BACKBONES[name]["feature_shape"])


def builtin(name: str, weights: str = "imagenet", image_size: int | None = None) -> Backbone:
    """The record of a built-in backbone. `image_size` (default: the reference side) may differ for
    `vgg16_conv` and `mobilenet_v2` (at least 32); `vgg16` with its dense layers only takes 224."""
    spec = _check_builtin_name(name)
    if weights not in ("imagenet", "random"):
        raise ValueError(f"Built-in backbones come with 'imagenet' or 'random' weights, not {weights!r}.")
    size = spec["image_size"] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValueError(f"The image size is a whole number of pixels, not {size!r}.")
    size = int(size)
    if name == "vgg16" and size != 224:
        raise ValueError("VGG16 with its dense layers (fc2) only takes 224x224 images; use vgg16_conv for "
                         "other sizes.")
    if not 32 <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"{spec['title']} takes images from 32x32 to {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE} pixels, "
                         f"not {size}x{size}.")
    return Backbone(name=name, layer=spec["layer"], weights=weights, image_size=size, channels=3,
                    feature_shape=_builtin_shape(name, size), kind=formats.KerasFormat.kind)


def imagenet_weights(name: str, image_size: int | None = None) -> tuple[str, str, str | None]:
    """(file name, URL, md5 or None) exactly as keras.applications asks `keras.utils.get_file` for them."""
    _check_builtin_name(name)
    filename = imagenet_weights_file(name, image_size)  # the catalogue's, so the web checks the same file
    if name == "vgg16":
        return filename, f"{KERAS_APPLICATIONS_URL}vgg16/{filename}", "64373286793e3c8b2b4e3219cbf3544b"
    if name == "vgg16_conv":
        return filename, f"{KERAS_APPLICATIONS_URL}vgg16/{filename}", "6d6bbae143d832006294945121d1f1fc"
    return filename, f"{KERAS_APPLICATIONS_URL}mobilenet_v2/{filename}", None


def keras_home() -> Path:
    """Keras's cache folder as Keras resolves it: $KERAS_HOME, else ~/.keras (read now, not at import)."""
    return Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser())


def weights_path(name: str, image_size: int | None = None) -> Path:
    """Where the ImageNet weights file for a builtin lives in the Keras cache."""
    filename, _, _ = imagenet_weights(name, image_size)
    return keras_home() / "models" / filename


def _imagenet_file(name: str, image_size: int) -> Path:
    """The weights file: the one in the cache as it is, or Keras's download, or WeightsMissing.

    A file already in place is used without a hash check: an air-gapped site may have copied it
    from anywhere, and if it is not the right file, loading it fails with its own message.
    Keras downloads into a private folder first and the file is then renamed into the cache, so
    another worker never finds half a file there.
    """
    filename, url, md5 = imagenet_weights(name, image_size)
    target = keras_home() / "models" / filename
    if target.is_file():
        return target
    title = BUILTIN_BACKBONES[name]["title"]
    import keras

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as private:
            downloaded = keras.utils.get_file(filename, url, cache_subdir=".", cache_dir=private, file_hash=md5)
            os.replace(downloaded, target)
        return target
    except Exception as exc:  # no network, proxy, DNS, HTTP error, bad hash, read-only cache: all mean "not here"
        error = WeightsMissing(
            f"The ImageNet weights for {title} are not on this server and could not be downloaded. "
            f"Download {url} and put it at {target}, then run the job again.", target, url)
        error.reason = _first_line(exc)  # for the worker's log; the user needs the sentence above
        raise error from None


# --- small helpers -------------------------------------------------------------------------------

def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"Features are computed in {', '.join(PRECISIONS)}, not {precision!r}.")
    return precision


def _policy_name(precision: str) -> str:
    return {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[precision]


@contextlib.contextmanager
def _global_policy(precision: str) -> Iterator[None]:
    """Build Keras layers under a mixed-precision policy, then put the previous one back."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(_policy_name(precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _check_size(input_size: int | None) -> int | None:
    if input_size is None:
        return None
    if isinstance(input_size, bool) or not isinstance(input_size, int | np.integer):
        raise ValueError(f"The input size is a whole number of pixels, not {input_size!r}.")
    if not MIN_IMAGE_SIZE <= input_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"The input size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, "
                         f"not {input_size}.")
    return int(input_size)


def _image_input(shape: tuple, input_size: int | None, what: str) -> tuple[int, int]:
    """(side, channels) for a model input of `shape` (batch first; None or -1 = any), or a sentence."""
    shape = tuple(None if v is None or int(v) < 0 else int(v) for v in shape)
    if len(shape) != 4:
        raise ValueError(f"The {what}'s input has shape {list(shape[1:])}, which is not an image "
                         "(height, width, channels).")
    _, height, width, channels = shape
    if channels not in (1, 3):
        raise ValueError(f"The {what} takes images with {channels or 'any number of'} channels; VisionLab feeds "
                         "1 (grayscale) or 3 (RGB).")
    if height is not None and width is not None and height != width:
        raise ValueError(f"The {what} takes {width}x{height} images; VisionLab feeds square images.")
    fixed = height if height is not None else width
    if fixed is None:
        if input_size is None:
            raise ValueError(f"The {what} accepts images of any size; give the input size to use.")
        return input_size, channels
    if input_size is not None and input_size != fixed:
        raise ValueError(f"The {what} takes {fixed}x{fixed} images, so the input size cannot be {input_size}.")
    return fixed, channels


def _feature_shape(shape: tuple, what: str) -> tuple[int, ...]:
    dims = tuple(shape[1:])
    if not dims or any(d is None or int(d) < 1 for d in dims):
        raise ValueError(f"The {what} gives features of shape {list(dims)}; a backbone must give a fixed number "
                         "of features per image.")
    return tuple(int(d) for d in dims)


# --- Keras models: finding layers, cutting, mixed precision -----------------------------------------

def _is_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _top_layers(model) -> list:
    import keras

    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _layer_paths(model, prefix: str = "") -> list[str]:
    """Every addressable layer: "name" at the top, "outer/inner" inside nested models."""
    paths = []
    for layer in _top_layers(model):
        paths.append(prefix + layer.name)
        if _is_model(layer):
            paths.extend(_layer_paths(layer, f"{prefix}{layer.name}/"))
    return paths


def _some_names(paths: list[str], count: int = 8) -> str:
    shown = paths[-count:]
    more = f" (and {len(paths) - len(shown)} more)" if len(paths) > len(shown) else ""
    return ", ".join(shown) + more


def _producer(model, tensor):
    """The top-level layer of `model` whose output is `tensor`, or None.

    A symbolic tensor records the operation that made it; a nested model's `.output` is its own
    inner tensor, not the one it produced in the outer graph, so scanning is only the fallback.
    """
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    if operation is not None and any(layer is operation for layer in model.layers):
        return operation
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        outputs = output if isinstance(output, list | tuple) else [output]
        if any(o is tensor for o in outputs):
            return layer
    return None


def _is_chain(model, layers: list) -> bool:
    """Whether the top-level layers run one after another on a single input, as in a Sequential."""
    import keras

    if isinstance(model, keras.Sequential):
        return True
    if len(model.inputs) != 1:
        return False
    previous = model.inputs[0]
    for layer in layers:
        nodes = getattr(layer, "_inbound_nodes", None) or []
        if len(nodes) != 1:
            return False
        inputs, outputs = list(nodes[0].input_tensors), list(nodes[0].output_tensors)
        if len(inputs) != 1 or inputs[0] is not previous or len(outputs) != 1:
            return False
        previous = outputs[0]
    return True


def _cut(model, path: str, what: str):
    """(a model from `model`'s input to the output of the layer at `path`, the layer's full path).

    `path` is "name" or "outer/inner"; a bare name that exists only inside a nested model is
    found there when it is unique.

    A layer inside a nested model (a Sequential holding MobileNetV2, or VisionLab's own
    classifiers, whose zoo network sits behind a rescaling layer) is reached by rebuilding the
    outer chain up to the nested model and cutting that one: its inner tensors are not connected
    to the outer input otherwise.
    """
    import keras

    names = [layer.name for layer in _top_layers(model)]
    if path in names and isinstance(model, keras.Sequential):
        # A loaded Sequential's layers carry one node per time Keras built it, so the nodes are
        # ambiguous; the chain itself is not: replay it up to the layer.
        x = inputs = keras.Input(tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
        for layer in _top_layers(model):
            x = layer(x)
            if layer.name == path:
                return keras.Model(inputs, x), path
    if path in names:
        nodes = getattr(model.get_layer(path), "_inbound_nodes", None) or []
        if len(nodes) != 1 or len(nodes[0].output_tensors) != 1:
            raise ValueError(f"The layer {path!r} is used more than once in the {what}, or has several outputs, "
                             "so its output is ambiguous; choose another layer.")
        # The node's tensor, not `layer.output`: a nested model's `.output` is its own inner tensor.
        return keras.Model(model.inputs, nodes[0].output_tensors[0]), path
    first, _, rest = path.partition("/")
    if rest and first in names and _is_model(model.get_layer(first)):
        sub = model.get_layer(first)
        inner, rest = _cut(sub, rest, what)
        layers = _top_layers(model)
        if not _is_chain(model, layers):
            raise ValueError(f"The layer {path!r} sits inside the nested model {first!r}, which VisionLab can only "
                             "reach when the layers around it form a single chain; choose a top-level layer.")
        inputs = keras.Input(tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
        x = inputs
        for layer in layers:
            if layer is sub:
                return keras.Model(inputs, inner(x)), f"{first}/{rest}"
            x = layer(x)
    paths = _layer_paths(model)
    matches = [p for p in paths if p.rsplit("/", 1)[-1] == path]
    if len(matches) == 1 and matches[0] != path:
        return _cut(model, matches[0], what)
    if len(matches) > 1:
        raise ValueError(f"Several layers are called {path!r} in the {what}: {', '.join(matches)}; "
                         "give the full name.")
    raise ValueError(f"The {what} has no layer called {path!r}. Layers near its end: {_some_names(paths)}.")


def _final_layer(model):
    """The layer that produces the model's output."""
    layer = _producer(model, model.outputs[0])
    if layer is None:
        raise ValueError("VisionLab could not follow this model's layers to its output.")
    return layer


def _penultimate_path(model) -> str:
    """The path of the layer feeding the final softmax Dense, looking inside a nested final model."""
    import keras

    final = _final_layer(model)
    if _is_model(final):
        return f"{final.name}/{_penultimate_path(final)}"
    if isinstance(final, keras.layers.Activation | keras.layers.Softmax):
        final = _producer(model, final.input)
    if not isinstance(final, keras.layers.Dense):
        raise ValueError("This model does not end in a dense classification layer, so it has no penultimate "
                         "layer to take features from.")
    source = _producer(model, final.input)
    if source is None or isinstance(source, keras.layers.InputLayer):
        raise ValueError("This model has no layer before its classification layer to take features from.")
    return source.name


def _with_precision(model, precision: str):
    """The same network rebuilt with every layer computing in `precision` (weights stay float32).

    A loaded model keeps the dtype policy it was saved with, so a global policy does not reach
    it; its config is rewritten instead, then the weights are copied over.
    """
    import keras

    if precision == "float32":
        return model
    policy = _policy_name(precision)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("class_name") == "InputLayer":
                return node
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
                return {**node, "config": {**node.get("config", {}), "name": policy}}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    config = rewrite(keras.saving.serialize_keras_object(model))
    rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


# The first Keras whose safe_mode also covers legacy .h5 files; older ones would run their Lambda code.
MIN_SAFE_KERAS = (3, 12)


def check_safe_keras(version: str) -> None:
    """Refuse to open uploaded Keras files with a Keras too old to refuse their code."""
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < MIN_SAFE_KERAS:
        raise ValueError(f"This server runs Keras {version}, which cannot open uploaded models safely; its "
                         f"administrator must install Keras {'.'.join(map(str, MIN_SAFE_KERAS))} or newer.")


def _load_keras_file(path: Path):
    import keras

    check_safe_keras(keras.__version__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # any reader error on an uploaded file means it is not a model we can use
        reason = _first_line(exc)
        if "No model config" in reason:  # what Keras says of an .h5 holding weights only
            raise ValueError(f"{path.name} holds only weights, not a model; save the whole model "
                             "(model.save) and upload that.") from None
        if "Lambda" in reason or "unsafe" in reason.lower():
            raise ValueError(f"{path.name} contains a Lambda layer (Python code), which VisionLab does not run "
                             "from uploaded files; rebuild the model with standard layers.") from None
        raise ValueError(f"{path.name} could not be opened as a Keras model ({reason}).") from None


def _resolve_keras(model, layer: str | None, input_size: int | None, what: str = "model"):
    """(feature model on fixed-size pixels, layer path, side, channels, feature shape)."""
    import keras

    if len(model.inputs) != 1:
        raise ValueError(f"The {what} has {len(model.inputs)} inputs; a backbone takes one image.")
    size, channels = _image_input(tuple(model.inputs[0].shape), input_size, what)
    if layer is None:
        if len(model.outputs) != 1:
            raise ValueError(f"The {what} has {len(model.outputs)} outputs; choose the layer to take features "
                             "from.")
        cut = model
        producer = _producer(model, model.outputs[0])
        layer = producer.name if producer is not None else "output"
    else:
        cut, layer = _cut(model, layer, what)
    pixels = keras.Input((size, size, channels), name="pixels")
    try:
        outputs = cut(pixels)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"The {what} does not run on {size}x{size} images ({_first_line(exc)}).") from None
    if isinstance(outputs, list | tuple | dict):
        raise ValueError(f"The layer {layer!r} gives several outputs; choose a layer with one.")
    shape = _feature_shape(tuple(outputs.shape), what)
    return keras.Model(pixels, outputs, name="features"), layer, size, channels, shape


# --- TFLite ----------------------------------------------------------------------------------------

def _tflite_interpreter(path: str, preserve_all: bool):
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


def _tflite_tensor(interpreter, name: str) -> dict:
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
                     f"{_some_names(names, 6)}.")


def _feed(scaling: InputScaling, pixels: np.ndarray, detail: dict) -> np.ndarray:
    """0..255 pixels -> the input tensor `detail` describes, scaled as `scaling` says."""
    scale, zero = detail.get("quantization", (0.0, 0))
    return scaling.feed(pixels, detail["dtype"], (float(scale), int(zero)))


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    if np.dtype(values.dtype).kind in "iu" and scale:
        return (values.astype(np.float32) - zero) * np.float32(scale)
    return values.astype(np.float32)


def _inspect_tflite(path: Path, output: str | None, input_size: int | None) -> tuple[str, int, int, tuple]:
    try:
        interpreter = _tflite_interpreter(str(path), preserve_all=output is not None)
        interpreter.allocate_tensors()
    except Exception as exc:
        raise ValueError(f"{path.name} could not be opened as a TensorFlow Lite model ({_first_line(exc)}).") \
            from None
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise ValueError(f"The TensorFlow Lite model has {len(inputs)} inputs; a backbone takes one image.")
    detail = inputs[0]
    if np.dtype(detail["dtype"]) not in (np.float32, np.uint8, np.int8):
        raise ValueError(f"The TensorFlow Lite model takes {np.dtype(detail['dtype']).name} input; VisionLab feeds "
                         "float32, uint8 or int8 images.")
    signature = detail.get("shape_signature", detail["shape"])
    size, channels = _image_input(tuple(signature), input_size, "TensorFlow Lite model")
    interpreter.resize_tensor_input(detail["index"], [1, size, size, channels], strict=False)
    interpreter.allocate_tensors()
    if output is None:
        outputs = interpreter.get_output_details()
        if len(outputs) != 1:
            raise ValueError(f"The TensorFlow Lite model has {len(outputs)} outputs; choose the tensor to take "
                             "features from.")
        target = outputs[0]
    else:
        target = _tflite_tensor(interpreter, output)
    try:  # one run settles shapes that depend on the input size
        interpreter.set_tensor(detail["index"], _feed(RAW, np.zeros((1, size, size, channels), np.float32), detail))
        interpreter.invoke()
        shape = (1, *interpreter.get_tensor(target["index"]).shape[1:])
    except Exception as exc:
        raise ValueError(f"The TensorFlow Lite model does not run on {size}x{size} images ({_first_line(exc)}).") \
            from None
    return target["name"], size, channels, _feature_shape(shape, "TensorFlow Lite model")


class _TFLiteExtractor:
    """Runs a .tflite backbone on batches: the input resized to the batch when the model allows it,
    one image at a time otherwise; quantized inputs and outputs converted with their own scales."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        probe = _tflite_interpreter(backbone.source, preserve_all=False)
        outputs = {d["name"] for d in probe.get_output_details()}
        self.interpreter = _tflite_interpreter(backbone.source, preserve_all=backbone.layer not in outputs)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.target = _tflite_tensor(self.interpreter, backbone.layer)
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
        self.interpreter.set_tensor(self.input["index"], _feed(self.backbone.scaling, pixels, self.input))
        self.interpreter.invoke()
        values = self.interpreter.get_tensor(self.target["index"])
        if values.shape[0] != count:
            raise ValueError("the model does not take batches")
        return _dequantize(values, self.target).reshape(count, -1)

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


# --- public API ------------------------------------------------------------------------------------

def suggest_scaling(path: Path) -> tuple[InputScaling, str]:
    """(the input scaling a file asks for, why) when its owner has not chosen one: its format reads it
    (a quantized TFLite input, TFLite metadata), else raw 0..255 pixels and the sanity report warns."""
    path = Path(path)
    fmt = formats.by_filename(path.name)
    if fmt is None:
        raise ValueError(formats.not_a_model(path.name))
    return fmt.suggest_scaling(path)


def inspect_file(path: Path, output: str | None = None, input_size: int | None = None, name: str = "",
                 scaling: InputScaling | None = None) -> Backbone:
    """The Backbone for an uploaded model file (a format `jobs.ml.formats` knows), or a ValueError sentence.

    `output` names the layer (Keras; "outer/inner" inside nested models) or tensor (TFLite; a
    layer name that appears in one tensor's name also works) to take features from; default:
    the model's output. `input_size` sets the side for models that accept any size. `scaling`
    (default: what `suggest_scaling` finds) is how pixels are fed to it.
    """
    path = Path(path)
    fmt = formats.of_file(path)  # its name and first bytes, before a reader invents another reason
    input_size = _check_size(input_size)
    output = (output or "").strip() or None
    weights = f"sha256:{file_sha256(path)}"
    layer, size, channels, shape = fmt.inspect(path, output, input_size)
    scaling = scaling if scaling is not None else fmt.suggest_scaling(path)[0]
    scaling.affine(channels)  # a colour-only scaling on a grayscale model is refused here, with a sentence
    return Backbone(name=name or path.stem, layer=layer, weights=weights, image_size=size, channels=channels,
                    feature_shape=shape, kind=fmt.kind, source=str(path), scaling=scaling)


def from_trained_model(model_dir: Path, name: str) -> Backbone:
    """A VisionLab-trained classifier as a backbone: the output of the layer feeding its softmax."""
    model_dir = Path(model_dir)
    try:
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        size, channels = int(metadata["image_size"]), int(metadata["channels"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError("This model's files are missing or damaged, so it cannot be used as a backbone.") from None
    fmt = formats.of_backbone(metadata.get("backbone"))
    if not fmt.in_graph:
        raise ValueError(f"This model runs on an uploaded {fmt.title} backbone, so it cannot serve as a "
                         "backbone itself; use that backbone instead.")
    path = model_dir / "model.keras"
    model = _load_keras_file(path)
    _, layer, size, channels, shape = _resolve_keras(model, _penultimate_path(model), size)
    return Backbone(name=name, layer=layer, weights=f"sha256:{file_sha256(path)}", image_size=size,
                    channels=channels, feature_shape=shape, kind=formats.KerasFormat.kind, source=str(path))


def _builtin_model(backbone: Backbone, precision: str):
    import keras

    weights = None
    if backbone.weights == "imagenet":
        weights = str(_imagenet_file(backbone.name, backbone.image_size))
    elif backbone.weights != "random":
        raise ValueError(f"Built-in backbones come with 'imagenet' or 'random' weights, not {backbone.weights!r}.")
    size = backbone.image_size
    shape = (size, size, 3)
    with _global_policy(precision):
        if weights is None:
            keras.utils.set_random_seed(RANDOM_SEED)
        try:
            if backbone.name == "mobilenet_v2":
                base = keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=weights,
                                                      input_shape=shape)
                preprocess = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="mobilenet_preprocess",
                                                    dtype="float32")
            else:
                base = keras.applications.VGG16(include_top=backbone.name == "vgg16", weights=weights,
                                                input_shape=shape)
                if backbone.name == "vgg16":
                    base = keras.Model(base.inputs, base.get_layer("fc2").output, name="vgg16_fc2")
                preprocess = InputScaling("caffe").keras_layer(3, name="caffe_preprocess")
        except (OSError, ValueError) as exc:
            if weights is None:
                raise
            filename, url, _ = imagenet_weights(backbone.name, size)
            raise WeightsMissing(f"The file {weights} is not a usable copy of the ImageNet weights for "
                                 f"{backbone.title} ({_first_line(exc)}). Download {url} again, put it at "
                                 f"{weights}, then run the job again.", Path(weights), url) from None
        pixels = keras.Input(shape, name="pixels")
        return keras.Model(pixels, base(preprocess(pixels)), name=f"{backbone.name}_features")


def keras_feature_model(backbone: Backbone, precision: str = "float32") -> keras.Model:
    """The Keras model behind a Keras backbone: float32 0..255 pixels -> features of `feature_shape`.

    Under "bfloat16"/"float16" its layers compute in that type (the mixed policies: variables stay
    float32), and it may return that type. Used for extraction and as the base of transfer models.
    """
    _check_precision(precision)
    fmt = formats.by_kind(backbone.kind)
    if not fmt.in_graph:
        raise ValueError(f"{backbone.title} is a {fmt.title} model, not a Keras one.")
    if backbone.name in BUILTIN_BACKBONES and not backbone.source:
        return _builtin_model(backbone, precision)
    source = Path(backbone.source)
    if not source.is_file():
        raise ValueError(f"The file of the backbone {backbone.title} is gone; upload it again.")
    model = _load_keras_file(source)
    features, *_ = _resolve_keras(model, backbone.layer, backbone.image_size)
    return _with_scaling(_with_precision(features, precision), backbone)


def _with_scaling(model, backbone: Backbone):
    """`model` behind the backbone's input scaling (a frozen float32 1x1 convolution), so it takes 0..255
    pixels like every VisionLab model; the model itself when it wants raw pixels."""
    import keras

    layer = backbone.scaling.keras_layer(backbone.channels)
    if layer is None:
        return model
    pixels = keras.Input((backbone.image_size, backbone.image_size, backbone.channels), name="pixels")
    return keras.Model(pixels, model(layer(pixels)), name="features")


class _KerasExtractor:
    """A compiled forward pass (tf.function with a fixed signature: one trace for every batch size).

    Measured on 2 CPU cores with MobileNetV2 at 224: the same speed as `predict_on_batch` in
    float32 (47 vs 49 images/s), faster in bfloat16 (63 vs 52).
    """

    def __init__(self, backbone: Backbone, precision: str):
        import tensorflow as tf

        self.model = keras_feature_model(backbone, precision)
        self.precision = precision
        spec = tf.TensorSpec([None, backbone.image_size, backbone.image_size, backbone.channels], tf.float32)
        model, dim = self.model, backbone.feature_dim

        @tf.function(input_signature=[spec])
        def run(pixels):
            features = tf.cast(model(pixels, training=False), tf.float32)
            return tf.reshape(features, [-1, dim])

        self._run = run

    def __call__(self, pixels) -> np.ndarray:
        import tensorflow as tf

        return self._run(tf.convert_to_tensor(pixels, tf.float32)).numpy()


def load_extractor(backbone: Backbone, precision: str = "float32") -> Callable[[Any], np.ndarray]:
    """A function mapping a float32 0..255 pixel batch (N, size, size, C) to float32 features
    (N, feature_dim), made by the backbone's format. `precision` applies to Keras backbones; a TFLite
    model runs in its own types."""
    _check_precision(precision)
    return formats.by_kind(backbone.kind).extractor(backbone, precision)
