"""Small feature extractors the tests upload as "bring your own backbone" files.

They have no trained weights at all, so nothing is downloaded and every run gets the same
features: `pixels_backbone` averages 4x4 blocks of the photo into a 8x8x3 thumbnail (192
numbers), which says where each colour is, which is what the generated shapes datasets vary.
"""

from __future__ import annotations

from pathlib import Path


def pixels_model(size: int = 32, block: int = 4):
    import keras

    return keras.Sequential([
        keras.Input((size, size, 3), name="pixels"),
        keras.layers.Rescaling(1 / 255, name="scale"),
        keras.layers.AveragePooling2D(block, name="blocks"),
        keras.layers.Flatten(name="thumbnail"),
    ], name="pixels_backbone")


def pixels_backbone(folder: Path, size: int = 32, block: int = 4) -> Path:
    path = Path(folder) / "pixels.keras"
    pixels_model(size, block).save(path)
    return path


def pixels_backbone_tflite(folder: Path, size: int = 32) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(pixels_model(size))
    path = Path(folder) / "pixels.tflite"
    path.write_bytes(converter.convert())
    return path
