"""Backbones: the networks that turn images into feature vectors (workflow 3 in PRODUCT.md).

A backbone is described by a small frozen `Backbone` record (what it is, which layer the features
come from, which weights, what input it takes; defined in `jobs.ml.backbone_record`, imported from
here) and turned into a working extractor only on a worker, by `load_extractor`. The record is what
the feature cache keys on and what a trained transfer model remembers, so it holds nothing that
cannot be written to JSON.

Four sources:
- the builtins (`vgg16` fc2, `vgg16_conv` block5_pool, `mobilenet_v2` average pool), built here
  from `keras.applications` with their own preprocessing in front, so every extractor takes raw
  0..255 pixels like every other VisionLab model. The preprocessing is made of stock layers
  (a frozen 1x1 convolution does VGG's RGB->BGR swap and mean subtraction exactly), so a saved
  transfer model reloads anywhere without VisionLab's code;
- an uploaded `.keras` / `.h5` / `.tflite` file (`inspect_file`; what each format does is on its
  class in `jobs.ml.formats`, and the code that opens and runs it in the runtime modules its class
  calls, `jobs.ml.keras_runtime` and `jobs.ml.tflite_runtime`), fed the way its `InputScaling` says
  (`jobs.ml.scaling`): decided by the file where it can say (a quantized input takes the pixels
  themselves, TFLite metadata names its mean and std), by its owner otherwise;
- a VisionLab-trained classifier (`from_trained_model`), cut before its softmax layer.

This module asks the format registry and the runtimes; they never import it back.

ImageNet weights come from Keras's own cache (`$KERAS_HOME/models/`, `~/.keras/models/` when
the variable is unset), downloaded by Keras on first use; an air-gapped site drops the file
there itself, and `WeightsMissing` says exactly which file, where and from which address.

This module is imported by the web process for `BUILTIN_BACKBONES`, so Keras and TensorFlow are
imported only inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jobs.ml import formats, keras_runtime
from jobs.ml.backbone_record import Backbone
from jobs.ml.keras_runtime import MIN_SAFE_KERAS, check_safe_keras  # noqa: F401 - still imported from here
from jobs.ml.model_checks import first_line
from jobs.ml.scaling import InputScaling

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
        error.reason = first_line(exc)  # for the worker's log; the user needs the sentence above
        raise error from None


# --- small helpers -------------------------------------------------------------------------------

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


def _check_size(input_size: int | None) -> int | None:
    if input_size is None:
        return None
    if isinstance(input_size, bool) or not isinstance(input_size, int | np.integer):
        raise ValueError(f"The input size is a whole number of pixels, not {input_size!r}.")
    if not MIN_IMAGE_SIZE <= input_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"The input size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, "
                         f"not {input_size}.")
    return int(input_size)


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
    model = keras_runtime.load_file(path)
    _, layer, size, channels, shape = keras_runtime.resolve(model, keras_runtime.penultimate_path(model), size)
    return Backbone(name=name, layer=layer, weights=f"sha256:{file_sha256(path)}", image_size=size,
                    channels=channels, feature_shape=shape, kind=formats.KerasFormat.kind, source=str(path))


def _is_builtin(backbone: Backbone) -> bool:
    """Whether the record is one of the builtins, which are built here rather than read from a file."""
    return backbone.name in BUILTIN_BACKBONES and not backbone.source


def _builtin_model(backbone: Backbone, precision: str):
    import keras

    weights = None
    if backbone.weights == "imagenet":
        weights = str(_imagenet_file(backbone.name, backbone.image_size))
    elif backbone.weights != "random":
        raise ValueError(f"Built-in backbones come with 'imagenet' or 'random' weights, not {backbone.weights!r}.")
    size = backbone.image_size
    shape = (size, size, 3)
    with keras_runtime.global_policy(precision):
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
                                 f"{backbone.title} ({first_line(exc)}). Download {url} again, put it at "
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
    if _is_builtin(backbone):
        return _builtin_model(backbone, precision)
    return keras_runtime.file_feature_model(backbone, precision)


def load_extractor(backbone: Backbone, precision: str = "float32") -> Callable[[Any], np.ndarray]:
    """A function mapping a float32 0..255 pixel batch (N, size, size, C) to float32 features
    (N, feature_dim), made by the backbone's format. `precision` applies to Keras backbones; a TFLite
    model runs in its own types."""
    _check_precision(precision)
    fmt = formats.by_kind(backbone.kind)
    if fmt.in_graph and _is_builtin(backbone):  # built here from keras.applications, not read from a file
        return keras_runtime.Extractor(_builtin_model(backbone, precision), backbone, precision)
    return fmt.extractor(backbone, precision)
