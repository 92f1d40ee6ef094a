"""Training an image classifier from file lists: the work behind workflow 1 (PRODUCT.md).

`train_classifier` takes (image path, class index) lists per split, builds a model from the
zoo, trains it on the best device it finds, evaluates it, and leaves in its working folder the
model a person downloads (`model.keras`, taking raw 0..255 pixels) and what predicting with it
needs (`metadata.json`). Every epoch it checkpoints the whole training state, so a run that
died (worker restart, lost machine) continues where it stopped with `resume=True`.

Progress, per-epoch metrics and the device go to a `ProgressSink`; a sink that raises
`JobCancelled` stops the run within a batch. No Django here: the same code runs from a script.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from jobs.ml import devices, zoo
from jobs.ml.artifacts import save_model, write_atomically, write_json
from jobs.ml.config import FitConfig, TrainConfig
from jobs.ml.evaluation import classification_report
from jobs.ml.pipeline import augmenter, make_dataset, steps_per_epoch
from jobs.ml.progress import Countdown, ProgressSink

OPTIMIZERS = ("adam", "sgd", "rmsprop")
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

# Shares of the job's progress bar: preparing, the epochs, then evaluating and saving.
TRAIN_START, TRAIN_END, EVAL_END = 0.02, 0.95, 0.98

# Files in the working folder.
CHECKPOINT_FILE, STATE_FILE, BEST_WEIGHTS_FILE = "checkpoint.keras", "state.json", "best.weights.npz"
CACHE_DIR = "cache"

# What must match for a checkpoint to be continued rather than started over.
RESUME_KEYS = ("architecture", "image_size", "channels", "optimizer", "learning_rate", "seed")


@dataclass
class TrainResult:
    history: list[dict]  # per epoch: {"epoch" (1-based), "loss", "accuracy", "val_loss", "val_accuracy"}
    best_epoch: int  # 1-based epoch with the lowest val_loss
    test_loss: float
    test_accuracy: float
    confusion_matrix: list[list[int]]  # rows = true class, cols = predicted, in `classes` order
    classes: list[str]
    per_class: list[dict]  # [{"name", "precision", "recall", "f1", "support"}]
    mistakes: list[dict]  # most confident wrong predictions: {"path", "true", "predicted", "confidence"}
    model_path: str  # workdir / "model.keras"
    summary: dict  # zoo.summarize() of the architecture
    device: str  # "CPU (model)" or the GPU name(s), mixed precision noted
    images_per_second: float  # training throughput (training batches only, validation excluded)
    seconds: float  # the whole call
    evaluated_on: str = "test"  # "validation" when the test split is empty
    stopped_early: bool = False
    epochs_run: int = 0  # epochs trained by this call (fewer than the history after a resume)
    # The 1-based epoch whose weights were evaluated and saved: `best_epoch` when its weights were kept,
    # else the last one (keeping the best turned off, or a resumed run whose best weights were lost).
    model_epoch: int = 0
    # Every evaluated image: (path, true class index, predicted class index), in evaluation order.
    predictions: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class DevicePlan:
    strategy: tf.distribute.Strategy
    mixed_precision: bool
    description: str


# --- checks and small helpers -------------------------------------------------------------------

def check_fit_settings(config: FitConfig) -> None:
    """The optimizer, epochs, batch size and learning rate every Keras fit needs (training and transfer
    learning check them the same way, with the same sentences)."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"There is no optimizer called {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("Training needs at least one epoch and a batch size of at least 1.")
    if not config.learning_rate > 0:
        raise ValueError("The learning rate must be a positive number.")


def _check(config: TrainConfig, train: list, val: list, class_names: list[str]) -> None:
    """Fail before any work with a sentence a user can act on."""
    if config.channels not in (1, 3):
        raise ValueError(f"Images are read as 1 (grayscale) or 3 (RGB) channels, not {config.channels}.")
    check_fit_settings(config)
    if not train:
        raise ValueError("The training split has no images.")
    if not val:
        raise ValueError("The validation split has no images; it is needed to follow and stop training.")
    zoo.check_input(config.architecture, (config.image_size, config.image_size, config.channels), len(class_names))
    bad = [label for _, label in (*train, *val) if not 0 <= label < len(class_names)]
    if bad:
        raise ValueError(f"A class index ({bad[0]}) is outside the {len(class_names)} class names.")


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=config.learning_rate)
    return keras.optimizers.Adam(learning_rate=config.learning_rate)


