"""Predicting with a trained classifier: one uploaded photo in, the likeliest classes out.

The upload comes from anyone with access to the model (or to a public demo), in any format and
any state, so it is read with Pillow (every format ingestion accepts, EPS excluded) on a budget
that fits what the model needs rather than ingestion's: a much lower pixel limit (the
INFERENCE_MAX_PIXELS setting), checked on the header before a pixel is decoded, JPEGs decoded
already scaled down, and everything costly done after the image is cut down to about three
times the model's side (`decode_for_model`). A file whose header claims too many pixels is
refused in milliseconds, before anything is decoded. The photo is then made to look like the
training data: upright as the camera meant it, 8-bit, grayscale or RGB as the model was trained,
squashed to the model's square. The saved model rescales 0..255 pixels itself, so nothing else
is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jobs.ml import formats
from jobs.ml.artifacts import backbone_record
from jobs.ml.datasets.images import DAMAGED as DAMAGED_REASON
from jobs.ml.datasets.images import NOT_AN_IMAGE, Rejected, decode_for_model

NOT_READABLE = "This file is not an image we can read."
DAMAGED = "This image is damaged or cut short, so it cannot be read."
EMPTY = "The file is empty."


class BadImage(ValueError):
    """The upload cannot be used; str() is a sentence for the user."""


class FeaturePipeline:
    """A classifier whose backbone is a TensorFlow Lite file: the .tflite extractor, then the Keras head.

    Called like a Keras model (`model(pixels, training=False)`), so callers need not know.
    """

    def __init__(self, extractor, head):
        self.extractor, self.head = extractor, head

    def __call__(self, pixels, training: bool = False):
        return self.head(self.extractor(np.asarray(pixels, dtype=np.float32)), training=False)


def load_classifier(model_dir: Path) -> tuple[Any, dict]:
    """(the model, its metadata) from a folder holding `model.keras` and `metadata.json`.

    The model is the Keras model itself, except for transfer models on a TensorFlow Lite
    backbone (metadata "backbone" of kind "tflite"), which come as a `FeaturePipeline`.
    """
    import keras

    model_dir = Path(model_dir)
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    model = keras.models.load_model(model_dir / "model.keras", compile=False)
    backbone = backbone_record(model_dir, metadata)
    if not formats.of_backbone(backbone).in_graph:
        from jobs.ml.backbones import Backbone, load_extractor

        model = FeaturePipeline(load_extractor(Backbone.from_dict(backbone)), model)
    return model, metadata


def _sentence(rejected: Rejected) -> str:
    """Ingestion's short reasons ("image is too large (...)") as sentences."""
    if rejected.reason == NOT_AN_IMAGE:
        return NOT_READABLE
    if rejected.reason == DAMAGED_REASON:
        return DAMAGED
    return f"This {rejected.reason}."


# Decoded pixels an inference upload may cost (the INFERENCE_MAX_PIXELS setting): a 16-megapixel
# photo in any format, and far larger JPEGs, which decode scaled down.
MAX_PIXELS = 16_000_000


def read_image(image_bytes: bytes, image_size: int, channels: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Upload bytes -> float32 (image_size, image_size, channels) array of 0..255 pixels, or BadImage."""
    if not image_bytes:
        raise BadImage(EMPTY)
    im = decode_for_model(image_bytes, image_size, max_pixels)
    if isinstance(im, Rejected):
        raise BadImage(_sentence(im))
    with im:
        # Alpha is dropped, not composited: TensorFlow's decoder did the same to the training images.
        converted = im.convert("L" if channels == 1 else "RGB")
        resized = converted.resize((image_size, image_size), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32)
    return pixels[..., np.newaxis] if channels == 1 else pixels


def predict_image(model, metadata: dict, image_bytes: bytes, top: int = 5,
                  max_pixels: int = MAX_PIXELS) -> list[dict]:
    """The `top` likeliest classes for one image: [{"label", "probability"}], most likely first."""
    pixels = read_image(image_bytes, int(metadata["image_size"]), int(metadata["channels"]), max_pixels)
    probabilities = np.asarray(model(pixels[np.newaxis], training=False))[0]
    names = metadata["class_names"]
    order = np.argsort(-probabilities, kind="stable")[:max(1, min(top, len(names)))]
    return [{"label": names[i], "probability": float(probabilities[i])} for i in order]

