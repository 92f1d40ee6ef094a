"""What VisionLab asks of a backbone model whatever runs it, and the sentences it answers with.

One square image input of 1 or 3 channels, a fixed number of features per image, an ImageNet
classifier recognised by its output's width. `jobs.ml.keras_runtime`, `jobs.ml.tflite_runtime`
and `jobs.ml.backbones` share these, so neither runtime imports the other.

Plain Python: no Keras or TensorFlow.
"""

from __future__ import annotations

IMAGENET_WIDTHS = (1000, 1001)  # 1001: TF-slim and TFLite models, with "background" first


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type's name when it has none), at most `limit` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def some_names(paths: list[str], count: int = 8) -> str:
    """The last `count` names, and how many more there are: layers or tensors "near its end"."""
    shown = paths[-count:]
    more = f" (and {len(paths) - len(shown)} more)" if len(paths) > len(shown) else ""
    return ", ".join(shown) + more


def image_input(shape: tuple, input_size: int | None, what: str) -> tuple[int, int]:
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


def feature_shape(shape: tuple, what: str) -> tuple[int, ...]:
    """The per-image feature shape of an output of `shape` (batch first), or a sentence when it is not fixed."""
    dims = tuple(shape[1:])
    if not dims or any(d is None or int(d) < 1 for d in dims):
        raise ValueError(f"The {what} gives features of shape {list(dims)}; a backbone must give a fixed number "
                         "of features per image.")
    return tuple(int(d) for d in dims)