# --- device -------------------------------------------------------------------------------------

def device_plan() -> DevicePlan:
    """Where to train: every visible GPU (mixed precision where it pays off), else the CPU.

    Mixed float16 roughly doubles throughput on GPUs with tensor cores (compute capability 7.0
    and later) and slows older ones, so it is used only on the former. The zoo's models keep
    their softmax in float32, so probabilities and the loss stay accurate. With several GPUs a
    MirroredStrategy splits each batch across them; the batch size stays the global one.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DevicePlan(tf.distribute.get_strategy(), False, f"CPU ({devices.cpu_model()})")
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    names = [d.get("device_name") or gpu.name for d, gpu in zip(details, gpus, strict=True)]
    mixed = all(tuple(d.get("compute_capability", (0, 0))) >= (7, 0) for d in details)
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    description = ", ".join(names) + (" · mixed precision (float16)" if mixed else "")
    return DevicePlan(strategy, mixed, description)


# --- batches per call ---------------------------------------------------------------------------

# Aim for one compiled call to take about this long: long enough that Python's per-call cost
# (the step dispatch, the callbacks) disappears for small models, short enough that progress
# still moves several times a second and a cancel is noticed quickly.
TARGET_CALL_SECONDS = 0.1
MAX_STEPS_PER_EXECUTION = 32
ASSUMED_FLOPS_PER_SECOND = 2e10  # a modest CPU core pair; GPUs are faster, which only shortens calls


def multiply_adds_per_image(model: keras.Model) -> int:
    """Forward-pass multiply-adds of one image through the model's Conv2D and Dense layers.

    A convolution costs its kernel's weights once per output position; a dense layer its
    weights once. Everything else (pooling, normalisation, activations) is small beside them.
    """
    total = 0
    for layer in _leaf_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        weights = math.prod(kernel.shape)
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            total += weights * int(height or 1) * int(width or 1)
        else:
            total += weights
    return total


def _leaf_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def steps_per_execution(model: keras.Model, batch_size: int, steps: int) -> int:
    """How many training batches one compiled call runs (Keras's `steps_per_execution`).

    Small models on small images finish a batch in a millisecond or two, so the Python around
    each step (dispatch, callbacks, progress) costs as much as the step itself; running several
    batches per call removes it. The estimate is training cost (about three forward passes) at an
    assumed speed: a wrong guess only changes how often progress is reported.
    """
    seconds_per_batch = 6 * multiply_adds_per_image(model) * batch_size / ASSUMED_FLOPS_PER_SECOND
    wanted = int(TARGET_CALL_SECONDS / max(seconds_per_batch, 1e-9))
    return max(1, min(wanted, MAX_STEPS_PER_EXECUTION, steps))


# --- model and saved state ----------------------------------------------------------------------

def batch_norm_momentum(steps: int) -> float:
    """BatchNormalization's momentum for a run of `steps` batches an epoch: its moving statistics then
    average over about half an epoch, whatever the dataset's size.

    What is evaluated, saved and validated every epoch uses those moving statistics, so they must
    keep up with the weights. With 144 images in batches of 32 (5 steps an epoch) a fixed 0.9 still
    keeps 59% of the previous epoch's statistics at each epoch's end, and the first epochs validate
    at chance while training accuracy climbs; 0.6 keeps 8%. A large dataset gets Keras's 0.99.
    """
    return min(0.99, max(0.5, 1 - 2 / max(steps, 1)))


def _build(config: TrainConfig, num_classes: int, steps: int) -> keras.Sequential:
    """The zoo's architecture behind a Rescaling layer: the model takes 0..255 pixels as they are."""
    size, channels = config.image_size, config.channels
    base = zoo.build_model(config.architecture, (size, size, channels), num_classes, seed=config.seed,
                           bn_momentum=batch_norm_momentum(steps))
    return keras.Sequential([
        keras.Input((size, size, channels), name="pixels"),
        keras.layers.Rescaling(1 / 255, name="rescale"),
        base,
    ], name=f"{config.architecture}_classifier")


def _compiled(config: TrainConfig, num_classes: int, steps: int) -> keras.Sequential:
    model = _build(config, num_classes, steps)
    model.compile(optimizer=make_optimizer(config), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution(model, config.batch_size, steps))
    return model


def _read_state(workdir: Path, config: TrainConfig, class_names: list[str]) -> dict | None:
    """The saved training state when it exists and belongs to this kind of run, else None."""
    try:
        state = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (workdir / CHECKPOINT_FILE).exists():
        return None
    saved = state.get("config", {})
    if state.get("class_names") != class_names or any(saved.get(k) != getattr(config, k) for k in RESUME_KEYS):
        return None  # another architecture, input or class list: its weights cannot continue
    return state


def forget_state(workdir: Path) -> None:
    for name in (CHECKPOINT_FILE, STATE_FILE, BEST_WEIGHTS_FILE):
        (workdir / name).unlink(missing_ok=True)


def load_weights(path: Path) -> list[np.ndarray] | None:
    """The weights `save_weights` wrote, or None when the file is missing or unreadable."""
    try:
        with np.load(path) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError):
        return None


