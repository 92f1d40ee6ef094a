"""The Keras runtime: everything that opens and runs a Keras model file (`.keras` and `.h5`).

Loading an uploaded file safely (`check_safe_keras`, `load_file`), finding and cutting a layer,
nested models included (`resolve`, `penultimate_path`), rebuilding a network under a mixed-precision
policy (`with_precision`, `global_policy`), putting an input scaling in front (`with_scaling`),
the feature model of a file (`file_feature_model`), the compiled extractor (`Extractor`) and the
ImageNet classifier a file may end in, for the sanity check (`imagenet_classifier`).

`jobs.ml.formats`' Keras classes call this module, and `jobs.ml.backbones` builds its builtins with
it; it imports neither of them (nor `jobs.ml.sanity`), so the dependency goes one way. The web
process imports `jobs.ml.formats`, so Keras and TensorFlow load only inside the functions here.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jobs.ml.model_checks import IMAGENET_WIDTHS, feature_shape, first_line, image_input, some_names

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import keras

    from jobs.ml.backbone_record import Backbone
    from jobs.ml.scaling import InputScaling


def policy_name(precision: str) -> str:
    """The Keras dtype policy that computes in `precision` ("float32", "bfloat16", "float16")."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[precision]


@contextlib.contextmanager
def global_policy(precision: str) -> Iterator[None]:
    """Build Keras layers under a mixed-precision policy, then put the previous one back."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# --- finding layers, cutting, mixed precision ------------------------------------------------------

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
    raise ValueError(f"The {what} has no layer called {path!r}. Layers near its end: {some_names(paths)}.")


def _final_layer(model):
    """The layer that produces the model's output."""
    layer = _producer(model, model.outputs[0])
    if layer is None:
        raise ValueError("VisionLab could not follow this model's layers to its output.")
    return layer


def penultimate_path(model) -> str:
    """The path of the layer feeding the final softmax Dense, looking inside a nested final model."""
    import keras

    final = _final_layer(model)
    if _is_model(final):
        return f"{final.name}/{penultimate_path(final)}"
    if isinstance(final, keras.layers.Activation | keras.layers.Softmax):
        final = _producer(model, final.input)
    if not isinstance(final, keras.layers.Dense):
        raise ValueError("This model does not end in a dense classification layer, so it has no penultimate "
                         "layer to take features from.")
    source = _producer(model, final.input)
    if source is None or isinstance(source, keras.layers.InputLayer):
        raise ValueError("This model has no layer before its classification layer to take features from.")
    return source.name


def with_precision(model, precision: str):
    """The same network rebuilt with every layer computing in `precision` (weights stay float32).

    A loaded model keeps the dtype policy it was saved with, so a global policy does not reach
    it; its config is rewritten instead, then the weights are copied over.
    """
    import keras

    if precision == "float32":
        return model
    policy = policy_name(precision)

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


def load_file(path: Path):
    import keras

    check_safe_keras(keras.__version__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # any reader error on an uploaded file means it is not a model we can use
        reason = first_line(exc)
        if "No model config" in reason:  # what Keras says of an .h5 holding weights only
            raise ValueError(f"{path.name} holds only weights, not a model; save the whole model "
                             "(model.save) and upload that.") from None
        if "Lambda" in reason or "unsafe" in reason.lower():
            raise ValueError(f"{path.name} contains a Lambda layer (Python code), which VisionLab does not run "
                             "from uploaded files; rebuild the model with standard layers.") from None
        raise ValueError(f"{path.name} could not be opened as a Keras model ({reason}).") from None


def resolve(model, layer: str | None, input_size: int | None, what: str = "model"):
    """(feature model on fixed-size pixels, layer path, side, channels, feature shape)."""
    import keras

    if len(model.inputs) != 1:
        raise ValueError(f"The {what} has {len(model.inputs)} inputs; a backbone takes one image.")
    size, channels = image_input(tuple(model.inputs[0].shape), input_size, what)
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
        raise ValueError(f"The {what} does not run on {size}x{size} images ({first_line(exc)}).") from None
    if isinstance(outputs, list | tuple | dict):
        raise ValueError(f"The layer {layer!r} gives several outputs; choose a layer with one.")
    shape = feature_shape(tuple(outputs.shape), what)
    return keras.Model(pixels, outputs, name="features"), layer, size, channels, shape


# --- a file's feature model, the extractor, the ImageNet classifier --------------------------------

def with_scaling(model, backbone: Backbone):
    """`model` behind the backbone's input scaling (a frozen float32 1x1 convolution), so it takes 0..255
    pixels like every VisionLab model; the model itself when it wants raw pixels."""
    import keras

    layer = backbone.scaling.keras_layer(backbone.channels)
    if layer is None:
        return model
    pixels = keras.Input((backbone.image_size, backbone.image_size, backbone.channels), name="pixels")
    return keras.Model(pixels, model(layer(pixels)), name="features")


def file_feature_model(backbone: Backbone, precision: str) -> keras.Model:
    """The feature model of a backbone read from a Keras file: cut at its layer, computing in `precision`,
    behind its input scaling (float32 0..255 pixels -> features of `feature_shape`)."""
    source = Path(backbone.source)
    if not source.is_file():
        raise ValueError(f"The file of the backbone {backbone.title} is gone; upload it again.")
    model = load_file(source)
    features, *_ = resolve(model, backbone.layer, backbone.image_size)
    return with_scaling(with_precision(features, precision), backbone)


class Extractor:
    """A compiled forward pass of a backbone's feature model (tf.function with a fixed signature: one
    trace for every batch size).

    Measured on 2 CPU cores with MobileNetV2 at 224: the same speed as `predict_on_batch` in
    float32 (47 vs 49 images/s), faster in bfloat16 (63 vs 52).
    """

    def __init__(self, model: keras.Model, backbone: Backbone, precision: str):
        import tensorflow as tf

        self.model = model
        self.precision = precision
        spec = tf.TensorSpec([None, backbone.image_size, backbone.image_size, backbone.channels], tf.float32)
        dim = backbone.feature_dim

        @tf.function(input_signature=[spec])
        def run(pixels):
            features = tf.cast(model(pixels, training=False), tf.float32)
            return tf.reshape(features, [-1, dim])

        self._run = run

    def __call__(self, pixels) -> np.ndarray:
        import tensorflow as tf

        return self._run(tf.convert_to_tensor(pixels, tf.float32)).numpy()


def imagenet_classifier(backbone: Backbone) -> Callable[[InputScaling, np.ndarray], np.ndarray] | None:
    """scores(scaling, pixels) of the whole Keras model, when it ends in one ImageNet-wide output; else None."""
    import keras

    model = load_file(Path(backbone.source))
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None
    if int(model.outputs[0].shape[-1] or 0) not in IMAGENET_WIDTHS:
        return None
    inputs = keras.Input((backbone.image_size, backbone.image_size, backbone.channels))
    whole = keras.Model(inputs, model(inputs))
    return lambda scaling, pixels: np.asarray(whole.predict_on_batch(scaling.apply(pixels)), np.float64)
