"""The plain catalogues the web process shows and validates against, without the code behind them.

Which architectures the zoo builds, which built-in backbones exist, which datasets one click
adds: names, titles, descriptions and reference numbers, nothing else. The web process reads
them from here (the old names `jobs.ml.zoo.ARCHITECTURES`, `jobs.ml.backbones.BUILTIN_BACKBONES`,
`jobs.ml.datasets.synthetic.BUILTIN_OFFLINE` and `jobs.ml.datasets.reference.REFERENCE` still
work for the workers), so this module imports the standard library only: no NumPy, Pillow,
Keras, TensorFlow or scikit-learn. `tests/test_web_imports.py` fails the build if importing any
`webapp` module loads TensorFlow, Keras or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

Entry = TypeVar("Entry")


def look_up(catalogue: Mapping[str, Entry], name: object, what: str, names: Iterable[str] | None = None) -> Entry:
    """`catalogue[name]`, or a ValueError with a sentence a user can act on: the `names` (by default the
    catalogue's) to choose from. `name` may be anything a request held, not only a string."""
    try:
        return catalogue[name]
    except (KeyError, TypeError):
        raise ValueError(f"There is no {what} called {name!r}; "
                         f"choose one of {', '.join(catalogue if names is None else names)}.") from None


# --- architectures: the model zoo (jobs.ml.zoo builds them, jobs.ml.transfer the backbone ones) --

@dataclass(frozen=True)
class Architecture:
    """What the UI shows about one architecture and what the launch form proposes."""

    name: str
    title: str
    description: str  # one or two plain sentences: what it is, when to use it, what it costs
    reference_input_shape: tuple[int, int, int]  # (height, width, channels)
    reference_classes: int
    reference_params: int | None  # exact total at the reference shape and class count
    default_image_size: int  # square side the launch form proposes
    default_channels: int  # 1 = grayscale, 3 = RGB
    min_image_size: int  # the smallest square side that still builds (pooling must not reach 0)
    # "scratch": built here and trained end to end; "transfer": a head on a pretrained backbone;
    # "features": a classical model on cached features (jobs.ml.transfer builds those two).
    family: str = "scratch"
    default_backbone: str = ""  # for transfer and feature models: what `params.backbone` defaults to
    fixed_backbone: bool = False  # True for the presets, whose name says the backbone

    @property
    def uses_backbone(self) -> bool:
        return self.family != "scratch"


def _architecture(name: str, title: str, reference_input_shape: tuple[int, int, int], reference_classes: int,
                  reference_params: int | None, description: str, *, default_image_size: int | None = None,
                  min_image_size: int = 32, **on_backbone: str | bool) -> Architecture:
    """An architecture whose launch form proposes its reference input: that side (unless
    `default_image_size` says otherwise) and those channels. Most need at least 32 px. `on_backbone`:
    `family`, `default_backbone` and `fixed_backbone`, for the models on a backbone."""
    side, _, channels = reference_input_shape
    return Architecture(
        name=name, title=title, description=description, reference_input_shape=reference_input_shape,
        reference_classes=reference_classes, reference_params=reference_params,
        default_image_size=default_image_size or side, default_channels=channels, min_image_size=min_image_size,
        **on_backbone,
    )


def _on_backbone(name: str, title: str, family: str, default_backbone: str, reference_params: int | None,
                 description: str, *, side: int = 224, preset: bool = False) -> Architecture:
    """A model on a pretrained backbone (jobs.ml.transfer builds it), at its reference a two-class RGB
    classifier of `side` px. A `preset` always uses its default backbone (its name says which)."""
    return _architecture(name, title, (side, side, 3), 2, reference_params, description, family=family,
                         default_backbone=default_backbone, fixed_backbone=preset)


ARCHITECTURES: dict[str, Architecture] = {arch.name: arch for arch in (
    _architecture("mlp", "Multilayer perceptron", (28, 28, 1), 10, 101_770, min_image_size=1, description=(
        "One hidden layer of 128 units on the flattened pixels: the quickest baseline, trained in seconds on a "
        "CPU. Fine for small centred grayscale images such as digits or clothing; it ignores where pixels are, "
        "so photos need a convolutional network.")),
    _architecture("lenet5", "LeNet-5", (28, 28, 1), 10, 44_426, min_image_size=16, description=(
        "The classic small convolutional network: two 5x5 convolutions with pooling, then three dense layers. "
        "Made for 28x28 grayscale digits; it trains in a minute or two on a CPU.")),
    _architecture("cnn", "Convolutional network", (256, 256, 3), 10, 10_736_458, default_image_size=128, description=(
        "Nine 3x3 convolutions with batch normalization, global average pooling and two dense layers (about 10.7 "
        "million parameters): a good first choice for colour photos. It is proposed at the photos' size up to "
        "128x128 because on a CPU it is slow at 256x256; use a GPU for large images.")),
    _architecture("vgg16", "VGG16", (224, 224, 3), 1000, 138_357_544, description=(
        "VGG16 trained from scratch: 13 3x3 convolutions in five blocks and two 4096-unit dense layers, about 138 "
        "million parameters at 224x224. It needs a GPU and many thousands of images; for a small dataset a "
        "transfer model learns far faster.")),
    _architecture("vgg19", "VGG19", (224, 224, 3), 1000, 143_667_240, description=(
        "VGG16 with one more convolution in each of its last three blocks (16 in all, about 144 million "
        "parameters at 224x224). Slightly slower than VGG16 and just as hungry: a GPU and a large dataset.")),
    _on_backbone("transfer", "Transfer learning (any backbone)", "transfer", "mobilenet_v2", None, description=(
        "A frozen pretrained backbone of your choice (a built-in one, a file you uploaded or a model you trained) "
        "with a small head: Dense(256), Dropout(0.5), softmax. 'extract' trains the head on cached features in "
        "seconds; 'finetune' also retrains the backbone's last block.")),
    _on_backbone("vgg16_transfer", "VGG16 transfer", "transfer", "vgg16_conv", 16_812_622, side=150, preset=True,
                 description=("The VGG16 convolutional base pretrained on ImageNet (4x4x512 features at 150x150) "
                              "with a small dense head: the classic way to get a good classifier from a few "
                              "hundred photos.")),
    _on_backbone("mobilenet_v2_transfer", "MobileNetV2 transfer", "transfer", "mobilenet_v2", 2_586_434, preset=True,
                 description=("MobileNetV2 pretrained on ImageNet (1280 features per photo) with a small dense "
                              "head. About ten times cheaper than VGG16, so it is the quick choice on a CPU.")),
    _on_backbone("logreg", "Logistic regression on features", "features", "mobilenet_v2", None, description=(
        "Logistic regression on a backbone's cached features: a baseline that trains in seconds, so you know what "
        "a deeper model has to beat.")),
)}


# --- built-in backbones (jobs.ml.backbones builds them from keras.applications) -----------------

BUILTIN_BACKBONES: dict[str, dict] = {
    "vgg16": {
        "title": "VGG16",
        "description": ("VGG16 up to its second 4096-unit dense layer (fc2), at 224x224: the features of the "
                        "captioning seeds. Slow on a CPU (about 15 billion operations per image)."),
        "image_size": 224, "layer": "fc2", "feature_shape": (4096,), "channels": 3, "weights_mb": 528,
    },
    "vgg16_conv": {
        "title": "VGG16 conv base",
        "description": ("VGG16's convolutional base at 150x150: a 4x4x512 map from block5_pool, for the "
                        "transfer-learning seed. About a third of VGG16's cost per image."),
        "image_size": 150, "layer": "block5_pool", "feature_shape": (4, 4, 512), "channels": 3, "weights_mb": 56,
    },
    "mobilenet_v2": {
        "title": "MobileNetV2",
        "description": ("MobileNetV2 with global average pooling: 1280 features per image at 224x224. About "
                        "fifty times cheaper than VGG16, so it is the one to use on a CPU."),
        "image_size": 224, "layer": "global_average_pooling2d", "feature_shape": (1280,), "channels": 3,
        "weights_mb": 9,
    },
}

# MobileNetV2 ImageNet weights exist for these input sides; keras.applications uses 224's otherwise.
MOBILENET_V2_ROWS = (96, 128, 160, 192, 224)


def imagenet_weights_file(name: str, image_size: int | None = None) -> str:
    """The file name keras.applications gives a built-in backbone's ImageNet weights in the Keras cache
    (`$KERAS_HOME/models/`): the web process checks it is there, jobs.ml.backbones fetches it."""
    if name == "vgg16":
        return "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    if name == "vgg16_conv":
        return "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if name != "mobilenet_v2":
        raise KeyError(name)
    size = BUILTIN_BACKBONES[name]["image_size"] if image_size is None else image_size
    rows = size if size in MOBILENET_V2_ROWS else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"


# --- datasets one click adds (jobs.ml.datasets.synthetic and .reference make them) ---------------

@dataclass(frozen=True)
class Suggestion:
    """The run a built-in dataset proposes: an architecture and the parameters that differ from the
    defaults. With them it reaches at least 90% on its test images (tests/test_builtin_training.py);
    image size and colour mode come from the dataset, as for every launch that leaves them out."""

    architecture: str
    params: tuple[tuple[str, object], ...]  # (name, value) pairs: a frozen dataclass stays hashable
    why: str  # one sentence: why this one, and what it costs


@dataclass(frozen=True)
class DatasetSource:
    """A dataset the Datasets page offers with one click."""

    name: str
    title: str
    kind: Literal["classification", "captions"]
    description: str
    offline: bool  # True: generated on the worker; False: downloaded through Keras (needs internet or a mirror)
    suggested: Suggestion | None = None  # classification built-ins: what to train on it first


# Generated or shipped offline, so a fresh install has something real to train at once.
BUILTIN_DATASETS: dict[str, DatasetSource] = {source.name: source for source in (
    DatasetSource(
        "digits", "Handwritten digits (scikit-learn)", "classification",
        "1,797 real 8x8 scans of handwritten digits 0-9 shipped inside scikit-learn, enlarged to 32 px.", True,
        Suggestion("lenet5", (("epochs", 12), ("learning_rate", 0.005)),
                   "LeNet-5 was made for small grayscale digits; with a larger learning rate it gets past its slow "
                   "sigmoid start and scores about 95% in well under a minute on a CPU."),
    ),
    DatasetSource(
        "shapes", "Shapes: circles, squares and triangles", "classification",
        "180 generated 64 px pictures of one dark circle, square or triangle on a light ground, in random "
        "colours, sizes and places.", True,
        Suggestion("cnn", (),
                   "Only the outline tells these shapes apart, not their colours: the convolutional network learns it "
                   "to over 90% at the pictures' 64 px in its ten epochs, in a few minutes on a CPU."),
    ),
    DatasetSource(
        "shapes-captions", "Captioned shapes", "captions",
        "120 generated pictures of coloured shapes, each with five differently worded captions.", True,
    ),
)}

# Downloaded through Keras's own code where the machine has internet (or from a mirror).
REFERENCE_DATASETS: dict[str, DatasetSource] = {source.name: source for source in (
    DatasetSource(
        "mnist", "MNIST", "classification",
        "70,000 28x28 grayscale handwritten digits 0-9, the classic first dataset (11 MB download).", False,
    ),
    DatasetSource(
        "fashion_mnist", "Fashion-MNIST", "classification",
        "70,000 28x28 grayscale photos of 10 kinds of clothing, a harder drop-in for MNIST (30 MB).", False,
    ),
    DatasetSource(
        "cifar10", "CIFAR-10", "classification",
        "60,000 32x32 colour photos of 10 everyday classes such as cats, ships and trucks (163 MB).", False,
    ),
)}