def save_weights(path: Path, weights: list[np.ndarray]) -> None:
    write_atomically(path, lambda tmp: np.savez(tmp, *weights))


# --- the callback that reports, checkpoints and stops early ------------------------------------

class EpochCallback(keras.callbacks.Callback):
    """Progress and cancel checks every batch; metrics, the best weights, early stopping and a
    checkpoint every epoch: what classifier and caption training share.

    Early stopping is done here rather than with `keras.callbacks.EarlyStopping` because its
    state (best loss, epochs waited, best weights) must survive a resume, and Keras resets it.
    A `JobCancelled` raised by the sink propagates straight out of `fit` (Keras calls batch
    callbacks synchronously when a callback overrides them, as this one does). `epoch` (0-based,
    counting the epochs of earlier runs) is set from the start, for pipelines that draw by epoch.
    Subclasses say what else the checkpoint's state records (`extra_state`).
    """

    validating = "checking the validation images"  # what the bar says while fit validates

    def __init__(self, sink: ProgressSink, workdir: Path, *, epochs: int, patience: int | None, keep_best: bool,
                 steps: int, per_epoch: int, state: dict | None, span: tuple[float, float]):
        super().__init__()
        self.sink, self.workdir, self.epochs, self.patience = sink, workdir, epochs, patience
        self.keep_best, self.steps, self.per_epoch = keep_best, steps, per_epoch
        self.start, self.end = span
        state = state or {}
        self.history: list[dict] = list(state.get("history", []))
        self.best_epoch: int = state.get("best_epoch", 0)
        self.best_val_loss: float | None = state.get("best_val_loss")
        self.stopped_early: bool = state.get("stopped_early", False)
        self.best_weights = load_weights(workdir / BEST_WEIGHTS_FILE) if keep_best and self.best_epoch else None
        self.epoch = self.initial_epoch = len(self.history)
        self.fraction = self.start
        self.epochs_run, self.seen, self.train_seconds = 0, 0, 0.0  # seen: images or samples trained on

    # progress

    def _report(self, fraction: float, message: str) -> None:
        self.fraction = max(self.fraction, min(fraction, self.end))
        self.sink.progress(self.fraction, message)

    def on_train_begin(self, logs=None):
        self.countdown = Countdown((self.epochs - self.initial_epoch) * self.steps)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_started = time.perf_counter()
        self.epoch_train_seconds = 0.0

    def on_train_batch_end(self, batch, logs=None):
        batch = min(batch, self.steps - 1)  # with several batches per call, the last call may overshoot
        self.epoch_train_seconds = time.perf_counter() - self.epoch_started
        fraction = self.start + (self.end - self.start) * (self.epoch + (batch + 1) / self.steps) / self.epochs
        done = (self.epoch - self.initial_epoch) * self.steps + batch + 1
        self._report(fraction, f"Epoch {self.epoch + 1}/{self.epochs} · batch {batch + 1}/{self.steps}"
                               f"{self.countdown(done)}")

    def on_test_batch_end(self, batch, logs=None):
        # Validation inside fit: nothing to add to the bar, but a cancel must not wait for it.
        self._report(self.fraction, f"Epoch {self.epoch + 1}/{self.epochs} · {self.validating}")

    # per epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        metrics = {k: float(logs[k]) for k in METRICS if k in logs}
        self.history.append({"epoch": epoch + 1, **metrics})
        self.epochs_run += 1
        self.train_seconds += self.epoch_train_seconds
        self.seen += self.per_epoch

        val_loss = metrics.get("val_loss")
        if val_loss is not None and math.isfinite(val_loss) and (
                self.best_val_loss is None or val_loss < self.best_val_loss):
            self.best_val_loss, self.best_epoch = val_loss, epoch + 1
            if self.keep_best:
                self.best_weights = self.model.get_weights()
                self._save_best()
        if self.patience and epoch + 1 - max(self.best_epoch, 1) >= self.patience:
            self.stopped_early = True
            self.model.stop_training = True
        self._checkpoint()
        self.sink.epoch_end(epoch + 1, metrics)

    def _save_best(self) -> None:
        """The best weights on disk too, so a resumed run still ends with the best epoch's model."""
        save_weights(self.workdir / BEST_WEIGHTS_FILE, self.best_weights)

    def _checkpoint(self) -> None:
        """The whole model with its optimizer state, then the state that says which epoch it is.

        The model is written first: a crash between the two writes makes a resume repeat one
        epoch from a model one epoch further on, never continue from a model that is behind.
        """
        write_atomically(self.workdir / CHECKPOINT_FILE, self.model.save)
        write_json(self.workdir / STATE_FILE, {
            "epochs_done": len(self.history), "history": self.history, "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss, "stopped_early": self.stopped_early, **self.extra_state(),
        })

    def extra_state(self) -> dict:
        return {}


