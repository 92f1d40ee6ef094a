"""The model zoo: the reference architectures a user can train from the browser.

`ARCHITECTURES` is a plain registry (names, titles, descriptions, reference parameter counts,
launch-form defaults) kept in `jobs.ml.catalog`, where the web process reads it to fill its forms
and catalogue pages; it is re-exported here for the workers. Keras is only imported inside the
functions that build models, which run on workers.

Every model takes float images already scaled to 0..1 (the training pipeline rescales, so the
same model also serves predictions on uploaded photos) and ends in an n-way softmax. Layers
are named (`block1_conv1`, `fc2`, `predictions`, ...) so that feature extraction can address
them, and the VGG names match `keras.applications` so its layer tables line up with ours.
Only stock Keras layers are used: a saved `.keras` file reloads without custom objects.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jobs.ml.catalog import ARCHITECTURES, Architecture, look_up

if TYPE_CHECKING:  # pragma: no cover - annotations only; importing keras here would load TensorFlow
    import keras


# The architectures `build_model` builds; the others are built around a backbone by jobs.ml.transfer.
SCRATCH: dict[str, Architecture] = {name: arch for name, arch in ARCHITECTURES.items() if arch.family == "scratch"}


def get_architecture(name: str) -> Architecture:
    """The registry entry for `name`, or a ValueError that lists the valid names."""
    return look_up(ARCHITECTURES, name, "architecture", sorted(ARCHITECTURES))


def check_input(name: str, input_shape: Sequence[int], num_classes: int) -> tuple[tuple[int, int, int], int]:
    """Validate a build request without Keras; returns the normalised (shape, classes).

    Separate from `build_model` so callers (and `jobs.ml.describe`) fail fast, with a sentence a user
    can act on, before paying for a TensorFlow import.
    """
    arch = get_architecture(name)
    try:
        height, width, channels = (int(v) for v in input_shape)
        ok = all(int(v) == v for v in input_shape) and min(height, width, channels) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"An input shape is three positive whole numbers (height, width, channels); "
                         f"got {input_shape!r}.")
    if min(height, width) < arch.min_image_size:
        size = arch.min_image_size
        raise ValueError(f"{arch.title} needs images of at least {size}x{size} pixels; "
                         f"{width}x{height} is too small.")
    try:
        classes = -1 if isinstance(num_classes, bool) else operator.index(num_classes)  # ints, numpy ints
    except TypeError:
        classes = -1
    if classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes; got {num_classes!r}.")
    return (height, width, channels), classes


def _initializers(seed: int | None) -> Callable[[], dict[str, Any]]:
    """Keyword arguments for each weighted layer in turn: seeded kernel initializers, or none.

    Each layer gets its own seed (seed, seed+1, ...): a seeded Keras initializer repeats the
    same values on every call, and setting the global seed instead would change the random
    state of the whole worker process.
    """
    import keras

    counter = itertools.count()

    def next_kwargs() -> dict[str, Any]:
        if seed is None:
            return {}
        return {"kernel_initializer": keras.initializers.GlorotUniform(seed=seed + next(counter))}

    return next_kwargs


def _mlp(keras, x, num_classes: int, init):
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.layers.Dense(128, activation="relu", name="fc1", **init())(x)


def _lenet5(keras, x, num_classes: int, init):
    # Seed 002: valid 5x5 convolutions and sigmoid activations, as LeNet-5 had them.
    x = keras.layers.Conv2D(6, 5, activation="sigmoid", name="conv1", **init())(x)
    x = keras.layers.MaxPooling2D(pool_size=2, strides=2, name="pool1")(x)
    x = keras.layers.Conv2D(16, 5, activation="sigmoid", name="conv2", **init())(x)
    x = keras.layers.MaxPooling2D(pool_size=2, strides=2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation="sigmoid", name="fc1", **init())(x)
    return keras.layers.Dense(84, activation="sigmoid", name="fc2", **init())(x)


# Seed 000's conv stack, one tuple of filter counts per block; every block but the last pools.
_CNN_BLOCKS = ((64, 64), (128, 128), (256, 256), (512,), (512,), (1024,))

# How much of its old moving mean and variance a BatchNormalization layer keeps at each step. Keras's
# 0.99 needs several hundred steps to forget its starting statistics (0.99^50 still keeps 60% of them),
# and a small dataset gives fewer: 144 images in batches of 32 make 50 steps in ten epochs, after which
# the model evaluated and saved (inference mode, moving statistics) is not the one that trained (batch
# statistics). Training sets it per run from the epoch's length (`build_model(bn_momentum=...)`,
# jobs.ml.training.batch_norm_momentum); this is the value for models built for anything else.
BN_MOMENTUM = 0.9


def _cnn(keras, x, num_classes: int, init):
    # Seed 000 puts batch normalization after the layer and its activation ("BN 放在全连接层和激活函数
    # 后面"); 'same' padding keeps the stack usable down to 32x32 inputs.
    for block, filters in enumerate(_CNN_BLOCKS, start=1):
        for index, count in enumerate(filters, start=1):
            name = f"block{block}_conv{index}"
            x = keras.layers.Conv2D(count, 3, padding="same", activation="relu", name=name, **init())(x)
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        if block < len(_CNN_BLOCKS):
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    for index, units in enumerate((1024, 256), start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"fc{index}", **init())(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"fc{index}_bn")(x)
    return x


def _vgg(convs_per_block: tuple[int, ...]):
    """A VGG builder; layer names as in `keras.applications` so tables and feature layers line up."""

    def build(keras, x, num_classes: int, init):
        for block, (convs, filters) in enumerate(zip(convs_per_block, (64, 128, 256, 512, 512), strict=True),
                                                 start=1):
            for index in range(1, convs + 1):
                x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                        name=f"block{block}_conv{index}", **init())(x)
            x = keras.layers.MaxPooling2D(pool_size=2, strides=2, name=f"block{block}_pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(4096, activation="relu", name="fc1", **init())(x)
        return keras.layers.Dense(4096, activation="relu", name="fc2", **init())(x)

    return build


# Each builder returns the features the softmax head reads; build_model adds input and head.
_BUILDERS: dict[str, Callable] = {
    "mlp": _mlp,
    "lenet5": _lenet5,
    "cnn": _cnn,
    "vgg16": _vgg((2, 2, 3, 3, 3)),
    "vgg19": _vgg((2, 2, 4, 4, 4)),
}


def build_model(name: str, input_shape: Sequence[int], num_classes: int, *, seed: int | None = None,
                bn_momentum: float | None = None) -> keras.Model:
    """Uncompiled model taking float inputs already scaled to 0..1 (the training pipeline rescales), ending in an
    n-way softmax.

    Raises ValueError, with a sentence for the user, for an unknown name, an input smaller than
    the architecture's `min_image_size` or fewer than two classes. With `seed`, the initial
    weights are reproducible without touching the process-wide random state. `bn_momentum`, for
    the architectures with batch normalisation, replaces BN_MOMENTUM (no weights depend on it).
    """
    shape, num_classes = check_input(name, input_shape, num_classes)
    if name not in SCRATCH:
        raise ValueError(f"{ARCHITECTURES[name].title} is built around a backbone, not from scratch.")
    import keras

    init = _initializers(seed)
    inputs = keras.Input(shape=shape, name="image")
    features = _BUILDERS[name](keras, inputs, num_classes, init)
    # float32 softmax even under a mixed-precision policy: float16 probabilities underflow.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions",
                                 **init())(features)
    model = keras.Model(inputs, outputs, name=name)
    if bn_momentum is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum  # read at each training step, and saved with the layer's config
    return model


def _output_shape(layer) -> str:
    output = layer.output
    if isinstance(output, list | tuple):
        return str([tuple(o.shape) for o in output])
    return str(tuple(output.shape))


def summarize(model) -> dict:
    """The table `model.summary()` prints, as JSON-ready data for the UI and the experiment record.

    {"layers": [{"name", "type", "output_shape", "params"}], "total_params", "trainable_params",
    "non_trainable_params"}. The input layer is left out (it has no parameters and the input shape
    is reported beside the table), as in the seeds' Sequential summaries.
    """
    import keras

    layers = [{
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": _output_shape(layer),
        "params": int(layer.count_params()),
    } for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {
        "layers": layers,
        "total_params": int(trainable + non_trainable),
        "trainable_params": int(trainable),
        "non_trainable_params": int(non_trainable),
    }
