"""How a backbone wants its pixels: input conventions as data (issue 10).

Every network was trained on pixels scaled one particular way, and nothing in most model files
says which: Keras applications want 0..255 (they rescale inside) or caffe's BGR minus the
ImageNet mean, TF-Hub and TFLite models -1..1 or 0..1, PyTorch ports the ImageNet mean and std.
Feed a model the wrong range and it still answers, with features that carry almost nothing
about the photo. So the convention is recorded on the backbone, chosen once (from the file when
it says, by its owner otherwise), and every path that runs the backbone applies the same one:
VisionLab hands it 0..255 RGB (or grayscale) pixels, and `InputScaling` turns them into what the
model wants.

Every convention is one affine map per pixel: out = pixels @ matrix + bias, the matrix a
diagonal scale or, for caffe, the RGB->BGR swap. Keras models get it as a frozen 1x1 convolution
in front (`keras_layer`), a stock layer, so a saved transfer model still takes raw pixels and
reloads anywhere without VisionLab's code; TensorFlow Lite models get it in NumPy (`feed`).

A quantized (uint8 or int8) input is the case people get wrong most: its (scale, zero point)
describe the real values its float graph saw, not something the caller should do. The raw
convention hands such a model the pixels themselves in its integer type (int8 as pixel - 128);
any other convention computes the real values and quantizes them with the tensor's parameters.

No TensorFlow here: the web process imports the catalogue (`SCALINGS`) for its forms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ImageNet statistics as the two big ecosystems apply them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils "caffe", subtracted in BGR order
TORCH_MEAN = (0.485, 0.456, 0.406)  # of 0..1 RGB pixels, "torch" mode
TORCH_STD = (0.229, 0.224, 0.225)

# name -> (title for forms, what it means). Order is the order forms show them in.
SCALINGS: dict[str, tuple[str, str]] = {
    "raw": ("Raw 0..255", "The pixels as they are: 0..255 floats, or the pixels themselves in a uint8 input "
                          "(pixel - 128 in an int8 one). For models that rescale inside, and quantized models."),
    "unit": ("0..1", "pixel / 255."),
    "symmetric": ("-1..1", "pixel / 127.5 - 1: MobileNet, EfficientNet-lite, Inception and most TF-Hub models."),
    "caffe": ("Caffe (BGR, ImageNet mean subtracted)", "RGB turned to BGR, minus the ImageNet mean pixel "
                                                       "(103.9, 116.8, 123.7): VGG and ResNet from Keras."),
    "torch": ("Torch (ImageNet mean and std)", "pixel / 255, minus (0.485, 0.456, 0.406), divided by "
                                               "(0.229, 0.224, 0.225): models ported from PyTorch."),
    "mean_std": ("Your mean and std", "(pixel - mean) / std per channel, with the mean and std you give, in "
                                      "pixel units (e.g. 127.5 and 127.5 for -1..1)."),
}
MAX_ABS_MEAN, MIN_STD, MAX_STD = 1e4, 1e-6, 1e6
SCALING_LAYER = "input_scaling"  # the frozen layer's name in Keras models: fine-tuning never unfreezes it


@dataclass(frozen=True)
class InputScaling:
    """One of `SCALINGS`; `mean` and `std` (one value, or one per channel, in 0..255 pixel units) only
    for "mean_std"."""

    kind: str = "raw"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self):
        if self.kind not in SCALINGS:
            raise ValueError(f"There is no input scaling called {self.kind!r}; choose one of "
                             f"{', '.join(SCALINGS)}.")
        if self.kind == "mean_std":
            _check_statistics(self.mean, self.std)
        elif self.mean or self.std:
            raise ValueError(f"A mean and std go with the mean_std scaling, not with {self.kind}.")

    @property
    def is_raw(self) -> bool:
        return self.kind == "raw"

    @property
    def title(self) -> str:
        if self.kind == "mean_std":
            return f"(pixel - {_numbers(self.mean)}) / {_numbers(self.std)}"
        return SCALINGS[self.kind][0]

    def to_dict(self) -> dict:
        data: dict = {"kind": self.kind}
        if self.kind == "mean_std":
            data.update(mean=list(self.mean), std=list(self.std))
        return data

    @classmethod
    def from_dict(cls, data: dict | str | None) -> InputScaling:
        """The record's scaling; None (records from before scalings existed) means raw."""
        if not data:
            return RAW
        if isinstance(data, str):
            return cls(data)
        return cls(str(data.get("kind", "raw")), tuple(float(v) for v in data.get("mean") or ()),
                   tuple(float(v) for v in data.get("std") or ()))

    @classmethod
    def from_statistics(cls, mean, std) -> InputScaling:
        """The scaling for a (mean, std) pair such as TFLite metadata gives, named when it is a common one."""
        mean = tuple(float(v) for v in mean)
        std = tuple(float(v) for v in std)
        _check_statistics(mean, std)
        same = len(set(mean)) == 1 and len(set(std)) == 1
        if same:
            m, s = mean[0], std[0]
            for kind, (want_mean, want_std) in (("raw", (0.0, 1.0)), ("unit", (0.0, 255.0)),
                                                ("symmetric", (127.5, 127.5))):
                if math.isclose(m, want_mean, abs_tol=1e-3) and math.isclose(s, want_std, rel_tol=1e-3):
                    return cls(kind)
        return cls("mean_std", mean, std)

    def affine(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(matrix (C, C), bias (C,)) with scaled = pixels @ matrix + bias, for C = `channels` (1 or 3)."""
        if self.kind in ("caffe", "torch") and channels != 3:
            raise ValueError(f"The {self.title} scaling is for colour (RGB) models; this one takes grayscale.")
        eye = np.eye(channels, dtype=np.float64)
        if self.kind == "raw":
            return eye, np.zeros(channels)
        if self.kind == "unit":
            return eye / 255.0, np.zeros(channels)
        if self.kind == "symmetric":
            return eye / 127.5, -np.ones(channels)
        if self.kind == "caffe":
            swap = np.zeros((3, 3))
            for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
                swap[rgb, bgr] = 1.0
            return swap, -np.asarray(CAFFE_MEAN_BGR)
        if self.kind == "torch":
            mean, std = np.asarray(TORCH_MEAN) * 255.0, np.asarray(TORCH_STD) * 255.0
        else:
            mean, std = _per_channel(self.mean, channels), _per_channel(self.std, channels)
        return np.diag(1.0 / std), -mean / std

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """float32 0..255 pixels (..., C) -> what the model wants, as float32."""
        pixels = np.asarray(pixels, np.float32)
        if self.is_raw:
            return pixels
        matrix, bias = self.affine(pixels.shape[-1])
        return (pixels @ matrix.astype(np.float32) + bias.astype(np.float32)).astype(np.float32)

    def feed(self, pixels: np.ndarray, dtype, quantization: tuple[float, int] = (0.0, 0)) -> np.ndarray:
        """0..255 pixels -> an input tensor of `dtype` (a TFLite input's type and (scale, zero point))."""
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            return self.apply(pixels).astype(dtype)
        info = np.iinfo(dtype)
        if self.is_raw:  # the pixels themselves, shifted into the type's range (int8: pixel - 128)
            values = np.asarray(pixels, np.float32) + (0 if info.min == 0 else info.min)
        else:
            scale, zero = quantization
            real = self.apply(pixels)
            values = real / scale + zero if scale else real
        return np.clip(np.round(values), info.min, info.max).astype(dtype)

    def keras_layer(self, channels: int, name: str = SCALING_LAYER):
        """A frozen 1x1 convolution doing `apply` exactly (float32), or None for raw pixels."""
        if self.is_raw:
            return None
        import keras

        matrix, bias = self.affine(channels)
        kernel = matrix.reshape(1, 1, channels, channels).astype(np.float32)
        return keras.layers.Conv2D(channels, 1, name=name, trainable=False, dtype="float32",
                                   kernel_initializer=keras.initializers.Constant(kernel),
                                   bias_initializer=keras.initializers.Constant(bias.astype(np.float32)))


RAW = InputScaling("raw")


def parse(kind: str | None, mean=None, std=None) -> InputScaling | None:
    """The scaling a form or API call asks for; None for "auto" (let the file decide). ValueError: a sentence."""
    kind = (kind or "auto").strip().lower()
    if kind == "auto":
        if mean or std:
            raise ValueError("Give a mean and std together with the mean_std scaling.")
        return None
    if kind == "mean_std":
        if not mean or not std:
            raise ValueError("The mean_std scaling needs both a mean and a std (one number, or three for R, G, B).")
        return InputScaling(kind, _floats(mean, "mean"), _floats(std, "std"))
    if mean or std:
        raise ValueError(f"A mean and std go with the mean_std scaling, not with {kind}.")
    return InputScaling(kind)


def _floats(values, what: str) -> tuple[float, ...]:
    """'127.5' or '123.7, 116.3, 103.5' or [..] -> floats, or a sentence naming `what`."""
    if isinstance(values, str):
        values = [part for part in values.replace(";", ",").replace(" ", ",").split(",") if part]
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"The {what} is one number, or three separated by commas.") from None
    return numbers


def _check_statistics(mean: tuple, std: tuple) -> None:
    if len(mean) not in (1, 3) or len(std) not in (1, 3):
        raise ValueError("The mean and the std are one number each, or three (for R, G and B).")
    if not all(math.isfinite(v) and abs(v) <= MAX_ABS_MEAN for v in mean):
        raise ValueError(f"Each mean is a number between -{MAX_ABS_MEAN:g} and {MAX_ABS_MEAN:g} (pixel units).")
    if not all(math.isfinite(v) and MIN_STD <= v <= MAX_STD for v in std):
        raise ValueError("Each std is a positive number (pixel units: 127.5 turns 0..255 into a range of 2).")


def _per_channel(values: tuple[float, ...], channels: int) -> np.ndarray:
    if len(values) == 1:
        return np.full(channels, values[0], np.float64)
    if len(values) != channels:
        raise ValueError(f"The model takes {channels} channel{'s' if channels > 1 else ''}, so the mean and std "
                         f"need 1 or {channels} values, not {len(values)}.")
    return np.asarray(values, np.float64)


def _numbers(values: tuple[float, ...]) -> str:
    text = ", ".join(f"{v:g}" for v in values)
    return f"({text})" if len(values) > 1 else text