class JobCallback(EpochCallback):
    """A classifier's training: it keeps the best epoch's weights (unless `config.keep_best` is off), and
    its checkpoint says which classes and settings it was made for (a resume checks them)."""

    def __init__(self, sink: ProgressSink, workdir: Path, config: TrainConfig, class_names: list[str],
                 steps: int, n_train: int, state: dict | None):
        self.config, self.class_names = config, class_names
        super().__init__(sink, workdir, epochs=config.epochs, patience=config.early_stopping_patience,
                         keep_best=config.keep_best, steps=steps, per_epoch=n_train,
                         state=state, span=(TRAIN_START, TRAIN_END))

    def extra_state(self) -> dict:
        return {"class_names": self.class_names, "config": asdict(self.config)}


class StageProgress(keras.callbacks.Callback):
    """Progress (and cancel checks) through evaluate and predict, between two fractions."""

    def __init__(self, sink: ProgressSink, start: float, end: float, steps: int, message: str):
        super().__init__()
        self.sink, self.start, self.end, self.steps, self.message = sink, start, end, steps, message

    def _report(self, batch: int) -> None:
        self.sink.progress(self.start + (self.end - self.start) * min(1.0, (batch + 1) / self.steps), self.message)

    def on_test_batch_end(self, batch, logs=None):
        self._report(batch)

    def on_predict_batch_end(self, batch, logs=None):
        self._report(batch)


