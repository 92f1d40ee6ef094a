"""tf.data input pipelines for image classification: file lists in, batches of raw pixels out.

A dataset arrives as (image path, class index) pairs. Each image is read and decoded once by
TensorFlow (JPEG, PNG, GIF and BMP, any colour mode, forced to the channel count the model
wants), resized to a square and cached, so from the second epoch on training costs compute,
not disk and decoding. Pixels stay in 0..255: the model rescales them itself, which is what
lets a saved model take an uploaded photo's pixels as they are.

The order is `decode map -> cache -> shuffle -> batch -> augment map -> prefetch`: shuffling
after the cache gives a fresh order each epoch without decoding again, and augmentation after
batching runs the Keras preprocessing layers once per batch instead of once per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE

# Decoded datasets below this size are cached in memory; larger ones in a file under the job's folder.
MEMORY_CACHE_BYTES = 1 << 30

# The shuffle buffer holds decoded images, and the first batch of an epoch waits until it is
# full: bounded in bytes and in count, so neither memory nor the wait before the first batch
# (when nothing reports progress or notices a cancel) grows with the dataset. The file list is
# permuted once beforehand, so a window this size still mixes classes stored folder by folder.
SHUFFLE_BUFFER_BYTES = 512 * 1024**2
SHUFFLE_BUFFER_MAX = 10_000


def decoded_bytes(count: int, image_size: int, channels: int) -> int:
    """Memory that `count` decoded, resized float32 images take."""
    return count * image_size * image_size * channels * 4


def shuffle_buffer_size(count: int, image_size: int, channels: int) -> int:
    per_image = decoded_bytes(1, image_size, channels)
    return max(1, min(count, SHUFFLE_BUFFER_MAX, SHUFFLE_BUFFER_BYTES // per_image))


def load_image(path: tf.Tensor, image_size: int, channels: int) -> tf.Tensor:
    """One image file -> float32 (image_size, image_size, channels) tensor of 0..255 pixels.

    `decode_image` with a fixed channel count turns grayscale, RGBA and palette images into the
    mode the model expects (alpha is dropped); `expand_animations=False` keeps a GIF's first frame.
    Antialiased bilinear resizing does not alias when a large photo shrinks to a small input.
    """
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image = tf.ensure_shape(image, [None, None, channels])
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    return tf.cast(image, tf.float32)


def augmenter(flip: bool, rotation: float, zoom: float, seed: int) -> keras.Sequential | None:
    """Random training-time transformations as Keras preprocessing layers, or None when none are on.

    `rotation` is a fraction of a full turn and `zoom` a fraction of the size, both in either
    direction, as `keras.layers.RandomRotation` and `RandomZoom` take them. Flips are
    horizontal only: a photo upside down is a different photo.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, seed=seed + 1))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, seed=seed + 2))
    return keras.Sequential(layers, name="augmentation") if layers else None


def make_dataset(items: Sequence[tuple[str, int]], image_size: int, channels: int, batch_size: int, *,
                 training: bool = False, seed: int = 0, augment: keras.Sequential | None = None,
                 cache_dir: Path | None = None, name: str = "data",
                 memory_cache_bytes: int = MEMORY_CACHE_BYTES) -> tf.data.Dataset:
    """Batches of (float32 pixels 0..255, int32 labels) for `items`.

    Training data is shuffled (deterministically for `seed`, differently each epoch) and
    augmented; anything else keeps the order of `items`, so predictions line up with it.
    When the decoded images would exceed `memory_cache_bytes`, they are cached in a file
    `cache_dir/name` instead of in memory; that file belongs to one run and is stale after it.
    """
    if not items:
        raise ValueError(f"The {name} set has no images.")
    paths = np.array([str(path) for path, _ in items])
    labels = np.array([int(label) for _, label in items], dtype=np.int32)
    if training:
        order = np.random.default_rng(seed).permutation(len(items))
        paths, labels = paths[order], labels[order]

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    # Deterministic even for training: the cache keeps the order of this first pass and the seeded
    # shuffle permutes that order, so an arbitrary order here would make the seed meaningless.
    # It costs only the first epoch, the one pass that decodes.
    ds = ds.map(lambda path, label: (load_image(path, image_size, channels), label),
                num_parallel_calls=AUTOTUNE, deterministic=True)
    if decoded_bytes(len(items), image_size, channels) < memory_cache_bytes or cache_dir is None:
        ds = ds.cache()
    else:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        ds = ds.cache(str(Path(cache_dir) / name))
    if training:
        ds = ds.shuffle(shuffle_buffer_size(len(items), image_size, channels), seed=seed,
                        reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        # Batches may leave this map out of order: the random draws already differ run to run
        # (the layers' seed generators advance in whichever order parallel calls take them).
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=AUTOTUNE, deterministic=False)
    return ds.prefetch(AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    return math.ceil(count / batch_size)
