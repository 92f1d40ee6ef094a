"""Transfer learning and logistic regression on a backbone: classifiers in seconds (PRODUCT.md, workflow 2).

A pretrained backbone already turns images into features that separate most everyday classes;
a small head on top learns a new task from a few hundred images. Three ways to train it:

- `transfer`, mode `extract` (seed 003): the head (Dense(256, relu) -> Dropout(0.5) -> softmax)
  learns on the cached features (`jobs.ml.features`), so an epoch costs milliseconds, not a pass
  of the backbone over every image;
- `transfer`, mode `finetune`: backbone and head learn end to end on augmented images, with only
  the backbone's last block unfrozen and a low learning rate, so the pretrained features are
  adjusted rather than destroyed. BatchNormalization layers stay frozen, in inference mode: with
  small batches their statistics would be noise. When the cached features are passed too, the
  head first learns on them (seconds), so fine-tuning starts from a sensible head instead of
  pushing random gradients into the backbone;
- `logreg` (seed 004): scikit-learn's multinomial logistic regression on standardised features,
  a baseline that needs no epochs.

Whatever the method, the result is an ordinary VisionLab classifier: `model.keras` taking 0..255
pixels and returning probabilities (backbone preprocessing, backbone, flatten, head in one Keras
model of stock layers; logistic regression becomes a softmax Dense layer with the
standardisation folded into its weights) plus `metadata.json`, so `jobs.ml.predict`, downloads
and later use as a backbone need nothing special. A TensorFlow Lite backbone cannot live inside a
Keras model: then `model.keras` is the head alone, and the metadata's "backbone" entry tells
`jobs.ml.predict` to run the .tflite file first.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from jobs.ml import devices, formats, zoo
from jobs.ml.artifacts import save_model
from jobs.ml.backbones import Backbone, keras_feature_model
from jobs.ml.config import TransferConfig
from jobs.ml.evaluation import classification_report
from jobs.ml.features import FeatureSet
from jobs.ml.pipeline import augmenter, make_dataset, steps_per_epoch
from jobs.ml.progress import ProgressSink
from jobs.ml.scaling import SCALING_LAYER
from jobs.ml.training import (
    CACHE_DIR,
    EVAL_END,
    TRAIN_END,
    TRAIN_START,
    JobCallback,
    StageProgress,
    TrainResult,
    check_fit_settings,
    device_plan,
    forget_state,
    make_optimizer,
    restore_best,
)

MODES = ("extract", "finetune")
HEAD_UNITS, HEAD_DROPOUT = 256, 0.5
# Head-only training on cached features before fine-tuning, when features are given: about this
# many optimizer steps (a few epochs of a large dataset, more epochs of a small one), within bounds.
WARM_START_STEPS, WARM_START_MIN_EPOCHS, WARM_START_MAX_EPOCHS = 300, 5, 50
WARM_START_LEARNING_RATE = 1e-3

# Logistic regression: lbfgs runs in chunks of iterations so progress is reported and a cancel
# gets through; warm_start continues from the previous chunk's coefficients.
LOGREG_CHUNK, LOGREG_MAX_ITER = 50, 2000
ABSENT_CLASS_LOGIT = -50.0  # a class with no training image: probability ~e-50 relative to the others

# The part of VGG16 / MobileNetV2 that fine-tuning unfreezes ("the last block").
_VGG_LAST_BLOCK = ("block5_",)
_VGG_DENSE = ("fc1", "fc2")
_MOBILENET_V2_LAST_BLOCKS = "block_16_"


# --- checks ----------------------------------------------------------------------------------------

def _check_items(train: Sequence, val: Sequence, class_names: Sequence[str], need_val: bool = True) -> None:
    if len(class_names) < 2:
        raise ValueError(f"A classifier needs at least 2 classes; this dataset has {len(class_names)}.")
    if not train:
        raise ValueError("The training split has no images.")
    if need_val and not val:
        raise ValueError("The validation split has no images; it is needed to follow and stop training.")
    bad = [label for _, label in (*train, *val) if not 0 <= int(label) < len(class_names)]
    if bad:
        raise ValueError(f"A class index ({bad[0]}) is outside the {len(class_names)} class names.")


def _check_features(features: FeatureSet | None, backbone: Backbone, what: str) -> None:
    if features is None:
        raise ValueError(f"{what} trains on the cached features of this dataset; extract them first.")
    made_by = features.meta.get("backbone")
    if made_by is not None and made_by != backbone.cache_key():
        raise ValueError(f"These features were made by another backbone ({made_by.get('backbone')}, "
                         f"{made_by.get('layer')}), not by {backbone.title} ({backbone.layer}).")
    if features.features.shape[1] != backbone.feature_dim:
        raise ValueError(f"The stored features have {features.features.shape[1]} values per image, but "
                         f"{backbone.title} gives {backbone.feature_dim}.")


def _check(config: TransferConfig, train, val, class_names, backbone: Backbone, features: FeatureSet | None) -> None:
    if config.mode not in MODES:
        raise ValueError(f"Transfer learning runs in mode {' or '.join(MODES)}, not {config.mode!r}.")
    check_fit_settings(config)
    if not (0 <= config.augment_rotation <= 1 and 0 <= config.augment_zoom < 1):
        raise ValueError("Rotation is a fraction of a full turn (0 to 1) and zoom a fraction of the size (0 to 1).")
    _check_items(train, val, class_names)
    if config.mode == "extract":
        _check_features(features, backbone, "Transfer learning in extract mode")
    elif not (fmt := formats.by_kind(backbone.kind)).fine_tunes:
        raise ValueError(f"Fine-tuning needs a Keras backbone; {backbone.title} is a {fmt.title} model, which "
                         "cannot be trained. Use the extract mode.")
    elif features is not None:
        _check_features(features, backbone, "Warm-starting the head")


# --- small helpers -------------------------------------------------------------------------------

def _rows(features: FeatureSet, items: Sequence[tuple[str, int]], feature_key: Callable[[str], str] | None):
    key = feature_key or str
    return features.rows([key(path) for path, _ in items]), np.array([int(label) for _, label in items], np.int32)


def _head_layers(num_classes: int, seed: int) -> list:
    """The transfer head of seed 003: Dense(256, relu) -> Dropout(0.5) -> Dense(n, softmax) in float32."""
    return [
        keras.layers.Dense(HEAD_UNITS, activation="relu", name="head_dense",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed)),
        keras.layers.Dropout(HEAD_DROPOUT, seed=seed, name="head_dropout"),
        keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1)),
    ]


def _head_model(dim: int, layers: list, name: str = "head") -> keras.Model:
    features = keras.Input((dim,), name="features")
    x = features
    for layer in layers:
        x = layer(x)
    return keras.Model(features, x, name=name)


def _assemble(feature_model: keras.Model, backbone: Backbone, layers: list, name: str) -> keras.Model:
    """pixels -> backbone (with its preprocessing) -> flatten -> head, as one Keras model."""
    pixels = keras.Input((backbone.image_size, backbone.image_size, backbone.channels), name="pixels")
    x = feature_model(pixels)
    if len(backbone.feature_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for layer in layers:
        x = layer(x)
    return keras.Model(pixels, x, name=name)


def _leaves(model: keras.Model) -> list:
    """Every layer that is not itself a model, depth first in graph order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_leaves(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def _unfreeze_last_block(feature_model: keras.Model, backbone: Backbone) -> list[str]:
    """Freeze the backbone but its last block; BatchNormalization stays frozen (inference mode).

    The last block: VGG16's block5 (plus fc1/fc2 when the features are fc2), MobileNetV2 from
    block_16 on, and for any other Keras backbone the last quarter of its layers with weights.
    Returns the names of the layers left trainable.
    """
    leaves = _leaves(feature_model)
    for layer in leaves:
        layer.trainable = False
    builtin = not backbone.source
    if builtin and backbone.name in ("vgg16", "vgg16_conv"):
        chosen = [layer for layer in leaves if layer.name.startswith(_VGG_LAST_BLOCK) or layer.name in _VGG_DENSE]
    elif builtin and backbone.name == "mobilenet_v2":
        first = next(i for i, layer in enumerate(leaves) if layer.name.startswith(_MOBILENET_V2_LAST_BLOCKS))
        chosen = leaves[first:]
    else:
        weighted = [layer for layer in leaves if layer.weights and layer.name != SCALING_LAYER]
        chosen = weighted[-max(1, math.ceil(len(weighted) / 4)):]
    names = []
    for layer in chosen:
        if not isinstance(layer, keras.layers.BatchNormalization) and layer.weights:
            layer.trainable = True
            names.append(layer.name)
    return names


def _device_name(description: str) -> str:
    """The device without the mixed-precision note: heads and logistic regression train in float32."""
    return description.split(" · ")[0]


def _metadata(class_names: Sequence[str], backbone: Backbone, architecture: str, mode: str, **extra) -> dict:
    mode_name = "L" if backbone.channels == 1 else "RGB"
    size = backbone.image_size
    return {
        "class_names": list(class_names), "image_size": size, "channels": backbone.channels,
        "architecture": architecture, "input": f"{mode_name} pixels 0..255 resized to {size}x{size}",
        "mode": mode, "backbone": backbone.to_dict(), **extra,
    }


def _for_use(backbone: Backbone, layers: list, name: str) -> tuple[keras.Model, dict]:
    """(the model to save: whole when the backbone is a Keras graph, the head alone otherwise (TFLite), its summary)."""
    if not formats.by_kind(backbone.kind).in_graph:
        head = _head_model(backbone.feature_dim, layers, name=name)
        return head, zoo.summarize(head)
    model = _assemble(keras_feature_model(backbone), backbone, layers, name)
    return model, zoo.summarize(model)


def build_transfer_model(backbone: Backbone, num_classes: int, seed: int = 0, name: str = "transfer") -> keras.Model:
    """The model a transfer job saves (backbone, flatten, Dense(256), Dropout(0.5), softmax), untrained.

    For layer tables and parameter counts: the same assembly the training uses.
    """
    model, _ = _for_use(backbone, _head_layers(num_classes, seed), name)
    return model


def _result(history, best_epoch, scores, class_names, model_path, summary, device, images_per_second, started,
            evaluated_on, stopped_early, epochs_run, model_epoch) -> TrainResult:
    return TrainResult(
        history=history, best_epoch=best_epoch, test_loss=scores["loss"], test_accuracy=scores["accuracy"],
        confusion_matrix=scores["confusion_matrix"], classes=list(class_names), per_class=scores["per_class"],
        mistakes=scores["mistakes"], model_path=str(model_path), summary=summary, device=device,
        images_per_second=images_per_second, seconds=round(time.perf_counter() - started, 2),
        evaluated_on=evaluated_on, stopped_early=stopped_early, epochs_run=epochs_run,
        predictions=scores["predictions"], model_epoch=model_epoch,
    )


class _Callback(JobCallback):
    """jobs.ml.training's progress, metrics, best weights and early stopping, without the per-epoch
    checkpoint and with the best weights in memory only.

    Both files exist so a classifier's training can resume; transfer runs are short (and have no
    resume), and writing a model every epoch would cost more than an epoch of the head.
    """

    def _checkpoint(self) -> None:
        pass

    def _save_best(self) -> None:
        pass


def _scores(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> tuple[float, float]:
    """(loss, accuracy) as Keras reports sparse categorical cross-entropy and accuracy."""
    probabilities = np.concatenate([np.asarray(model.predict_on_batch(x[i:i + batch_size]), np.float64)
                                    for i in range(0, len(x), batch_size)])
    return _loss_accuracy(probabilities, y)


def _fit_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, seed: int,
                callback: keras.callbacks.Callback, validation: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """`model.fit` for arrays in memory, batch by batch with `train_on_batch`.

    Keras's fit builds a tf.data pipeline and iterators for the training and validation arrays
    every epoch: about 0.1-0.3 s on two CPU cores, more than a whole epoch of a head on a few
    thousand feature rows. The loss and accuracy of an epoch are the sample-weighted means of its
    batches (what fit reports); the callback sees the same calls as under fit, so
    `jobs.ml.training`'s progress, metrics and early stopping work unchanged.
    """
    rng = np.random.default_rng(seed)
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch)
        order = rng.permutation(len(x))
        loss = right = 0.0
        for batch, first in enumerate(range(0, len(x), batch_size)):
            rows = order[first:first + batch_size]
            logs = model.train_on_batch(x[rows], y[rows], return_dict=True)
            loss += float(logs["loss"]) * len(rows)
            right += float(logs["accuracy"]) * len(rows)
            callback.on_train_batch_end(batch, logs)
        logs = {"loss": loss / len(x), "accuracy": right / len(x)}
        if validation is not None:
            logs["val_loss"], logs["val_accuracy"] = _scores(model, *validation)
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback.on_train_end()


class _EpochProgress(keras.callbacks.Callback):
    """Progress and cancel checks for the short head-only warm start before fine-tuning."""

    def __init__(self, sink: ProgressSink, fraction: float, epochs: int):
        super().__init__()
        self.sink, self.fraction, self.epochs = sink, fraction, epochs

    def on_epoch_end(self, epoch, logs=None):
        self.sink.progress(self.fraction, f"Training the new head on the cached features · epoch {epoch + 1}/"
                                          f"{self.epochs}")


# --- transfer: extract mode ------------------------------------------------------------------------

def _train_extract(train, val, test, class_names, backbone, features, config, workdir, sink, feature_key,
                   started) -> TrainResult:
    plan = device_plan()
    device = _device_name(plan.description)
    sink.set_device(device)
    x_train, y_train = _rows(features, train, feature_key)
    x_val, y_val = _rows(features, val, feature_key)
    eval_items, where = (test, "test") if test else (val, "validation")
    x_eval, y_eval = _rows(features, eval_items, feature_key)

    keras.utils.set_random_seed(config.seed)
    layers = _head_layers(len(class_names), config.seed)
    head = _head_model(backbone.feature_dim, layers)
    head.compile(optimizer=make_optimizer(config),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = steps_per_epoch(len(train), config.batch_size)
    callback = _Callback(sink, workdir, config, list(class_names), steps, len(train), None)
    sink.progress(TRAIN_START, f"Training the head on the {backbone.title} features of {len(train)} images")
    try:
        _fit_arrays(head, x_train, y_train, config.epochs, config.batch_size, config.seed, callback,
                    validation=(x_val, y_val))
    finally:
        forget_state(workdir)  # early stopping keeps its best weights on disk while training runs
    model_epoch = restore_best(head, callback)

    sink.progress(TRAIN_END, f"Evaluating on the {len(eval_items)} {where} images")
    probabilities = np.concatenate([np.asarray(head.predict_on_batch(x_eval[i:i + 1024]))
                                    for i in range(0, len(x_eval), 1024)])
    scores = classification_report(y_eval, probabilities, class_names, [path for path, _ in eval_items])
    sink.progress(EVAL_END, "Saving the model")
    model, summary = _for_use(backbone, layers, config.architecture)
    model_path = save_model(model, workdir, _metadata(class_names, backbone, config.architecture, "extract"))
    history = callback.history
    return _result(history, callback.best_epoch or len(history), scores, class_names, model_path, summary, device,
                   round(callback.seen / callback.train_seconds, 1) if callback.train_seconds else 0.0, started,
                   "test" if test else "validation", callback.stopped_early, callback.epochs_run, model_epoch)


# --- transfer: finetune mode -----------------------------------------------------------------------

def _build_finetune(backbone: Backbone, num_classes: int, config: TransferConfig, precision: str):
    """(whole model, its head layers, the backbone's feature model) for fine-tuning."""
    feature_model = keras_feature_model(backbone, precision)
    keras.utils.set_random_seed(config.seed)  # after the backbone: random builtins seed themselves
    layers = _head_layers(num_classes, config.seed)
    model = _assemble(feature_model, backbone, layers, config.architecture)
    return model, layers, feature_model


def _warm_start(layers: list, backbone: Backbone, features: FeatureSet, train, config: TransferConfig,
                sink: ProgressSink, feature_key) -> int:
    """Head-only epochs on the cached features, so fine-tuning starts from a trained head; returns how many."""
    x_train, y_train = _rows(features, train, feature_key)
    head = _head_model(backbone.feature_dim, layers)
    head.compile(optimizer=make_optimizer(dataclasses.replace(config, learning_rate=WARM_START_LEARNING_RATE)),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = steps_per_epoch(len(train), config.batch_size)
    epochs = min(WARM_START_MAX_EPOCHS, max(WARM_START_MIN_EPOCHS, math.ceil(WARM_START_STEPS / steps)))
    _fit_arrays(head, x_train, y_train, epochs, config.batch_size, config.seed, _EpochProgress(sink, TRAIN_START,
                                                                                              epochs))
    return epochs


def _evaluate_on_images(model, items, where: str, backbone: Backbone, class_names, config, cache_dir: Path,
                        sink: ProgressSink) -> dict:
    """A fine-tuned model's scores on `items` (the test images, or the validation ones without a test split)."""
    eval_ds = make_dataset(items, backbone.image_size, backbone.channels, config.batch_size, cache_dir=cache_dir,
                           name="eval")
    message = f"Evaluating on the {len(items)} {where} images"
    probabilities = model.predict(eval_ds, verbose=0, callbacks=[
        StageProgress(sink, TRAIN_END, EVAL_END, steps_per_epoch(len(items), config.batch_size), message)])
    return classification_report([label for _, label in items], probabilities, class_names,
                                 [path for path, _ in items])


def _train_finetune(train, val, test, class_names, backbone, features, config, workdir, sink, feature_key,
                    started) -> TrainResult:
    plan = device_plan()
    sink.set_device(plan.description)
    precision = "float16" if plan.mixed_precision else "float32"
    cache_dir = workdir / CACHE_DIR
    shutil.rmtree(cache_dir, ignore_errors=True)
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if plan.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        with plan.strategy.scope():
            sink.progress(0.01, f"Loading {backbone.title}")
            model, layers, feature_model = _build_finetune(backbone, len(class_names), config, precision)
            warm_epochs = 0
            if features is not None:
                warm_epochs = _warm_start(layers, backbone, features, train, config, sink, feature_key)
            trainable = _unfreeze_last_block(feature_model, backbone)
            model.compile(optimizer=make_optimizer(config),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        summary = zoo.summarize(model)
        steps = steps_per_epoch(len(train), config.batch_size)
        callback = _Callback(sink, workdir, config, list(class_names), steps, len(train), None)
        size, channels = backbone.image_size, backbone.channels
        sink.progress(TRAIN_START, f"Reading {len(train)} training and {len(val)} validation images")
        augment = augmenter(config.augment_flip, config.augment_rotation, config.augment_zoom, config.seed)
        train_ds = make_dataset(train, size, channels, config.batch_size, training=True, seed=config.seed,
                                augment=augment, cache_dir=cache_dir, name="train")
        val_ds = make_dataset(val, size, channels, config.batch_size, cache_dir=cache_dir, name="val")
        try:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=[callback], verbose=0,
                      shuffle=False)
        finally:
            forget_state(workdir)
        model_epoch = restore_best(model, callback)

        scores = _evaluate_on_images(model, test or val, "test" if test else "validation", backbone, class_names,
                                     config, cache_dir, sink)
        sink.progress(EVAL_END, "Saving the model")
        if plan.mixed_precision:
            # Saved in float32, as jobs.ml.training does: float16 layers crawl on an inference CPU.
            keras.mixed_precision.set_global_policy("float32")
            trained = model
            model, _, _ = _build_finetune(backbone, len(class_names), config, "float32")
            model.set_weights(trained.get_weights())
        metadata = _metadata(class_names, backbone, config.architecture, "finetune", trainable_layers=trainable,
                             warm_start_epochs=warm_epochs)
        model_path = save_model(model, workdir, metadata)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        shutil.rmtree(cache_dir, ignore_errors=True)
    history = callback.history
    return _result(history, callback.best_epoch or len(history), scores, class_names, model_path, summary,
                   plan.description,
                   round(callback.seen / callback.train_seconds, 1) if callback.train_seconds else 0.0, started,
                   "test" if test else "validation", callback.stopped_early, callback.epochs_run, model_epoch)


def train_transfer(train: list[tuple[str, int]], val: list[tuple[str, int]], test: list[tuple[str, int]],
                   class_names: list[str], backbone: Backbone, features: FeatureSet | None, config: TransferConfig,
                   workdir: Path, sink: ProgressSink, *,
                   feature_key: Callable[[str], str] | None = None) -> TrainResult:
    """Train the transfer head (mode "extract") or the head and the backbone's last block ("finetune").

    `features` holds the cached features of the images in the splits, keyed by `feature_key(path)`
    (default: the path itself); required in extract mode, optional in finetune mode (then used
    to warm-start the head). Evaluates on `test` (or `val` when it is empty) and leaves
    `model.keras` + `metadata.json` in `workdir`. Raises JobCancelled when the sink does,
    ValueError (a sentence for the user) for an unusable request.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    _check(config, train, val, class_names, backbone, features)
    workdir.mkdir(parents=True, exist_ok=True)
    sink.progress(0.0, "Preparing the model")
    if config.mode == "extract":
        result = _train_extract(train, val, test, class_names, backbone, features, config, workdir, sink,
                                feature_key, started)
    else:
        result = _train_finetune(train, val, test, class_names, backbone, features, config, workdir, sink,
                                 feature_key, started)
    sink.progress(1.0, "Done")
    return result


# --- logistic regression -------------------------------------------------------------------------

def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _loss_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))), float(np.mean(probabilities.argmax(1) == labels))


def _fold(model, mean: np.ndarray, scale: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (D, n), bias (n,)) of one softmax Dense layer on raw features equal to the fitted model
    on standardised ones: softmax(((x - mean) / scale) W^T + b) = softmax(x K + c)."""
    coef = np.asarray(model.coef_, np.float64)
    intercept = np.asarray(model.intercept_, np.float64)
    if coef.shape[0] == 1:  # two classes: one logit for the second, softmax([0, z]) = sigmoid(z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    kernel = np.zeros((coef.shape[1], num_classes))
    bias = np.full(num_classes, ABSENT_CLASS_LOGIT)
    present = np.asarray(model.classes_, int)
    kernel[:, present] = (coef / scale).T
    bias[present] = intercept - (coef * (mean / scale)).sum(axis=1)
    return kernel, bias


def _fit_logreg(standardised: np.ndarray, labels: np.ndarray, C: float, seed: int, sink: ProgressSink):  # noqa: N803
    """(the fitted scikit-learn model, lbfgs iterations run): fitted in chunks of LOGREG_CHUNK iterations, so
    progress moves and a cancel is heard between chunks, until it converges or reaches LOGREG_MAX_ITER."""
    from sklearn.exceptions import ConvergenceWarning  # scikit-learn: loaded by the one kind of job that needs it
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=LOGREG_CHUNK, warm_start=True, random_state=seed)
    iterations = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(standardised, labels)
        ran = int(np.max(model.n_iter_))
        iterations += ran
        fraction = TRAIN_START + (TRAIN_END - TRAIN_START) * min(1.0, iterations / LOGREG_MAX_ITER)
        sink.progress(fraction, f"Fitting logistic regression on {len(labels)} images · {iterations} iterations")
        if ran < LOGREG_CHUNK or iterations >= LOGREG_MAX_ITER:
            return model, iterations


def train_logreg(train: list[tuple[str, int]], val: list[tuple[str, int]], test: list[tuple[str, int]],
                 class_names: list[str], backbone: Backbone, features: FeatureSet, workdir: Path,
                 sink: ProgressSink, seed: int = 0, C: float = 1.0, *,  # noqa: N803 - scikit-learn's name
                 feature_key: Callable[[str], str] | None = None, architecture: str = "logreg") -> TrainResult:
    """Multinomial logistic regression (lbfgs) on standardised cached features, saved as a classifier.

    One "epoch" of metrics (training and validation loss and accuracy) is reported. `C` is the
    inverse regularisation strength, as in scikit-learn.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    if not (isinstance(C, int | float) and C > 0):
        raise ValueError("The regularisation parameter C must be a positive number.")
    _check_items(train, val, class_names, need_val=False)
    _check_features(features, backbone, "Logistic regression")
    workdir.mkdir(parents=True, exist_ok=True)
    device = f"CPU ({devices.cpu_model()})"
    sink.set_device(device)
    sink.progress(0.0, "Reading the cached features")
    x_train, y_train = _rows(features, train, feature_key)
    if len(np.unique(y_train)) < 2:
        raise ValueError("The training split holds images of only one class; logistic regression needs two.")
    x_train = x_train.astype(np.float64)
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale[scale == 0] = 1.0  # constant features carry nothing; leave them as they are
    standardised = (x_train - mean) / scale

    fit_started = time.perf_counter()
    model, iterations = _fit_logreg(standardised, y_train, C, seed, sink)
    fit_seconds = time.perf_counter() - fit_started
    kernel, bias = _fold(model, mean, scale, len(class_names))

    def probabilities(items):
        x, y = _rows(features, items, feature_key)
        return _softmax(x.astype(np.float64) @ kernel + bias), y

    metrics = dict(zip(("loss", "accuracy"), _loss_accuracy(*probabilities(train)), strict=True))
    if val:
        metrics.update(zip(("val_loss", "val_accuracy"), _loss_accuracy(*probabilities(val)), strict=True))
    sink.epoch_end(1, metrics)
    eval_items, where = (test, "test") if test else (val or train, "validation" if val else "training")
    sink.progress(TRAIN_END, f"Evaluating on the {len(eval_items)} {where} images")
    eval_probabilities, eval_labels = probabilities(eval_items)
    scores = classification_report(eval_labels, eval_probabilities, class_names, [path for path, _ in eval_items])

    sink.progress(EVAL_END, "Saving the model")
    dense = keras.layers.Dense(len(class_names), activation="softmax", dtype="float32", name="predictions")
    saved, summary = _for_use(backbone, [dense], architecture)
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    metadata = _metadata(class_names, backbone, architecture, "logreg", C=C, iterations=iterations)
    model_path = save_model(saved, workdir, metadata)
    sink.progress(1.0, "Done")
    return _result([{"epoch": 1, **metrics}], 1, scores, class_names, model_path, summary, device,
                   round(len(train) / fit_seconds, 1) if fit_seconds else 0.0, started,
                   "test" if test else where, False, 1, 1)