def restore_best(model: keras.Model, callback: EpochCallback) -> int:
    """Put the best epoch's weights back before evaluating and saving; returns the epoch the model now holds.

    Validation loss usually bottoms out before the last epoch on a small dataset, and the last
    epoch's model can be far worse (issue 15: test loss 5.4 against 1.1 at the best epoch). The
    weights include BatchNormalization's moving statistics, so the restored model is exactly the
    one validated at that epoch. Without kept weights (keeping the best turned off, or a resumed run
    whose best weights were lost) the model is the last epoch's, and the answer says so.
    """
    if callback.keep_best and callback.best_weights is not None:
        model.set_weights(callback.best_weights)
        return callback.best_epoch
    return len(callback.history)


# --- evaluation ---------------------------------------------------------------------------------

def _evaluate(model: keras.Model, items: list[tuple[str, int]], class_names: list[str], config: TrainConfig,
              cache_dir: Path, sink: ProgressSink, where: str) -> dict:
    """Loss, accuracy, confusion matrix, per-class scores and the most confident mistakes."""
    ds = make_dataset(items, config.image_size, config.channels, config.batch_size, cache_dir=cache_dir, name="eval")
    steps = steps_per_epoch(len(items), config.batch_size)
    message = f"Evaluating on the {len(items)} {where} images"
    probabilities = model.predict(ds, verbose=0, callbacks=[StageProgress(sink, TRAIN_END, EVAL_END, steps, message)])
    return classification_report([label for _, label in items], probabilities, class_names,
                                 [path for path, _ in items])


def _save_for_use(model: keras.Model, workdir: Path, config: TrainConfig, class_names: list[str]) -> Path:
    """`model.keras` and its metadata: the label map, input size and colour mode it needs."""
    mode = "L" if config.channels == 1 else "RGB"
    return save_model(model, workdir, {
        "class_names": class_names, "image_size": config.image_size, "channels": config.channels,
        "architecture": config.architecture,
        "input": f"{mode} pixels 0..255 resized to {config.image_size}x{config.image_size}",
    })


# --- the job ------------------------------------------------------------------------------------

def _model_to_train(workdir: Path, config: TrainConfig, class_names: list[str], steps: int, plan, resume: bool):
    """(model, checkpoint state): the checkpointed model when resuming a run with the same settings, else a new
    one (and any old checkpoint forgotten)."""
    state = _read_state(workdir, config, class_names) if resume else None
    if state is None:
        forget_state(workdir)
    with plan.strategy.scope():
        if state is None:
            return _compiled(config, len(class_names), steps), None
        return keras.models.load_model(workdir / CHECKPOINT_FILE), state


def _fit(model, callback: JobCallback, train, val, config: TrainConfig, cache_dir: Path, sink: ProgressSink) -> None:
    """Train the epochs still to run (none when a resumed run had finished or stopped early)."""
    epochs_done = len(callback.history)
    if epochs_done >= config.epochs or callback.stopped_early:
        return
    sink.progress(TRAIN_START, f"Reading {len(train)} training and {len(val)} validation images")
    augment = augmenter(config.augment_flip, config.augment_rotation, config.augment_zoom, config.seed)
    train_ds = make_dataset(train, config.image_size, config.channels, config.batch_size, training=True,
                            seed=config.seed, augment=augment, cache_dir=cache_dir, name="train")
    val_ds = make_dataset(val, config.image_size, config.channels, config.batch_size, cache_dir=cache_dir, name="val")
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=epochs_done,
              callbacks=[callback], verbose=0, shuffle=False)


def train_classifier(train: list[tuple[str, int]], val: list[tuple[str, int]], test: list[tuple[str, int]],
                     class_names: list[str], config: TrainConfig, workdir: Path, sink: ProgressSink,
                     resume: bool = False) -> TrainResult:
    """Train `config.architecture` on `train`, follow it on `val`, evaluate on `test` (or `val`).

    With `resume`, continues from the checkpoint in `workdir` when there is one for the same
    architecture, input, optimizer, learning rate, seed and classes: its history is kept, the
    optimizer state and early-stopping state come back, and new epochs follow up to
    `config.epochs` in all. Otherwise (or without `resume`) it starts over. Raises JobCancelled
    when the sink does, ValueError (a sentence for the user) for an unusable request.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    _check(config, train, val, class_names)
    workdir.mkdir(parents=True, exist_ok=True)
    sink.progress(0.0, "Preparing the model")
    keras.utils.set_random_seed(config.seed)
    plan = device_plan()
    sink.set_device(plan.description)

    cache_dir = workdir / CACHE_DIR
    shutil.rmtree(cache_dir, ignore_errors=True)  # a dead run's cache may be partial and locked
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if plan.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        steps = steps_per_epoch(len(train), config.batch_size)
        model, state = _model_to_train(workdir, config, class_names, steps, plan, resume)
        summary = zoo.summarize(model.get_layer(config.architecture))

        callback = JobCallback(sink, workdir, config, class_names, steps, len(train), state)
        _fit(model, callback, train, val, config, cache_dir, sink)
        model_epoch = restore_best(model, callback)

        items, where = (test, "test") if test else (val, "validation")
        scores = _evaluate(model, items, class_names, config, cache_dir, sink, where)
        sink.progress(EVAL_END, "Saving the model")
        if plan.mixed_precision:
            # Saved in float32: float16 layers would crawl on the CPU of an inference worker.
            # The weights themselves are float32 under mixed precision, so they carry over as they are.
            keras.mixed_precision.set_global_policy("float32")
            trained, model = model, _build(config, len(class_names), steps)
            model.set_weights(trained.get_weights())
        model_path = _save_for_use(model, workdir, config, class_names)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        shutil.rmtree(cache_dir, ignore_errors=True)

    sink.progress(1.0, "Done")
    return TrainResult(
        history=callback.history, best_epoch=callback.best_epoch or len(callback.history),
        test_loss=scores["loss"], test_accuracy=scores["accuracy"], confusion_matrix=scores["confusion_matrix"],
        classes=list(class_names), per_class=scores["per_class"], mistakes=scores["mistakes"],
        model_path=str(model_path), summary=summary, device=plan.description,
        images_per_second=round(callback.seen / callback.train_seconds, 1) if callback.train_seconds else 0.0,
        seconds=round(time.perf_counter() - started, 2), evaluated_on="test" if test else "validation",
        stopped_early=callback.stopped_early, epochs_run=callback.epochs_run, predictions=scores["predictions"],
        model_epoch=model_epoch)


# --- a probe for time estimates -----------------------------------------------------------------

def probe_seconds_per_image(architecture: str, shape: tuple[int, int, int], classes: int, batch_size: int,
                            seconds: float = 1.0) -> float:
    """Seconds one training image costs `architecture` on this machine: training steps on random pixels
    for about `seconds` after a warm-up step (which pays for tracing). A sweep's time estimate uses it
    when no earlier run was measured; it leaves out reading images, so it errs on the short side."""
    config = TrainConfig(architecture=architecture, image_size=shape[0], channels=shape[2],
                         batch_size=max(1, min(batch_size, 256)))
    zoo.check_input(architecture, shape, classes)
    model = _compiled(config, classes, steps=1)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (config.batch_size, *shape)).astype("float32")
    labels = rng.integers(0, classes, config.batch_size)
    model.train_on_batch(pixels, labels)
    steps, started = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - started < seconds:
        model.train_on_batch(pixels, labels)
        steps += 1
        if steps >= 200:
            break
    return (time.perf_counter() - started) / (steps * config.batch_size)
